//! The options of a Zerobus table: what `CREATE EXTERNAL TABLE ... OPTIONS (...)` accepts,
//! with environment variables as the fallback for the endpoint, the Unity Catalog URL and
//! the credentials (so secrets need not appear in SQL text).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use datafusion::error::{DataFusionError, Result};

use crate::config::{FlightCompression, TransportKind, WrapperConfiguration};

/// What the sink does with rows Zerobus did not accept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnError {
    /// The INSERT fails once every good row is durable, with the failed rows counted and
    /// grouped by error type (the default).
    #[default]
    Fail,
    /// Failed rows are written, with their error text, to Arrow IPC stream files in this
    /// directory; the INSERT succeeds with the count of rows that landed.
    Quarantine(PathBuf),
}

impl OnError {
    /// `fail` or `quarantine`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Quarantine(_) => "quarantine",
        }
    }
}

/// How the sink drives the wrapper: parallel streams, batches in flight, failure handling.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkOptions {
    /// Worker streams fed from the input (each its own [`ZerobusWrapper`](crate::ZerobusWrapper)
    /// and Zerobus stream); at least 1.
    pub workers: usize,
    /// Batches each worker keeps in flight (submitted, not yet acknowledged); at least 1.
    pub max_inflight_batches: usize,
    /// What happens to rows that fail.
    pub on_error: OnError,
}

/// The default number of workers: the available cores, at most 4.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

/// The default number of batches in flight per worker.
///
/// A worker keeps this many batches submitted but unacknowledged, so with batches of `b`
/// rows and acknowledgements taking `t` seconds it sends at most `4 × b ÷ t` rows/s
/// (32768-row batches, 100 ms acks: 1.3M rows/s per worker). On loopback 8 gave the same
/// throughput as 4 with ~40 % more peak memory (docs/performance.md, "DataFusion sink").
/// Raise it for small batches or slow acknowledgements.
pub const DEFAULT_MAX_INFLIGHT_BATCHES: usize = 4;

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            max_inflight_batches: DEFAULT_MAX_INFLIGHT_BATCHES,
            on_error: OnError::Fail,
        }
    }
}

impl SinkOptions {
    /// Sets [`workers`](Self::workers).
    ///
    /// ```
    /// use arrow_zerobus_sdk_wrapper::sql::{OnError, SinkOptions};
    ///
    /// let options = SinkOptions::default()
    ///     .with_workers(2)
    ///     .with_on_error(OnError::Quarantine("./failed".into()));
    /// assert_eq!((options.workers, options.on_error.as_str()), (2, "quarantine"));
    /// ```
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets [`max_inflight_batches`](Self::max_inflight_batches).
    pub fn with_max_inflight_batches(mut self, batches: usize) -> Self {
        self.max_inflight_batches = batches;
        self
    }

    /// Sets [`on_error`](Self::on_error).
    pub fn with_on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }
}

/// The options a Zerobus table accepts, each with the environment variable that stands in
/// for it when it is not given (`None`: no fallback).
pub const KNOWN_OPTIONS: &[(&str, Option<&str>)] = &[
    ("endpoint", Some("ZEROBUS_ENDPOINT")),
    ("unity_catalog_url", Some("ZEROBUS_UNITY_CATALOG_URL")),
    ("client_id", Some("ZEROBUS_CLIENT_ID")),
    ("client_secret", Some("ZEROBUS_CLIENT_SECRET")),
    ("transport", Some("ZEROBUS_TRANSPORT")),
    (
        "flight_ipc_compression",
        Some("ZEROBUS_FLIGHT_IPC_COMPRESSION"),
    ),
    ("multiplexed_streams", Some("ZEROBUS_MULTIPLEXED_STREAMS")),
    ("workers", None),
    ("max_inflight_batches", None),
    ("on_error", None),
    ("quarantine_dir", None),
    ("max_record_size_bytes", None),
    ("max_request_bytes", Some("ZEROBUS_MAX_REQUEST_BYTES")),
    ("retry_max_attempts", None),
    ("retry_base_delay_ms", None),
    ("retry_max_delay_ms", None),
];

/// The parsed options of one table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableOptions {
    /// The wrapper configuration (endpoint, credentials, transport, retries, ...).
    pub config: WrapperConfiguration,
    /// How the sink drives the wrapper.
    pub sink: SinkOptions,
}

