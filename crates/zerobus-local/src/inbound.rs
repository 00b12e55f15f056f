//! The life of an open ingest stream, the same for the gRPC `EphemeralStream` and the
//! Arrow Flight `DoPut`: read messages until the client half-closes; check each message's
//! offset before anything of it is stored (a refused message never lands); hand its rows
//! to the landing; acknowledge in order once durable; ask the client to rotate after the
//! stream lifetime; apply the table's record faults.
//!
//! A protocol says how its messages carry offsets and records ([`Protocol`]); [`serve`]
//! does the rest.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::Status;

use crate::acks::{AckTask, Acked, Pending};
use crate::catalog::Table;
use crate::faults::{Faults, RecordFault};
use crate::landing::Commit;
use crate::respond::ResponseSender;

/// What one wire protocol does with the messages of an open stream.
pub(crate) trait Protocol: Send {
    /// One message from the client.
    type Message: Send;
    /// One response to the client.
    type Response: Send + 'static;

    /// The next message; `None` once the client half-closed (`close()`, or before a
    /// reconnect).
    fn next(&mut self) -> impl Future<Output = Option<Result<Self::Message, Status>>> + Send;

    /// The offset of a message that carries records; `None` for one that carries none
    /// (skipped). A message that cannot be at this point of a stream is an error.
    fn offset(&self, message: &Self::Message) -> Result<Option<i64>, Status>;

    /// Checks and decodes the records of `message` and hands them to the landing.
    fn store(&mut self, message: Self::Message) -> Result<Stored, Status>;

    /// The response asking the client to rotate to a new stream.
    fn close_signal() -> Self::Response;

    /// The response acknowledging every message up to `acked`.
    fn ack(acked: Acked) -> Self::Response;
}

/// The rows of one message, handed to the landing.
pub(crate) struct Stored {
    /// How many.
    pub(crate) rows: u64,
    /// Where they went.
    pub(crate) table: Arc<Table>,
    /// Resolves once they are durable.
    pub(crate) commit: Commit,
}

/// Stores and acknowledges `protocol`'s messages until the client half-closes (then every
/// outstanding ack goes out before the response ends with OK) or the stream fails.
pub(crate) async fn serve<P: Protocol>(
    mut protocol: P,
    lifetime: Duration,
    faults: Arc<Faults>,
    tx: &ResponseSender<P::Response>,
) -> Result<(), Status> {
    let ack_tx = tx.clone();
    let acks = AckTask::spawn(Arc::clone(&faults), move |outcome| {
        let tx = ack_tx.clone();
        async move { tx.send(outcome.map(P::ack)).await.is_ok() }
    });
    let result = receive(&mut protocol, lifetime, &faults, tx, &acks).await;
    acks.finish(result.is_ok()).await;
    result
}

async fn receive<P: Protocol>(
    protocol: &mut P,
    lifetime: Duration,
    faults: &Faults,
    tx: &ResponseSender<P::Response>,
    acks: &AckTask,
) -> Result<(), Status> {
    let mut expected_offset: i64 = 0;
    let lifetime = tokio::time::sleep(lifetime);
    tokio::pin!(lifetime);
    let mut lifetime_signalled = false;
    loop {
        let message = tokio::select! {
            message = protocol.next() => message,
            () = &mut lifetime, if !lifetime_signalled => {
                lifetime_signalled = true;
                if !send(tx, P::close_signal()).await {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(message) = message else {
            return Ok(());
        };
        let message = message?;
        let Some(offset_id) = protocol.offset(&message)? else {
            continue;
        };
        if offset_id != expected_offset {
            return Err(Status::invalid_argument(format!(
                "offset_id {offset_id} out of order: expected {expected_offset}"
            )));
        }
        expected_offset += 1;
        let Stored {
            rows,
            table,
            commit,
        } = protocol.store(message)?;
        acks.push(Pending {
            offset_id,
            rows,
            table,
            commit,
        });
        match faults.after_records(rows) {
            RecordFault::None => {}
            RecordFault::Fail(status) => return Err(status),
            RecordFault::Close => {
                if !send(tx, P::close_signal()).await {
                    return Ok(());
                }
            }
        }
    }
}

/// Sends one response; `false` if the client is gone.
async fn send<T>(tx: &ResponseSender<T>, response: T) -> bool {
    tx.send(Ok(response)).await.is_ok()
}
