//! Configuration of the wrapper: [`WrapperConfiguration`], its builder, validation,
//! and loading from YAML and environment variables.
//!
//! # Sources and precedence
//!
//! [`WrapperConfiguration::load`] combines, from lowest to highest precedence:
//!
//! 1. the defaults of [`WrapperConfiguration::new`];
//! 2. the YAML file, if one is given ([`WrapperConfiguration::from_yaml_file`]);
//! 3. environment variables ([`WrapperConfiguration::with_env_overrides`]).
//!
//! Builder calls (`with_*`) made on the loaded value afterwards override all three.
//! Loading never validates: call [`WrapperConfiguration::validate`] once the
//! configuration is final.
//!
//! # YAML
//!
//! Unknown keys are errors (so typos are caught); missing keys keep the defaults.
//!
//! ```yaml
//! endpoint: https://...          # required
//! table_name: cat.sch.tbl        # required
//! unity_catalog_url: https://... # optional
//! client_id: ...                 # optional
//! client_secret: ...             # optional (prefer the environment)
//! writer_disabled: false
//! transport: protobuf            # or arrow_flight
//! multiplexed_streams: 1         # streams per table schema, 1..=64
//! max_open_schemas: 8            # table schemas whose streams stay open (LRU), >= 1
//! flight_ipc_compression: zstd   # arrow_flight only: zstd, lz4 or none
//! schema_check: false            # check batches against the Unity Catalog table first
//! max_record_size_bytes: 10420224
//! max_request_bytes: 524288      # records per ingest call, 1 KiB..=10420224
//! retry: { max_attempts: 5, base_delay_ms: 100, max_delay_ms: 30000 }
//! observability: { enabled: false, endpoint: null, service_name: null }
//! debug:
//!   enabled: false            # legacy: both formats when the two flags below are unset
//!   arrow_enabled: true
//!   protobuf_enabled: false
//!   output_dir: "/tmp/debug"
//!   max_files_retained: 20    # null = unlimited
//!   flush_interval_secs: 5
//!   max_file_size: 10485760   # null = no size-based rotation
//!   rotation_interval_secs: 3600 # null = no age-based rotation
//! ```
//!
//! # Environment variables
//!
//! `ZEROBUS_ENDPOINT`, `ZEROBUS_TABLE_NAME`, `ZEROBUS_CLIENT_ID`, `ZEROBUS_CLIENT_SECRET`,
//! `ZEROBUS_UNITY_CATALOG_URL`, `ZEROBUS_WRITER_DISABLED`, `ZEROBUS_MAX_RECORD_SIZE_BYTES`,
//! `ZEROBUS_TRANSPORT` (`protobuf` or `arrow_flight`), `ZEROBUS_MULTIPLEXED_STREAMS`,
//! `ZEROBUS_MAX_OPEN_SCHEMAS`,
//! `ZEROBUS_SCHEMA_CHECK`, `ZEROBUS_MAX_REQUEST_BYTES`,
//! `DEBUG_ENABLED`, `DEBUG_ARROW_ENABLED`, `DEBUG_PROTOBUF_ENABLED`, `DEBUG_OUTPUT_DIR`,
//! `DEBUG_MAX_FILES_RETAINED`, `DEBUG_FLUSH_INTERVAL_SECS`, `DEBUG_MAX_FILE_SIZE`,
//! `DEBUG_ROTATION_INTERVAL_SECS`.
//!
//! Booleans accept `true`/`false`/`1`/`0`/`yes`/`no` (any case). The optional limits
//! (`DEBUG_MAX_FILES_RETAINED`, `DEBUG_MAX_FILE_SIZE`, `DEBUG_ROTATION_INTERVAL_SECS`)
//! accept a number or `none`/`unlimited`. Surrounding whitespace is ignored and an
//! empty variable counts as unset. The value of `ZEROBUS_CLIENT_SECRET` never appears
//! in an error message.
//!
//! # Debug formats
//!
//! If either `debug_arrow_enabled` or `debug_protobuf_enabled` is set explicitly
//! (`Some`), the two flags are used as given and an unset one counts as `false`.
//! Otherwise the legacy `debug_enabled` flag turns both formats on. See
//! [`WrapperConfiguration::debug_arrow_active`].
//!
//! # Credentials
//!
//! With the writer enabled, `client_id`, `client_secret` and `unity_catalog_url` are
//! required, except when the endpoint is a plain-http loopback URL
//! (`http://127.0.0.1…`, `http://localhost…`, `http://[::1]…`), where a local test
//! server may run without authentication. In writer-disabled mode no credentials are
//! needed, but at least one debug format must be active.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ZerobusError};

pub use crate::encode::DEFAULT_MAX_RECORD_SIZE_BYTES;

/// Most streams [`WrapperConfiguration::multiplexed_streams`] may ask for (the official
/// SDK's bound for a multiplexed stream).
pub const MAX_MULTIPLEXED_STREAMS: usize = 64;

