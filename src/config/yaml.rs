//! YAML files: [`WrapperConfiguration::from_yaml_str`] and
//! [`WrapperConfiguration::from_yaml_file`].

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use super::{config_error, FlightCompression, OtlpConfig, TransportKind, WrapperConfiguration};
use crate::error::{Result, ZerobusError};

impl WrapperConfiguration {
    /// Parses a YAML configuration (see the [module docs](crate::config) for the shape).
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
            let error = match err.location() {
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
            };
            error.with_source(err)
        })?;
        Ok(raw.into_configuration())
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
    max_request_bytes: Option<usize>,
    #[serde(default)]
    transport: Option<TransportKind>,
    flight_ipc_compression: Option<FlightCompression>,
    #[serde(default)]
    multiplexed_streams: Option<usize>,
    #[serde(default)]
    max_open_schemas: Option<usize>,
    #[serde(default)]
    schema_check: Option<bool>,
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
        c.max_request_bytes = self.max_request_bytes.unwrap_or(c.max_request_bytes);
        c.transport = self.transport.unwrap_or(c.transport);
        c.flight_ipc_compression = self
            .flight_ipc_compression
            .unwrap_or(c.flight_ipc_compression);
        c.multiplexed_streams = self.multiplexed_streams.unwrap_or(c.multiplexed_streams);
        c.max_open_schemas = self.max_open_schemas.unwrap_or(c.max_open_schemas);
        c.schema_check = self.schema_check.unwrap_or(c.schema_check);
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
