//! Where a table's rows go: the [`Sink`] a table hands its batches to, and what it
//! promises ([`Commit`]: resolved once the rows are durable). Rows kept in memory, or
//! dropped, here; the Delta landing in [`delta`].

pub(crate) mod delta;

use std::fmt::Debug;
use std::sync::Mutex;

use arrow::array::RecordBatch;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::error::LocalError;
use crate::lock;

/// Where the server puts the rows it receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Landing {
    /// One Delta table per Zerobus table under `<data_dir>/<catalog>/<schema>/<table>`;
    /// rows are acknowledged once their commit is written.
    #[default]
    Delta,
    /// Kept in memory for the life of the server; acknowledged once stored.
    Memory,
    /// Counted, then dropped; acknowledged at once (for client-side benchmarks).
    None,
}

/// Resolves once the rows handed to `Table::submit` are durable.
pub(crate) type Commit = oneshot::Receiver<Result<(), String>>;

/// One landing of one table. `submit` is called in arrival order and must keep it.
pub(crate) trait Sink: Send + Sync + Debug {
    /// Stores `batch`; the returned [`Commit`] resolves when it is durable.
    fn submit(&self, batch: RecordBatch) -> Commit;
    /// Everything durable so far, in commit order.
    fn read(&self) -> BoxFuture<'_, Result<Vec<RecordBatch>, LocalError>>;
    /// Makes everything submitted so far durable (or failed) now; resolves once done.
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Resolves once the landing has room for more: a stream waits on it after each
    /// submit, so a landing whose queue is full holds its writers back.
    fn ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Rows kept in memory: durable as soon as they are stored.
#[derive(Debug, Default)]
pub(crate) struct MemorySink {
    batches: Mutex<Vec<RecordBatch>>,
}

impl Sink for MemorySink {
    fn submit(&self, batch: RecordBatch) -> Commit {
        lock(&self.batches).push(batch);
        committed(Ok(()))
    }

    fn read(&self) -> BoxFuture<'_, Result<Vec<RecordBatch>, LocalError>> {
        let batches = lock(&self.batches).clone();
        Box::pin(async move { Ok(batches) })
    }
}

/// Rows dropped on arrival.
#[derive(Debug, Default)]
pub(crate) struct NoneSink;

impl Sink for NoneSink {
    fn submit(&self, _batch: RecordBatch) -> Commit {
        committed(Ok(()))
    }

    fn read(&self) -> BoxFuture<'_, Result<Vec<RecordBatch>, LocalError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A [`Commit`] that has already resolved.
pub(crate) fn committed(result: Result<(), String>) -> Commit {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(result);
    rx
}