/// Default of [`WrapperConfiguration::max_open_schemas`]: the streams of at most 8
/// distinct table schemas stay open.
pub const DEFAULT_MAX_OPEN_SCHEMAS: usize = 8;

/// Fewest rows of a batch part sent on a stream of its own when a batch is split over
/// multiplexed streams (smaller batches are not split).
pub const MIN_ROWS_PER_STREAM_PART: usize = 1024;

/// Default of [`WrapperConfiguration::max_request_bytes`]: 512 KiB of records per ingest
/// call. Requests of this size keep the client's encoding, the transfer and the server's
/// decoding overlapped; a whole-payload request (10 MiB) is sent, received and decoded one
/// after the other, which roughly doubles the latency of a large batch (see
/// `docs/performance.md`).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 512 * 1024;

/// Smallest [`WrapperConfiguration::max_request_bytes`] accepted.
pub const MIN_MAX_REQUEST_BYTES: usize = 1024;

/// Largest [`WrapperConfiguration::max_request_bytes`] accepted: the official SDK's limit
/// on the records of one ingest call (10 MiB minus 64 KiB of envelope headroom).
pub const MAX_INGEST_PAYLOAD_BYTES: usize =
    databricks_zerobus_ingest_sdk::stream_options::defaults::MAX_INGEST_PAYLOAD_BYTES;

pub(crate) const DEFAULT_DEBUG_FLUSH_INTERVAL_SECS: u64 = 5;
pub(crate) const DEFAULT_DEBUG_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
pub(crate) const DEFAULT_DEBUG_MAX_FILES_RETAINED: usize = 10;
pub(crate) const DEFAULT_DEBUG_ROTATION_INTERVAL_SECS: u64 = 3600;
const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 5;
const DEFAULT_RETRY_BASE_DELAY_MS: u64 = 100;
const DEFAULT_RETRY_MAX_DELAY_MS: u64 = 30_000;

/// OpenTelemetry (OTLP) export settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// OTLP collector endpoint, e.g. `http://localhost:4317`; `None` = exporter default.
    pub endpoint: Option<String>,
    /// `service.name` resource attribute; `None` = library default.
    pub service_name: Option<String>,
}

/// How records travel to Zerobus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportKind {
    /// A dynamic-protobuf gRPC stream of the official SDK (the default): the descriptor
    /// comes from the Arrow schema, the rows from the columnar encoder.
    #[default]
    Protobuf,
    /// Arrow batches through the SDK's Arrow Flight stream (`build_arrow` /
    /// `ingest_batch`), normalized to the Arrow schema the SDK derives for the table, with
    /// the same per-row validation and results as the protobuf path. One difference: a
    /// null ARRAY or MAP lands as null here, as an empty one over protobuf.
    ArrowFlight,
}

impl TransportKind {
    /// The configuration spelling: `protobuf` or `arrow_flight`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Protobuf => "protobuf",
            Self::ArrowFlight => "arrow_flight",
        }
    }
}

impl std::str::FromStr for TransportKind {
    type Err = ZerobusError;

    /// Parses `protobuf` or `arrow_flight` (any case; `-` works for `_`).
    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "protobuf" | "proto" => Ok(Self::Protobuf),
            "arrow_flight" | "arrow" | "flight" => Ok(Self::ArrowFlight),
            _ => Err(config_error(format!(
                "transport: unknown transport '{value}' (expected protobuf or arrow_flight)"
            ))),
        }
    }
}

/// The Arrow IPC body compression of batches sent over [`TransportKind::ArrowFlight`]
/// (the official SDK's `ipc_compression`; ignored by the protobuf transport).
///
/// ZSTD (the SDK's default) sends the fewest bytes; on a fast link to the service the
/// compression itself can take longer than the bytes it saves (on loopback it is most of
/// the Flight path's time: docs/performance.md), where `none` or `lz4` send sooner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlightCompression {
    /// ZSTD (the default).
    #[default]
    Zstd,
    /// LZ4 frame: faster, larger.
    Lz4,
    /// Uncompressed bodies.
    None,
}

impl FlightCompression {
    /// The configuration spelling: `zstd`, `lz4` or `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Lz4 => "lz4",
            Self::None => "none",
        }
    }

    /// The codec for the SDK's stream builder (`None`: uncompressed).
    pub fn codec(&self) -> Option<arrow::ipc::CompressionType> {
        match self {
            Self::Zstd => Some(arrow::ipc::CompressionType::ZSTD),
            Self::Lz4 => Some(arrow::ipc::CompressionType::LZ4_FRAME),
            Self::None => None,
        }
    }
}

impl std::str::FromStr for FlightCompression {
    type Err = ZerobusError;

    /// Parses `zstd`, `lz4` (or `lz4_frame`) or `none` (or `uncompressed`), any case.
    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "zstd" => Ok(Self::Zstd),
            "lz4" | "lz4_frame" => Ok(Self::Lz4),
            "none" | "uncompressed" => Ok(Self::None),
            _ => Err(config_error(format!(
                "flight_ipc_compression: unknown compression '{value}' (expected zstd, lz4 or \
                 none)"
            ))),
        }
    }
}

