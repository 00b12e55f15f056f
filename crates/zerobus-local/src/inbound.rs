//! The life of an open ingest stream, the same for the gRPC `EphemeralStream` and the
//! Arrow Flight `DoPut`: read messages until the client half-closes; check each message's
//! offset before anything of it is stored (a refused message never lands); hand its rows
//! to the landing; acknowledge in order once durable; ask the client to rotate after the
//! stream lifetime; apply the table's record faults.
//!
//! Its resources are bounded: at most [`Shared::max_unacked_requests`] messages wait for
//! their ack, and a landing with a full queue holds the stream back (see
//! [`Table::ready`]); the stream then stops reading, and HTTP/2 flow control holds the
//! client back. A stream opened with an access token lives no longer than the token: at
//! its expiry the client is asked to rotate (to a new stream, with a new token), and a
//! stream still open a close grace later ends with `UNAUTHENTICATED`.
//!
//! A protocol says how its messages carry offsets and records ([`Protocol`]); [`serve`]
//! does the rest.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Status;

use crate::acks::{AckTask, Acked, Pending};
use crate::catalog::Table;
use crate::faults::{Faults, RecordFault};
use crate::landing::Commit;
use crate::respond::ResponseSender;
use crate::Shared;

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

    /// The response asking the client to rotate to a new stream within `grace`.
    fn close_signal(grace: Duration) -> Self::Response;

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

/// An open stream, as its protocol opened it.
pub(crate) struct Session {
    /// `gRPC` or `Flight` (for the log).
    pub(crate) protocol: &'static str,
    /// `catalog.schema.table`.
    pub(crate) table: String,
    /// When the access token the stream was opened with expires (`None`: auth disabled).
    pub(crate) token_expires_at: Option<Instant>,
    /// The table's fault switches.
    pub(crate) faults: Arc<Faults>,
}

/// What a stream received, for the log.
#[derive(Debug, Default)]
struct Received {
    requests: u64,
    rows: u64,
}

/// Stores and acknowledges `protocol`'s messages until the client half-closes (then every
/// outstanding ack goes out before the response ends with OK) or the stream fails.
pub(crate) async fn serve<P: Protocol>(
    mut protocol: P,
    session: Session,
    shared: &Shared,
    tx: &ResponseSender<P::Response>,
) -> Result<(), Status> {
    let Session {
        protocol: name,
        table,
        token_expires_at,
        faults,
    } = session;
    tracing::info!(protocol = name, %table, "local Zerobus: stream opened");
    let ack_tx = tx.clone();
    let acks = AckTask::spawn(
        Arc::clone(&faults),
        shared.max_unacked_requests,
        move |outcome| {
            let tx = ack_tx.clone();
            async move { tx.send(outcome.map(P::ack)).await.is_ok() }
        },
    );
    let grace = shared.close_grace;
    let mut received = Received::default();
    let deadlines = Deadlines {
        lifetime: tokio::time::Instant::now() + shared.stream_lifetime,
        token_expiry: token_expires_at.map(tokio::time::Instant::from_std),
        grace,
    };
    let receiving = receive(&mut protocol, deadlines, &faults, tx, &acks, &mut received);
    let result = match deadlines.token_expiry {
        // The stream may be stuck waiting (on a full queue, a client that does not read):
        // the forced close does not wait for it.
        Some(expiry) => tokio::select! {
            result = receiving => result,
            () = tokio::time::sleep_until(expiry + grace) => Err(Status::unauthenticated(format!(
                "access token expired: the stream was asked to close when it expired and \
                 was still open {} s later (get a new token from /oidc/v1/token and open a \
                 new stream)",
                grace.as_secs_f64()
            ))),
        },
        None => receiving.await,
    };
    acks.finish(result.is_ok()).await;
    let Received { requests, rows } = received;
    match &result {
        Ok(()) => {
            tracing::info!(protocol = name, %table, requests, rows, "local Zerobus: stream closed")
        }
        Err(status) => tracing::warn!(
            protocol = name, %table, requests, rows, code = ?status.code(), message = status.message(),
            "local Zerobus: stream failed"
        ),
    }
    result
}

/// When a stream is asked to rotate, and how long it then has.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// The stream lifetime is over.
    lifetime: tokio::time::Instant,
    /// The access token expires.
    token_expiry: Option<tokio::time::Instant>,
    /// How long the client has to rotate after a close signal.
    grace: Duration,
}

async fn receive<P: Protocol>(
    protocol: &mut P,
    deadlines: Deadlines,
    faults: &Faults,
    tx: &ResponseSender<P::Response>,
    acks: &AckTask,
    received: &mut Received,
) -> Result<(), Status> {
    let mut expected_offset: i64 = 0;
    let lifetime = tokio::time::sleep_until(deadlines.lifetime);
    tokio::pin!(lifetime);
    // Without a token the branch is off; any instant does.
    let token_expiry =
        tokio::time::sleep_until(deadlines.token_expiry.unwrap_or(deadlines.lifetime));
    tokio::pin!(token_expiry);
    let mut lifetime_over = false;
    let mut token_expired = deadlines.token_expiry.is_none();
    // A close signal asks the client to rotate; one is enough.
    let mut close_signalled = false;
    loop {
        let message = tokio::select! {
            message = protocol.next() => Some(message),
            () = &mut lifetime, if !lifetime_over => {
                lifetime_over = true;
                None
            }
            () = &mut token_expiry, if !token_expired => {
                token_expired = true;
                None
            }
        };
        // `None`: time to rotate.
        let Some(message) = message else {
            if !close_signalled {
                close_signalled = true;
                if !send(tx, P::close_signal(deadlines.grace)).await {
                    return Ok(());
                }
            }
            continue;
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
        received.requests += 1;
        received.rows += rows;
        acks.push(Pending {
            offset_id,
            rows,
            table: Arc::clone(&table),
            commit,
        })
        .await;
        // A landing with a full queue holds the stream back here.
        table.ready().await;
        match faults.after_records(rows) {
            RecordFault::None => {}
            RecordFault::Fail(status) => return Err(status),
            RecordFault::Close => {
                close_signalled = true;
                if !send(tx, P::close_signal(deadlines.grace)).await {
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
