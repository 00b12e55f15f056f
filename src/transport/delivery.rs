//! What both SDK transports share once a batch is cut into chunks: queueing the chunks
//! on a [`Lane`], following each chunk's acknowledgement through stream recoveries, and
//! isolating the rows the server refuses.
//!
//! A chunk's payload is built from its input rows by the transport ([`Payloads`]), so the
//! same code resends a chunk (after its stream was lost) and sends halves of it (when
//! isolating refused rows), whatever the stream's format.
//!
//! # Server rejections (bisecting)
//! When the server ends a stream with `INVALID_ARGUMENT`, the requests it had not
//! acknowledged may hold the bad records or merely be queued behind them. Each such
//! chunk is then sent alone on fresh, private streams, halving the rows that are refused
//! until single rows remain: good rows land, refused single rows fail with the server's
//! message. A chunk may use at most [`MAX_ISOLATION_STREAMS`] streams for this; rows
//! still unresolved when the bound is reached fail as rejected, with a note saying so.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use databricks_zerobus_ingest_sdk::{OffsetId, ZerobusError as SdkError};
use tokio::sync::watch;

use super::chunk::Chunk;
use super::lane::{Generation, Lane, LaneStream, Placement};
use super::sdk_error::{from_sdk, is_rejection, rejected};
use super::{Delivery, SendReport};
use crate::error::ZerobusError;

/// Most private streams one chunk may open to isolate the records the server refuses
/// (about `2 × log2(rows)` per bad row).
pub(crate) const MAX_ISOLATION_STREAMS: u32 = 64;

/// Builds the payload of one ingest call from input row indices (ascending).
pub(crate) type Payloads<S> = Arc<dyn Fn(&[usize]) -> <S as LaneStream>::Payload + Send + Sync>;

/// Queues `chunks` in order, chunk `i` on `lanes[(first + i) % lanes.len()]`, and
/// returns the delivery that resolves when each is acknowledged or failed;
/// `failed_rows` are rows already known to fail.
///
/// The waiting runs on a spawned task, so a dropped delivery still completes and
/// `tracker` sees it end.
pub(crate) async fn queue<S: LaneStream>(
    lanes: &[Arc<Lane<S>>],
    first: usize,
    tracker: &Arc<Tracker>,
    chunks: Vec<Chunk>,
    mut failed_rows: Vec<(usize, ZerobusError)>,
    payloads: Payloads<S>,
) -> Delivery {
    let ticket = Tracker::begin(tracker);
    let mut queued = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let lane = Arc::clone(&lanes[(first + i) % lanes.len()]);
        match lane.ingest(|| payloads(&chunk.rows), 1).await {
            Ok(placed) => queued.push((chunk, lane, placed)),
            Err(error) => failed_rows.extend(fail_all(&chunk.rows, &error)),
        }
    }
    let task = tokio::spawn(async move {
        let mut report = SendReport {
            attempts: u32::from(!queued.is_empty()),
            failed_rows,
        };
        for (chunk, lane, placed) in queued {
            let (attempts, failed) = settle(&lane, &payloads, &chunk, placed).await;
            report.attempts = report.attempts.max(attempts);
            report.failed_rows.extend(failed);
        }
        drop(ticket);
        report
    });
    Box::pin(async move {
        task.await.unwrap_or_else(|join_error| SendReport {
            attempts: 0,
            failed_rows: vec![(
                0,
                ZerobusError::transmission(format!("delivery task ended abnormally: {join_error}")),
            )],
        })
    })
}

/// Waits until `chunk` is acknowledged, following it through stream recoveries.
/// Returns the attempts used and the rows that failed.
async fn settle<S: LaneStream>(
    lane: &Lane<S>,
    payloads: &Payloads<S>,
    chunk: &Chunk,
    placed: (Arc<Generation<S>>, OffsetId),
) -> (u32, Vec<(usize, ZerobusError)>) {
    let (mut generation, mut offset) = placed;
    let mut attempt = 1;
    loop {
        let Err(error) = generation.stream.wait_for_offset(offset).await else {
            return (attempt, Vec::new());
        };
        let recovery = lane.recover(&generation, error).await;
        let next = match recovery.placement(offset) {
            Ok(None) => return (attempt, Vec::new()),
            Err(error) | Ok(Some(Placement::Failed(error))) => {
                let error = error.clone();
                return (attempt, fail_all(&chunk.rows, &error));
            }
            Ok(Some(Placement::Moved {
                generation,
                offset,
                attempt: moved,
            })) => {
                attempt = *moved;
                (generation.clone(), *offset)
            }
            Ok(Some(Placement::Lost(error))) => {
                attempt += 1;
                if attempt > lane.retry().attempts {
                    let error = ZerobusError::retry_exhausted(format!(
                        "records not acknowledged after {} attempts: {error}",
                        attempt - 1
                    ))
                    .with_source(error.clone());
                    return (attempt - 1, fail_all(&chunk.rows, &error));
                }
                match lane.ingest(|| payloads(&chunk.rows), attempt).await {
                    Ok(placed) => placed,
                    Err(error) => return (attempt, fail_all(&chunk.rows, &error)),
                }
            }
            Ok(Some(Placement::Suspect)) => {
                let (streams, failed) = isolate(lane, payloads, &chunk.rows).await;
                return (attempt + streams, failed);
            }
        };
        (generation, offset) = next;
    }
}