/// Everything the wrapper needs to know: where to send, what table, how to
/// authenticate, retry, debug output and observability.
///
/// Build with [`new`](Self::new) and the `with_*` methods, or load with
/// [`load`](Self::load); then call [`validate`](Self::validate).
///
/// ```
/// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
/// use std::path::PathBuf;
///
/// let config = WrapperConfiguration::new("https://workspace.cloud.databricks.com", "cat.sch.tbl")
///     .with_credentials("my-client-id", "s3cr3t-value")
///     .with_unity_catalog("https://workspace.cloud.databricks.com")
///     .with_debug_arrow_enabled(true)
///     .with_debug_output(PathBuf::from("./debug_output"))
///     .with_retry_config(3, 200, 10_000);
/// config.validate()?;
/// assert!(config.debug_arrow_active() && !config.debug_protobuf_active());
/// assert!(!format!("{config:?}").contains("s3cr3t-value"));
/// assert_eq!(config.client_secret_str(), Some("s3cr3t-value"));
/// # Ok::<(), arrow_zerobus_sdk_wrapper::ZerobusError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WrapperConfiguration {
    /// Zerobus server endpoint, an `http://` or `https://` URL.
    pub(crate) zerobus_endpoint: String,
    /// Target table: `table`, `schema.table` or `catalog.schema.table`.
    pub(crate) table_name: String,
    /// Unity Catalog (workspace) URL used to obtain OAuth tokens.
    pub(crate) unity_catalog_url: Option<String>,
    /// OAuth client id (service principal).
    pub(crate) client_id: Option<String>,
    /// OAuth client secret; redacted in `Debug` output.
    pub(crate) client_secret: Option<SecretString>,
    /// Whether OpenTelemetry export is on (default `false`).
    pub(crate) observability_enabled: bool,
    /// OpenTelemetry settings.
    pub(crate) observability_config: Option<OtlpConfig>,
    /// Legacy debug flag: turns on both debug formats when neither
    /// `debug_arrow_enabled` nor `debug_protobuf_enabled` is set (default `false`).
    pub(crate) debug_enabled: bool,
    /// Arrow IPC debug output; `None` = not set explicitly.
    pub(crate) debug_arrow_enabled: Option<bool>,
    /// Protobuf debug output; `None` = not set explicitly.
    pub(crate) debug_protobuf_enabled: Option<bool>,
    /// Directory for debug files; required when a debug format is active.
    pub(crate) debug_output_dir: Option<PathBuf>,
    /// How often debug files are flushed, in seconds (default 5).
    pub(crate) debug_flush_interval_secs: u64,
    /// Rotate a debug file once it reaches this many bytes (default 10 MiB);
    /// `None` = no size-based rotation.
    pub(crate) debug_max_file_size: Option<u64>,
    /// Rotated debug files kept per format (default 10); `None` = unlimited.
    pub(crate) debug_max_files_retained: Option<usize>,
    /// Rotate a debug file older than this many seconds (default 3600);
    /// `None` = no age-based rotation.
    pub(crate) debug_rotation_interval_secs: Option<u64>,
    /// Maximum attempts per send, including the first (default 5).
    pub(crate) retry_max_attempts: u32,
    /// Initial backoff delay in milliseconds (default 100).
    pub(crate) retry_base_delay_ms: u64,
    /// Backoff delay cap in milliseconds (default 30000).
    pub(crate) retry_max_delay_ms: u64,
    /// Skip all network transmission and only write debug files (default `false`).
    pub(crate) zerobus_writer_disabled: bool,
    /// Largest encoded record accepted (default [`DEFAULT_MAX_RECORD_SIZE_BYTES`]).
    pub(crate) max_record_size_bytes: usize,
    /// Most bytes of records in one ingest call (default [`DEFAULT_MAX_REQUEST_BYTES`]);
    /// see [`with_max_request_bytes`](Self::with_max_request_bytes).
    pub(crate) max_request_bytes: usize,
    /// How records travel (default [`TransportKind::Protobuf`]).
    pub(crate) transport: TransportKind,
    /// Streams opened per table schema, 1 to [`MAX_MULTIPLEXED_STREAMS`] (default 1); see
    /// [`with_multiplexed_streams`](Self::with_multiplexed_streams).
    pub(crate) multiplexed_streams: usize,
    /// Distinct table schemas whose streams stay open (default
    /// [`DEFAULT_MAX_OPEN_SCHEMAS`]); see [`with_max_open_schemas`](Self::with_max_open_schemas).
    pub(crate) max_open_schemas: usize,
    /// IPC body compression on the Arrow Flight transport (default
    /// [`FlightCompression::Zstd`]); see
    /// [`with_flight_ipc_compression`](Self::with_flight_ipc_compression).
    pub(crate) flight_ipc_compression: FlightCompression,
    /// Check every batch against the table's columns in Unity Catalog before sending
    /// (default `false`; needs `unity_catalog_url`; see
    /// [`with_schema_check`](Self::with_schema_check)).
    pub(crate) schema_check: bool,
}

