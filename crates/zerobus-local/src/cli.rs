//! The command line of the `zerobus-local` binary, shared with `zerobus local serve`
//! (feature `cli`): [`ServeArgs`], to flatten into a clap command, and [`serve`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::EnvFilter;

use crate::{
    Auth, Landing, LocalZerobus, TableSpec, DEFAULT_CLIENT_ID, DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_STREAM_LIFETIME,
};

/// The log filter without `RUST_LOG`: the server's own messages (streams, commits,
/// failures) at info.
const DEFAULT_LOG_FILTER: &str = "zerobus_local=info";

/// The server's options: ports, data directory, landing, tables, authentication, limits.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// gRPC port (Zerobus EphemeralStream and Arrow Flight) on 127.0.0.1; 0 picks a free
    /// port.
    #[arg(long, env = "ZEROBUS_LOCAL_PORT", default_value_t = 50051)]
    pub port: u16,

    /// HTTP port (OAuth `POST /oidc/v1/token`, Unity Catalog `GET
    /// /api/2.1/unity-catalog/tables/{name}`) on 127.0.0.1; 0 picks a free port.
    #[arg(long, env = "ZEROBUS_LOCAL_HTTP_PORT", default_value_t = 50052)]
    pub http_port: u16,

    /// Where Delta tables are written, one per table under <catalog>/<schema>/<table>
    /// (default: a temporary directory, removed on exit).
    #[arg(long, env = "ZEROBUS_LOCAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where received rows go: `delta` (acknowledged once committed), `memory` (kept until
    /// exit), `none` (counted and dropped, for client benchmarks).
    #[arg(long, value_enum, default_value_t = LandingArg::Delta)]
    pub landing: LandingArg,

    /// Lifetime of issued OAuth tokens, in seconds (sent to the client as `expires_in`). A
    /// stream is asked to rotate when its token expires, and ended with UNAUTHENTICATED if
    /// still open 30 s later.
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub token_ttl: u64,

    /// After this many seconds a stream is asked to rotate to a new one
    /// (CloseStreamSignal), as the service does after about 15 minutes.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STREAM_LIFETIME.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_lifetime: u64,

    /// The most concurrent streams (gRPC / Flight calls) on one client connection; more
    /// wait for one to end.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// How many distinct rows each table remembers to count duplicates (resends); 0 turns
    /// the counting off. About 35 bytes a row.
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_DUPLICATE_WINDOW)]
    pub duplicate_window: usize,

    /// Accept every stream without a token (use the SDK's `.no_auth()`).
    #[arg(long)]
    pub no_auth: bool,

    /// Refuse streams to tables that do not exist yet with NOT_FOUND, as the service does,
    /// instead of creating a table from the first stream that names it.
    #[arg(long)]
    pub strict: bool,

    /// The OAuth client id the token endpoint accepts.
    #[arg(long, env = "ZEROBUS_LOCAL_CLIENT_ID", default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,

    /// The OAuth client secret the token endpoint accepts (default: a random one, printed
    /// at start; a secret given here is never printed). Prefer the environment variable
    /// over the flag, which other users can see.
    #[arg(long, env = "ZEROBUS_LOCAL_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Creates a table when the server starts, with its columns in Databricks SQL type
    /// names or those of a Parquet file (only its footer is read); repeatable. E.g.
    /// 'main.demo.events=id BIGINT NOT NULL, name STRING, ts TIMESTAMP' or
    /// 'main.demo.events=events.parquet'. Streams that do not fit it are then rejected, as
    /// on the service; without it the first stream decides the column types.
    #[arg(long = "table", value_name = "NAME=COLUMNS|NAME=FILE.parquet")]
    pub tables: Vec<TableSpec>,
}

/// `--landing`: the library's [`Landing`], spelled for the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LandingArg {
    /// Delta tables in the data directory.
    Delta,
    /// Rows kept in memory until exit.
    Memory,
    /// Rows counted and dropped.
    None,
}

impl From<LandingArg> for Landing {
    fn from(arg: LandingArg) -> Self {
        match arg {
            LandingArg::Delta => Landing::Delta,
            LandingArg::Memory => Landing::Memory,
            LandingArg::None => Landing::None,
        }
    }
}

