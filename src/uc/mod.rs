//! The optional schema check against Unity Catalog
//! ([`WrapperConfiguration::with_schema_check`](crate::WrapperConfiguration::with_schema_check)).
//!
//! On the first batch the wrapper reads the table's columns once (`GET
//! {unity_catalog_url}/api/2.1/unity-catalog/tables/{table_name}`, with a bearer token from
//! the SDK's client-credentials flow when credentials are configured). Every batch is then
//! checked before it is encoded:
//!
//! - the same columns as the table (names compared ignoring case): missing and extra
//!   columns are named;
//! - in the table's order, so that field number = position + 1 for every column;
//! - types that match the table's, or widen without loss, in which case the column is cast:
//!   TINYINT → SMALLINT → INT → BIGINT, TINYINT/SMALLINT → FLOAT,
//!   TINYINT/SMALLINT/INT/FLOAT → DOUBLE, integers → DECIMAL with room for their digits,
//!   DECIMAL(p, s) → DECIMAL(p', s') with s' ≥ s and p' − s' ≥ p − s;
//! - rows with a null in a column the table declares NOT NULL are taken out and reported
//!   as per-row `NullInNonNullableColumn` errors naming the column.
//!
//! A schema that fails the check fails the whole batch with a `SchemaMismatch`
//! conversion error listing every column at fault. The plan for each distinct Arrow
//! schema is computed once. In writer-disabled mode there is no check (no network).

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