/// Read access to every option (the fields are private: build with the `with_*` methods,
/// which keep the configuration consistent).
impl WrapperConfiguration {
    /// Zerobus server endpoint, an `http://` or `https://` URL.
    pub fn zerobus_endpoint(&self) -> &str {
        &self.zerobus_endpoint
    }

    /// Target table: `table`, `schema.table` or `catalog.schema.table`.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// Unity Catalog (workspace) URL used to obtain OAuth tokens.
    pub fn unity_catalog_url(&self) -> Option<&str> {
        self.unity_catalog_url.as_deref()
    }

    /// OAuth client id (service principal).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// OAuth client secret (redacted in `Debug` output); see also
    /// [`client_secret_str`](Self::client_secret_str).
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// Whether OpenTelemetry export is on (default `false`).
    pub fn observability_enabled(&self) -> bool {
        self.observability_enabled
    }

    /// OpenTelemetry settings.
    pub fn observability_config(&self) -> Option<&OtlpConfig> {
        self.observability_config.as_ref()
    }

    /// Legacy debug flag: turns on both debug formats when neither
    /// `debug_arrow_enabled` nor `debug_protobuf_enabled` is set (default `false`).
    pub fn debug_enabled(&self) -> bool {
        self.debug_enabled
    }

    /// Arrow IPC debug output; `None` = not set explicitly.
    pub fn debug_arrow_enabled(&self) -> Option<bool> {
        self.debug_arrow_enabled
    }

    /// Protobuf debug output; `None` = not set explicitly.
    pub fn debug_protobuf_enabled(&self) -> Option<bool> {
        self.debug_protobuf_enabled
    }

    /// Directory for debug files; required when a debug format is active.
    pub fn debug_output_dir(&self) -> Option<&Path> {
        self.debug_output_dir.as_deref()
    }

    /// How often debug files are flushed, in seconds (default 5).
    pub fn debug_flush_interval_secs(&self) -> u64 {
        self.debug_flush_interval_secs
    }

    /// Rotate a debug file once it reaches this many bytes (default 10 MiB);
    /// `None` = no size-based rotation.
    pub fn debug_max_file_size(&self) -> Option<u64> {
        self.debug_max_file_size
    }

    /// Rotated debug files kept per format (default 10); `None` = unlimited.
    pub fn debug_max_files_retained(&self) -> Option<usize> {
        self.debug_max_files_retained
    }

    /// Rotate a debug file older than this many seconds (default 3600);
    /// `None` = no age-based rotation.
    pub fn debug_rotation_interval_secs(&self) -> Option<u64> {
        self.debug_rotation_interval_secs
    }

    /// Maximum attempts per send, including the first (default 5).
    pub fn retry_max_attempts(&self) -> u32 {
        self.retry_max_attempts
    }

    /// Initial backoff delay in milliseconds (default 100).
    pub fn retry_base_delay_ms(&self) -> u64 {
        self.retry_base_delay_ms
    }

    /// Backoff delay cap in milliseconds (default 30000).
    pub fn retry_max_delay_ms(&self) -> u64 {
        self.retry_max_delay_ms
    }

    /// Skip all network transmission and only write debug files (default `false`).
    pub fn zerobus_writer_disabled(&self) -> bool {
        self.zerobus_writer_disabled
    }

    /// Largest encoded record accepted (default [`DEFAULT_MAX_RECORD_SIZE_BYTES`]).
    pub fn max_record_size_bytes(&self) -> usize {
        self.max_record_size_bytes
    }

    /// Most bytes of records in one ingest call (default [`DEFAULT_MAX_REQUEST_BYTES`]);
    /// see [`with_max_request_bytes`](Self::with_max_request_bytes).
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// How records travel (default [`TransportKind::Protobuf`]).
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Streams opened per table schema, 1 to [`MAX_MULTIPLEXED_STREAMS`] (default 1); see
    /// [`with_multiplexed_streams`](Self::with_multiplexed_streams).
    pub fn multiplexed_streams(&self) -> usize {
        self.multiplexed_streams
    }

    /// Distinct table schemas whose streams stay open (default
    /// [`DEFAULT_MAX_OPEN_SCHEMAS`]); see [`with_max_open_schemas`](Self::with_max_open_schemas).
    pub fn max_open_schemas(&self) -> usize {
        self.max_open_schemas
    }

    /// IPC body compression on the Arrow Flight transport (default
    /// [`FlightCompression::Zstd`]); see
    /// [`with_flight_ipc_compression`](Self::with_flight_ipc_compression).
    pub fn flight_ipc_compression(&self) -> FlightCompression {
        self.flight_ipc_compression
    }

    /// Check every batch against the table's columns in Unity Catalog before sending
    /// (default `false`; needs `unity_catalog_url`; see
    /// [`with_schema_check`](Self::with_schema_check)).
    pub fn schema_check(&self) -> bool {
        self.schema_check
    }
}

