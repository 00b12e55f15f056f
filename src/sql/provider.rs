//! [`ZerobusTableProvider`]: a write-only DataFusion table backed by a Zerobus table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::options::{SinkOptions, TableOptions};
use super::sink::ZerobusDataSink;
use crate::config::WrapperConfiguration;

/// A Zerobus table as a DataFusion [`TableProvider`]: `INSERT INTO` appends rows through
/// [`ZerobusWrapper`](crate::ZerobusWrapper)s; reading (`SELECT`) is an error, since Zerobus
/// is a write-only ingest service (read the Delta table through Databricks instead).
///
/// ```no_run
/// # async fn example() -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use arrow_zerobus_sdk_wrapper::sql::ZerobusTableProvider;
/// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
/// use datafusion::prelude::SessionContext;
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::Utf8, true),
/// ]));
/// let config = WrapperConfiguration::new("http://127.0.0.1:50051", "main.default.events");
/// let ctx = SessionContext::new();
/// ctx.register_table("events", Arc::new(ZerobusTableProvider::new(schema, config)))?;
/// ctx.sql("INSERT INTO events VALUES (1, 'a'), (2, 'b')").await?.collect().await?;
/// # Ok(())
/// # }
/// ```
///
/// # NOT NULL columns
/// DataFusion sees every column as nullable ([`TableProvider::schema`]); the sink enforces
/// `NOT NULL` itself, row by row, with an error naming the column (DataFusion's own check
/// names a column by position, or by the name of a `VALUES` column). The declared schema
/// is [`ZerobusTableProvider::table_schema`].
#[derive(Debug, Clone)]
pub struct ZerobusTableProvider {
    schema: SchemaRef,
    planning_schema: SchemaRef,
    config: WrapperConfiguration,
    options: SinkOptions,
}

impl ZerobusTableProvider {
    /// A table of `schema` written with `config` (its `table_name` is the Zerobus table)
    /// and the default [`SinkOptions`].
    pub fn new(schema: SchemaRef, config: WrapperConfiguration) -> Self {
        Self {
            planning_schema: super::sink::nullable(&schema),
            schema,
            config,
            options: SinkOptions::default(),
        }
    }

    /// The table `options` describe (its name is `options.config.table_name`), of
    /// `schema`, or without one of the schema Unity Catalog has for it
    /// ([`fetch_uc_schema`](super::fetch_uc_schema)). What `CREATE EXTERNAL TABLE ... STORED
    /// AS ZEROBUS` makes, and the Python package's `ZerobusTable`.
    ///
    /// # Errors
    /// The schema cannot be read from Unity Catalog, or has a column Zerobus cannot take
    /// (a `TIME` column, ...): refused here rather than at the first INSERT.
    pub async fn from_options(schema: Option<SchemaRef>, options: TableOptions) -> Result<Self> {
        let schema = match schema {
            Some(schema) => schema,
            None => Arc::new(super::fetch_uc_schema(&options.config).await?),
        };
        let table = &options.config.table_name;
        crate::schema::TableSchema::try_new(Arc::clone(&schema), table)
            .map_err(|e| DataFusionError::Plan(format!("Zerobus table {table}: {e}")))?;
        Ok(Self::new(schema, options.config).with_sink_options(options.sink))
    }

    /// The table's schema as declared (with its NOT NULL columns).
    pub fn table_schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Replaces the sink options (workers, batches in flight, failure handling).
    pub fn with_sink_options(mut self, options: SinkOptions) -> Self {
        self.options = options;
        self
    }

    /// The wrapper configuration.
    pub fn config(&self) -> &WrapperConfiguration {
        &self.config
    }

    /// The sink options.
    pub fn sink_options(&self) -> &SinkOptions {
        &self.options
    }
}

#[async_trait]
impl TableProvider for ZerobusTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.planning_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(format!(
            "Zerobus table {} is a write-only table: Zerobus ingests rows but cannot read \
             them back; query the Delta table in Databricks instead",
            self.config.table_name
        )))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let statement = match insert_op {
            InsertOp::Append => None,
            InsertOp::Overwrite => Some("INSERT OVERWRITE"),
            InsertOp::Replace => Some("REPLACE INTO"),
        };
        if let Some(statement) = statement {
            return Err(DataFusionError::NotImplemented(format!(
                "{statement} is not supported by Zerobus (append-only); table {} only \
                 accepts INSERT INTO",
                self.config.table_name
            )));
        }
        let sink = ZerobusDataSink::new(
            Arc::clone(&self.schema),
            self.config.clone(),
            self.options.clone(),
        );
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}
