//! `zerobus schema FILE | --table NAME`: the Arrow schema of a file (or of a Unity Catalog
//! table), the Delta type each column lands as, the proto2 descriptor the wrapper would
//! send, and for every column Zerobus cannot take the error with the cast to use.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use arrow_zerobus_sdk_wrapper::sql::fetch_uc_schema;
use clap::Args;
use serde_json::json;

use crate::connection::ConnectionArgs;
use crate::error::{CliError, CliResult};
use crate::input::{discover, ReadOptions, Reading};
use crate::proto_text::proto_file;

/// `zerobus schema`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  zerobus schema events.parquet
  zerobus schema events.csv --table main.demo.events --json
  zerobus schema --table main.demo.events \\
      --unity-catalog-url https://my-workspace.cloud.databricks.com --endpoint https://...

Exits with 1 if a column cannot be sent (each one is listed with the cast to use).")]
pub struct SchemaArgs {
    /// A Parquet, CSV, JSON or Arrow file (without it: the table's schema from Unity
    /// Catalog).
    #[arg(value_name = "FILE", required_unless_present = "table")]
    file: Option<PathBuf>,

    /// The table: read from Unity Catalog when no FILE is given; otherwise it only names
    /// the descriptor's message.
    #[arg(long, short = 't', value_name = "NAME")]
    table: Option<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    read: ReadOptions,

    #[command(flatten)]
    connection: ConnectionArgs,
}

/// One column and what Zerobus makes of it.
struct Column {
    field: Arc<Field>,
    /// The Delta type, or the error (with the suggested cast).
    delta: Result<String, String>,
}

/// Prints the schema report of `args`.
///
/// # Errors
/// The file or table cannot be read; a column Zerobus cannot take (after printing the
/// report).
pub async fn run(args: &SchemaArgs) -> CliResult<()> {
    let (source, schema) = source_schema(args).await?;
    let table = args.table.clone().unwrap_or_else(|| {
        args.file
            .as_ref()
            .and_then(|f| f.file_stem())
            .map_or_else(|| "table".to_string(), |s| s.to_string_lossy().to_string())
    });
    let columns: Vec<Column> = schema
        .fields()
        .iter()
        .map(|field| Column {
            field: Arc::clone(field),
            delta: TableSchema::try_new(Arc::new(Schema::new(vec![Arc::clone(field)])), &table)
                .map(|t| t.columns()[0].data_type.sql_name())
                .map_err(|e| e.message().to_string()),
        })
        .collect();
    let supported: Vec<Arc<Field>> = columns
        .iter()
        .filter(|c| c.delta.is_ok())
        .map(|c| Arc::clone(&c.field))
        .collect();
    let unsupported = columns.len() - supported.len();
    // Rules over the whole schema (column count, names unique ignoring case).
    let whole = TableSchema::try_new(Arc::new(Schema::new(supported)), &table);
    let proto = whole.as_ref().ok().map(|t| proto_file(t.descriptor()));
    let schema_error = whole.as_ref().err().map(|e| e.message().to_string());
    if args.json {
        let columns: Vec<_> = columns
            .iter()
            .map(|c| {
                let mut column = json!({
                    "name": c.field.name(),
                    "arrow_type": c.field.data_type().to_string(),
                    "nullable": c.field.is_nullable(),
                });
                match &c.delta {
                    Ok(delta) => column["delta_type"] = json!(delta),
                    Err(error) => column["error"] = json!(error),
                }
                column
            })
            .collect();
        let output = json!({
            "source": source,
            "columns": columns,
            "proto": proto,
            "error": schema_error,
        });
        println!("{output}");
    } else {
        print_report(&source, &columns, proto.as_deref(), schema_error.as_deref());
    }
    match (unsupported, schema_error) {
        (0, None) => Ok(()),
        (0, Some(error)) => Err(CliError::new(format!("{source}: {error}"))),
        (n, _) => Err(CliError::new(format!(
            "{source}: {n} column(s) cannot be sent to Zerobus (see the casts above)"
        ))),
    }
}

fn print_report(source: &str, columns: &[Column], proto: Option<&str>, error: Option<&str>) {
    println!("{source}: {} column(s)", columns.len());
    for column in columns {
        let field = &column.field;
        let null = if field.is_nullable() { "" } else { " NOT NULL" };
        match &column.delta {
            Ok(delta) => println!("  {}: {} -> {delta}{null}", field.name(), field.data_type()),
            Err(error) => println!(
                "  {}: {} -> NOT SUPPORTED: {error}",
                field.name(),
                field.data_type()
            ),
        }
    }
    if let Some(error) = error {
        println!("schema: {error}");
    }
    if let Some(proto) = proto {
        let note = if columns.iter().any(|c| c.delta.is_err()) {
            " (the supported columns only)"
        } else {
            ""
        };
        println!("\nprotobuf descriptor{note}:\n{proto}");
    }
}

/// The schema to report on and a name for its source.
async fn source_schema(args: &SchemaArgs) -> CliResult<(String, SchemaRef)> {
    if let Some(path) = &args.file {
        let files = discover(&[path.display().to_string()], args.read.format)?;
        let file = files
            .first()
            .ok_or_else(|| CliError::new(format!("{}: no file", path.display())))?;
        let reading = Reading::open(file, &args.read)?;
        return Ok((file.name(), reading.schema));
    }
    let table = args
        .table
        .as_deref()
        .ok_or_else(|| CliError::new("give a FILE or --table NAME"))?;
    let config = args.connection.configuration(table)?;
    let schema = fetch_uc_schema(&config)
        .await
        .map_err(|e| CliError::new(e.to_string()))?;
    Ok((format!("table {table}"), Arc::new(schema)))
}