/// Sends `rows` on private streams, halving the parts the server refuses, and returns
/// the streams used and the rows that failed (see the module docs).
async fn isolate<S: LaneStream>(
    lane: &Lane<S>,
    payloads: &Payloads<S>,
    rows: &[usize],
) -> (u32, Vec<(usize, ZerobusError)>) {
    let mut failed = Vec::new();
    let mut parts = vec![rows.to_vec()];
    let mut streams = 0;
    while let Some(part) = parts.pop() {
        if streams == MAX_ISOLATION_STREAMS {
            let error = ZerobusError::transmission(format!(
                "rejected by the server as part of a request whose bad records could not be \
                 isolated within {MAX_ISOLATION_STREAMS} streams"
            ));
            failed.extend(fail_all(&part, &error));
            continue;
        }
        streams += 1;
        match send_alone(lane, payloads(&part)).await {
            Ok(()) => {}
            Err(Err(error)) => failed.extend(fail_all(&part, &error)),
            Err(Ok(refusal)) if part.len() == 1 => {
                failed.push((part[0], rejected(&refusal)));
            }
            Err(Ok(_)) => {
                let (left, right) = part.split_at(part.len() / 2);
                parts.push(right.to_vec());
                parts.push(left.to_vec());
            }
        }
    }
    (streams, failed)
}

/// Sends `payload` on a private stream and waits for it. `Err(Ok(refusal))` when the
/// server refused it, `Err(Err(error))` for any other failure.
async fn send_alone<S: LaneStream>(
    lane: &Lane<S>,
    payload: S::Payload,
) -> Result<(), Result<SdkError, ZerobusError>> {
    let mut stream = lane.open_with_retry().await.map_err(Err)?;
    let outcome = match stream.ingest(payload).await {
        Ok(Some(offset)) => stream.wait_for_offset(offset).await,
        Ok(None) => Ok(()),
        // Refused by the SDK itself, before anything was sent: not the server's verdict.
        Err(error) if !stream.is_closed() => {
            let _ = stream.close().await;
            return Err(Err(from_sdk(&error)));
        }
        Err(error) => Err(error),
    };
    let closed = stream.close().await;
    match outcome.and(closed) {
        Ok(()) => Ok(()),
        Err(error) if is_rejection(&error) => Err(Ok(error)),
        Err(error) => Err(Err(from_sdk(&error))),
    }
}

/// `error` for each of `rows`.
pub(crate) fn fail_all(rows: &[usize], error: &ZerobusError) -> Vec<(usize, ZerobusError)> {
    rows.iter().map(|row| (*row, error.clone())).collect()
}

/// The deliveries in flight, so that `flush` can wait for those submitted before it.
#[derive(Debug)]
pub(crate) struct Tracker {
    next: AtomicU64,
    in_flight: watch::Sender<BTreeSet<u64>>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            next: AtomicU64::new(0),
            in_flight: watch::Sender::new(BTreeSet::new()),
        }
    }
}

/// One delivery in flight; dropping it (also when a submission is cancelled) ends it.
pub(crate) struct Ticket {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.tracker.in_flight.send_modify(|set| {
            set.remove(&self.id);
        });
    }
}

impl Tracker {
    /// Starts tracking a piece of work (a delivery, closing idle streams) until the
    /// returned ticket is dropped.
    pub(crate) fn begin(tracker: &Arc<Self>) -> Ticket {
        let id = tracker.next.fetch_add(1, Ordering::SeqCst);
        tracker.in_flight.send_modify(|set| {
            set.insert(id);
        });
        Ticket {
            tracker: tracker.clone(),
            id,
        }
    }

    /// Waits until every delivery begun before this call has ended.
    pub(crate) async fn wait_for_all_begun(&self) {
        let target = self.next.load(Ordering::SeqCst);
        let mut watcher = self.in_flight.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = watcher
            .wait_for(|set| set.first().is_none_or(|first| *first >= target))
            .await;
    }
}
