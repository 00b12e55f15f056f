//! The bytes of a Zerobus table in a plan: [`ZerobusTableNode`], shared by the logical
//! codec (the `TableProvider`) and the physical codec (the `DataSinkExec`'s sink).
//!
//! Layout: [`MAGIC`] then a protobuf [`ZerobusTableNode`]. The magic starts with a zero
//! byte, which no protobuf message of an inner codec starts with (field number 0 is
//! invalid), so a codec can tell its own bytes from the inner codec's.
//!
//! The node carries no secret: the wrapper configuration is written without its client
//! secret, which the decoding process takes from its own environment ([`Env`]).

use std::path::PathBuf;
use std::sync::Arc;

use arrow_zerobus_sdk_wrapper::sql::{OnError, SinkOptions};
use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use prost::Message;
use serde_json::{json, Value};

/// The first bytes of every buffer this crate's codecs write (version 1).
pub(crate) const MAGIC: &[u8] = b"\0zerobus-ballista\x01";

/// The environment variable an executor reads the OAuth client secret from.
pub const CLIENT_SECRET_VAR: &str = "ZEROBUS_CLIENT_SECRET";

/// Where a process looks up [`CLIENT_SECRET_VAR`] (the process environment by default).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment as an [`Env`].
pub(crate) fn process_env() -> Env {
    Arc::new(|name| std::env::var(name).ok())
}

/// A Zerobus table as the codecs write it.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ZerobusTableNode {
    /// The table's declared Arrow schema (with its NOT NULL columns).
    #[prost(message, optional, tag = "1")]
    pub(crate) schema: Option<datafusion_proto::protobuf::Schema>,
    /// The wrapper configuration without its client secret, as a JSON document in the
    /// shape of the YAML configuration (`WrapperConfiguration::from_yaml_str` reads it).
    #[prost(string, tag = "2")]
    pub(crate) config: String,
    /// [`SinkOptions::workers`].
    #[prost(uint64, tag = "3")]
    pub(crate) workers: u64,
    /// [`SinkOptions::max_inflight_batches`].
    #[prost(uint64, tag = "4")]
    pub(crate) max_inflight_batches: u64,
    /// The quarantine directory of `OnError::Quarantine` (a path on the executors);
    /// absent for `OnError::Fail`.
    #[prost(string, optional, tag = "5")]
    pub(crate) quarantine_dir: Option<String>,
    /// The plan node: a [`Kind`].
    #[prost(enumeration = "Kind", tag = "6")]
    pub(crate) kind: i32,
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum Kind {
    /// A table provider (logical codec) or a `DataSinkExec` with a Zerobus sink.
    Table = 0,
    /// A [`ZerobusWriteExec`](crate::ZerobusWriteExec).
    Write = 1,
    /// A [`ZerobusCountSumExec`](crate::ZerobusCountSumExec) (no table fields).
    CountSum = 2,
}

/// What a Zerobus table is made of, decoded.
#[derive(Debug, Clone)]
pub(crate) struct TableParts {
    pub(crate) schema: SchemaRef,
    pub(crate) config: WrapperConfiguration,
    pub(crate) options: SinkOptions,
}

/// Whether `buf` was written by this crate's codecs.
pub(crate) fn is_zerobus(buf: &[u8]) -> bool {
    buf.starts_with(MAGIC)
}

/// Appends [`MAGIC`] and `node` to `buf`.
fn write(node: &ZerobusTableNode, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    node.encode(buf)
        .map_err(|e| DataFusionError::Internal(format!("encoding a Zerobus plan node: {e}")))
}

/// Appends [`MAGIC`] and a [`Kind::CountSum`] node to `buf`.
pub(crate) fn encode_count_sum(buf: &mut Vec<u8>) -> Result<()> {
    write(
        &ZerobusTableNode {
            kind: Kind::CountSum as i32,
            ..Default::default()
        },
        buf,
    )
}

/// Appends [`MAGIC`] and the node of a table (`kind` [`Kind::Table`] or [`Kind::Write`])
/// to `buf`.
pub(crate) fn encode(
    kind: Kind,
    schema: &SchemaRef,
    config: &WrapperConfiguration,
    options: &SinkOptions,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let table = config.table_name();
    let schema = datafusion_proto::protobuf::Schema::try_from(schema.as_ref()).map_err(|e| {
        DataFusionError::Plan(format!(
            "Zerobus table {table}: cannot serialize its schema for a distributed plan: {e}"
        ))
    })?;
    let quarantine_dir = match &options.on_error {
        OnError::Quarantine(dir) => Some(path_text(table, "quarantine_dir", dir)?),
        _ => None,
    };
    let node = ZerobusTableNode {
        schema: Some(schema),
        config: config_json(config)?.to_string(),
        workers: options.workers as u64,
        max_inflight_batches: options.max_inflight_batches as u64,
        quarantine_dir,
        kind: kind as i32,
    };
    write(&node, buf)
}

/// What [`decode`] found.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A table (`kind` [`Kind::Table`] or [`Kind::Write`]); `missing_secret` when the
    /// configuration names a client id and the environment has no secret (it then has
    /// none: a scheduler plans without it, an executor must refuse).
    Table {
        kind: Kind,
        parts: Box<TableParts>,
        missing_secret: bool,
    },
    /// A [`Kind::CountSum`] node.
    CountSum,
}

