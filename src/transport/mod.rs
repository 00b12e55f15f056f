//! Where encoded records go.
//!
//! [`ZerobusWrapper`](crate::ZerobusWrapper) hands every encoded batch to a [`Transport`].
//! The writer-disabled mode uses [`DisabledTransport`], which sends nothing; the network
//! transport (the official Zerobus SDK's streams) plugs in behind the same trait.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::encode::EncodedBatch;
use crate::error::ZerobusError;
use crate::schema::TableSchema;

/// A boxed future, as the object-safe [`Transport`] returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    /// Sends the successful rows of `encoded`, resolving once they are durable.
    fn send<'a>(
        &'a self,
        schema: &'a Arc<TableSchema>,
        encoded: &'a EncodedBatch,
    ) -> BoxFuture<'a, Result<SendReport, ZerobusError>>;

    /// Waits until everything sent so far is durable.
    fn flush(&self) -> BoxFuture<'_, Result<(), ZerobusError>>;

    /// Flushes and closes the transport.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), ZerobusError>>;
}

/// The writer-disabled mode: every encoded row counts as delivered, nothing is sent.
#[derive(Debug, Default)]
pub(crate) struct DisabledTransport;

impl Transport for DisabledTransport {
    fn send<'a>(
        &'a self,
        _schema: &'a Arc<TableSchema>,
        _encoded: &'a EncodedBatch,
    ) -> BoxFuture<'a, Result<SendReport, ZerobusError>> {
        Box::pin(async { Ok(SendReport::default()) })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async { Ok(()) })
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async { Ok(()) })
    }
}
