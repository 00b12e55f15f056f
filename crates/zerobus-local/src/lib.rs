//! A local server that speaks the Zerobus protocols, landing rows in real Delta tables.
//!
//! [`LocalZerobus`] serves, on one `127.0.0.1` port, the `databricks.zerobus.Zerobus` gRPC
//! service (on the messages that the official `databricks-zerobus-ingest-sdk` 2.12 generates
//! from its own proto; ingest requests are read through a mirror of them whose records are
//! slices of the received buffer, checked against the SDK's encoding) and Arrow Flight
//! `DoPut`; on a second port it serves the OAuth token endpoint and the Unity Catalog table
//! endpoint. The **unmodified** official client, and the `ZerobusWrapper` of
//! `arrow-zerobus-sdk-wrapper`, talk to it exactly as to the service: no workspace, no network beyond loopback.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use zerobus_local::LocalZerobus;
//! use databricks_zerobus_ingest_sdk::ZerobusSdk;
//!
//! let server = LocalZerobus::builder().data_dir("/tmp/zerobus-data").start().await?;
//! let sdk = ZerobusSdk::builder()
//!     .endpoint(server.endpoint())
//!     .no_tls()
//!     .connector_factory(Arc::new(|_: &str| None))
//!     .build()?;
//! let mut stream = sdk.stream_builder().table("cat.sch.t").no_auth().json().build().await?;
//! stream.ingest_records_offset(vec![r#"{"a":1}"#.to_string()]).await?;
//! stream.flush().await?;
//! stream.close().await?;
//! let landed = server.read_table("cat.sch.t").await?; // also a Delta table on disk:
//! assert_eq!(landed.num_rows(), 1); // /tmp/zerobus-data/cat/sch/t
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it does
//! - **EphemeralStream** with `PROTO` (decoded against the stream's descriptor) and `JSON`
//!   records; each request is acknowledged cumulatively once its rows are durable, never
//!   ahead of what was received; `CloseStreamSignal` after the stream lifetime
//!   ([`LocalZerobusBuilder::stream_lifetime`], 15 minutes by default, as on the service)
//!   or when the stream's access token expires (then `UNAUTHENTICATED` if the stream is
//!   still open a [`close grace`](LocalZerobusBuilder::close_grace) later).
//!   Avro is rejected; `PersistentStream` and `RetireStream` answer `UNIMPLEMENTED`.
//! - **Arrow Flight `DoPut`** on the same port (the SDK's `build_arrow()` streams): the
//!   schema is checked against an existing table (mismatches fail with the `ErrorInfo` the
//!   client reports as `InvalidSchema`), batches are cast to the table's types, and acked
//!   `{"ack_up_to_offset":N,"ack_up_to_records":R}` once durable.
//! - **Landings** ([`Landing`]): by default every table is a Delta table under
//!   `<data_dir>/<catalog>/<schema>/<table>`; rows are committed in groups (see
//!   [`LocalZerobusBuilder::commit_interval`]) and acknowledged only once their group is
//!   committed, and the tables are readable by any Delta reader (DataFusion, Polars
//!   `read_delta`, DuckDB, Spark) and by [`LocalZerobus::read_table`]. A server started on
//!   a data directory with tables in it keeps them. `Memory` and `None` landings are for
//!   tests that need no files and for client-side benchmarks.
//! - **Tables** are created up front ([`LocalZerobusBuilder::table`]) — then streams whose
//!   descriptor or Arrow schema does not fit are rejected as the service rejects them — or,
//!   as a local convenience, from the first stream that names them (off in
//!   [`LocalZerobusBuilder::strict`] mode).
//! - **Authentication** ([`Auth`]): off by default (the SDK's `testing` feature:
//!   `.no_tls()` and `.no_auth()`). With [`Auth::OAuth`], the HTTP port
//!   ([`LocalZerobus::unity_catalog_url`]) issues tokens to the client credentials
//!   ([`LocalZerobus::client_id`], [`LocalZerobus::client_secret`]) at `POST /oidc/v1/token`,
//!   and streams need `authorization: Bearer <token>` issued for their table. The same port
//!   serves `GET /api/2.1/unity-catalog/tables/{name}` (the table's columns, as the SDK's
//!   `schema` module reads them) in both modes.
//! - **Faults** ([`Faults`], per table, switchable at run time) and per-table
//!   [`Counters`] of received, committed, acknowledged and duplicate rows;
//!   [`LocalZerobus::restart`] stops and restarts the whole server, cutting open
//!   connections and keeping what landed.
//! - **Bounds**: every queue and table of the server is bounded, so a slow disk or a
//!   hostile client slows clients down (HTTP/2 flow control) instead of growing the
//!   server's memory: unacknowledged requests per stream
//!   ([`LocalZerobusBuilder::max_unacked_requests`]), bytes queued for a Delta table
//!   ([`LocalZerobusBuilder::commit_max_bytes`]), streams per connection
//!   ([`LocalZerobusBuilder::max_concurrent_streams`]), rows remembered to count
//!   duplicates ([`LocalZerobusBuilder::duplicate_window`]), tokens remembered
//!   ([`MAX_TOKENS`]), and one server per data directory (a file lock).
//!
//! The `zerobus-local` binary (feature `cli`, on by default; also `zerobus local serve`)
//! serves it from the command line, tables declared with `--table` ([`TableSpec`]); see
//! `docs/local-server.md`.

