//! The connection options every sending subcommand shares, and the
//! [`WrapperConfiguration`] they make.
//!
//! Precedence, lowest first: the YAML file of `--config` (the wrapper's format), then
//! the environment variables clap reads for each option, then the flags.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_zerobus_sdk_wrapper::{FlightCompression, TransportKind, WrapperConfiguration};
use clap::{Args, ValueEnum};

use crate::error::{CliError, CliResult, Context};

/// Where and how to send: endpoint, credentials, transport, request size, retries.
///
/// Not `Debug`: it holds the client secret.
#[derive(Args, Clone)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// Zerobus gRPC endpoint, e.g. https://1234.zerobus.us-west-2.cloud.databricks.com or
    /// http://127.0.0.1:50051 for `zerobus local serve`.
    #[arg(long, env = "ZEROBUS_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Workspace URL, for OAuth tokens and Unity Catalog schemas.
    #[arg(long, env = "ZEROBUS_UNITY_CATALOG_URL", value_name = "URL")]
    pub unity_catalog_url: Option<String>,

    /// OAuth client id of the service principal.
    #[arg(long, env = "DATABRICKS_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// OAuth client secret of the service principal. Prefer the environment variable:
    /// other users can see command lines.
    #[arg(
        long,
        env = "DATABRICKS_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub client_secret: Option<String>,

    /// The wrapper's YAML configuration file (docs/configuration.md); flags override it,
    /// and `--table` its table_name.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How records travel: protobuf (the default) or Arrow Flight.
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,

    /// Arrow Flight only: IPC body compression.
    #[arg(long, value_enum)]
    pub flight_compression: Option<CompressionArg>,

    /// Most bytes of records per ingest call (1024 to 10420224; default 524288).
    #[arg(long, value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Largest encoded record accepted (default 10420224).
    #[arg(long, value_name = "BYTES")]
    pub max_record_size_bytes: Option<usize>,

    /// Streams opened per table schema, 1 to 64 (default 1).
    #[arg(long, value_name = "N")]
    pub multiplexed_streams: Option<usize>,

    /// Attempts per send, the first included (default 5).
    #[arg(long, value_name = "N")]
    pub retry_max_attempts: Option<u32>,

    /// First retry delay in milliseconds (default 100).
    #[arg(long, value_name = "MS")]
    pub retry_base_delay_ms: Option<u64>,

    /// Longest retry delay in milliseconds (default 30000).
    #[arg(long, value_name = "MS")]
    pub retry_max_delay_ms: Option<u64>,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    /// Dynamic protobuf records (the default).
    Protobuf,
    /// Arrow batches over Arrow Flight.
    Flight,
}

/// `--flight-compression`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    /// ZSTD (the default).
    Zstd,
    /// LZ4 frame.
    Lz4,
    /// Uncompressed.
    None,
}

impl ConnectionArgs {
    /// The configuration for sending to `table`, validated.
    ///
    /// # Errors
    /// No endpoint, an unreadable or invalid `--config` file, or an option the wrapper
    /// rejects; the message names the option or the file.
    pub fn configuration(&self, table: &str) -> CliResult<WrapperConfiguration> {
        let mut config = match &self.config {
            Some(path) => yaml_configuration(path, table, self.endpoint.as_deref())?,
            None => {
                let endpoint = self.endpoint.clone().ok_or_else(|| {
                    CliError::new(
                        "no endpoint: give --endpoint URL (or ZEROBUS_ENDPOINT, or endpoint in \
                         --config FILE)",
                    )
                })?;
                WrapperConfiguration::new(endpoint, table)
            }
        };
        if let Some(url) = &self.unity_catalog_url {
            config = config.with_unity_catalog(url.clone());
        }
        if self.client_id.is_some() || self.client_secret.is_some() {
            let id = self.client_id.as_deref().or(config.client_id());
            let secret = self.client_secret.as_deref().or(config.client_secret_str());
            let (Some(id), Some(secret)) = (id, secret) else {
                return Err(CliError::new(
                    "give both --client-id (DATABRICKS_CLIENT_ID) and --client-secret \
                     (DATABRICKS_CLIENT_SECRET), or neither",
                ));
            };
            let (id, secret) = (id.to_string(), secret.to_string());
            config = config.with_credentials(id, secret);
        }
        if let Some(transport) = self.transport {
            config = config.with_transport(match transport {
                TransportArg::Protobuf => TransportKind::Protobuf,
                TransportArg::Flight => TransportKind::ArrowFlight,
            });
        }
        if let Some(compression) = self.flight_compression {
            config = config.with_flight_ipc_compression(match compression {
                CompressionArg::Zstd => FlightCompression::Zstd,
                CompressionArg::Lz4 => FlightCompression::Lz4,
                CompressionArg::None => FlightCompression::None,
            });
        }
        if let Some(bytes) = self.max_request_bytes {
            config = config.with_max_request_bytes(bytes);
        }
        if let Some(bytes) = self.max_record_size_bytes {
            config = config.with_max_record_size_bytes(bytes);
        }
        if let Some(streams) = self.multiplexed_streams {
            config = config.with_multiplexed_streams(streams);
        }
        if self.retry_max_attempts.is_some()
            || self.retry_base_delay_ms.is_some()
            || self.retry_max_delay_ms.is_some()
        {
            let attempts = self
                .retry_max_attempts
                .unwrap_or(config.retry_max_attempts());
            let base = self
                .retry_base_delay_ms
                .unwrap_or(config.retry_base_delay_ms());
            let max = self
                .retry_max_delay_ms
                .unwrap_or(config.retry_max_delay_ms());
            config = config.with_retry_config(attempts, base, max);
        }
        config
            .validate()
            .map_err(|e| CliError::new(e.to_string()))?;
        Ok(config)
    }

