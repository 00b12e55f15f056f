//! `CREATE EXTERNAL TABLE ... STORED AS ZEROBUS`: [`ZerobusTableProviderFactory`], and the
//! Unity Catalog schema look-up used when the column list is omitted.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use databricks_zerobus_ingest_sdk::schema::{arrow_schema_from_uc_schema, UcTableSchema};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::CreateExternalTable;

use super::options::TableOptions;
use super::provider::ZerobusTableProvider;
use crate::config::WrapperConfiguration;
use crate::uc::{body_excerpt, fetch_table_json};

/// The key the factory is registered under: DataFusion upper-cases `STORED AS zerobus`
/// and looks factories up case-sensitively.
pub const FACTORY_KEY: &str = "ZEROBUS";

/// Creates [`ZerobusTableProvider`]s for
/// `CREATE EXTERNAL TABLE name [(columns)] STORED AS ZEROBUS LOCATION 'catalog.schema.table'
/// [OPTIONS (...)]`.
///
/// Options are described in `docs/datafusion.md` ([`KNOWN_OPTIONS`](super::KNOWN_OPTIONS));
/// the endpoint, Unity Catalog URL and credentials fall back to the `ZEROBUS_*` environment
/// variables (of the process, or of the lookup given to
/// [`with_env`](Self::with_env)). Without a column list the schema is read from Unity
/// Catalog (`unity_catalog_url` is then required).
#[derive(Clone)]
pub struct ZerobusTableProviderFactory {
    env: EnvLookup,
}

/// Where a factory reads the `ZEROBUS_*` variables.
type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl std::fmt::Debug for ZerobusTableProviderFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The lookup may hold credentials: never print what it returns.
        f.debug_struct("ZerobusTableProviderFactory")
            .finish_non_exhaustive()
    }
}

impl Default for ZerobusTableProviderFactory {
    fn default() -> Self {
        Self::with_env(|name| std::env::var(name).ok())
    }
}

impl ZerobusTableProviderFactory {
    /// A factory reading environment variables from the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory reading the `ZEROBUS_*` fallbacks through `lookup` instead of the process
    /// environment (one set of credentials per session, a test without `set_var`).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use arrow_zerobus_sdk_wrapper::sql::ZerobusTableProviderFactory;
    ///
    /// let env = HashMap::from([("ZEROBUS_ENDPOINT".to_string(), "http://127.0.0.1:50051".to_string())]);
    /// let factory = ZerobusTableProviderFactory::with_env(move |name| env.get(name).cloned());
    /// # let _ = factory;
    /// ```
    pub fn with_env(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            env: Arc::new(lookup),
        }
    }
}

impl ZerobusTableProviderFactory {
    /// The table `cmd` declares. The same as [`TableProviderFactory::create`], which
    /// needs no session: callable where none is at hand (on another runtime, across
    /// DataFusion's FFI).
    ///
    /// # Errors
    /// Not one `LOCATION`, `PARTITIONED BY` columns, an option that does not parse, a
    /// schema read from Unity Catalog that cannot be, or one Zerobus cannot take.
    pub async fn create_provider(&self, cmd: &CreateExternalTable) -> Result<ZerobusTableProvider> {
        let table = match cmd.locations.as_slice() {
            [one] => one.trim(),
            other => {
                return Err(DataFusionError::Plan(format!(
                    "STORED AS ZEROBUS needs exactly one LOCATION 'catalog.schema.table', got {}",
                    other.len()
                )))
            }
        };
        if !cmd.table_partition_cols.is_empty() {
            return Err(DataFusionError::Plan(
                "STORED AS ZEROBUS tables have no PARTITIONED BY columns (Zerobus appends to \
                 the Delta table, whose layout is Databricks' business)"
                    .into(),
            ));
        }
        let options = TableOptions::parse(table, &cmd.options, |name| (self.env)(name))?;
        let schema =
            (!cmd.schema.fields().is_empty()).then(|| Arc::new(cmd.schema.as_arrow().clone()));
        ZerobusTableProvider::from_options(schema, options).await
    }
}

#[async_trait]
impl TableProviderFactory for ZerobusTableProviderFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(self.create_provider(cmd).await?))
    }
}

/// The Arrow schema of `config.table_name`, read from
/// `GET {unity_catalog_url}/api/2.1/unity-catalog/tables/{name}` (with an OAuth token when
/// credentials are configured).
///
/// Types follow the SDK's `arrow_schema_from_uc_schema`, except that top-level `DECIMAL(p,s)`
/// columns become `Decimal128(p, s)` (the SDK's Flight mapping sends them as strings).
///
/// The request is the schema check's (the same 30-second timeout); an error answer's body
/// is quoted up to its first 512 bytes.
///
/// # Errors
/// No Unity Catalog URL, the request fails, times out or is refused, or the schema has a
/// type the SDK cannot map.
pub async fn fetch_uc_schema(config: &WrapperConfiguration) -> Result<Schema> {
    let table = &config.table_name;
    let url = config.unity_catalog_url.as_deref().ok_or_else(|| {
        DataFusionError::Plan(format!(
            "CREATE EXTERNAL TABLE for Zerobus table {table} has no column list, so its schema \
             is read from Unity Catalog: give 'unity_catalog_url' (or ZEROBUS_UNITY_CATALOG_URL)"
        ))
    })?;
    let url = url.trim_end_matches('/');
    let fail = |what: String| {
        DataFusionError::Plan(format!(
            "reading the schema of {table} from Unity Catalog ({url}): {what}"
        ))
    };
    let (_, text) = fetch_table_json(config)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let uc: UcTableSchema = serde_json::from_str(&text)
        .map_err(|e| fail(format!("unexpected answer: {e}: {}", body_excerpt(&text))))?;
    let decimals = decimal_columns(&text);
    let schema = arrow_schema_from_uc_schema(&uc).map_err(|e| fail(e.to_string()))?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match decimals.get(f.name()) {
            Some(&(p, s)) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Decimal128(p, s)),
            None => f.as_ref().clone(),
        })
        .collect();
    Ok(Schema::new(fields))
}

/// Top-level `DECIMAL` columns of a Unity Catalog answer, from `type_text` (`decimal(p,s)`).
fn decimal_columns(answer: &str) -> HashMap<String, (u8, i8)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(answer) else {
        return HashMap::new();
    };
    let columns = value["columns"].as_array().cloned().unwrap_or_default();
    columns
        .iter()
        .filter(|c| c["type_name"].as_str() == Some("DECIMAL"))
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            let text = c["type_text"].as_str()?.to_ascii_lowercase();
            let inner = text.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            Some((
                name.to_string(),
                (p.trim().parse().ok()?, s.trim().parse().ok()?),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_columns_are_read_from_type_text() {
        let answer = r#"{"columns":[
            {"name":"d","type_name":"DECIMAL","type_text":"decimal(10,2)"},
            {"name":"s","type_name":"STRING","type_text":"string"}]}"#;
        let found = decimal_columns(answer);
        assert_eq!(found.get("d"), Some(&(10, 2)));
        assert_eq!(found.len(), 1);
    }
}