mod acks;
mod auth;
mod canonical;
mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
mod decode;
mod dedup;
mod dirlock;
mod error;
mod faults;
mod flight;
mod flight_check;
mod flight_schema;
mod grpc;
mod http;
mod inbound;
mod ingest;
mod landing;
mod names;
mod respond;
mod running;
mod table_spec;
mod uc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::flight_service_server::FlightServiceServer;
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

pub use auth::{Auth, DEFAULT_CLIENT_ID, DEFAULT_TOKEN_TTL, MAX_TOKENS};
pub use catalog::Counters;
pub use dedup::DEFAULT_DUPLICATE_WINDOW;
pub use error::{LocalError, Result};
pub use faults::Faults;
pub use landing::delta::{
    DEFAULT_COMMIT_INTERVAL, DEFAULT_COMMIT_MAX_BYTES, DEFAULT_COMMIT_MAX_ROWS,
};
pub use landing::Landing;
pub use table_spec::{parquet_schema, parse_columns, TableSpec};

use auth::Authenticator;
use catalog::Catalog;
use dirlock::DirLock;
use landing::delta::DeltaSettings;
use running::Running;

/// The default limit on one inbound gRPC message: 32 MiB.
///
/// The client sends up to 10 420 224 record bytes per request plus framing; tonic's own
/// default (4 MiB) would reject large requests with `OUT_OF_RANGE`, terminal for the client.
pub const DEFAULT_MAX_DECODING_MESSAGE_SIZE: usize = 32 << 20;

/// The default stream lifetime: after it, the server asks the client to rotate the stream
/// (CloseStreamSignal), as the service does after about 15 minutes.
pub const DEFAULT_STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The default time a client has to rotate after a close signal: 30 s. A stream whose
/// access token expired is ended with `UNAUTHENTICATED` this long after its close signal.
pub const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(30);

/// The default limit on requests of one stream waiting for their acknowledgement: 65 536.
pub const DEFAULT_MAX_UNACKED_REQUESTS: usize = 65_536;

/// The default limit on concurrent streams (HTTP/2 streams: gRPC calls) of one
/// connection: 200.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;

/// How long [`LocalZerobus::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by the services and the [`LocalZerobus`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) auth: Authenticator,
    pub(crate) stream_lifetime: Duration,
    /// How long a client has to rotate after a close signal.
    pub(crate) close_grace: Duration,
    /// Requests of one stream that may wait for their ack before it stops reading.
    pub(crate) max_unacked_requests: usize,
    pub(crate) next_stream_id: AtomicU64,
}

