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
//! max_record_size_bytes: 10420224
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
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Result, ZerobusError};

pub use crate::encode::DEFAULT_MAX_RECORD_SIZE_BYTES;

const DEFAULT_DEBUG_FLUSH_INTERVAL_SECS: u64 = 5;
const DEFAULT_DEBUG_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
const DEFAULT_DEBUG_MAX_FILES_RETAINED: usize = 10;
const DEFAULT_DEBUG_ROTATION_INTERVAL_SECS: u64 = 3600;
const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 5;
const DEFAULT_RETRY_BASE_DELAY_MS: u64 = 100;
const DEFAULT_RETRY_MAX_DELAY_MS: u64 = 30_000;

const ENV_ENDPOINT: &str = "ZEROBUS_ENDPOINT";
const ENV_TABLE_NAME: &str = "ZEROBUS_TABLE_NAME";
const ENV_CLIENT_ID: &str = "ZEROBUS_CLIENT_ID";
const ENV_CLIENT_SECRET: &str = "ZEROBUS_CLIENT_SECRET";
const ENV_UNITY_CATALOG_URL: &str = "ZEROBUS_UNITY_CATALOG_URL";
const ENV_WRITER_DISABLED: &str = "ZEROBUS_WRITER_DISABLED";
const ENV_MAX_RECORD_SIZE_BYTES: &str = "ZEROBUS_MAX_RECORD_SIZE_BYTES";
const ENV_DEBUG_ENABLED: &str = "DEBUG_ENABLED";
const ENV_DEBUG_ARROW_ENABLED: &str = "DEBUG_ARROW_ENABLED";
const ENV_DEBUG_PROTOBUF_ENABLED: &str = "DEBUG_PROTOBUF_ENABLED";
const ENV_DEBUG_OUTPUT_DIR: &str = "DEBUG_OUTPUT_DIR";
const ENV_DEBUG_MAX_FILES_RETAINED: &str = "DEBUG_MAX_FILES_RETAINED";
const ENV_DEBUG_FLUSH_INTERVAL_SECS: &str = "DEBUG_FLUSH_INTERVAL_SECS";
const ENV_DEBUG_MAX_FILE_SIZE: &str = "DEBUG_MAX_FILE_SIZE";
const ENV_DEBUG_ROTATION_INTERVAL_SECS: &str = "DEBUG_ROTATION_INTERVAL_SECS";