/// Starts the server with `args`, prints its banner (endpoints, credentials, a snippet for
/// the official SDK) to stdout, and serves until Ctrl-C or SIGTERM; the exit code says
/// whether it could start. Install a log subscriber first (e.g. [`init_logging`]).
pub async fn serve(args: &ServeArgs) -> ExitCode {
    let mut builder = LocalZerobus::builder()
        .port(args.port)
        .http_port(args.http_port)
        .landing(args.landing.into())
        .strict(args.strict)
        .token_ttl(Duration::from_secs(args.token_ttl))
        .stream_lifetime(Duration::from_secs(args.stream_lifetime))
        .max_concurrent_streams(args.max_concurrent_streams)
        .duplicate_window(args.duplicate_window)
        .auth(if args.no_auth {
            Auth::Disabled
        } else {
            Auth::OAuth
        });
    for table in &args.tables {
        builder = builder.table(table.name.clone(), table.schema.clone());
    }
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    let secret = args
        .client_secret
        .clone()
        .unwrap_or_else(|| format!("zbls_{}", uuid::Uuid::new_v4().simple()));
    builder = builder.credentials(args.client_id.clone(), SecretString::from(secret));
    let server = match builder.start().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("zerobus-local: could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(&server, args);
    if let Err(e) = stop_signal().await {
        eprintln!("zerobus-local: cannot wait for Ctrl-C: {e}");
    }
    println!("zerobus-local: stopping");
    server.shutdown().await;
    println!("zerobus-local: stopped");
    ExitCode::SUCCESS
}

/// Logs to stderr, filtered by `RUST_LOG` (an `EnvFilter` directive list), else
/// `zerobus_local=info`.
pub fn init_logging() {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).unwrap_or_else(|e| {
                eprintln!("zerobus-local: RUST_LOG={directives:?} is not a log filter ({e}); using {DEFAULT_LOG_FILTER}");
                EnvFilter::new(DEFAULT_LOG_FILTER)
            })
        }
        _ => EnvFilter::new(DEFAULT_LOG_FILTER),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn print_banner(server: &LocalZerobus, args: &ServeArgs) {
    let auth = if args.no_auth {
        "disabled (use the SDK's .no_auth())".to_string()
    } else {
        format!("oauth, tokens live {} s", args.token_ttl)
    };
    println!("zerobus-local: listening");
    println!("  endpoint:          {}", server.endpoint());
    println!("  unity_catalog_url: {}", server.unity_catalog_url());
    println!("  client_id:         {}", server.client_id());
    // A secret the user chose stays out of the output (terminals, CI logs); only one the
    // server made up is shown, since nobody else knows it.
    let secret = if args.client_secret.is_some() {
        "(as given in --client-secret / ZEROBUS_LOCAL_CLIENT_SECRET)"
    } else {
        server.client_secret().expose_secret()
    };
    println!("  client_secret:     {secret}");
    println!("  auth:              {auth}");
    let landing = args.landing.to_possible_value().map_or_else(
        || format!("{:?}", args.landing),
        |v| v.get_name().to_string(),
    );
    let temporary = if args.data_dir.is_none() {
        " (temporary, removed on exit)"
    } else {
        ""
    };
    println!(
        "  landing:           {landing} in {}{temporary}",
        server.data_dir().display()
    );
    println!();
    println!("Rust SDK (feature `testing`):");
    println!("  let sdk = ZerobusSdk::builder()");
    println!("      .endpoint(\"{}\")", server.endpoint());
    println!(
        "      .unity_catalog_url(\"{}\")",
        server.unity_catalog_url()
    );
    println!("      .no_tls()");
    println!("      .build()?;");
    let auth_call = if args.no_auth {
        ".no_auth()".to_string()
    } else if args.client_secret.is_some() {
        format!(".oauth(\"{}\", CLIENT_SECRET)", server.client_id())
    } else {
        format!(".oauth(\"{}\", \"{secret}\")", server.client_id())
    };
    println!("  let stream = sdk.stream_builder().table(\"main.default.events\")");
    println!("      {auth_call}.json().build().await?;");
    println!();
    println!("Press Ctrl-C to stop.");
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
