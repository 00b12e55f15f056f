//! Acknowledgements in arrival order, each sent only once its rows are durable: shared by
//! the gRPC EphemeralStream and the Arrow Flight DoPut service.
//!
//! The queue of messages waiting for their ack is bounded: when it is full the stream's
//! loop waits in [`AckTask::push`] instead of reading the next message, so slow commits,
//! delayed acks or a client that does not read its acks hold the client back through
//! HTTP/2 flow control rather than growing the server's memory.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Status;

use crate::catalog::Table;
use crate::faults::Faults;
use crate::landing::Commit;

/// One request message on its way to an acknowledgement.
pub(crate) struct Pending {
    /// The message's offset on its stream (connection).
    pub(crate) offset_id: i64,
    /// Rows in the message.
    pub(crate) rows: u64,
    /// The table the rows went to.
    pub(crate) table: Arc<Table>,
    /// Resolves once the rows are durable.
    pub(crate) commit: Commit,
}

/// What the ack task hands to the protocol side: a durable message, or a failed commit.
pub(crate) type Outcome = Result<Acked, Status>;

/// A durable message to acknowledge; the ack also covers earlier messages whose acks
/// were withheld.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acked {
    /// The message's offset on its stream.
    pub(crate) offset_id: i64,
    /// Rows durable on this stream so far, this message's included.
    pub(crate) records: u64,
}

/// A task that acknowledges a stream's messages in order, honouring the table's ack
/// faults (delayed or withheld acks).
pub(crate) struct AckTask {
    pending: mpsc::Sender<Pending>,
    task: JoinHandle<()>,
}

impl AckTask {
    /// Starts the task, which holds up to `capacity` messages waiting for their ack (at
    /// least one). `send` turns an outcome into the protocol's response and sends it; it
    /// returns `false` once the client is gone, which ends the task.
    pub(crate) fn spawn<S, F>(faults: Arc<Faults>, capacity: usize, send: S) -> Self
    where
        S: FnMut(Outcome) -> F + Send + 'static,
        F: Future<Output = bool> + Send + 'static,
    {
        let (pending, rx) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(run(rx, faults, send));
        Self { pending, task }
    }

    /// Queues a submitted message, waiting while the queue is full; its ack goes out after
    /// every earlier one.
    pub(crate) async fn push(&self, pending: Pending) {
        // The task ends before the stream only if the client is gone: nothing to ack then.
        let _ = self.pending.send(pending).await;
    }

    /// Ends the task: on a graceful end (the client half-closed) every outstanding ack
    /// goes out first; otherwise the remaining acks are dropped.
    pub(crate) async fn finish(self, graceful: bool) {
        drop(self.pending);
        if graceful {
            let _ = self.task.await;
        } else {
            self.task.abort();
        }
    }
}

async fn run<S, F>(mut pending: mpsc::Receiver<Pending>, faults: Arc<Faults>, mut send: S)
where
    S: FnMut(Outcome) -> F,
    F: Future<Output = bool>,
{
    let mut durable: u64 = 0;
    // Durable rows not covered by a sent ack yet (their acks were withheld).
    let mut unacked: u64 = 0;
    while let Some(p) = pending.recv().await {
        match p.commit.await {
            Ok(Ok(())) => p.table.count_committed(p.rows),
            Ok(Err(e)) => {
                send(Err(Status::internal(format!("commit failed: {e}")))).await;
                return;
            }
            Err(_) => return,
        }
        durable += p.rows;
        unacked += p.rows;
        let Some(delay) = faults.ack_delay() else {
            continue; // withheld
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // Counted before sending, so a client that saw the ack never reads a smaller count.
        p.table.count_acknowledged(std::mem::take(&mut unacked));
        let acked = Acked {
            offset_id: p.offset_id,
            records: durable,
        };
        if !send(Ok(acked)).await {
            return;
        }
    }
}