impl WrapperConfiguration {
    /// A configuration for `endpoint` and `table_name` with every other option at its default.
    pub fn new(endpoint: impl Into<String>, table_name: impl Into<String>) -> Self {
        Self {
            zerobus_endpoint: endpoint.into(),
            table_name: table_name.into(),
            unity_catalog_url: None,
            client_id: None,
            client_secret: None,
            observability_enabled: false,
            observability_config: None,
            debug_enabled: false,
            debug_arrow_enabled: None,
            debug_protobuf_enabled: None,
            debug_output_dir: None,
            debug_flush_interval_secs: DEFAULT_DEBUG_FLUSH_INTERVAL_SECS,
            debug_max_file_size: Some(DEFAULT_DEBUG_MAX_FILE_SIZE),
            debug_max_files_retained: Some(DEFAULT_DEBUG_MAX_FILES_RETAINED),
            debug_rotation_interval_secs: Some(DEFAULT_DEBUG_ROTATION_INTERVAL_SECS),
            retry_max_attempts: DEFAULT_RETRY_MAX_ATTEMPTS,
            retry_base_delay_ms: DEFAULT_RETRY_BASE_DELAY_MS,
            retry_max_delay_ms: DEFAULT_RETRY_MAX_DELAY_MS,
            zerobus_writer_disabled: false,
            max_record_size_bytes: DEFAULT_MAX_RECORD_SIZE_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            transport: TransportKind::default(),
            multiplexed_streams: 1,
            max_open_schemas: DEFAULT_MAX_OPEN_SCHEMAS,
            flight_ipc_compression: FlightCompression::default(),
            schema_check: false,
        }
    }

