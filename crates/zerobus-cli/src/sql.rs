//! `zerobus sql [-c STATEMENTS | -f FILE]`: a DataFusion session with the Zerobus table
//! factory (`STORED AS ZEROBUS`), the file formats (Parquet, CSV, JSON, Arrow) and file
//! paths as tables (`SELECT * FROM 'data.parquet'`); results printed as tables.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow_zerobus_sdk_wrapper::sql::{register_with, ZerobusTableProviderFactory};
use clap::{Args, ValueEnum};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;

use crate::connection::ConnectionArgs;
use crate::error::{CliError, CliResult, Context};

/// `zerobus sql`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  zerobus sql -c \"SELECT count(*) AS n FROM 'events.parquet'\"
  zerobus sql --endpoint http://127.0.0.1:50051 -c \"
      CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION 'events.parquet';
      CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR)
        STORED AS ZEROBUS LOCATION 'main.demo.events';
      INSERT INTO events SELECT id, name FROM src;\"
  zerobus sql -f load.sql --format csv

STORED AS ZEROBUS tables take the connection options below as their defaults
(OPTIONS ('endpoint' ..., 'client_id' ...) in the statement override them).")]
pub struct SqlArgs {
    /// SQL statements to run, separated by `;`.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "STATEMENTS",
        conflicts_with = "file"
    )]
    command: Option<String>,

    /// A file of SQL statements to run, separated by `;`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,

    /// How results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,

    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `--format` of `zerobus sql`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// Aligned tables, as datafusion-cli prints them.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Runs the statements of `args` in order, printing each one's result; stops at the
/// first that fails.
///
/// # Errors
/// No statements, a file that cannot be read, a statement that does not parse, plan or
/// run: the message says which statement.
pub async fn run(args: SqlArgs) -> CliResult<()> {
    let text =
        match (&args.command, &args.file) {
            (Some(command), _) => command.clone(),
            (None, Some(file)) => std::fs::read_to_string(file).context(file.display())?,
            (None, None) => return Err(CliError::new(
                "give statements with -c STATEMENTS or -f FILE (there is no interactive prompt)",
            )),
        };
    let fallbacks = args.connection.sql_fallbacks()?;
    let ctx = SessionContext::new().enable_url_table();
    let factory = ZerobusTableProviderFactory::with_env(move |key| {
        fallbacks
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok())
    });
    register_with(&ctx, factory);
    let statements = DFParser::parse_sql(&text).context("SQL")?;
    let count = statements.len();
    for (index, statement) in statements.into_iter().enumerate() {
        let label = format!("statement {} of {count}", index + 1);
        let started = Instant::now();
        let plan = ctx
            .state()
            .statement_to_plan(statement)
            .await
            .context(&label)?;
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .context(&label)?
            .collect()
            .await
            .context(&label)?;
        print_batches(&batches, args.format).context(&label)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        eprintln!("{rows} row(s) in {:.3} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Prints `batches` to stdout in `format`.
fn print_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    let error = |e: &dyn std::fmt::Display| e.to_string();
    match format {
        OutputFormat::Table => {
            if batches.iter().any(|b| b.num_columns() > 0) {
                let table =
                    arrow::util::pretty::pretty_format_batches(batches).map_err(|e| error(&e))?;
                writeln!(stdout, "{table}").map_err(|e| error(&e))?;
            }
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::Writer::new(&mut stdout);
            for batch in batches {
                writer.write(batch).map_err(|e| error(&e))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut stdout);
            for batch in batches {
                writer.write(batch).map_err(|e| error(&e))?;
            }
            writer.finish().map_err(|e| error(&e))?;
        }
    }
    Ok(())
}
