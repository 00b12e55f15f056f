//! Runs the `sql/*.slt` suites against DataFusion with the Zerobus table factory, each file
//! against a fresh in-process local Zerobus server (memory landing).
//!
//! `cargo test --features datafusion --test sqllogictests [-- [--complete] FILTER]`
//!
//! With `--complete` the runner rewrites each file's expected results with what the
//! statements return now (review the diff before committing it).
//!
//! Per file the runner:
//! - pre-creates on the server every table a `CREATE EXTERNAL TABLE ... STORED AS ZEROBUS
//!   LOCATION '...'` with a column list in the file declares (the server otherwise derives
//!   a table from the protobuf descriptor, where decimals and timestamps are plain strings
//!   and integers);
//! - pre-creates the tables of `# zerobus_server_table catalog.schema.table TYPE` comment
//!   lines, `TYPE` being an Arrow `Struct(...)` of the columns in Arrow's own spelling
//!   (`Struct("id": non-null Int64, "m": Map("entries": Struct("keys": non-null Utf8,
//!   "values": Int64), unsorted))`), for column types DataFusion's DDL cannot declare (a
//!   `CREATE EXTERNAL TABLE` without a column list then reads the schema from the server's
//!   Unity Catalog endpoint);
//! - gives the table factory `ZEROBUS_ENDPOINT` and `ZEROBUS_UNITY_CATALOG_URL` of the
//!   server (through its environment lookup, not the process environment), so files may
//!   omit the options, and sets the variables `$ENDPOINT`, `$UC_URL` (with `control
//!   substitution on`);
//! - for files whose name contains `oauth`, starts the server with OAuth required and gives
//!   the factory its client credentials as `ZEROBUS_CLIENT_ID` / `ZEROBUS_CLIENT_SECRET`
//!   only (the SQL never sees them);
//! - registers `zerobus_landed('c.s.t')`, a table function returning the rows that landed.
//!
//! A DML statement's single `count` row becomes `StatementComplete(count)`, so
//! `statement count N` checks the rows that landed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_zerobus_sdk_wrapper::sql as zb;
use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{
    Session, TableFunctionArgs, TableFunctionImpl, TableProvider, TableProviderFactory,
};
use datafusion::common::ScalarValue;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{CreateExternalTable, Expr, LogicalPlan, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use regex::Regex;
use secrecy::ExposeSecret;
use sqllogictest::{ColumnType, DBOutput, Record};
use zerobus_local::{Auth, Landing, LocalError, LocalZerobus};

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let complete = std::env::args().any(|a| a == "--complete");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.to_string_lossy().contains(f))
        })
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let started = Instant::now();
        match runtime.block_on(run_file(file, complete)) {
            Ok(()) => {
                passed += 1;
                println!("ok      {name} ({:.1?})", started.elapsed());
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {name} ({:.1?})\n{e}", started.elapsed());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Runs one file against its own server; with `complete`, rewrites its expected results.
async fn run_file(file: &Path, complete: bool) -> Result<(), String> {
    let mut declared = declared_tables(file).await?;
    let oauth = file.to_string_lossy().contains("oauth");
    let server = loop {
        let mut builder = LocalZerobus::builder()
            .landing(Landing::Memory)
            .auth(if oauth { Auth::OAuth } else { Auth::Disabled });
        for (name, schema) in &declared {
            builder = builder.table(name.clone(), Arc::clone(schema));
        }
        match builder.start().await {
            Ok(server) => break Arc::new(server),
            // A table the server cannot store (the file tests that the INSERT fails): leave
            // it out and let the INSERT find out.
            Err(LocalError::Table { table, .. }) if declared.iter().any(|(n, _)| *n == table) => {
                declared.retain(|(name, _)| *name != table);
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    // What the table factory reads instead of the process environment.
    let mut env = HashMap::from([
        ("ZEROBUS_ENDPOINT".to_string(), server.endpoint()),
        (
            "ZEROBUS_UNITY_CATALOG_URL".to_string(),
            server.unity_catalog_url(),
        ),
    ]);
    if oauth {
        env.insert("ZEROBUS_CLIENT_ID".into(), server.client_id().into());
        env.insert(
            "ZEROBUS_CLIENT_SECRET".into(),
            server.client_secret().expose_secret().into(),
        );
    }
    let env = Arc::new(env);

    let connection_server = Arc::clone(&server);
    let mut runner = sqllogictest::Runner::new(move || {
        let (server, env) = (Arc::clone(&connection_server), Arc::clone(&env));
        async move { Ok::<_, DataFusionError>(DataFusionDb::new(server, env)) }
    });
    runner.set_var("ENDPOINT".into(), server.endpoint());
    runner.set_var("UC_URL".into(), server.unity_catalog_url());
    let outcome = if complete {
        runner
            .update_test_file(
                file,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(file)
            .await
            .map_err(|e| e.display(false).to_string())
    };
    drop(runner);
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
    outcome
}

/// The `(location, schema)` of every `STORED AS ZEROBUS` table the file declares with a
/// column list, found by planning its CREATE EXTERNAL TABLE statements with a recording
/// factory.
async fn declared_tables(file: &Path) -> Result<Vec<(String, SchemaRef)>, String> {
    let records = sqllogictest::parse_file::<SqlType>(file).map_err(|e| e.to_string())?;
    let recorder = Arc::new(Recorder::default());
    let ctx = SessionContext::new_with_config(session_config());
    ctx.state_ref()
        .write()
        .table_factories_mut()
        .insert(zb::FACTORY_KEY.into(), recorder.clone());
    let mut server_tables = Vec::new();
    for record in records {
        match record {
            Record::Statement { sql, .. } => {
                let upper = sql.to_ascii_uppercase();
                if upper.contains("CREATE EXTERNAL TABLE") && upper.contains("STORED AS ZEROBUS") {
                    // Errors (bad options, ...) are the file's business, not the runner's.
                    let _ = ctx.sql(&sql).await;
                }
            }
            Record::Comment(lines) => {
                for line in lines {
                    if let Some(table) = server_table(&line)? {
                        server_tables.push(table);
                    }
                }
            }
            _ => {}
        }
    }
    let tables = recorder.tables.lock().unwrap().clone();
    Ok(server_tables.into_iter().chain(tables).collect())
}

/// The table of a `# zerobus_server_table catalog.schema.table Struct(...)` comment line.
fn server_table(line: &str) -> Result<Option<(String, SchemaRef)>, String> {
    let Some(rest) = line.trim().strip_prefix("zerobus_server_table ") else {
        return Ok(None);
    };
    let bad = |why: String| format!("`# zerobus_server_table {rest}`: {why}");
    let (name, columns) = rest
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("expected a table name and an Arrow Struct(...) type".into()))?;
    match DataType::from_str(columns.trim()) {
        Ok(DataType::Struct(fields)) => Ok(Some((name.to_string(), Arc::new(Schema::new(fields))))),
        Ok(other) => Err(bad(format!("{other} is not a Struct(...) of the columns"))),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// A table factory that records the locations and schemas it is asked for.
#[derive(Debug, Default)]
struct Recorder {
    tables: Mutex<HashMap<String, SchemaRef>>,
}

#[async_trait]
impl TableProviderFactory for Recorder {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let schema: SchemaRef = Arc::new(cmd.schema.as_arrow().clone());
        if let [location] = cmd.locations.as_slice() {
            if !schema.fields().is_empty() {
                self.tables
                    .lock()
                    .unwrap()
                    .entry(location.clone())
                    .or_insert_with(|| Arc::clone(&schema));
            }
        }
        Ok(Arc::new(EmptyTable::new(schema)))
    }
}

/// The session settings of every file: 4 target partitions, `information_schema`, and
/// UTC as the time zone of `TIMESTAMP WITH TIME ZONE` columns.
fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_target_partitions(4)
        .with_information_schema(true);
    config.options_mut().execution.time_zone = Some("UTC".into());
    config
}

/// One connection: a DataFusion session with the Zerobus factory and `zerobus_landed`.
struct DataFusionDb {
    ctx: SessionContext,
}

impl DataFusionDb {
    fn new(server: Arc<LocalZerobus>, env: Arc<HashMap<String, String>>) -> Self {
        let ctx = SessionContext::new_with_config(session_config());
        let factory = zb::ZerobusTableProviderFactory::with_env(move |name| env.get(name).cloned());
        zb::register_with(&ctx, factory);
        ctx.register_udtf("zerobus_landed", Arc::new(Landed { server }));
        Self { ctx }
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for DataFusionDb {
    type Error = DataFusionError;
    type ColumnType = SqlType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<SqlType>> {
        let frame = self.ctx.sql(sql).await?;
        let is_dml = matches!(frame.logical_plan(), LogicalPlan::Dml(_));
        let schema = frame.schema().as_arrow().clone();
        let batches = frame.collect().await?;
        if is_dml {
            return Ok(DBOutput::StatementComplete(dml_count(&batches)?));
        }
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        Ok(DBOutput::Rows {
            types,
            rows: format_rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion"
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The `count` of a DML statement's single row.
fn dml_count(batches: &[RecordBatch]) -> Result<u64> {
    let counts: Vec<u64> = batches
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .flat_map(|a| a.values().to_vec())
        .collect();
    match counts.as_slice() {
        [count] => Ok(*count),
        other => Err(DataFusionError::Internal(format!(
            "a DML statement returned {} count rows",
            other.len()
        ))),
    }
}

/// The column types of `query` lines, spelled as DataFusion's own sqllogictests spell them
/// (so `--complete` writes what a DataFusion user expects): `B`oolean, `D`ate/time,
/// `I`nteger, `R`eal (floats and decimals), `T`ext, `?` anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlType {
    Boolean,
    DateTime,
    Integer,
    Real,
    Text,
    Other,
}

impl ColumnType for SqlType {
    fn from_char(value: char) -> Option<Self> {
        Some(match value {
            'B' => Self::Boolean,
            'D' => Self::DateTime,
            'I' => Self::Integer,
            'R' => Self::Real,
            'T' => Self::Text,
            _ => Self::Other,
        })
    }

    fn to_char(&self) -> char {
        match self {
            Self::Boolean => 'B',
            Self::DateTime => 'D',
            Self::Integer => 'I',
            Self::Real => 'R',
            Self::Text => 'T',
            Self::Other => '?',
        }
    }
}

fn column_type(data_type: &DataType) -> SqlType {
    match data_type {
        DataType::Boolean => SqlType::Boolean,
        t if t.is_temporal() => SqlType::DateTime,
        t if t.is_integer() => SqlType::Integer,
        t if t.is_floating() || t.is_decimal() => SqlType::Real,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Text,
        _ => SqlType::Other,
    }
}

/// Every value as text; nulls as `NULL`, empty strings as `(empty)`, trailing whitespace
/// trimmed, and durations and byte sizes of `EXPLAIN ANALYZE` metrics as `<time>` and
/// `<bytes>` (they differ from run to run).
fn format_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let times = Regex::new(r"\b\d+(\.\d+)?(ns|µs|ms|s)\b").expect("regex");
    let sizes = Regex::new(r"\b\d+(\.\d+)? (B|KB|MB|GB)\b").expect("regex");
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| {
                    let text = f.value(row).to_string();
                    let text = times.replace_all(text.trim_end(), "<time>");
                    sizes.replace_all(&text, "<bytes>").into_owned()
                })
                .collect();
            push_row(&mut rows, cells);
        }
    }
    Ok(rows)
}

/// Appends `cells` as a row; a multi-line cell (an `EXPLAIN` plan) continues on rows of
/// its own, one per line, so files can write plans line by line.
fn push_row(rows: &mut Vec<Vec<String>>, cells: Vec<String>) {
    let mut continuation = Vec::new();
    let first = cells
        .into_iter()
        .map(|cell| {
            let mut lines = cell.lines().map(str::to_string);
            let head = lines.next().unwrap_or_default();
            continuation.extend(lines.map(|line| vec![line]));
            if head.is_empty() {
                "(empty)".to_string()
            } else {
                head
            }
        })
        .collect();
    rows.push(first);
    rows.extend(continuation);
}

/// `zerobus_landed('catalog.schema.table')`: the rows that landed in a table of the local
/// server, read when the query runs.
#[derive(Debug)]
struct Landed {
    server: Arc<LocalZerobus>,
}

impl TableFunctionImpl for Landed {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let table = match args.exprs() {
            [Expr::Literal(ScalarValue::Utf8(Some(name)), _)] => name.clone(),
            _ => {
                return Err(DataFusionError::Plan(
                    "zerobus_landed takes one string literal: 'catalog.schema.table'".into(),
                ))
            }
        };
        let schema = self.server.table_schema(&table).ok_or_else(|| {
            DataFusionError::Plan(format!("zerobus_landed: the server has no table {table}"))
        })?;
        Ok(Arc::new(LandedTable {
            server: Arc::clone(&self.server),
            table,
            schema,
        }))
    }
}

#[derive(Debug)]
struct LandedTable {
    server: Arc<LocalZerobus>,
    table: String,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for LandedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self
            .server
            .read_table(&self.table)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let memory = MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?;
        memory.scan(state, projection, filters, limit).await
    }
}