/// Configures and starts a [`LocalZerobus`]; see [`LocalZerobus::builder`].
#[derive(Debug, Clone)]
pub struct LocalZerobusBuilder {
    port: u16,
    data_dir: Option<PathBuf>,
    landing: Landing,
    strict: bool,
    tables: Vec<(String, SchemaRef)>,
    stream_lifetime: Duration,
    close_grace: Duration,
    max_decoding_message_size: usize,
    max_unacked_requests: usize,
    max_concurrent_streams: u32,
    duplicate_window: usize,
    auth: Auth,
    http_port: u16,
    token_ttl: Duration,
    client_id: String,
    client_secret: Option<SecretString>,
    delta: DeltaSettings,
}

impl Default for LocalZerobusBuilder {
    fn default() -> Self {
        Self {
            port: 0,
            data_dir: None,
            landing: Landing::default(),
            strict: false,
            tables: Vec::new(),
            stream_lifetime: DEFAULT_STREAM_LIFETIME,
            close_grace: DEFAULT_CLOSE_GRACE,
            max_decoding_message_size: DEFAULT_MAX_DECODING_MESSAGE_SIZE,
            max_unacked_requests: DEFAULT_MAX_UNACKED_REQUESTS,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            auth: Auth::Disabled,
            http_port: 0,
            token_ttl: DEFAULT_TOKEN_TTL,
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: None,
            delta: DeltaSettings::default(),
        }
    }
}

impl LocalZerobusBuilder {
    /// The gRPC port on `127.0.0.1` (default 0: a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Where Delta tables are written, one per table at
    /// `<data_dir>/<catalog>/<schema>/<table>` (default: a temporary directory removed when
    /// the server is dropped). Delta tables already there are registered when the server
    /// starts, so a server started again on the same directory keeps what landed. With
    /// [`Landing::Delta`] the server locks the directory while it runs (the file
    /// `.zerobus-local.lock` in it): a second server on it fails to start with
    /// [`LocalError::DataDirInUse`].
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Where received rows go (default [`Landing::Delta`]).
    pub fn landing(mut self, landing: Landing) -> Self {
        self.landing = landing;
        self
    }

    /// In strict mode, streams to tables that were not created up front (see
    /// [`LocalZerobusBuilder::table`]) fail with `NOT_FOUND`, as on the service. Off by
    /// default: a table is then created from the first stream that names it.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Creates `name` (`catalog.schema.table`) with `schema` when the server starts;
    /// streams whose schema does not fit it are rejected.
    pub fn table(mut self, name: impl Into<String>, schema: SchemaRef) -> Self {
        self.tables.push((name.into(), schema));
        self
    }

    /// After this long a stream is asked to rotate (default [`DEFAULT_STREAM_LIFETIME`]).
    pub fn stream_lifetime(mut self, lifetime: Duration) -> Self {
        self.stream_lifetime = lifetime;
        self
    }

    /// How long a client has to rotate after a close signal (default
    /// [`DEFAULT_CLOSE_GRACE`]), sent to it in the signal (`CloseStreamSignal.duration`,
    /// Flight `close_stream_duration_ms`; the Flight client keeps 500 ms of it for itself).
    /// A stream whose access token expired ([`Auth::OAuth`]) is asked to rotate at once
    /// and ended with `UNAUTHENTICATED` if it is still open after this grace.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// Per stream, the most requests waiting for their rows to be durable and their ack
    /// to go out (default [`DEFAULT_MAX_UNACKED_REQUESTS`], at least 1). Past it the server
    /// stops reading the stream until acks go out, and HTTP/2 flow control holds the
    /// client back: slow commits, delayed acks or a client that does not read its acks
    /// cost no more memory.
    pub fn max_unacked_requests(mut self, requests: usize) -> Self {
        self.max_unacked_requests = requests;
        self
    }

