//! `zerobus-local`: runs the local Zerobus server from the command line, until Ctrl-C.
//!
//! Point the unmodified official SDK at the printed endpoint (plaintext, so `.no_tls()`)
//! and Unity Catalog URL, with the printed OAuth client credentials. Logs go to stderr,
//! filtered by `RUST_LOG` (default `zerobus_local=info`). The options are
//! [`zerobus_local::cli::ServeArgs`], shared with `zerobus local serve`.

use std::process::ExitCode;

use clap::Parser;
use zerobus_local::cli::{init_logging, serve, ServeArgs};

/// A local, Zerobus-compatible ingestion server for tests and development.
///
/// Serves the Zerobus gRPC service and Arrow Flight on one port, and the OAuth token and
/// Unity Catalog table endpoints on a second (HTTP/1.1) port, all on 127.0.0.1 and without
/// TLS. Received rows land in Delta tables (or memory). Stops cleanly on Ctrl-C. Logs
/// (streams opened and closed, commits, failures) go to stderr; set RUST_LOG to filter
/// them (default: zerobus_local=info).
#[derive(Debug, Parser)]
#[command(name = "zerobus-local", version)]
#[command(after_help = "\
Example:
  zerobus-local --port 50051 --http-port 50052 --data-dir ./zerobus-data

then, with the official Rust SDK (feature `testing` for no_tls):
  let sdk = ZerobusSdk::builder()
      .endpoint(\"http://127.0.0.1:50051\")
      .unity_catalog_url(\"http://127.0.0.1:50052\")
      .no_tls()
      .build()?;
  let stream = sdk
      .stream_builder()
      .table(\"main.default.events\")
      .oauth(CLIENT_ID, CLIENT_SECRET) // as printed at start
      .json()
      .build()
      .await?;")]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    serve(&args.serve).await
}