/// OpenTelemetry (OTLP) export settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// OTLP collector endpoint, e.g. `http://localhost:4317`; `None` = exporter default.
    pub endpoint: Option<String>,
    /// `service.name` resource attribute; `None` = library default.
    pub service_name: Option<String>,
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
    pub zerobus_endpoint: String,
    /// Target table: `table`, `schema.table` or `catalog.schema.table`.
    pub table_name: String,
    /// Unity Catalog (workspace) URL used to obtain OAuth tokens.
    pub unity_catalog_url: Option<String>,
    /// OAuth client id (service principal).
    pub client_id: Option<String>,
    /// OAuth client secret; redacted in `Debug` output.
    pub client_secret: Option<SecretString>,
    /// Whether OpenTelemetry export is on (default `false`).
    pub observability_enabled: bool,
    /// OpenTelemetry settings.
    pub observability_config: Option<OtlpConfig>,
    /// Legacy debug flag: turns on both debug formats when neither
    /// `debug_arrow_enabled` nor `debug_protobuf_enabled` is set (default `false`).
    pub debug_enabled: bool,
    /// Arrow IPC debug output; `None` = not set explicitly.
    pub debug_arrow_enabled: Option<bool>,
    /// Protobuf debug output; `None` = not set explicitly.
    pub debug_protobuf_enabled: Option<bool>,
    /// Directory for debug files; required when a debug format is active.
    pub debug_output_dir: Option<PathBuf>,
    /// How often debug files are flushed, in seconds (default 5).
    pub debug_flush_interval_secs: u64,
    /// Rotate a debug file once it reaches this many bytes (default 10 MiB);
    /// `None` = no size-based rotation.
    pub debug_max_file_size: Option<u64>,
    /// Rotated debug files kept per format (default 10); `None` = unlimited.
    pub debug_max_files_retained: Option<usize>,
    /// Rotate a debug file older than this many seconds (default 3600);
    /// `None` = no age-based rotation.
    pub debug_rotation_interval_secs: Option<u64>,
    /// Maximum attempts per send, including the first (default 5).
    pub retry_max_attempts: u32,
    /// Initial backoff delay in milliseconds (default 100).
    pub retry_base_delay_ms: u64,
    /// Backoff delay cap in milliseconds (default 30000).
    pub retry_max_delay_ms: u64,
    /// Skip all network transmission and only write debug files (default `false`).
    pub zerobus_writer_disabled: bool,
    /// Largest encoded record accepted (default [`DEFAULT_MAX_RECORD_SIZE_BYTES`]).
    pub max_record_size_bytes: usize,
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

    /// Parses a YAML configuration (see the [module docs](self) for the shape).
    /// Missing keys keep the defaults of [`new`](Self::new); unknown keys are errors.
    pub fn from_yaml_str(yaml: &str) -> Result<Self> {
        Self::from_yaml_source(yaml, "YAML configuration")
    }

    /// Reads and parses a YAML configuration file.
    ///
    /// Read failures are [`ZerobusError::IoError`]; parse failures are
    /// [`ZerobusError::ConfigurationError`] naming the file, line and column.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ZerobusError::io(path, e))?;
        Self::from_yaml_source(&text, &path.display().to_string())
    }

    fn from_yaml_source(yaml: &str, source: &str) -> Result<Self> {
        let raw: RawConfig = serde_yaml_ng::from_str(yaml).map_err(|err| {
            let message = err.to_string();
            match err.location() {
                Some(loc) => {
                    let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                    let message = message.strip_suffix(&suffix).unwrap_or(&message);
                    config_error(format!(
                        "{source}: line {}, column {}: {message}",
                        loc.line(),
                        loc.column()
                    ))
                }
                None => config_error(format!("{source}: {message}")),
            }
        })?;
        Ok(raw.into_configuration())
    }

    /// Applies the environment variables listed in the [module docs](self) on top of `self`.
    pub fn with_env_overrides(self) -> Result<Self> {
        self.with_env_overrides_from(|name| std::env::var(name).ok())
    }

    /// Like [`with_env_overrides`](Self::with_env_overrides), reading variables through
    /// `lookup` instead of the process environment (useful in tests).
    pub fn with_env_overrides_from(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = get(ENV_ENDPOINT) {
            self.zerobus_endpoint = v;
        }
        if let Some(v) = get(ENV_TABLE_NAME) {
            self.table_name = v;
        }
        if let Some(v) = get(ENV_CLIENT_ID) {
            self.client_id = Some(v);
        }
        if let Some(v) = get(ENV_CLIENT_SECRET) {
            self.client_secret = Some(SecretString::from(v));
        }
        if let Some(v) = get(ENV_UNITY_CATALOG_URL) {
            self.unity_catalog_url = Some(v);
        }
        if let Some(v) = get(ENV_WRITER_DISABLED) {
            self.zerobus_writer_disabled = parse_env_bool(ENV_WRITER_DISABLED, &v)?;
        }
        if let Some(v) = get(ENV_MAX_RECORD_SIZE_BYTES) {
            self.max_record_size_bytes = parse_env_number(ENV_MAX_RECORD_SIZE_BYTES, &v)?;
        }
        if let Some(v) = get(ENV_DEBUG_ENABLED) {
            self.debug_enabled = parse_env_bool(ENV_DEBUG_ENABLED, &v)?;
        }
        if let Some(v) = get(ENV_DEBUG_ARROW_ENABLED) {
            self.debug_arrow_enabled = Some(parse_env_bool(ENV_DEBUG_ARROW_ENABLED, &v)?);
        }
        if let Some(v) = get(ENV_DEBUG_PROTOBUF_ENABLED) {
            self.debug_protobuf_enabled = Some(parse_env_bool(ENV_DEBUG_PROTOBUF_ENABLED, &v)?);
        }
        if let Some(v) = get(ENV_DEBUG_OUTPUT_DIR) {
            self.debug_output_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get(ENV_DEBUG_MAX_FILES_RETAINED) {
            self.debug_max_files_retained =
                parse_env_optional_number(ENV_DEBUG_MAX_FILES_RETAINED, &v)?;
        }
        if let Some(v) = get(ENV_DEBUG_FLUSH_INTERVAL_SECS) {
            self.debug_flush_interval_secs = parse_env_number(ENV_DEBUG_FLUSH_INTERVAL_SECS, &v)?;
        }
        if let Some(v) = get(ENV_DEBUG_MAX_FILE_SIZE) {
            self.debug_max_file_size = parse_env_optional_number(ENV_DEBUG_MAX_FILE_SIZE, &v)?;
        }
        if let Some(v) = get(ENV_DEBUG_ROTATION_INTERVAL_SECS) {
            self.debug_rotation_interval_secs =
                parse_env_optional_number(ENV_DEBUG_ROTATION_INTERVAL_SECS, &v)?;
        }
        Ok(self)
    }

    /// Builds a configuration from environment variables alone.
    /// `ZEROBUS_ENDPOINT` and `ZEROBUS_TABLE_NAME` are required.
    pub fn from_env() -> Result<Self> {
        Self::from_env_lookup(|name| std::env::var(name).ok())
    }

    fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let required = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    config_error(format!(
                        "{name}: environment variable is not set (or empty); it is required \
                         when no YAML configuration file is given"
                    ))
                })
        };
        let endpoint = required(ENV_ENDPOINT)?;
        let table_name = required(ENV_TABLE_NAME)?;
        Self::new(endpoint, table_name).with_env_overrides_from(lookup)
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
/// `schema.table`, `catalog.schema.table`), each non-empty and made only of ASCII
/// letters, digits and underscores. The error names the offending part.
pub fn validate_table_name(name: &str) -> Result<()> {
    const RULE: &str = "each part must be non-empty and contain only ASCII letters, digits and \
                        underscores (table, schema.table or catalog.schema.table)";
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
    }
    Ok(())
}

fn config_error(message: impl Into<String>) -> ZerobusError {
    ZerobusError::ConfigurationError(message.into())
}