    /// The most concurrent streams (gRPC and Flight calls) on one client connection
    /// (default [`DEFAULT_MAX_CONCURRENT_STREAMS`]); further calls wait for one to end
    /// (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`). The official client opens one
    /// connection per stream.
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.max_concurrent_streams = streams;
        self
    }

    /// How many distinct rows each table remembers to count duplicates (default
    /// [`DEFAULT_DUPLICATE_WINDOW`]; 0 turns the counting off): a row identical to one of
    /// the last `rows` distinct rows the table received counts in
    /// [`Counters::duplicates`]. A resend after a recovery repeats recent rows, so the
    /// window catches it; a table holds at most about 35 bytes a remembered row. Not
    /// counted with [`Landing::None`].
    pub fn duplicate_window(mut self, rows: usize) -> Self {
        self.duplicate_window = rows;
        self
    }

    /// The largest inbound gRPC message accepted, in bytes (default
    /// [`DEFAULT_MAX_DECODING_MESSAGE_SIZE`]). Larger messages fail the stream with
    /// `OUT_OF_RANGE`. An Arrow Flight batch may also declare at most this many rows, and
    /// buffers of at most 4 times this many bytes once decompressed.
    pub fn max_decoding_message_size(mut self, bytes: usize) -> Self {
        self.max_decoding_message_size = bytes;
        self
    }

    /// Whether streams and Unity Catalog requests need a bearer token (default
    /// [`Auth::Disabled`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The HTTP port (OAuth token and Unity Catalog endpoints) on `127.0.0.1` (default 0: a
    /// free port); see [`LocalZerobus::unity_catalog_url`].
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = port;
        self
    }

    /// The lifetime of issued tokens (default [`DEFAULT_TOKEN_TTL`]), sent to the client as
    /// `expires_in` in whole seconds.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// The one OAuth client the token endpoint knows (default: [`DEFAULT_CLIENT_ID`] and a
    /// random secret; see [`LocalZerobus::client_secret`]).
    pub fn credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        self.client_id = client_id.into();
        self.client_secret = Some(client_secret.into());
        self
    }

    /// [`Landing::Delta`]: the longest time rows wait for their commit (default
    /// [`DEFAULT_COMMIT_INTERVAL`]). Rows are committed in groups, one Delta version each,
    /// and acknowledged only once their group is committed.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.delta.interval = interval;
        self
    }

    /// [`Landing::Delta`]: a group reaching this many rows is committed at once (default
    /// [`DEFAULT_COMMIT_MAX_ROWS`]).
    pub fn commit_max_rows(mut self, rows: usize) -> Self {
        self.delta.max_rows = rows;
        self
    }

    /// [`Landing::Delta`]: a group reaching this many bytes (Arrow in-memory size) is
    /// committed at once (default [`DEFAULT_COMMIT_MAX_BYTES`]). It also bounds the rows
    /// queued for a table's writer (while a commit is written, say): past this many bytes,
    /// the streams writing to the table wait.
    pub fn commit_max_bytes(mut self, bytes: usize) -> Self {
        self.delta.max_bytes = bytes;
        self
    }

    /// Binds `127.0.0.1` and starts serving in background tasks of the current tokio
    /// runtime.
    ///
    /// # Errors
    /// [`LocalError::Listen`] if a port cannot be bound, [`LocalError::DataDirInUse`] if
    /// another server uses the data directory, [`LocalError::Io`] if the data directory
    /// (or the temporary one) cannot be made or locked, [`LocalError::Table`] if a table
    /// given up front is invalid, or a Delta table under the data directory cannot be
    /// loaded or does not match the schema given up front.
    pub async fn start(self) -> Result<LocalZerobus, LocalError> {
        let (data_dir, temp_dir) = match &self.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::TempDir::with_prefix("zerobus-local-")
                    .map_err(|e| LocalError::io(std::env::temp_dir(), e))?;
                (temp.path().to_path_buf(), Some(Arc::new(temp)))
            }
        };
        // Only the Delta landing writes to the directory.
        let dir_lock = match self.landing {
            Landing::Delta => Some(DirLock::acquire(&data_dir)?),
            _ => None,
        };
        let catalog = Catalog::new(self.landing, data_dir, self.strict)
            .with_delta_settings(self.delta)
            .with_duplicate_window(self.duplicate_window);
        catalog.reopen(&self.tables).await?;
        let catalog = Arc::new(catalog);
        for (name, schema) in &self.tables {
            catalog
                .create(name, Arc::clone(schema))
                .map_err(|status| LocalError::table(name, status.message()))?;
        }
        let shared = Arc::new(Shared {
            catalog,
            auth: Authenticator::new(
                self.auth,
                self.client_id.clone(),
                self.client_secret
                    .clone()
                    .unwrap_or_else(auth::generate_secret),
                self.token_ttl,
            ),
            stream_lifetime: self.stream_lifetime,
            close_grace: self.close_grace,
            max_unacked_requests: self.max_unacked_requests.max(1),
            next_stream_id: AtomicU64::new(0),
        });
        let server = serve(&self, Arc::clone(&shared), self.port).await?;
        let http = http::serve(Arc::clone(&shared), self.http_port).await?;
        tracing::info!(
            endpoint = %server.addr,
            http = %http.addr,
            data_dir = %shared.catalog.data_dir().display(),
            "local Zerobus server started"
        );
        Ok(LocalZerobus {
            settings: self,
            shared,
            server,
            http,
            _dir_lock: dir_lock,
            _temp_dir: temp_dir,
        })
    }
}