impl TableOptions {
    /// Parses `options` (keys `k`, `format.k` or `zerobus.k`, any case) for `table`, with
    /// `env` as the fallback for the options [`KNOWN_OPTIONS`] pairs with a variable.
    ///
    /// # Errors
    /// An unknown option (the message lists the known ones), a value that does not parse
    /// (naming the option), a missing endpoint, or a configuration the wrapper rejects.
    pub fn parse(
        table: &str,
        options: &HashMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let given = normalize_keys(options)?;
        let value = |key: &str| -> Option<String> {
            given.get(key).cloned().or_else(|| {
                KNOWN_OPTIONS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, var)| var.and_then(&env))
                    .filter(|v| !v.trim().is_empty())
            })
        };
        let endpoint = value("endpoint").ok_or_else(|| {
            option_error(
                "endpoint",
                "missing: give OPTIONS ('endpoint' '...') or set ZEROBUS_ENDPOINT",
            )
        })?;
        let mut config = WrapperConfiguration::new(endpoint, table);
        if let Some(url) = value("unity_catalog_url") {
            config = config.with_unity_catalog(url);
        }
        match (value("client_id"), value("client_secret")) {
            (Some(id), Some(secret)) => config = config.with_credentials(id, secret),
            (None, None) => {}
            (Some(_), None) => {
                return Err(option_error(
                    "client_secret",
                    "missing while client_id is set (set ZEROBUS_CLIENT_SECRET)",
                ))
            }
            (None, Some(_)) => {
                return Err(option_error(
                    "client_id",
                    "missing while client_secret is set (set ZEROBUS_CLIENT_ID)",
                ))
            }
        }
        if let Some(transport) = value("transport") {
            let kind = TransportKind::from_str(&transport).map_err(|e| plain(e.to_string()))?;
            config = config.with_transport(kind);
        }
        if let Some(compression) = value("flight_ipc_compression") {
            let compression =
                FlightCompression::from_str(&compression).map_err(|e| plain(e.to_string()))?;
            config = config.with_flight_ipc_compression(compression);
        }
        if let Some(streams) = parse_number(&value, "multiplexed_streams")? {
            config = config.with_multiplexed_streams(streams);
        }
        if let Some(bytes) = parse_number(&value, "max_record_size_bytes")? {
            config = config.with_max_record_size_bytes(bytes);
        }
        if let Some(bytes) = parse_number(&value, "max_request_bytes")? {
            config = config.with_max_request_bytes(bytes);
        }
        let attempts = parse_number(&value, "retry_max_attempts")?;
        let base = parse_number(&value, "retry_base_delay_ms")?;
        let max = parse_number(&value, "retry_max_delay_ms")?;
        if attempts.is_some() || base.is_some() || max.is_some() {
            let attempts = attempts.unwrap_or(config.retry_max_attempts);
            let base = base.unwrap_or(config.retry_base_delay_ms);
            let max = max.unwrap_or(config.retry_max_delay_ms);
            config = config.with_retry_config(attempts, base, max);
        }
        config.validate().map_err(|e| plain(e.to_string()))?;

        let mut sink = SinkOptions::default();
        if let Some(workers) = parse_number(&value, "workers")? {
            sink.workers = at_least_one("workers", workers)?;
        }
        if let Some(inflight) = parse_number(&value, "max_inflight_batches")? {
            sink.max_inflight_batches = at_least_one("max_inflight_batches", inflight)?;
        }
        let quarantine_dir = value("quarantine_dir");
        sink.on_error = match value("on_error").as_deref().map(str::to_ascii_lowercase) {
            None => OnError::Fail,
            Some(mode) if mode == "fail" => OnError::Fail,
            Some(mode) if mode == "quarantine" => {
                OnError::Quarantine(PathBuf::from(quarantine_dir.clone().ok_or_else(|| {
                    option_error("quarantine_dir", "required when on_error is 'quarantine'")
                })?))
            }
            Some(other) => {
                return Err(option_error(
                    "on_error",
                    format!("unknown value '{other}' (expected 'fail' or 'quarantine')"),
                ))
            }
        };
        if quarantine_dir.is_some() && sink.on_error == OnError::Fail {
            return Err(option_error(
                "quarantine_dir",
                "only used with on_error 'quarantine'",
            ));
        }
        Ok(Self { config, sink })
    }
}

/// The options keyed by their bare name, lower-cased; an error for an unknown key.
fn normalize_keys(options: &HashMap<String, String>) -> Result<HashMap<String, String>> {
    let mut out = HashMap::with_capacity(options.len());
    for (key, value) in options {
        let lower = key.to_ascii_lowercase();
        let bare = lower
            .strip_prefix("format.")
            .or_else(|| lower.strip_prefix("zerobus."))
            .unwrap_or(&lower);
        if !KNOWN_OPTIONS.iter().any(|(known, _)| *known == bare) {
            let known: Vec<&str> = KNOWN_OPTIONS.iter().map(|(k, _)| *k).collect();
            return Err(plain(format!(
                "unknown Zerobus table option '{key}'; known options (optionally prefixed \
                 with 'zerobus.' or 'format.'): {}",
                known.join(", ")
            )));
        }
        if out.insert(bare.to_string(), value.clone()).is_some() {
            return Err(option_error(bare, "given more than once"));
        }
    }
    Ok(out)
}