fn validate_http_url(field: &str, url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Err(config_error(format!(
            "{field}: must start with http:// or https://, got '{url}'"
        ))),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => Err(config_error(format!(
            "{field}: '{url}' has no host; expected an http:// or https:// URL with a host"
        ))),
        Some(_) => Ok(()),
    }
}

/// Whether `endpoint` is `http://` (not https) on 127.0.0.1, localhost or [::1].
fn is_loopback_http(endpoint: &str) -> bool {
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

fn parse_env_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(config_error(format!(
            "{name}: cannot parse '{value}' as a boolean (expected true/false/1/0/yes/no)"
        ))),
    }
}

fn parse_env_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| {
        config_error(format!(
            "{name}: cannot parse '{value}' as a non-negative integer in range"
        ))
    })
}

fn parse_env_optional_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<Option<T>> {
    match value.to_ascii_lowercase().as_str() {
        "none" | "unlimited" => Ok(None),
        _ => value.parse().map(Some).map_err(|_| {
            config_error(format!(
                "{name}: cannot parse '{value}' (expected a non-negative integer, `none` or `unlimited`)"
            ))
        }),
    }
}

/// Present-but-null keys become `Some(None)`; missing keys (via `#[serde(default)]`) `None`.
fn double_option<'de, T, D>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Deserializes the client secret into a [`SecretString`]. serde_yaml_ng reads any
/// scalar as its raw text when a string is asked for, and its type errors for
/// sequences and maps carry no values, so a secret is never echoed in an error.
fn secret_from_yaml<'de, D>(deserializer: D) -> std::result::Result<Option<SecretString>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?.map(SecretString::from))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    endpoint: String,
    table_name: String,
    #[serde(default)]
    unity_catalog_url: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "secret_from_yaml")]
    client_secret: Option<SecretString>,
    #[serde(default)]
    writer_disabled: Option<bool>,
    #[serde(default)]
    max_record_size_bytes: Option<usize>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    observability: Option<RawObservability>,
    #[serde(default)]
    debug: Option<RawDebug>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawObservability {
    enabled: Option<bool>,
    endpoint: Option<String>,
    service_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawDebug {
    enabled: Option<bool>,
    arrow_enabled: Option<bool>,
    protobuf_enabled: Option<bool>,
    output_dir: Option<PathBuf>,
    #[serde(deserialize_with = "double_option")]
    max_files_retained: Option<Option<usize>>,
    flush_interval_secs: Option<u64>,
    #[serde(deserialize_with = "double_option")]
    max_file_size: Option<Option<u64>>,
    #[serde(deserialize_with = "double_option")]
    rotation_interval_secs: Option<Option<u64>>,
}

impl RawConfig {
    fn into_configuration(self) -> WrapperConfiguration {
        let mut c = WrapperConfiguration::new(self.endpoint, self.table_name);
        c.unity_catalog_url = self.unity_catalog_url;
        c.client_id = self.client_id;
        c.client_secret = self.client_secret;
        c.zerobus_writer_disabled = self.writer_disabled.unwrap_or(c.zerobus_writer_disabled);
        c.max_record_size_bytes = self
            .max_record_size_bytes
            .unwrap_or(c.max_record_size_bytes);
        let retry = self.retry.unwrap_or_default();
        c.retry_max_attempts = retry.max_attempts.unwrap_or(c.retry_max_attempts);
        c.retry_base_delay_ms = retry.base_delay_ms.unwrap_or(c.retry_base_delay_ms);
        c.retry_max_delay_ms = retry.max_delay_ms.unwrap_or(c.retry_max_delay_ms);
        if let Some(obs) = self.observability {
            c.observability_enabled = obs.enabled.unwrap_or(false);
            if c.observability_enabled || obs.endpoint.is_some() || obs.service_name.is_some() {
                c.observability_config = Some(OtlpConfig {
                    endpoint: obs.endpoint,
                    service_name: obs.service_name,
                });
            }
        }
        let debug = self.debug.unwrap_or_default();
        c.debug_enabled = debug.enabled.unwrap_or(c.debug_enabled);
        c.debug_arrow_enabled = debug.arrow_enabled;
        c.debug_protobuf_enabled = debug.protobuf_enabled;
        c.debug_output_dir = debug.output_dir;
        c.debug_max_files_retained = debug
            .max_files_retained
            .unwrap_or(c.debug_max_files_retained);
        c.debug_flush_interval_secs = debug
            .flush_interval_secs
            .unwrap_or(c.debug_flush_interval_secs);
        c.debug_max_file_size = debug.max_file_size.unwrap_or(c.debug_max_file_size);
        c.debug_rotation_interval_secs = debug
            .rotation_interval_secs
            .unwrap_or(c.debug_rotation_interval_secs);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    const ENDPOINT: &str = "https://123.zerobus.us-west-2.cloud.databricks.com";

    /// A configuration that passes validation with the writer enabled.
    fn valid() -> WrapperConfiguration {
        WrapperConfiguration::new(ENDPOINT, "cat.sch.tbl")
            .with_credentials("id", "secret")
            .with_unity_catalog("https://workspace.cloud.databricks.com")
    }

    /// The message of a `ConfigurationError`; panics on any other outcome.
    fn config_message<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(ZerobusError::ConfigurationError(message)) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    fn assert_invalid(config: &WrapperConfiguration, field: &str) -> String {
        let message = config_message(config.validate());
        assert!(
            message.starts_with(&format!("{field}:")),
            "message should start with {field}: {message}"
        );
        message
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn apply_env(
        config: WrapperConfiguration,
        pairs: &[(&str, &str)],
    ) -> Result<WrapperConfiguration> {
        let map = env(pairs);
        config.with_env_overrides_from(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_of_new() {
        let c = WrapperConfiguration::new("https://e", String::from("t"));
        assert_eq!(c.zerobus_endpoint, "https://e");
        assert_eq!(c.table_name, "t");
        assert!(c.unity_catalog_url.is_none() && c.client_id.is_none());
        assert!(c.client_secret.is_none() && c.observability_config.is_none());
        assert!(!c.observability_enabled && !c.debug_enabled && !c.zerobus_writer_disabled);
        assert_eq!(
            (c.debug_arrow_enabled, c.debug_protobuf_enabled),
            (None, None)
        );
        assert!(c.debug_output_dir.is_none());
        assert_eq!(c.debug_flush_interval_secs, 5);
        assert_eq!(c.debug_max_file_size, Some(10 * 1024 * 1024));
        assert_eq!(c.debug_max_files_retained, Some(10));
        assert_eq!(c.debug_rotation_interval_secs, Some(3600));
        assert_eq!(
            (
                c.retry_max_attempts,
                c.retry_base_delay_ms,
                c.retry_max_delay_ms
            ),
            (5, 100, 30_000)
        );
        assert_eq!(c.max_record_size_bytes, DEFAULT_MAX_RECORD_SIZE_BYTES);
        assert_eq!(DEFAULT_MAX_RECORD_SIZE_BYTES, 10_420_224);
    }

    #[test]
    fn builder_sets_every_field() {
        let otlp = OtlpConfig {
            endpoint: Some("http://localhost:4317".into()),
            service_name: Some("svc".into()),
        };
        let c = WrapperConfiguration::new("https://e".to_string(), "t".to_string())
            .with_credentials("id".to_string(), "pw".to_string())
            .with_unity_catalog("https://uc")
            .with_observability(otlp.clone())
            .with_debug_output(PathBuf::from("/tmp/d"))
            .with_debug_enabled(false)
            .with_debug_arrow_enabled(true)
            .with_debug_protobuf_enabled(false)
            .with_debug_max_files_retained(None)
            .with_debug_flush_interval_secs(7)
            .with_debug_max_file_size(Some(99))
            .with_debug_rotation_interval_secs(None)
            .with_retry_config(3, 10, 20)
            .with_zerobus_writer_disabled(true)
            .with_max_record_size_bytes(1234);
        assert_eq!(c.client_id.as_deref(), Some("id"));
        assert_eq!(c.client_secret_str(), Some("pw"));
        assert_eq!(c.unity_catalog_url.as_deref(), Some("https://uc"));
        assert!(c.observability_enabled);
        assert_eq!(c.observability_config, Some(otlp));
        assert_eq!(c.debug_output_dir, Some(PathBuf::from("/tmp/d")));
        assert!(!c.debug_enabled);
        assert_eq!(
            (c.debug_arrow_enabled, c.debug_protobuf_enabled),
            (Some(true), Some(false))
        );
        assert_eq!(c.debug_max_files_retained, None);
        assert_eq!(c.debug_flush_interval_secs, 7);
        assert_eq!(c.debug_max_file_size, Some(99));
        assert_eq!(c.debug_rotation_interval_secs, None);
        assert_eq!(
            (
                c.retry_max_attempts,
                c.retry_base_delay_ms,
                c.retry_max_delay_ms
            ),
            (3, 10, 20)
        );
        assert!(c.zerobus_writer_disabled);
        assert_eq!(c.max_record_size_bytes, 1234);
    }

    #[test]
    fn with_debug_output_turns_on_legacy_flag() {
        let c = WrapperConfiguration::new(ENDPOINT, "t").with_debug_output(PathBuf::from("d"));
        assert!(c.debug_enabled);
        assert!(c.debug_arrow_active() && c.debug_protobuf_active());
    }

    #[test]
    fn legacy_debug_rule_all_combinations() {
        // (debug_enabled, arrow, protobuf) -> (arrow active, protobuf active)
        let cases = [
            (false, None, None, (false, false)),
            (true, None, None, (true, true)),
            (false, Some(true), None, (true, false)),
            (true, Some(true), None, (true, false)),
            (false, Some(false), None, (false, false)),
            (true, Some(false), None, (false, false)),
            (false, None, Some(true), (false, true)),
            (true, None, Some(true), (false, true)),
            (false, None, Some(false), (false, false)),
            (true, None, Some(false), (false, false)),
            (false, Some(true), Some(true), (true, true)),
            (true, Some(true), Some(true), (true, true)),
            (false, Some(true), Some(false), (true, false)),
            (true, Some(true), Some(false), (true, false)),
            (false, Some(false), Some(true), (false, true)),
            (true, Some(false), Some(true), (false, true)),
            (false, Some(false), Some(false), (false, false)),
            (true, Some(false), Some(false), (false, false)),
        ];
        for (legacy, arrow, protobuf, expected) in cases {
            let mut c = WrapperConfiguration::new(ENDPOINT, "t").with_debug_enabled(legacy);
            c.debug_arrow_enabled = arrow;
            c.debug_protobuf_enabled = protobuf;
            assert_eq!(
                (c.debug_arrow_active(), c.debug_protobuf_active()),
                expected,
                "debug_enabled={legacy} arrow={arrow:?} protobuf={protobuf:?}"
            );
        }
    }

    #[test]
    fn secret_is_redacted_in_debug_output() {
        let c = valid().with_credentials("id", "hunter2-very-secret");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2-very-secret"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
        let pretty = format!("{:#?}", c.clone());
        assert!(!pretty.contains("hunter2-very-secret"));
        assert_eq!(c.client_secret_str(), Some("hunter2-very-secret"));
        assert_eq!(
            WrapperConfiguration::new(ENDPOINT, "t").client_secret_str(),
            None
        );
    }

    #[test]
    fn valid_configurations() {
        valid().validate().expect("full configuration");
        // Writer disabled: no credentials needed.
        WrapperConfiguration::new(ENDPOINT, "t")
            .with_debug_output(PathBuf::from("d"))
            .with_zerobus_writer_disabled(true)
            .validate()
            .expect("writer disabled");
        WrapperConfiguration::new(ENDPOINT, "t")
            .with_debug_protobuf_enabled(true)
            .with_debug_output(PathBuf::from("d"))
            .with_zerobus_writer_disabled(true)
            .validate()
            .expect("writer disabled, protobuf only");
        // Loopback plain http: no credentials needed.
        for endpoint in [
            "http://127.0.0.1",
            "http://127.0.0.1:50051",
            "http://localhost:8080/path",
            "http://LOCALHOST",
            "http://[::1]:50051",
        ] {
            WrapperConfiguration::new(endpoint, "t")
                .validate()
                .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        }
        // Boundaries.
        valid()
            .with_retry_config(1, 100, 100)
            .with_max_record_size_bytes(1)
            .with_debug_max_files_retained(Some(1))
            .with_debug_max_file_size(None)
            .with_debug_rotation_interval_secs(None)
            .validate()
            .expect("boundaries");
    }

    #[test]
    fn endpoint_must_be_an_http_url() {
        for endpoint in [
            "",
            "ftp://x",
            "grpc://x",
            "x.databricks.com",
            "https://",
            "http:///x",
        ] {
            let message = assert_invalid(&valid_with_endpoint(endpoint), "zerobus_endpoint");
            assert!(message.contains("http://"), "{message}");
        }
    }

    fn valid_with_endpoint(endpoint: &str) -> WrapperConfiguration {
        let mut c = valid();
        c.zerobus_endpoint = endpoint.to_string();
        c
    }

    #[test]
    fn unity_catalog_url_must_be_an_http_url() {
        assert_invalid(
            &valid().with_unity_catalog("workspace.com"),
            "unity_catalog_url",
        );
        assert_invalid(&valid().with_unity_catalog(""), "unity_catalog_url");
        valid()
            .with_unity_catalog("http://uc")
            .validate()
            .expect("http is fine");
    }

    #[test]
    fn table_names() {
        for name in ["my_table", "s.t", "c.s.t", "Cat_1.sch_2.T3", "_", "123"] {
            validate_table_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let cases = [
            ("", "must not be empty"),
            ("table-name", "part 1 ('table-name')"),
            ("schema..table", "part 2 of 'schema..table' is empty"),
            (".t", "part 1 of '.t' is empty"),
            ("s.t.", "part 3 of 's.t.' is empty"),
            ("a.b.c.d", "4 dot-separated parts"),
            ("tab le", "' '"),
            ("s.täble", "part 2 ('täble')"),
        ];
        for (name, expected) in cases {
            let message = config_message(validate_table_name(name));
            assert!(message.starts_with("table_name:"), "{message}");
            assert!(message.contains(expected), "{name}: {message}");
            let mut c = valid();
            c.table_name = name.to_string();
            assert_invalid(&c, "table_name");
        }
    }

    #[test]
    fn writer_disabled_needs_a_debug_format() {
        let c = WrapperConfiguration::new(ENDPOINT, "t").with_zerobus_writer_disabled(true);
        let message = assert_invalid(&c, "zerobus_writer_disabled");
        assert!(
            message.contains("debug_arrow_enabled") && message.contains("debug_protobuf_enabled")
        );
        // Explicit flags both false override the legacy flag.
        let c = WrapperConfiguration::new(ENDPOINT, "t")
            .with_debug_output(PathBuf::from("d"))
            .with_debug_arrow_enabled(false)
            .with_debug_protobuf_enabled(false)
            .with_zerobus_writer_disabled(true);
        assert_invalid(&c, "zerobus_writer_disabled");
    }

    #[test]
    fn writer_enabled_needs_credentials() {
        let mut c = valid();
        c.client_id = None;
        assert_invalid(&c, "client_id");
        c.client_id = Some(String::new());
        assert_invalid(&c, "client_id");

        let mut c = valid();
        c.client_secret = None;
        assert_invalid(&c, "client_secret");
        c.client_secret = Some(SecretString::from(""));
        assert_invalid(&c, "client_secret");

        let mut c = valid();
        c.unity_catalog_url = None;
        assert_invalid(&c, "unity_catalog_url");
    }

    #[test]
    fn loopback_lookalikes_still_need_credentials() {
        for endpoint in [
            "https://localhost",
            "https://127.0.0.1:443",
            "http://localhost.evil.com",
            "http://127.0.0.1.nip.io",
            "http://localhost@evil.com",
            "http://[::1.evil.com",
            "http://10.0.0.1",
        ] {
            let c = WrapperConfiguration::new(endpoint, "t");
            assert_invalid(&c, "client_id");
        }
    }

    #[test]
    fn active_debug_format_needs_output_dir() {
        let c = valid().with_debug_enabled(true);
        assert_invalid(&c, "debug_output_dir");
        let c = valid().with_debug_protobuf_enabled(true);
        assert_invalid(&c, "debug_output_dir");
        let c = valid().with_debug_output(PathBuf::new());
        assert_invalid(&c, "debug_output_dir");
        // Inactive formats need no directory.
        valid()
            .with_debug_arrow_enabled(false)
            .validate()
            .expect("no debug");
    }

    #[test]
    fn numeric_rules() {
        assert_invalid(&valid().with_retry_config(0, 1, 1), "retry_max_attempts");
        let message = assert_invalid(
            &valid().with_retry_config(3, 200, 100),
            "retry_max_delay_ms",
        );
        assert!(message.contains("retry_base_delay_ms"), "{message}");
        assert_invalid(
            &valid().with_max_record_size_bytes(0),
            "max_record_size_bytes",
        );
        assert_invalid(
            &valid().with_debug_flush_interval_secs(0),
            "debug_flush_interval_secs",
        );
        assert_invalid(
            &valid().with_debug_max_files_retained(Some(0)),
            "debug_max_files_retained",
        );
        assert_invalid(
            &valid().with_debug_max_file_size(Some(0)),
            "debug_max_file_size",
        );
        assert_invalid(
            &valid().with_debug_rotation_interval_secs(Some(0)),
            "debug_rotation_interval_secs",
        );
    }

    const FULL_YAML: &str = r#"
endpoint: https://e.example.com
table_name: cat.sch.tbl
unity_catalog_url: https://uc.example.com
client_id: my-id
client_secret: my-yaml-secret
writer_disabled: true
max_record_size_bytes: 4096
retry: { max_attempts: 7, base_delay_ms: 50, max_delay_ms: 900 }
observability: { enabled: true, endpoint: "http://otel:4317", service_name: svc }
debug:
  enabled: true
  arrow_enabled: true
  protobuf_enabled: false
  output_dir: "/tmp/debug"
  max_files_retained: 20
  flush_interval_secs: 9
  max_file_size: 1000
  rotation_interval_secs: 60
"#;

    #[test]
    fn yaml_full() {
        let c = WrapperConfiguration::from_yaml_str(FULL_YAML).expect("parse");
        assert_eq!(c.zerobus_endpoint, "https://e.example.com");
        assert_eq!(c.table_name, "cat.sch.tbl");
        assert_eq!(
            c.unity_catalog_url.as_deref(),
            Some("https://uc.example.com")
        );
        assert_eq!(c.client_id.as_deref(), Some("my-id"));
        assert_eq!(c.client_secret_str(), Some("my-yaml-secret"));
        assert!(c.zerobus_writer_disabled);
        assert_eq!(c.max_record_size_bytes, 4096);
        assert_eq!(
            (
                c.retry_max_attempts,
                c.retry_base_delay_ms,
                c.retry_max_delay_ms
            ),
            (7, 50, 900)
        );
        assert!(c.observability_enabled);
        assert_eq!(
            c.observability_config,
            Some(OtlpConfig {
                endpoint: Some("http://otel:4317".into()),
                service_name: Some("svc".into())
            })
        );
        assert!(c.debug_enabled);
        assert_eq!(
            (c.debug_arrow_enabled, c.debug_protobuf_enabled),
            (Some(true), Some(false))
        );
        assert_eq!(c.debug_output_dir, Some(PathBuf::from("/tmp/debug")));
        assert_eq!(c.debug_max_files_retained, Some(20));
        assert_eq!(c.debug_flush_interval_secs, 9);
        assert_eq!(c.debug_max_file_size, Some(1000));
        assert_eq!(c.debug_rotation_interval_secs, Some(60));
        c.validate().expect("valid");
    }

    #[test]
    fn yaml_partial_keeps_defaults() {
        let c = WrapperConfiguration::from_yaml_str("endpoint: https://e\ntable_name: t\n")
            .expect("parse");
        let d = WrapperConfiguration::new("https://e", "t");
        assert_eq!(format!("{c:?}"), format!("{d:?}"));

        let c = WrapperConfiguration::from_yaml_str(
            "endpoint: https://e\ntable_name: t\nretry: { max_attempts: 2 }\n\
             debug: { max_files_retained: null, rotation_interval_secs: null }\n\
             observability: { enabled: false }\n",
        )
        .expect("parse");
        assert_eq!(c.retry_max_attempts, 2);
        assert_eq!(c.retry_base_delay_ms, 100);
        assert_eq!(c.debug_max_files_retained, None, "null = unlimited");
        assert_eq!(c.debug_rotation_interval_secs, None);
        assert_eq!(
            c.debug_max_file_size,
            Some(10 * 1024 * 1024),
            "missing = default"
        );
        assert!(!c.observability_enabled && c.observability_config.is_none());
    }

    #[test]
    fn yaml_errors_name_key_and_location() {
        let message = config_message(WrapperConfiguration::from_yaml_str(
            "endpoint: https://e\ntable_name: t\ntable_nmae: x\n",
        ));
        assert!(
            message.contains("table_nmae") && message.contains("line 3"),
            "{message}"
        );

        let message = config_message(WrapperConfiguration::from_yaml_str(
            "endpoint: https://e\ntable_name: t\ndebug:\n  outptu_dir: /x\n",
        ));
        assert!(
            message.contains("outptu_dir") && message.contains("line 4"),
            "{message}"
        );

        let message = config_message(WrapperConfiguration::from_yaml_str(
            "endpoint: https://e\ntable_name: t\nretry:\n  max_attempts: many\n",
        ));
        assert!(
            message.contains("line 4, column") && message.contains("u32"),
            "{message}"
        );
        assert!(
            !message.ends_with("column 17"),
            "location not repeated: {message}"
        );

        let message = config_message(WrapperConfiguration::from_yaml_str("table_name: t\n"));
        assert!(message.contains("endpoint"), "{message}");

        let message = config_message(WrapperConfiguration::from_yaml_str(
            "endpoint: https://e\ntable_name: t\nclient_secret: [hunter2]\n",
        ));
        assert!(
            message.contains("client_secret") && !message.contains("hunter2"),
            "{message}"
        );
        // An unquoted number is kept as its raw text.
        let c = WrapperConfiguration::from_yaml_str(
            "endpoint: https://e\ntable_name: t\nclient_secret: 00987654321\n",
        )
        .expect("numeric secret");
        assert_eq!(c.client_secret_str(), Some("00987654321"));
    }

    #[test]
    fn yaml_file_errors() {
        let missing = std::env::temp_dir().join("no-such-dir-zerobus/config.yaml");
        match WrapperConfiguration::from_yaml_file(&missing) {
            Err(ZerobusError::IoError { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an IoError, got {other:?}"),
        }
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(file, "endpoint: https://e\ntable_name: [").expect("write");
        let message = config_message(WrapperConfiguration::from_yaml_file(file.path()));
        assert!(
            message.starts_with(&file.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("line"), "{message}");
    }

    const ALL_ENV: &[(&str, &str)] = &[
        ("ZEROBUS_ENDPOINT", "https://env.example.com"),
        ("ZEROBUS_TABLE_NAME", "env.sch.tbl"),
        ("ZEROBUS_CLIENT_ID", "env-id"),
        ("ZEROBUS_CLIENT_SECRET", "env-secret"),
        ("ZEROBUS_UNITY_CATALOG_URL", "https://env-uc"),
        ("ZEROBUS_WRITER_DISABLED", "yes"),
        ("ZEROBUS_MAX_RECORD_SIZE_BYTES", "2048"),
        ("DEBUG_ENABLED", "1"),
        ("DEBUG_ARROW_ENABLED", "false"),
        ("DEBUG_PROTOBUF_ENABLED", "TRUE"),
        ("DEBUG_OUTPUT_DIR", "/env/debug"),
        ("DEBUG_MAX_FILES_RETAINED", "unlimited"),
        ("DEBUG_FLUSH_INTERVAL_SECS", " 3 "),
        ("DEBUG_MAX_FILE_SIZE", "4096"),
        ("DEBUG_ROTATION_INTERVAL_SECS", "none"),
    ];

    #[test]
    fn env_sets_every_variable() {
        let c = apply_env(WrapperConfiguration::new("https://e", "t"), ALL_ENV).expect("env");
        assert_eq!(c.zerobus_endpoint, "https://env.example.com");
        assert_eq!(c.table_name, "env.sch.tbl");
        assert_eq!(c.client_id.as_deref(), Some("env-id"));
        assert_eq!(c.client_secret_str(), Some("env-secret"));
        assert_eq!(c.unity_catalog_url.as_deref(), Some("https://env-uc"));
        assert!(c.zerobus_writer_disabled);
        assert_eq!(c.max_record_size_bytes, 2048);
        assert!(c.debug_enabled);
        assert_eq!(
            (c.debug_arrow_enabled, c.debug_protobuf_enabled),
            (Some(false), Some(true))
        );
        assert_eq!(c.debug_output_dir, Some(PathBuf::from("/env/debug")));
        assert_eq!(c.debug_max_files_retained, None);
        assert_eq!(c.debug_flush_interval_secs, 3);
        assert_eq!(c.debug_max_file_size, Some(4096));
        assert_eq!(c.debug_rotation_interval_secs, None);

        let c = apply_env(
            WrapperConfiguration::new("https://e", "t"),
            &[
                ("DEBUG_MAX_FILES_RETAINED", "20"),
                ("DEBUG_MAX_FILE_SIZE", "None"),
            ],
        )
        .expect("env");
        assert_eq!(c.debug_max_files_retained, Some(20));
        assert_eq!(c.debug_max_file_size, None);
    }

    #[test]
    fn env_booleans() {
        for (value, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("Yes", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("NO", false),
        ] {
            let c = apply_env(valid(), &[("ZEROBUS_WRITER_DISABLED", value)]).expect(value);
            assert_eq!(c.zerobus_writer_disabled, expected, "{value}");
        }
    }

    #[test]
    fn env_bad_values_name_variable_and_value() {
        let cases = [
            ("ZEROBUS_WRITER_DISABLED", "maybe"),
            ("ZEROBUS_MAX_RECORD_SIZE_BYTES", "10MB"),
            ("DEBUG_ENABLED", "on"),
            ("DEBUG_ARROW_ENABLED", "2"),
            ("DEBUG_PROTOBUF_ENABLED", "y"),
            ("DEBUG_MAX_FILES_RETAINED", "-1"),
            ("DEBUG_FLUSH_INTERVAL_SECS", "5s"),
            ("DEBUG_MAX_FILE_SIZE", "big"),
            ("DEBUG_ROTATION_INTERVAL_SECS", "1h"),
        ];
        for (name, value) in cases {
            let message = config_message(apply_env(
                valid(),
                &[(name, value), ("ZEROBUS_CLIENT_SECRET", "top-secret-env")],
            ));
            assert!(message.starts_with(&format!("{name}:")), "{message}");
            assert!(message.contains(&format!("'{value}'")), "{message}");
            assert!(!message.contains("top-secret-env"), "{message}");
        }
    }

    #[test]
    fn env_empty_value_counts_as_unset() {
        let c = apply_env(
            valid(),
            &[("ZEROBUS_CLIENT_ID", "  "), ("DEBUG_ENABLED", "")],
        )
        .expect("env");
        assert_eq!(c.client_id.as_deref(), Some("id"));
        assert!(!c.debug_enabled);
    }

    #[test]
    fn from_env_requires_endpoint_and_table() {
        let map = env(&[("ZEROBUS_TABLE_NAME", "t")]);
        let message = config_message(WrapperConfiguration::from_env_lookup(|k| {
            map.get(k).cloned()
        }));
        assert!(message.starts_with("ZEROBUS_ENDPOINT:"), "{message}");

        let map = env(&[
            ("ZEROBUS_ENDPOINT", "https://e"),
            ("ZEROBUS_TABLE_NAME", ""),
        ]);
        let message = config_message(WrapperConfiguration::from_env_lookup(|k| {
            map.get(k).cloned()
        }));
        assert!(message.starts_with("ZEROBUS_TABLE_NAME:"), "{message}");

        let map = env(ALL_ENV);
        let c = WrapperConfiguration::from_env_lookup(|k| map.get(k).cloned()).expect("env");
        assert_eq!(c.zerobus_endpoint, "https://env.example.com");
        assert_eq!(c.debug_flush_interval_secs, 3);
    }

    #[test]
    fn precedence_defaults_yaml_env_builder() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        write!(
            file,
            "endpoint: https://yaml\ntable_name: yaml_table\nclient_id: yaml-id\n\
             retry: {{ max_attempts: 9 }}\ndebug: {{ flush_interval_secs: 8, max_file_size: 77 }}\n"
        )
        .expect("write");
        let env_pairs = [
            ("ZEROBUS_TABLE_NAME", "env_table"),
            ("DEBUG_FLUSH_INTERVAL_SECS", "4"),
        ];

        let c = WrapperConfiguration::from_yaml_file(file.path())
            .and_then(|c| apply_env(c, &env_pairs))
            .expect("load")
            .with_debug_max_file_size(Some(55));
        assert_eq!(c.zerobus_endpoint, "https://yaml", "YAML over default");
        assert_eq!(c.client_id.as_deref(), Some("yaml-id"));
        assert_eq!(c.retry_max_attempts, 9);
        assert_eq!(c.retry_base_delay_ms, 100, "default kept");
        assert_eq!(c.table_name, "env_table", "env over YAML");
        assert_eq!(c.debug_flush_interval_secs, 4, "env over YAML");
        assert_eq!(c.debug_max_file_size, Some(55), "builder over YAML");

        let map = env(&env_pairs);
        let c = WrapperConfiguration::load_with(Some(file.path()), |k| map.get(k).cloned())
            .expect("load_with");
        assert_eq!(
            (c.table_name.as_str(), c.debug_flush_interval_secs),
            ("env_table", 4)
        );
        assert_eq!(c.debug_max_file_size, Some(77));

        let map = env(&[
            ("ZEROBUS_ENDPOINT", "https://e"),
            ("ZEROBUS_TABLE_NAME", "t"),
        ]);
        let c = WrapperConfiguration::load_with(None, |k| map.get(k).cloned()).expect("env only");
        assert_eq!(c.zerobus_endpoint, "https://e");
    }
}