    /// The `ZEROBUS_*` values the SQL table factory falls back on (`STORED AS ZEROBUS`
    /// tables without these `OPTIONS`): the flags and the `--config` file.
    ///
    /// # Errors
    /// An unreadable or invalid `--config` file.
    pub fn sql_fallbacks(&self) -> CliResult<HashMap<String, String>> {
        let mut values = HashMap::new();
        if let Some(path) = &self.config {
            // The table is named in each CREATE EXTERNAL TABLE; this one only fills the
            // YAML's required key.
            let config = yaml_configuration(path, "zerobus.cli.sql", self.endpoint.as_deref())?;
            let mut put = |key: &str, value: Option<&str>| {
                if let Some(value) = value {
                    values.insert(key.to_string(), value.to_string());
                }
            };
            put("ZEROBUS_ENDPOINT", Some(config.zerobus_endpoint()));
            put("ZEROBUS_UNITY_CATALOG_URL", config.unity_catalog_url());
            put("ZEROBUS_CLIENT_ID", config.client_id());
            put("ZEROBUS_CLIENT_SECRET", config.client_secret_str());
            put("ZEROBUS_TRANSPORT", Some(config.transport().as_str()));
            put(
                "ZEROBUS_FLIGHT_IPC_COMPRESSION",
                Some(config.flight_ipc_compression().as_str()),
            );
            let streams = config.multiplexed_streams().to_string();
            put("ZEROBUS_MULTIPLEXED_STREAMS", Some(&streams));
            let request = config.max_request_bytes().to_string();
            put("ZEROBUS_MAX_REQUEST_BYTES", Some(&request));
        }
        let flags = [
            ("ZEROBUS_ENDPOINT", self.endpoint.clone()),
            ("ZEROBUS_UNITY_CATALOG_URL", self.unity_catalog_url.clone()),
            ("ZEROBUS_CLIENT_ID", self.client_id.clone()),
            ("ZEROBUS_CLIENT_SECRET", self.client_secret.clone()),
            (
                "ZEROBUS_TRANSPORT",
                self.transport.map(|t| match t {
                    TransportArg::Protobuf => "protobuf".to_string(),
                    TransportArg::Flight => "arrow_flight".to_string(),
                }),
            ),
            (
                "ZEROBUS_FLIGHT_IPC_COMPRESSION",
                self.flight_compression
                    .and_then(|c| c.to_possible_value())
                    .map(|v| v.get_name().to_string()),
            ),
            (
                "ZEROBUS_MULTIPLEXED_STREAMS",
                self.multiplexed_streams.map(|n| n.to_string()),
            ),
            (
                "ZEROBUS_MAX_REQUEST_BYTES",
                self.max_request_bytes.map(|n| n.to_string()),
            ),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                values.insert(key.to_string(), value);
            }
        }
        Ok(values)
    }
}

/// The wrapper's YAML file at `path`, for `table` (and `endpoint` if given: both replace
/// the file's keys, which may then be missing from it).
fn yaml_configuration(
    path: &Path,
    table: &str,
    endpoint: Option<&str>,
) -> CliResult<WrapperConfiguration> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).context(format!("--config {name}"))?;
    let yaml_error = |e: arrow_zerobus_sdk_wrapper::ZerobusError| {
        let message = e.to_string().replace("YAML configuration: ", "");
        CliError::new(format!("--config {name}: {message}"))
    };
    // Errors other than the keys the flags fill in are reported on the file as written
    // (its line numbers).
    if let Err(e) = WrapperConfiguration::from_yaml_str(&text) {
        if !e.to_string().contains("missing field") {
            return Err(yaml_error(e));
        }
    }
    let mut value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).context(format!("--config {name}"))?;
    let Some(mapping) = value.as_mapping_mut() else {
        return Err(CliError::new(format!(
            "--config {name}: expected a mapping of options (endpoint: ..., table_name: ...)"
        )));
    };
    mapping.insert("table_name".into(), table.into());
    if let Some(endpoint) = endpoint {
        mapping.insert("endpoint".into(), endpoint.into());
    }
    let text = serde_yaml_ng::to_string(&value).context(format!("--config {name}"))?;
    WrapperConfiguration::from_yaml_str(&text).map_err(yaml_error)
}
