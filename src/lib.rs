//! Send Apache Arrow data to Databricks **Zerobus**, the direct-ingest service that lands
//! rows in Delta tables.
//!
//! Hand a [`ZerobusWrapper`] an Arrow [`RecordBatch`](arrow::array::RecordBatch): the protobuf
//! schema is generated from the Arrow schema ([`schema`]), rows are encoded straight from
//! the Arrow columns ([`encode`]), and the [`TransmissionResult`] says what became of every
//! row: no row is ever lost silently.
//!
//! ```text
//! RecordBatch ─► schema (validate, descriptor, cached) ─► encode (columnar, per-row errors)
//!                                                          ├─► debug files (.arrows, .pb)
//!                                                          ▼
//!                                                  transport ─► TransmissionResult
//! ```
//!
//! # Modules
//! - [`config`]: [`WrapperConfiguration`], its builder, YAML and environment loading.
//! - [`schema`]: Arrow schema → validated [`schema::TableSchema`] → proto2 descriptor.
//! - [`encode`]: the columnar encoder, [`encode::RowEncoder`] → [`encode::EncodedBatch`].
//! - [`result`]: [`TransmissionResult`] and [`ErrorStatistics`].
//! - [`debug`]: Arrow IPC and length-delimited protobuf debug files, rotation, retention.
//! - [`error`]: [`ZerobusError`], retryable or not.
//!
//! # Cargo features
//! The core (this crate's default build) needs only Arrow, prost and tokio.
//! - `local`: the module `arrow_zerobus_sdk_wrapper::local`, an in-process
//!   Zerobus-compatible gRPC server for tests against the unmodified official client
//!   (adds `databricks-zerobus-ingest-sdk` and tonic). Memory landing only for now.
//! - `datafusion`: the module `arrow_zerobus_sdk_wrapper::sql`, a write-only
//!   DataFusion table (`INSERT INTO ... SELECT`, `CREATE EXTERNAL TABLE ... STORED AS
//!   ZEROBUS`) that streams rows through [`ZerobusWrapper`]s; see `docs/datafusion.md`.
//!
//! The network transport is part of the core: the official SDK's dynamic-protobuf stream
//! (`TransportKind::Protobuf`), with pipelined sends ([`ZerobusWrapper::submit_batch`]),
//! retry with full jitter and per-row outcomes. The Python bindings arrive behind their own
//! feature.
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
pub mod uc;
mod wrapper;

pub use config::{
    FlightCompression, OtlpConfig, TransportKind, WrapperConfiguration, DEFAULT_MAX_REQUEST_BYTES,
    MAX_INGEST_PAYLOAD_BYTES, MAX_MULTIPLEXED_STREAMS, MIN_MAX_REQUEST_BYTES,
};
pub use debug::{DebugSettings, DebugWriter};
pub use error::{ConversionErrorKind, ConversionFailure, Result, ZerobusError};
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