fn parse_number<T: FromStr>(
    value: &impl Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<T>> {
    value(key)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| option_error(key, format!("'{v}' is not a non-negative whole number")))
        })
        .transpose()
}

fn at_least_one(key: &str, n: usize) -> Result<usize> {
    if n == 0 {
        Err(option_error(key, "must be at least 1"))
    } else {
        Ok(n)
    }
}

fn option_error(key: &str, message: impl std::fmt::Display) -> DataFusionError {
    plain(format!("Zerobus table option '{key}': {message}"))
}

fn plain(message: String) -> DataFusionError {
    DataFusionError::Plan(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prefixed_keys_and_env_fallback() {
        let env = |name: &str| (name == "ZEROBUS_ENDPOINT").then(|| "http://127.0.0.1:9".into());
        let parsed = TableOptions::parse(
            "c.s.t",
            &opts(&[("format.workers", "3"), ("zerobus.on_error", "fail")]),
            env,
        )
        .unwrap();
        assert_eq!(parsed.config.zerobus_endpoint, "http://127.0.0.1:9");
        assert_eq!(parsed.sink.workers, 3);
    }

    #[test]
    fn unknown_options_list_the_known_ones() {
        let err = TableOptions::parse("c.s.t", &opts(&[("format.endpiont", "x")]), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'format.endpiont'"), "{err}");
        assert!(err.contains("endpoint, unity_catalog_url"), "{err}");
    }

    #[test]
    fn flight_ipc_compression_from_options_or_env_and_checked() {
        let endpoint = ("endpoint", "http://127.0.0.1:9");
        let parsed = TableOptions::parse(
            "c.s.t",
            &opts(&[endpoint, ("zerobus.flight_ipc_compression", "lz4")]),
            |_| None,
        )
        .unwrap();
        assert_eq!(parsed.config.flight_ipc_compression, FlightCompression::Lz4);
        let env = |name: &str| (name == "ZEROBUS_FLIGHT_IPC_COMPRESSION").then(|| "none".into());
        let parsed = TableOptions::parse("c.s.t", &opts(&[endpoint]), env).unwrap();
        assert_eq!(
            parsed.config.flight_ipc_compression,
            FlightCompression::None
        );
        let err = TableOptions::parse(
            "c.s.t",
            &opts(&[endpoint, ("flight_ipc_compression", "gzip")]),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("flight_ipc_compression") && err.contains("gzip"),
            "{err}"
        );
    }

    #[test]
    fn max_request_bytes_from_the_environment_unless_given_and_checked() {
        let endpoint = ("endpoint", "http://127.0.0.1:9");
        let env = |name: &str| (name == "ZEROBUS_MAX_REQUEST_BYTES").then(|| "65536".into());
        let from_env = TableOptions::parse("c.s.t", &opts(&[endpoint]), env).unwrap();
        assert_eq!(from_env.config.max_request_bytes, 65_536);
        let given = opts(&[endpoint, ("format.max_request_bytes", "2048")]);
        let parsed = TableOptions::parse("c.s.t", &given, env).unwrap();
        assert_eq!(parsed.config.max_request_bytes, 2048, "the option wins");
        let too_small = opts(&[endpoint, ("max_request_bytes", "12")]);
        let err = TableOptions::parse("c.s.t", &too_small, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_request_bytes: must be between 1024"),
            "{err}"
        );
    }

    #[test]
    fn multiplexed_streams_from_options_or_env_and_checked() {
        let endpoint = ("endpoint", "http://127.0.0.1:9");
        let parsed = TableOptions::parse(
            "c.s.t",
            &opts(&[endpoint, ("format.multiplexed_streams", "4")]),
            |_| None,
        )
        .unwrap();
        assert_eq!(parsed.config.multiplexed_streams, 4);
        let env = |name: &str| (name == "ZEROBUS_MULTIPLEXED_STREAMS").then(|| "2".into());
        let parsed = TableOptions::parse("c.s.t", &opts(&[endpoint]), env).unwrap();
        assert_eq!(parsed.config.multiplexed_streams, 2);
        let err = TableOptions::parse(
            "c.s.t",
            &opts(&[endpoint, ("multiplexed_streams", "65")]),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("multiplexed_streams") && err.contains("64"),
            "{err}"
        );
    }

    #[test]
    fn quarantine_needs_a_directory() {
        let err = TableOptions::parse(
            "c.s.t",
            &opts(&[
                ("endpoint", "http://127.0.0.1:9"),
                ("on_error", "quarantine"),
            ]),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("quarantine_dir"), "{err}");
    }
}