    /// Sets the OAuth client id and secret.
    pub fn with_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(SecretString::from(client_secret.into()));
        self
    }

    /// Sets the Unity Catalog (workspace) URL.
    pub fn with_unity_catalog(mut self, url: impl Into<String>) -> Self {
        self.unity_catalog_url = Some(url.into());
        self
    }

    /// Sets the OpenTelemetry settings and turns observability on.
    pub fn with_observability(mut self, config: OtlpConfig) -> Self {
        self.observability_config = Some(config);
        self.observability_enabled = true;
        self
    }

    /// Sets the debug output directory and turns on the legacy `debug_enabled` flag
    /// (as the original wrapper did). Explicit per-format flags still take precedence.
    pub fn with_debug_output(mut self, dir: PathBuf) -> Self {
        self.debug_output_dir = Some(dir);
        self.debug_enabled = true;
        self
    }

    /// Sets the legacy `debug_enabled` flag.
    pub fn with_debug_enabled(mut self, enabled: bool) -> Self {
        self.debug_enabled = enabled;
        self
    }

    /// Explicitly turns Arrow IPC debug output on or off.
    pub fn with_debug_arrow_enabled(mut self, enabled: bool) -> Self {
        self.debug_arrow_enabled = Some(enabled);
        self
    }

    /// Explicitly turns Protobuf debug output on or off.
    pub fn with_debug_protobuf_enabled(mut self, enabled: bool) -> Self {
        self.debug_protobuf_enabled = Some(enabled);
        self
    }

    /// Sets how many rotated debug files are kept per format; `None` = unlimited.
    pub fn with_debug_max_files_retained(mut self, max_files: Option<usize>) -> Self {
        self.debug_max_files_retained = max_files;
        self
    }

    /// Sets the debug flush interval in seconds.
    pub fn with_debug_flush_interval_secs(mut self, secs: u64) -> Self {
        self.debug_flush_interval_secs = secs;
        self
    }

    /// Sets the debug file size that triggers rotation; `None` = no size limit.
    pub fn with_debug_max_file_size(mut self, bytes: Option<u64>) -> Self {
        self.debug_max_file_size = bytes;
        self
    }

    /// Sets the debug file age (seconds) that triggers rotation; `None` = no age limit.
    pub fn with_debug_rotation_interval_secs(mut self, secs: Option<u64>) -> Self {
        self.debug_rotation_interval_secs = secs;
        self
    }

    /// Sets the retry policy: attempts (including the first), base and maximum backoff delay.
    pub fn with_retry_config(
        mut self,
        max_attempts: u32,
        base_delay_ms: u64,
        max_delay_ms: u64,
    ) -> Self {
        self.retry_max_attempts = max_attempts;
        self.retry_base_delay_ms = base_delay_ms;
        self.retry_max_delay_ms = max_delay_ms;
        self
    }

    /// Turns writer-disabled mode on or off (no network, debug files only).
    pub fn with_zerobus_writer_disabled(mut self, disabled: bool) -> Self {
        self.zerobus_writer_disabled = disabled;
        self
    }

    /// Sets the largest encoded record accepted, in bytes.
    pub fn with_max_record_size_bytes(mut self, bytes: usize) -> Self {
        self.max_record_size_bytes = bytes;
        self
    }

    /// Sets the most bytes of records one ingest call carries (default
    /// [`DEFAULT_MAX_REQUEST_BYTES`], 512 KiB; from [`MIN_MAX_REQUEST_BYTES`] to
    /// [`MAX_INGEST_PAYLOAD_BYTES`]).
    ///
    /// A batch is cut into ingest calls of at most this many bytes of encoded records
    /// (each record counted with its framing); a single record larger than that travels
    /// alone, up to the SDK's payload limit. Smaller requests let the wrapper, the network
    /// and the service work on consecutive parts of a large batch at the same time, so a
    /// 10 MB batch is durable sooner; every request costs one acknowledgement. The Arrow
    /// Flight transport cuts its record batches at the same rows.
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
    ///
    /// let config = WrapperConfiguration::new("http://127.0.0.1:50051", "main.sales.orders")
    ///     .with_max_request_bytes(2 * 1024 * 1024);
    /// assert_eq!(config.max_request_bytes(), 2_097_152);
    /// assert!(config.validate().is_ok());
    ///
    /// // Over the SDK's payload limit: the error names the option and the bounds.
    /// let error = config.with_max_request_bytes(64 << 20).validate().unwrap_err();
    /// assert!(error.to_string().contains("max_request_bytes: must be between 1024 and 10420224"));
    /// ```
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Chooses the transport (protobuf stream or Arrow Flight).
    pub fn with_transport(mut self, transport: TransportKind) -> Self {
        self.transport = transport;
        self
    }

    /// Spreads the records over `streams` streams to the table instead of one (default 1;
    /// at most [`MAX_MULTIPLEXED_STREAMS`], the official SDK's bound for its multiplexed
    /// streams).
    ///
    /// One stream carries one request at a time per acknowledgement window; several
    /// streams let the service decode and commit in parallel. Batches go to the streams
    /// in turn, and a batch cut into fewer chunks than there are streams is split so
    /// that each part (at least [`MIN_ROWS_PER_STREAM_PART`] rows) goes to its own
    /// stream. Each stream recovers on its own (retry, resend of its unacknowledged
    /// records, isolation of refused rows), so one failing stream never stops the
    /// others. Rows keep their order within a stream only: with more than one stream,
    /// the table may receive rows in a different order than they were sent.
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
    ///
    /// let config = WrapperConfiguration::new("https://ws.zerobus.example.com", "main.sales.orders")
    ///     .with_multiplexed_streams(4);
    /// assert_eq!(config.multiplexed_streams(), 4);
    /// ```
    pub fn with_multiplexed_streams(mut self, streams: usize) -> Self {
        self.multiplexed_streams = streams;
        self
    }

    /// Keeps the streams of at most `schemas` distinct table schemas open (default
    /// [`DEFAULT_MAX_OPEN_SCHEMAS`]; at least 1).
    ///
    /// Batches of different Arrow schemas (other columns, other types) travel on streams
    /// of their own, `multiplexed_streams` per schema. When a batch brings one schema
    /// more than `schemas`, the streams of the least recently used schema that has no
    /// batch in flight are closed (after everything sent on them was acknowledged); a
    /// later batch of that schema opens new ones. Schemas with batches in flight are never
    /// closed, so the bound can be passed while they are busy. At most
    /// `schemas × multiplexed_streams` streams stay open once the batches are delivered.
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
    ///
    /// let config = WrapperConfiguration::new("https://ws.zerobus.example.com", "main.sales.orders")
    ///     .with_max_open_schemas(2);
    /// assert_eq!(config.max_open_schemas(), 2);
    /// ```
    pub fn with_max_open_schemas(mut self, schemas: usize) -> Self {
        self.max_open_schemas = schemas;
        self
    }

    /// Sets the Arrow IPC body compression of the Arrow Flight transport (default ZSTD).
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::{FlightCompression, TransportKind, WrapperConfiguration};
    ///
    /// let config = WrapperConfiguration::new("https://ws.zerobus.example.com", "main.sales.orders")
    ///     .with_transport(TransportKind::ArrowFlight)
    ///     .with_flight_ipc_compression(FlightCompression::Lz4);
    /// assert_eq!(config.flight_ipc_compression().as_str(), "lz4");
    /// ```
    pub fn with_flight_ipc_compression(mut self, compression: FlightCompression) -> Self {
        self.flight_ipc_compression = compression;
        self
    }

    /// Turns the Unity Catalog schema check on or off (default off; needs
    /// `unity_catalog_url`).
    ///
    /// On the first batch the wrapper reads the table's columns once (`GET
    /// {unity_catalog_url}/api/2.1/unity-catalog/tables/{table_name}`, with a bearer token from
    /// the SDK's client-credentials flow when credentials are configured). Every batch is then
    /// checked before it is encoded:
    ///
    /// - the same columns as the table (names compared ignoring case): missing and extra
    ///   columns are named;
    /// - in the table's order, so that field number = position + 1 for every column;
    /// - types that match the table's, or widen without loss, in which case the column is cast:
    ///   TINYINT → SMALLINT → INT → BIGINT, TINYINT/SMALLINT → FLOAT,
    ///   TINYINT/SMALLINT/INT/FLOAT → DOUBLE, integers → DECIMAL with room for their digits,
    ///   DECIMAL(p, s) → DECIMAL(p', s') with s' ≥ s and p' − s' ≥ p − s;
    /// - rows with a null in a column the table declares NOT NULL are taken out and reported
    ///   as per-row `NullInNonNullableColumn` errors naming the column.
    ///
    /// A schema that fails the check fails the whole batch with a `SchemaMismatch`
    /// conversion error listing every column at fault. The plan for each distinct Arrow
    /// schema is computed once. In writer-disabled mode there is no check (no network).
    pub fn with_schema_check(mut self, enabled: bool) -> Self {
        self.schema_check = enabled;
        self
    }

    /// Whether Arrow IPC debug files are written.
    ///
    /// If `debug_arrow_enabled` or `debug_protobuf_enabled` is set explicitly, this is
    /// `debug_arrow_enabled` (unset = `false`); otherwise it is the legacy `debug_enabled`.
    pub fn debug_arrow_active(&self) -> bool {
        self.effective_debug_flag(self.debug_arrow_enabled)
    }

    /// Whether Protobuf debug files are written.
    ///
    /// If `debug_arrow_enabled` or `debug_protobuf_enabled` is set explicitly, this is
    /// `debug_protobuf_enabled` (unset = `false`); otherwise it is the legacy `debug_enabled`.
    pub fn debug_protobuf_active(&self) -> bool {
        self.effective_debug_flag(self.debug_protobuf_enabled)
    }

    fn effective_debug_flag(&self, flag: Option<bool>) -> bool {
        if self.debug_arrow_enabled.is_some() || self.debug_protobuf_enabled.is_some() {
            flag.unwrap_or(false)
        } else {
            self.debug_enabled
        }
    }

    /// The client secret in clear text, for the transport. Never log it.
    pub fn client_secret_str(&self) -> Option<&str> {
        self.client_secret.as_ref().map(|s| s.expose_secret())
    }

    /// Checks every option. The error message starts with the offending field and
    /// states the rule.
    ///
    /// Credentials (`client_id`, `client_secret`, `unity_catalog_url`) are required
    /// unless the writer is disabled or the endpoint is a plain-http loopback URL
    /// (`http://127.0.0.1…`, `http://localhost…`, `http://[::1]…`) for a local test
    /// server without authentication.
    pub fn validate(&self) -> Result<()> {
        validate_http_url("zerobus_endpoint", &self.zerobus_endpoint)?;
        validate_table_name(&self.table_name)?;
        if let Some(url) = &self.unity_catalog_url {
            validate_http_url("unity_catalog_url", url)?;
        }
        if self.schema_check && !self.zerobus_writer_disabled && self.unity_catalog_url.is_none() {
            return Err(config_error(
                "schema_check: needs unity_catalog_url (the table's columns are read from Unity Catalog)",
            ));
        }
        if !(1..=MAX_MULTIPLEXED_STREAMS).contains(&self.multiplexed_streams) {
            return Err(config_error(format!(
                "multiplexed_streams: must be between 1 and {MAX_MULTIPLEXED_STREAMS}, got {}",
                self.multiplexed_streams
            )));
        }
        if self.max_open_schemas == 0 {
            return Err(config_error(format!(
                "max_open_schemas: must be at least 1 (default {DEFAULT_MAX_OPEN_SCHEMAS}), got 0"
            )));
        }
        if !(MIN_MAX_REQUEST_BYTES..=MAX_INGEST_PAYLOAD_BYTES).contains(&self.max_request_bytes) {
            return Err(config_error(format!(
                "max_request_bytes: must be between {MIN_MAX_REQUEST_BYTES} and \
                 {MAX_INGEST_PAYLOAD_BYTES} (the SDK's payload limit), got {}",
                self.max_request_bytes
            )));
        }
        if self.retry_max_attempts == 0 {
            return Err(config_error(
                "retry_max_attempts: must be at least 1 (the first attempt counts), got 0",
            ));
        }
        if self.retry_max_delay_ms < self.retry_base_delay_ms {
            return Err(config_error(format!(
                "retry_max_delay_ms: must be >= retry_base_delay_ms, got {} < {}",
                self.retry_max_delay_ms, self.retry_base_delay_ms
            )));
        }
        if self.max_record_size_bytes == 0 {
            return Err(config_error(format!(
                "max_record_size_bytes: must be greater than 0 (default {DEFAULT_MAX_RECORD_SIZE_BYTES})"
            )));
        }
        if self.debug_flush_interval_secs == 0 {
            return Err(config_error(
                "debug_flush_interval_secs: must be greater than 0",
            ));
        }
        if self.debug_max_files_retained == Some(0) {
            return Err(config_error(
                "debug_max_files_retained: must be at least 1, or None for unlimited",
            ));
        }
        if self.debug_max_file_size == Some(0) {
            return Err(config_error(
                "debug_max_file_size: must be greater than 0, or None for no size limit",
            ));
        }
        if self.debug_rotation_interval_secs == Some(0) {
            return Err(config_error(
                "debug_rotation_interval_secs: must be greater than 0, or None for no age limit",
            ));
        }
        let debug_active = self.debug_arrow_active() || self.debug_protobuf_active();
        if self.zerobus_writer_disabled {
            if !debug_active {
                return Err(config_error(
                    "zerobus_writer_disabled: writer-disabled mode needs at least one debug format; \
                     enable debug_arrow_enabled or debug_protobuf_enabled (or the legacy debug_enabled)",
                ));
            }
        } else if !is_loopback_http(&self.zerobus_endpoint) {
            let hint = "required when the Zerobus writer is enabled (only writer-disabled mode \
                        or a plain-http loopback endpoint may omit it)";
            if self.client_id.as_deref().is_none_or(str::is_empty) {
                return Err(config_error(format!("client_id: missing or empty; {hint}")));
            }
            if self.client_secret_str().is_none_or(str::is_empty) {
                return Err(config_error(format!(
                    "client_secret: missing or empty; {hint}"
                )));
            }
            if self.unity_catalog_url.is_none() {
                return Err(config_error(format!("unity_catalog_url: missing; {hint}")));
            }
        }
        if debug_active
            && self
                .debug_output_dir
                .as_ref()
                .is_none_or(|dir| dir.as_os_str().is_empty())
        {
            return Err(config_error(
                "debug_output_dir: required when a debug format is active \
                 (debug_arrow_enabled, debug_protobuf_enabled or the legacy debug_enabled)",
            ));
        }
        Ok(())
    }

    /// Loads the configuration: defaults < YAML file (if `yaml_path` is given) <
    /// environment variables. Without a file, `ZEROBUS_ENDPOINT` and
    /// `ZEROBUS_TABLE_NAME` are required. Does not validate.
    pub fn load(yaml_path: Option<&Path>) -> Result<Self> {
        Self::load_with(yaml_path, |name| std::env::var(name).ok())
    }

    fn load_with(
        yaml_path: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        match yaml_path {
            Some(path) => Self::from_yaml_file(path)?.with_env_overrides_from(lookup),
            None => Self::from_env_lookup(lookup),
        }
    }
}

