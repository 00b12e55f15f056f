//! The optional schema check against Unity Catalog; what it checks is documented on
//! [`WrapperConfiguration::with_schema_check`](crate::WrapperConfiguration::with_schema_check).

mod check;
mod client;
mod types;

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use databricks_zerobus_ingest_sdk::schema::UcTableSchema;
use tokio::sync::OnceCell;

pub(crate) use check::CheckedRows;
use check::Plan;
#[cfg(feature = "datafusion")]
pub(crate) use client::{body_excerpt, fetch_table_json};

use crate::config::WrapperConfiguration;
use crate::error::ZerobusError;

/// The schema check of one wrapper: the table's columns (fetched once) and a plan per
/// Arrow schema seen.
#[derive(Debug)]
pub(crate) struct SchemaCheck {
    config: WrapperConfiguration,
    table: OnceCell<UcTableSchema>,
    plans: Mutex<Vec<(SchemaRef, Arc<Plan>)>>,
}

impl SchemaCheck {
    /// The check for `config`, or `None` when it is off (or the writer is disabled).
    pub(crate) fn from_config(config: &WrapperConfiguration) -> Option<Self> {
        (config.schema_check && !config.zerobus_writer_disabled).then(|| Self {
            config: config.clone(),
            table: OnceCell::new(),
            plans: Mutex::new(Vec::new()),
        })
    }

    /// Checks `batch` (see the module docs) and returns it cast and without the rows
    /// rejected, with the map back to the original rows.
    ///
    /// # Errors
    /// The table's columns cannot be read, or the batch's schema does not match them.
    pub(crate) async fn apply(
        &self,
        batch: RecordBatch,
    ) -> Result<(RecordBatch, CheckedRows), ZerobusError> {
        let plan = self.plan(batch.schema_ref()).await?;
        plan.apply(batch)
    }

    async fn plan(&self, schema: &SchemaRef) -> Result<Arc<Plan>, ZerobusError> {
        {
            let plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
            let known = plans
                .iter()
                .find(|(seen, _)| Arc::ptr_eq(seen, schema) || seen == schema);
            if let Some((_, plan)) = known {
                return Ok(plan.clone());
            }
        }
        let table = self
            .table
            .get_or_try_init(|| client::fetch_table(&self.config))
            .await?;
        let plan = Arc::new(Plan::new(&self.config.table_name, &table.columns, schema)?);
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        plans.push((schema.clone(), plan.clone()));
        Ok(plan)
    }
}