/// Decodes a buffer written by [`encode`] or [`encode_count_sum`]; the client secret is
/// looked up in `env` when the configuration names a client id.
pub(crate) fn decode(buf: &[u8], env: &Env) -> Result<Decoded> {
    let body = buf.strip_prefix(MAGIC).ok_or_else(|| {
        DataFusionError::Internal("not a Zerobus table node (no magic prefix)".into())
    })?;
    let bad = |what: String| DataFusionError::Plan(format!("invalid Zerobus table node: {what}"));
    let node = ZerobusTableNode::decode(body).map_err(|e| bad(e.to_string()))?;
    let kind = Kind::try_from(node.kind).map_err(|_| bad(format!("unknown kind {}", node.kind)))?;
    if kind == Kind::CountSum {
        return Ok(Decoded::CountSum);
    }
    let schema = node
        .schema
        .as_ref()
        .ok_or_else(|| bad("no schema".into()))?;
    let schema = Schema::try_from(schema).map_err(|e| bad(format!("schema: {e}")))?;
    let mut config = WrapperConfiguration::from_yaml_str(&node.config)
        .map_err(|e| bad(format!("configuration: {e}")))?;
    let mut missing_secret = false;
    if let Some(id) = config.client_id().map(str::to_string) {
        match env(CLIENT_SECRET_VAR).filter(|s| !s.trim().is_empty()) {
            Some(secret) => {
                // `with_credentials` keeps the Unity Catalog URL and everything else.
                config = config.with_credentials(id, secret.trim());
            }
            None => missing_secret = true,
        }
    }
    let count = |name: &str, n: u64| -> Result<usize> {
        usize::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(format!("{name} must be at least 1, got {n}")))
    };
    let on_error = match node.quarantine_dir {
        Some(dir) => OnError::Quarantine(PathBuf::from(dir)),
        None => OnError::Fail,
    };
    let options = SinkOptions::default()
        .with_workers(count("workers", node.workers)?)
        .with_max_inflight_batches(count("max_inflight_batches", node.max_inflight_batches)?)
        .with_on_error(on_error);
    Ok(Decoded::Table {
        kind,
        parts: Box::new(TableParts {
            schema: Arc::new(schema),
            config,
            options,
        }),
        missing_secret,
    })
}

/// The error of an executor that has no client secret for a table that needs one.
pub(crate) fn missing_secret_error(config: &WrapperConfiguration) -> DataFusionError {
    DataFusionError::Execution(format!(
        "Zerobus table {}: the plan names OAuth client '{}' but this process has no client \
         secret: set {CLIENT_SECRET_VAR} in the environment of every Ballista executor \
         (plans never carry the secret)",
        config.table_name(),
        config.client_id().unwrap_or_default()
    ))
}

/// `path` as UTF-8 text, or a plan error naming the option.
fn path_text(table: &str, option: &str, path: &std::path::Path) -> Result<String> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "Zerobus table {table}: {option} '{}' is not UTF-8 and cannot be sent to executors",
            path.display()
        ))
    })
}

/// `config` as a JSON document in the shape of the YAML configuration (JSON is YAML),
/// without the client secret.
fn config_json(c: &WrapperConfiguration) -> Result<Value> {
    let table = c.table_name();
    let debug_dir = c
        .debug_output_dir()
        .map(|dir| path_text(table, "debug_output_dir", dir))
        .transpose()?;
    let mut doc = json!({
        "endpoint": c.zerobus_endpoint(),
        "table_name": table,
        "unity_catalog_url": c.unity_catalog_url(),
        "client_id": c.client_id(),
        "writer_disabled": c.zerobus_writer_disabled(),
        "max_record_size_bytes": c.max_record_size_bytes(),
        "max_request_bytes": c.max_request_bytes(),
        "transport": c.transport().as_str(),
        "flight_ipc_compression": c.flight_ipc_compression().as_str(),
        "multiplexed_streams": c.multiplexed_streams(),
        "max_open_schemas": c.max_open_schemas(),
        "schema_check": c.schema_check(),
        "retry": {
            "max_attempts": c.retry_max_attempts(),
            "base_delay_ms": c.retry_base_delay_ms(),
            "max_delay_ms": c.retry_max_delay_ms(),
        },
        "debug": {
            "enabled": c.debug_enabled(),
            "arrow_enabled": c.debug_arrow_enabled(),
            "protobuf_enabled": c.debug_protobuf_enabled(),
            "output_dir": debug_dir,
            "max_files_retained": c.debug_max_files_retained(),
            "flush_interval_secs": c.debug_flush_interval_secs(),
            "max_file_size": c.debug_max_file_size(),
            "rotation_interval_secs": c.debug_rotation_interval_secs(),
        },
    });
    if let Some(otlp) = c.observability_config() {
        doc["observability"] = json!({
            "enabled": c.observability_enabled(),
            "endpoint": otlp.endpoint,
            "service_name": otlp.service_name,
        });
    }
    Ok(doc)
}
