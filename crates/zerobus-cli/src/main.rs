//! `zerobus`: ingest files into Databricks Zerobus, run SQL against Zerobus tables, serve
//! a local Zerobus, inspect debug files and show the schema Zerobus would see.
//!
//! See `docs/cli.md`. Exit codes: [`exit::SUCCESS`] (0), [`exit::FAILED`] (1),
//! [`exit::USAGE`] (2), [`exit::PARTIAL`] (3), [`exit::INTERRUPTED`] (130).

mod connection;
mod error;
mod exit;
mod ingest;
mod input;
mod inspect;
mod interrupt;
mod progress;
mod prompt;
mod proto_text;
mod quarantine;
mod schema;
mod sql;
mod summary;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// Move Arrow data (Parquet, CSV, NDJSON, Arrow IPC) into Databricks Zerobus tables.
///
/// Connection options (`--endpoint`, `--client-id`, ...) can also come from the
/// environment (ZEROBUS_ENDPOINT, DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET, ...) or
/// from the wrapper's YAML configuration file (`--config`).
#[derive(Parser)]
#[command(name = "zerobus", version, propagate_version = true)]
#[command(after_help = "\
Examples:
  zerobus local serve --no-auth --port 50051 &
  zerobus ingest events.parquet --table main.demo.events --endpoint http://127.0.0.1:50051
  zerobus sql -c \"SELECT count(*) FROM 'events.parquet'\"
  zerobus schema events.parquet
  zerobus debug inspect debug/zerobus/arrow/events.arrows --limit 5

Exit codes: 0 every row landed, 1 nothing landed (or the command failed),
2 usage error, 3 some rows landed and some did not, 130 ingest interrupted (Ctrl-C).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send Parquet, CSV, NDJSON or Arrow IPC files to a Zerobus table.
    Ingest(ingest::IngestArgs),
    /// Run SQL with Zerobus tables (STORED AS ZEROBUS) and file tables.
    Sql(sql::SqlArgs),
    /// The local Zerobus-compatible server.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
    /// Debug files of the wrapper.
    Debug {
        #[command(subcommand)]
        command: DebugCommand,
    },
    /// The Arrow schema of a file or table, its protobuf descriptor and what Zerobus
    /// cannot take.
    Schema(schema::SchemaArgs),
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Serve a local Zerobus (gRPC, Arrow Flight, OAuth, Unity Catalog) landing rows in
    /// Delta tables, until Ctrl-C. The same options as the `zerobus-local` binary.
    #[command(after_help = "\
Examples:
  zerobus local serve --no-auth --data-dir ./zerobus-data
  zerobus local serve --port 50051 --http-port 50052 \\
      --table 'main.demo.events=id BIGINT NOT NULL, name STRING, ts TIMESTAMP'
  zerobus local serve --table main.demo.events=events.parquet --landing memory")]
    Serve(zerobus_local::cli::ServeArgs),
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Show an Arrow IPC file (.arrows/.arrow: schema, row count, first rows) or a
    /// protobuf debug file (.pb, decoded with its .desc, as JSON).
    Inspect(inspect::InspectArgs),
}

/// mimalloc, as datafusion-cli uses: the wrapper allocates per batch and per record, and
/// glibc's malloc took about half of a large ingest's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(CliError::new(format!("cannot start the runtime: {e}"))),
    };
    runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => ingest::run(args).await,
            Command::Sql(args) => sql::run(args).await.map_or_else(fail, |()| exit::ok()),
            Command::Local {
                command: LocalCommand::Serve(args),
            } => {
                zerobus_local::cli::init_logging();
                zerobus_local::cli::serve(&args).await
            }
            Command::Debug {
                command: DebugCommand::Inspect(args),
            } => inspect::run(&args).map_or_else(fail, |()| exit::ok()),
            Command::Schema(args) => schema::run(&args).await.map_or_else(fail, |()| exit::ok()),
        }
    })
}

/// Prints `error` to stderr and returns [`exit::FAILED`].
fn fail(error: CliError) -> ExitCode {
    eprintln!("zerobus: error: {error}");
    ExitCode::from(exit::FAILED)
}
