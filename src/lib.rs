//! Send Apache Arrow data to Databricks **Zerobus**, the direct-ingest service that lands
//! rows in Delta tables.
//!
//! Hand a [`ZerobusWrapper`] an Arrow [`RecordBatch`](arrow::array::RecordBatch): the protobuf
//! schema is generated from the Arrow schema ([`schema`]), rows are encoded straight from
//! the Arrow columns ([`encode`]), sent over the official SDK's streams, and the
//! [`TransmissionResult`] says what became of every row: no row is ever lost silently.
//!
//! ```text
//! RecordBatch ─► schema (validate, descriptor, cached) ─► encode (columnar, per-row errors)
//!                                                          ├─► debug files (.arrows, .pb)
//!                                                          ▼
//!                  transport (the official SDK: protobuf or Arrow Flight streams,
//!                             pipelined, multiplexed, retried) ─► TransmissionResult
//! ```
//!
//! # Modules
//! - [`config`]: [`WrapperConfiguration`], its builder, YAML and environment loading.
//! - [`schema`]: Arrow schema → validated [`schema::TableSchema`] → proto2 descriptor.
//! - [`encode`]: the columnar encoder, [`encode::RowEncoder`] → [`encode::EncodedBatch`].
//! - [`result`]: [`TransmissionResult`] and [`ErrorStatistics`].
//! - [`debug`]: Arrow IPC and length-delimited protobuf debug files, rotation, retention.
//! - [`telemetry`]: the OpenTelemetry metrics and spans the wrapper records.
//! - [`error`]: [`ZerobusError`], retryable or not, with its cause as `source()`.
//! - `sql` (feature `datafusion`): a write-only DataFusion table for `INSERT INTO ...
//!   SELECT` and `CREATE EXTERNAL TABLE ... STORED AS ZEROBUS`; see `docs/datafusion.md`.
//!
//! The transport (the official SDK's dynamic-protobuf stream by default, its Arrow Flight
//! stream as an option; pipelined sends with [`ZerobusWrapper::submit_batch`], multiplexed
//! streams, recovery, full-jitter retry, per-row outcomes) and the optional Unity Catalog
//! schema check ([`WrapperConfiguration::with_schema_check`]) are internal: they are
//! configured, not called.
//!
//! # Cargo features
//! - default: the wrapper: Arrow, the official `databricks-zerobus-ingest-sdk` (tonic,
//!   reqwest), tokio, OpenTelemetry's API.
//! - `datafusion`: the module `sql` (DataFusion 55, SQL and Parquet; Rust 1.94).
//!
//! The local Zerobus-compatible server that the tests, examples and benches run against
//! is the crate `zerobus-local` (a dev-dependency here; `docs/local-server.md`).
//!
//! # Writer-disabled mode
//! With [`WrapperConfiguration::with_zerobus_writer_disabled`] the wrapper validates,
//! encodes and writes debug files without any network access or credentials: see
//! [`ZerobusWrapper`] for an example.

pub mod config;
pub mod debug;
pub mod encode;
pub mod error;
pub mod result;
mod rows;
pub mod schema;
#[cfg(feature = "datafusion")]
pub mod sql;
pub mod telemetry;
mod transport;
mod uc;
mod wrapper;

pub use config::{
    FlightCompression, OtlpConfig, TransportKind, WrapperConfiguration, DEFAULT_MAX_REQUEST_BYTES,
    MAX_INGEST_PAYLOAD_BYTES, MAX_MULTIPLEXED_STREAMS, MIN_MAX_REQUEST_BYTES,
};
pub use debug::{DebugSettings, DebugWriter};
pub use error::{Cause, ConversionErrorKind, ConversionFailure, Result, ZerobusError};
pub use result::{ErrorStatistics, TransmissionResult};
pub use wrapper::{PendingBatch, ZerobusWrapper};

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The configuration guide's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/configuration.md")]
struct ConfigurationDoctests;