async fn serve(
    settings: &LocalZerobusBuilder,
    shared: Arc<Shared>,
    port: u16,
) -> Result<Running, LocalError> {
    let (listener, addr) = running::bind("gRPC", port).await?;
    let flight = FlightServiceServer::new(flight::Service {
        shared: Arc::clone(&shared),
        max_decoding_message_size: settings.max_decoding_message_size,
    })
    .max_decoding_message_size(settings.max_decoding_message_size);
    let service =
        grpc::ZerobusService::new(grpc::Service { shared }, settings.max_decoding_message_size);
    let (stop, stopped) = oneshot::channel::<()>();
    let cut = CancellationToken::new();
    let connections = cut.clone();
    let max_streams = settings.max_concurrent_streams;
    let task = tokio::spawn(async move {
        // Acks are small writes: without TCP_NODELAY, Nagle holds one back until the
        // client's delayed ACK (about 40 ms on Linux) when an earlier write is unacked.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let incoming = running::cuttable(incoming, connections);
        let result = tonic::transport::Server::builder()
            // tonic's default is no limit (hyper's own would be 200).
            .max_concurrent_streams(max_streams)
            .add_service(service)
            .add_service(flight)
            .serve_with_incoming_shutdown(incoming, async {
                // A dropped handle stops the server too.
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "local Zerobus server failed");
        }
    });
    tracing::debug!(%addr, "local Zerobus server listening");
    Ok(Running::new(addr, stop, task, cut))
}

/// A running local Zerobus server; see the [module documentation](self).
///
/// Dropping the handle stops the server as well; [`LocalZerobus::shutdown`] also waits for
/// it to finish.
#[derive(Debug)]
pub struct LocalZerobus {
    settings: LocalZerobusBuilder,
    shared: Arc<Shared>,
    server: Running,
    http: Running,
    /// Released when the handle is dropped, after the servers are stopped.
    _dir_lock: Option<DirLock>,
    _temp_dir: Option<Arc<tempfile::TempDir>>,
}

