//! Environment variables: [`WrapperConfiguration::with_env_overrides`] and friends.

use std::path::PathBuf;

use secrecy::SecretString;

use super::{config_error, WrapperConfiguration};
use crate::error::Result;

pub(super) const ENV_ENDPOINT: &str = "ZEROBUS_ENDPOINT";
pub(super) const ENV_TABLE_NAME: &str = "ZEROBUS_TABLE_NAME";
pub(super) const ENV_CLIENT_ID: &str = "ZEROBUS_CLIENT_ID";
pub(super) const ENV_CLIENT_SECRET: &str = "ZEROBUS_CLIENT_SECRET";
pub(super) const ENV_UNITY_CATALOG_URL: &str = "ZEROBUS_UNITY_CATALOG_URL";
pub(super) const ENV_WRITER_DISABLED: &str = "ZEROBUS_WRITER_DISABLED";
pub(super) const ENV_MAX_RECORD_SIZE_BYTES: &str = "ZEROBUS_MAX_RECORD_SIZE_BYTES";
pub(super) const ENV_MAX_REQUEST_BYTES: &str = "ZEROBUS_MAX_REQUEST_BYTES";
pub(super) const ENV_TRANSPORT: &str = "ZEROBUS_TRANSPORT";
pub(super) const ENV_MULTIPLEXED_STREAMS: &str = "ZEROBUS_MULTIPLEXED_STREAMS";
pub(super) const ENV_MAX_OPEN_SCHEMAS: &str = "ZEROBUS_MAX_OPEN_SCHEMAS";
pub(super) const ENV_FLIGHT_IPC_COMPRESSION: &str = "ZEROBUS_FLIGHT_IPC_COMPRESSION";
pub(super) const ENV_SCHEMA_CHECK: &str = "ZEROBUS_SCHEMA_CHECK";
pub(super) const ENV_DEBUG_ENABLED: &str = "DEBUG_ENABLED";
pub(super) const ENV_DEBUG_ARROW_ENABLED: &str = "DEBUG_ARROW_ENABLED";
pub(super) const ENV_DEBUG_PROTOBUF_ENABLED: &str = "DEBUG_PROTOBUF_ENABLED";
pub(super) const ENV_DEBUG_OUTPUT_DIR: &str = "DEBUG_OUTPUT_DIR";
pub(super) const ENV_DEBUG_MAX_FILES_RETAINED: &str = "DEBUG_MAX_FILES_RETAINED";
pub(super) const ENV_DEBUG_FLUSH_INTERVAL_SECS: &str = "DEBUG_FLUSH_INTERVAL_SECS";
pub(super) const ENV_DEBUG_MAX_FILE_SIZE: &str = "DEBUG_MAX_FILE_SIZE";
pub(super) const ENV_DEBUG_ROTATION_INTERVAL_SECS: &str = "DEBUG_ROTATION_INTERVAL_SECS";

impl WrapperConfiguration {
    /// Applies the environment variables listed in the [module docs](crate::config) on top of `self`.
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
        if let Some(v) = get(ENV_MAX_REQUEST_BYTES) {
            self.max_request_bytes = parse_env_number(ENV_MAX_REQUEST_BYTES, &v)?;
        }
        if let Some(v) = get(ENV_TRANSPORT) {
            self.transport = v.parse().map_err(|_| {
                config_error(format!(
                    "{ENV_TRANSPORT}: unknown transport '{v}' (expected protobuf or arrow_flight)"
                ))
            })?;
        }
        if let Some(v) = get(ENV_MULTIPLEXED_STREAMS) {
            self.multiplexed_streams = parse_env_number(ENV_MULTIPLEXED_STREAMS, &v)?;
        }
        if let Some(v) = get(ENV_MAX_OPEN_SCHEMAS) {
            self.max_open_schemas = parse_env_number(ENV_MAX_OPEN_SCHEMAS, &v)?;
        }
        if let Some(v) = get(ENV_FLIGHT_IPC_COMPRESSION) {
            self.flight_ipc_compression = v.parse().map_err(|_| {
                config_error(format!(
                    "{ENV_FLIGHT_IPC_COMPRESSION}: unknown compression '{v}' (expected zstd, lz4 \
                     or none)"
                ))
            })?;
        }
        if let Some(v) = get(ENV_SCHEMA_CHECK) {
            self.schema_check = parse_env_bool(ENV_SCHEMA_CHECK, &v)?;
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

    pub(super) fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
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
}

pub(super) fn parse_env_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(config_error(format!(
            "{name}: cannot parse '{value}' as a boolean (expected true/false/1/0/yes/no)"
        ))),
    }
}

pub(super) fn parse_env_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| {
        config_error(format!(
            "{name}: cannot parse '{value}' as a non-negative integer in range"
        ))
    })
}

pub(super) fn parse_env_optional_number<T: std::str::FromStr>(
    name: &str,
    value: &str,
) -> Result<Option<T>> {
    match value.to_ascii_lowercase().as_str() {
        "none" | "unlimited" => Ok(None),
        _ => value.parse().map(Some).map_err(|_| {
            config_error(format!(
                "{name}: cannot parse '{value}' (expected a non-negative integer, `none` or `unlimited`)"
            ))
        }),
    }
}