/// Checks a Unity Catalog table name: 1 to 3 dot-separated parts (`table`,
/// `schema.table`, `catalog.schema.table`), each of 1 to 255 characters (Unity Catalog's
/// limit) made only of ASCII letters, digits and underscores. The error names the
/// offending part.
pub fn validate_table_name(name: &str) -> Result<()> {
    const RULE: &str = "each part must have 1 to 255 characters, only ASCII letters, digits \
                        and underscores (table, schema.table or catalog.schema.table)";
    const MAX_PART: usize = 255;
    if name.is_empty() {
        return Err(config_error(format!(
            "table_name: must not be empty; {RULE}"
        )));
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 3 {
        return Err(config_error(format!(
            "table_name: '{name}' has {} dot-separated parts, at most 3 are allowed; {RULE}",
            parts.len()
        )));
    }
    for (index, part) in parts.iter().enumerate() {
        let number = index + 1;
        if part.is_empty() {
            return Err(config_error(format!(
                "table_name: part {number} of '{name}' is empty; {RULE}"
            )));
        }
        if let Some(bad) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        {
            return Err(config_error(format!(
                "table_name: part {number} ('{part}') of '{name}' contains {bad:?}; {RULE}"
            )));
        }
        // ASCII only by now: bytes are characters.
        if part.len() > MAX_PART {
            return Err(config_error(format!(
                "table_name: part {number} has {} characters, Unity Catalog accepts at most \
                 {MAX_PART}; {RULE}",
                part.len()
            )));
        }
    }
    Ok(())
}

fn config_error(message: impl Into<String>) -> ZerobusError {
    ZerobusError::configuration(message.into())
}

/// Checks an `http://` / `https://` URL option (`field`) with a URL parser: a host, a
/// valid port if any, no credentials, query or fragment.
fn validate_http_url(field: &str, url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        None => {
            return Err(config_error(format!(
                "{field}: must start with http:// or https://, got '{url}'"
            )))
        }
        // `url` would read `http:///x` as host `x`.
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            return Err(config_error(format!(
                "{field}: '{url}' has no host; expected an http:// or https:// URL with a host"
            )))
        }
        Some(_) => {}
    }
    let parsed = url::Url::parse(url).map_err(|e| {
        config_error(format!(
            "{field}: '{url}' is not a valid URL ({e}); expected http(s)://host[:port][/path]"
        ))
        .with_source(e)
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Not echoed: the URL holds a secret.
        return Err(config_error(format!(
            "{field}: the URL must not carry credentials (user:password@); give client_id \
             and client_secret instead"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(config_error(format!(
            "{field}: '{url}' has a query or fragment; expected http(s)://host[:port][/path]"
        )));
    }
    Ok(())
}

/// Whether `endpoint` is `http://` (not https) on 127.0.0.1, localhost or [::1].
pub(crate) fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost")
}

mod env;
mod yaml;

#[cfg(test)]
mod tests;