impl LocalZerobus {
    /// A builder with the default settings.
    pub fn builder() -> LocalZerobusBuilder {
        LocalZerobusBuilder::default()
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The endpoint to give the SDK: `http://127.0.0.1:PORT` (plaintext h2c, so the SDK
    /// needs `.no_tls()`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The address of the HTTP server (OAuth token and Unity Catalog endpoints).
    pub fn http_addr(&self) -> SocketAddr {
        self.http.addr
    }

    /// The URL to give the SDK as `unity_catalog_url`: `http://127.0.0.1:HTTP_PORT`
    /// (`POST /oidc/v1/token`, `GET /api/2.1/unity-catalog/tables/{name}`).
    pub fn unity_catalog_url(&self) -> String {
        format!("http://{}", self.http.addr)
    }

    /// Whether bearer tokens are checked.
    pub fn auth(&self) -> Auth {
        self.shared.auth.mode()
    }

    /// The OAuth client id the token endpoint accepts.
    pub fn client_id(&self) -> &str {
        self.shared.auth.client_id()
    }

    /// The OAuth client secret the token endpoint accepts (`expose_secret()` to pass it to
    /// the SDK's `.oauth(..)`).
    pub fn client_secret(&self) -> &SecretString {
        self.shared.auth.client_secret()
    }

    /// The lifetime of tokens issued from now on; tokens already issued keep theirs.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.shared.auth.set_token_ttl(ttl);
    }

    /// Fault: every token issued so far is expired from now on, so new streams that present
    /// one are refused with `UNAUTHENTICATED` (the client then fetches a new token). Open
    /// streams keep the expiry their token had when they opened (at which they are asked
    /// to rotate).
    pub fn expire_tokens(&self) {
        self.shared.auth.expire_all();
    }

    /// How many tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.auth.issued()
    }

    /// How many issued tokens the server remembers now: at most [`MAX_TOKENS`], none with
    /// [`Auth::Disabled`] (tokens are not checked then).
    pub fn tokens_remembered(&self) -> usize {
        self.shared.auth.remembered()
    }

    /// Where Delta tables are written.
    pub fn data_dir(&self) -> PathBuf {
        self.shared.catalog.data_dir().to_path_buf()
    }

    /// Every row landed in `table` so far, as one batch of the table's schema.
    ///
    /// # Errors
    /// [`LocalError::UnknownTable`] for an unknown table; [`LocalError::Delta`] if the
    /// Delta table cannot be read.
    pub async fn read_table(&self, table: &str) -> Result<RecordBatch, LocalError> {
        let t = self
            .shared
            .catalog
            .get(table)
            .ok_or_else(|| LocalError::UnknownTable(table.to_string()))?;
        let batches = t.read().await?;
        Ok(arrow::compute::concat_batches(t.schema(), &batches)?)
    }

    /// The Arrow schema of `table`, if it exists.
    pub fn table_schema(&self, table: &str) -> Option<SchemaRef> {
        self.shared
            .catalog
            .get(table)
            .map(|t| Arc::clone(t.schema()))
    }

    /// The record counts of `table` (zero for an unknown table).
    pub fn counters(&self, table: &str) -> Counters {
        self.shared
            .catalog
            .get(table)
            .map(|t| t.counters())
            .unwrap_or_default()
    }

    /// The fault switches of `table` (also before the table exists).
    pub fn faults(&self, table: &str) -> Arc<Faults> {
        self.shared.catalog.faults(table)
    }

    /// The tables that exist, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.shared.catalog.names()
    }

    /// Stops the server, cutting its open connections off at once (clients see them reset,
    /// as after a crash), and starts it again on the same ports, keeping what landed. Rows
    /// received but not yet acknowledged may still land: clients resend them (counted as
    /// duplicates).
    ///
    /// # Errors
    /// [`LocalError::Listen`] if the port cannot be bound again.
    pub async fn restart(&mut self) -> Result<(), LocalError> {
        self.server.take().stop(Duration::ZERO).await;
        self.http.take().stop(Duration::ZERO).await;
        self.server = serve(
            &self.settings,
            Arc::clone(&self.shared),
            self.server.addr.port(),
        )
        .await?;
        self.http = http::serve(Arc::clone(&self.shared), self.http.addr.port()).await?;
        Ok(())
    }

    /// Stops accepting connections and waits for open streams to finish; connections still
    /// open after 5 seconds are cut off. Rows still waiting for a Delta commit are then
    /// committed (they were not acknowledged), and the data directory is unlocked.
    pub async fn shutdown(mut self) {
        self.server.take().stop(SHUTDOWN_GRACE).await;
        self.http.take().stop(SHUTDOWN_GRACE).await;
        self.shared.catalog.flush().await;
        tracing::info!(endpoint = %self.server.addr, "local Zerobus server stopped");
    }
}

/// Locks `mutex`, also after a panic of another holder (the state it guards stays usable:
/// counters, tables, fault switches).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
