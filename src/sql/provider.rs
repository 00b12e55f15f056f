//! [`ZerobusTableProvider`]: a write-only DataFusion table backed by a Zerobus table.

use std::any::Any;
use std::fmt;
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

/// How a [`ZerobusTableProvider`] plans an `INSERT INTO`: from the plan of the rows to
/// insert and the table's sink, the plan that writes them and returns their `count`.
///
/// Without one the table plans a `DataSinkExec` (its input merged into one partition by
/// DataFusion's optimizer; the sink's `workers` streams write it). Other engines set their
/// own with [`ZerobusTableProvider::with_insert_plan`]: `zerobus-ballista` writes every
/// input partition in its own task, the FFI export merges the input itself. Checks that
/// do not depend on the plan (an `INSERT OVERWRITE` is refused, ...) come first, whatever
/// the plan.
///
/// ```
/// use std::sync::Arc;
/// use arrow_zerobus_sdk_wrapper::sql::{InsertPlan, ZerobusDataSink};
/// use datafusion::datasource::sink::DataSinkExec;
/// use datafusion::error::Result;
/// use datafusion::physical_plan::ExecutionPlan;
///
/// /// The default plan, spelled out.
/// #[derive(Debug)]
/// struct SinkExec;
///
/// impl InsertPlan for SinkExec {
///     fn plan(
///         &self,
///         input: Arc<dyn ExecutionPlan>,
///         sink: ZerobusDataSink,
///     ) -> Result<Arc<dyn ExecutionPlan>> {
///         Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
///     }
/// }
/// ```
pub trait InsertPlan: Any + fmt::Debug + Send + Sync {
    /// The plan writing the rows of `input` through `sink`, returning one `count` row.
    fn plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        sink: ZerobusDataSink,
    ) -> Result<Arc<dyn ExecutionPlan>>;
}

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
    insert_plan: Option<Arc<dyn InsertPlan>>,
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
            insert_plan: None,
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

    /// Plans `INSERT INTO` this table with `plan` instead of a `DataSinkExec`.
    pub fn with_insert_plan(mut self, plan: Arc<dyn InsertPlan>) -> Self {
        self.insert_plan = Some(plan);
        self
    }

    /// The INSERT plan set with [`with_insert_plan`](Self::with_insert_plan), if any.
    pub fn insert_plan(&self) -> Option<&Arc<dyn InsertPlan>> {
        self.insert_plan.as_ref()
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
        match &self.insert_plan {
            Some(plan) => plan.plan(input, sink),
            None => Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// An INSERT plan that counts its calls and plans an `EmptyExec` of the count schema
    /// (never run: the tests only plan).
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl InsertPlan for Counting {
        fn plan(
            &self,
            input: Arc<dyn ExecutionPlan>,
            sink: ZerobusDataSink,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            assert_eq!(sink.config().table_name, "main.default.events");
            assert_eq!(input.schema().field(0).name(), "id");
            self.0.fetch_add(1, Ordering::SeqCst);
            let count = Field::new("count", DataType::UInt64, false);
            Ok(Arc::new(EmptyExec::new(Arc::new(Schema::new(vec![count])))))
        }
    }

    fn context(plan: Option<Arc<Counting>>) -> Result<SessionContext> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let config = WrapperConfiguration::new("http://127.0.0.1:1", "main.default.events");
        let mut table = ZerobusTableProvider::new(schema, config);
        if let Some(plan) = plan {
            table = table.with_insert_plan(plan);
        }
        let ctx = SessionContext::new();
        ctx.register_table("events", Arc::new(table))?;
        Ok(ctx)
    }

    async fn root(ctx: &SessionContext, sql: &str) -> Result<String> {
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        Ok(plan.name().to_string())
    }

    #[tokio::test]
    async fn an_insert_plan_replaces_the_data_sink_exec_after_the_same_checks() -> Result<()> {
        let insert = "INSERT INTO events VALUES (1)";
        assert_eq!(root(&context(None)?, insert).await?, "DataSinkExec");

        let plan = Arc::new(Counting::default());
        let ctx = context(Some(Arc::clone(&plan)))?;
        assert_eq!(root(&ctx, insert).await?, "EmptyExec");
        assert_eq!(plan.0.load(Ordering::SeqCst), 1);

        let error = root(&ctx, "INSERT OVERWRITE events VALUES (1)")
            .await
            .expect_err("overwrite refused");
        assert!(
            error
                .to_string()
                .contains("INSERT OVERWRITE is not supported"),
            "{error}"
        );
        assert_eq!(plan.0.load(Ordering::SeqCst), 1, "not planned");
        Ok(())
    }
}
