//! Where encoded records go.
//!
//! [`ZerobusWrapper`](crate::ZerobusWrapper) hands every encoded batch to a [`Transport`].
//! The writer-disabled mode uses [`DisabledTransport`], which sends nothing; the network
//! mode uses [`SdkTransport`](sdk::SdkTransport), the official Zerobus SDK's
//! dynamic-protobuf streams or (option) its Arrow Flight streams.
//!
//! - `chunk`: cutting a batch into ingest calls of at most `max_request_bytes`.
//! - `delivery`: per-chunk acknowledgement waits, resends, isolation of refused rows.
//! - `flight`: the Arrow Flight format (normalized Arrow batches, `ingest_batch`).
//! - `lane`: one schema's shared stream, its creation, and recovery of a dead stream.
//! - `normalize`: the user's Arrow types to the Arrow schema the SDK derives for a table.
//! - `retry`: exponential backoff with full jitter from the wrapper's retry settings.
//! - `sdk`: the transport over either SDK stream, and the protobuf format.
//! - `sdk_error`: the SDK's errors in the wrapper's terms.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::config::{TransportKind, WrapperConfiguration};
use crate::encode::EncodedBatch;
use crate::error::ZerobusError;
use crate::schema::TableSchema;

mod chunk;
mod delivery;
mod flight;
mod lane;
mod normalize;
mod retry;
mod sdk;
mod sdk_error;

/// A boxed future, as the object-safe [`Transport`] returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves once every row of a submitted batch is durable or failed.
pub(crate) type Delivery = BoxFuture<'static, SendReport>;

/// What a transport did with one batch.
#[derive(Debug, Default)]
pub(crate) struct SendReport {
    /// Transmission attempts made (0 when nothing went over the network).
    pub(crate) attempts: u32,
    /// Rows the transport could not land, with the reason.
    pub(crate) failed_rows: Vec<(usize, ZerobusError)>,
}

/// Sends encoded records to a table.
pub(crate) trait Transport: Send + Sync + Debug {
    /// Queues the rows of `batch` that encoded (`encoded`) and returns once they are
    /// queued (batches keep their submission order); the [`Delivery`] resolves when they
    /// are durable.
    fn submit<'a>(
        &'a self,
        schema: &'a Arc<TableSchema>,
        batch: &'a RecordBatch,
        encoded: &'a Arc<EncodedBatch>,
    ) -> BoxFuture<'a, Result<Delivery, ZerobusError>>;

    /// Waits until everything submitted so far is durable or failed.
    fn flush(&self) -> BoxFuture<'_, Result<(), ZerobusError>>;

    /// Flushes and closes the transport.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), ZerobusError>>;

    /// Whether [`submit`](Self::submit) reads the records' bytes; if not, a batch that is
    /// only [measured](crate::encode::RowEncoder::measure) is enough.
    fn needs_records(&self) -> bool {
        true
    }
}

/// The transport `config` asks for.
pub(crate) fn transport_for(
    config: &WrapperConfiguration,
) -> Result<Box<dyn Transport>, ZerobusError> {
    if config.zerobus_writer_disabled {
        return Ok(Box::new(DisabledTransport));
    }
    match config.transport {
        TransportKind::Protobuf => Ok(Box::new(sdk::SdkTransport::<sdk::Protobuf>::new(config)?)),
        TransportKind::ArrowFlight => Ok(Box::new(sdk::SdkTransport::<flight::ArrowFlight>::new(
            config,
        )?)),
    }
}

/// The writer-disabled mode: every encoded row counts as delivered, nothing is sent.
#[derive(Debug, Default)]
pub(crate) struct DisabledTransport;

impl Transport for DisabledTransport {
    fn submit<'a>(
        &'a self,
        _schema: &'a Arc<TableSchema>,
        _batch: &'a RecordBatch,
        _encoded: &'a Arc<EncodedBatch>,
    ) -> BoxFuture<'a, Result<Delivery, ZerobusError>> {
        Box::pin(async {
            let delivery: Delivery = Box::pin(async { SendReport::default() });
            Ok(delivery)
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async { Ok(()) })
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async { Ok(()) })
    }
}
