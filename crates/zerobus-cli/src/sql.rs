//! `zerobus sql [-c STATEMENTS | -f FILE]`: a DataFusion session with the Zerobus table
//! factory (`STORED AS ZEROBUS`), the file formats (Parquet, CSV, JSON, Arrow) and file
//! paths as tables (`SELECT * FROM 'data.parquet'`); results printed as tables. Without
//! `-c`/`-f` the statements come from standard input, or from an interactive prompt on a
//! terminal ([`crate::prompt`]).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow_zerobus_sdk_wrapper::sql::{register_with, ZerobusTableProviderFactory};
use clap::{Args, ValueEnum};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};

use crate::connection::ConnectionArgs;
use crate::error::{CliResult, Context};

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
  zerobus sql < load.sql            (or -f -: statements from standard input)
  zerobus sql                       (on a terminal: an interactive prompt; \\q to quit)

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

    /// A file of SQL statements to run, separated by `;` (`-` for standard input).
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
pub(crate) enum OutputFormat {
    /// Aligned tables, as datafusion-cli prints them.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Runs the statements of `args` (`-c`, `-f`, else standard input) in order, printing
/// each one's result; stops at the first that fails. On a terminal without `-c`/`-f`, an
/// interactive prompt instead.
///
/// # Errors
/// A file that cannot be read, a statement that does not parse, plan or run: the message
/// says which statement.
pub async fn run(args: SqlArgs) -> CliResult<()> {
    let ctx = session(&args.connection)?;
    let text = match (&args.command, &args.file) {
        (Some(command), _) => command.clone(),
        (None, Some(file)) if file.as_os_str() == "-" => read_stdin()?,
        (None, Some(file)) => std::fs::read_to_string(file).context(file.display())?,
        (None, None) if !std::io::stdin().is_terminal() => read_stdin()?,
        (None, None) => return crate::prompt::run(&ctx, args.format).await,
    };
    let statements = DFParser::parse_sql(&text).context("SQL")?;
    let count = statements.len();
    for (index, statement) in statements.into_iter().enumerate() {
        let label = format!("statement {} of {count}", index + 1);
        run_statement(&ctx, statement, args.format, &mut std::io::stdout())
            .await
            .context(&label)?;
    }
    Ok(())
}

/// Standard input, whole.
fn read_stdin() -> CliResult<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("standard input")?;
    Ok(text)
}

/// The session: the Zerobus table factory, whose tables take `connection` as their
/// defaults (then the environment), and file paths as tables.
fn session(connection: &ConnectionArgs) -> CliResult<SessionContext> {
    let fallbacks = connection.sql_fallbacks()?;
    let ctx = SessionContext::new().enable_url_table();
    let factory = ZerobusTableProviderFactory::with_env(move |key| {
        fallbacks
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok())
    });
    register_with(&ctx, factory);
    Ok(ctx)
}

/// Plans and runs one statement, printing its result to `out` in `format` and its row
/// count and time to stderr.
pub(crate) async fn run_statement(
    ctx: &SessionContext,
    statement: Statement,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), String> {
    let started = Instant::now();
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(|e| e.to_string())?;
    let batches = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    print_batches(&batches, format, out)?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    eprintln!("{rows} row(s) in {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Prints `batches` to `out` in `format`.
fn print_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
    mut out: &mut dyn Write,
) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| e.to_string();
    match format {
        OutputFormat::Table => {
            if batches.iter().any(|b| b.num_columns() > 0) {
                let table =
                    arrow::util::pretty::pretty_format_batches(batches).map_err(|e| error(&e))?;
                writeln!(out, "{table}").map_err(|e| error(&e))?;
            }
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::Writer::new(&mut out);
            for batch in batches {
                writer.write(batch).map_err(|e| error(&e))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
            for batch in batches {
                writer.write(batch).map_err(|e| error(&e))?;
            }
            writer.finish().map_err(|e| error(&e))?;
        }
    }
    Ok(())
}
