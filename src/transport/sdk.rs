//! [`SdkTransport`]: records over the official SDK's dynamic-protobuf streams.
//!
//! Per table schema there is one [`Lane`] (one shared stream at a time). A batch is cut
//! into [chunks](super::chunk) under the SDK's payload limit; each chunk is one
//! `ingest_records_offset` call. [`Transport::submit`] returns once every chunk is queued
//! (so batches keep their submission order on the stream); the returned delivery resolves
//! when each chunk's own offset is acknowledged, on a spawned task, so concurrent callers
//! pipeline on one stream and a dropped delivery still completes.
//!
//! # Outcomes
//! Every row ends acknowledged or failed with its reason: too large for a request
//! (`ConversionError`, `RecordTooLarge`), retries exhausted (`RetryExhausted`), refused by
//! the server (`TransmissionError` "rejected by the server"), or an authentication or
//! connection error that retrying cannot fix.
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
use std::sync::{Arc, Mutex};

use databricks_zerobus_ingest_sdk::{
    MessageDescriptor, StreamConfigurationOptions, ZerobusError as SdkError, ZerobusSdk,
};
use prost_reflect::DescriptorPool;
use secrecy::SecretString;
use tokio::sync::watch;

use super::chunk::{plan_chunks, Chunk};
use super::lane::{Generation, Lane, Placement, StreamSettings};
use super::retry::RetryPolicy;
use super::sdk_error::{from_sdk, is_rejection, rejected};
use super::{BoxFuture, Delivery, SendReport, Transport};
use crate::config::WrapperConfiguration;
use crate::encode::EncodedBatch;
use crate::error::ZerobusError;
use crate::schema::TableSchema;

/// Most private streams one chunk may open to isolate the records the server refuses
/// (about `2 × log2(rows)` per bad row).
pub(crate) const MAX_ISOLATION_STREAMS: u32 = 64;

/// The protobuf transport over the official SDK.
pub(crate) struct SdkTransport {
    sdk: Arc<ZerobusSdk>,
    settings: Arc<StreamSettings>,
    lanes: Mutex<Vec<Arc<Lane>>>,
    tracker: Arc<Tracker>,
}

impl std::fmt::Debug for SdkTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkTransport")
            .field("endpoint", &self.sdk.zerobus_endpoint)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SdkTransport {
    /// Builds the SDK client for `config` (no connection is made until the first batch).
    ///
    /// A plain `http://` endpoint is spoken to without TLS; on a loopback host proxies are
    /// bypassed too. With credentials, streams use OAuth against `unity_catalog_url`;
    /// without (only allowed for loopback), they send no authorization.
    pub(crate) fn new(config: &WrapperConfiguration) -> Result<Self, ZerobusError> {
        let endpoint = config.zerobus_endpoint.trim_end_matches('/').to_string();
        let mut builder = ZerobusSdk::builder().endpoint(endpoint.clone());
        if endpoint.starts_with("http://") {
            builder = builder.no_tls();
        }
        if crate::config::is_loopback_http(&endpoint) {
            builder = builder.connector_factory(Arc::new(|_: &str| None));
        }
        if let Some(url) = &config.unity_catalog_url {
            builder = builder.unity_catalog_url(url.trim_end_matches('/'));
        }
        let sdk = builder.build().map_err(|e| {
            ZerobusError::ConfigurationError(format!("zerobus_endpoint: {}", from_sdk(&e)))
        })?;
        let credentials = match (&config.client_id, config.client_secret_str()) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                Some((id.clone(), SecretString::from(secret.to_string())))
            }
            _ => None,
        };
        let settings = StreamSettings {
            table: config.table_name.clone(),
            credentials,
            retry: RetryPolicy::from_config(config),
            payload_limit: StreamConfigurationOptions::default().max_ingest_payload_bytes,
        };
        Ok(Self {
            sdk: Arc::new(sdk),
            settings: Arc::new(settings),
            lanes: Mutex::new(Vec::new()),
            tracker: Arc::new(Tracker::default()),
        })
    }

    /// The lane of `schema`'s descriptor, created on first use.
    fn lane(&self, schema: &TableSchema) -> Result<Arc<Lane>, ZerobusError> {
        let descriptor = message_descriptor(schema)?;
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lane) = lanes.iter().find(|lane| *lane.descriptor() == descriptor) {
            return Ok(lane.clone());
        }
        let lane = Arc::new(Lane::new(
            self.sdk.clone(),
            self.settings.clone(),
            descriptor,
        ));
        lanes.push(lane.clone());
        Ok(lane)
    }

    fn all_lanes(&self) -> Vec<Arc<Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The SDK's message descriptor for `schema`, resolved from its file descriptor set.
fn message_descriptor(schema: &TableSchema) -> Result<MessageDescriptor, ZerobusError> {
    let pool =
        DescriptorPool::from_file_descriptor_set(schema.file_descriptor_set()).map_err(|e| {
            ZerobusError::TransmissionError(format!("descriptor of {}: {e}", schema.message_name()))
        })?;
    pool.get_message_by_name(schema.message_name())
        .ok_or_else(|| {
            ZerobusError::TransmissionError(format!(
                "descriptor pool has no message {}",
                schema.message_name()
            ))
        })
}

impl Transport for SdkTransport {
    fn submit<'a>(
        &'a self,
        schema: &'a Arc<TableSchema>,
        encoded: &'a Arc<EncodedBatch>,
    ) -> BoxFuture<'a, Result<Delivery, ZerobusError>> {
        Box::pin(async move {
            let lane = self.lane(schema)?;
            let (chunks, mut failed_rows) = plan_chunks(encoded, self.settings.payload_limit);
            let ticket = Tracker::begin(&self.tracker);
            let mut queued = Vec::with_capacity(chunks.len());
            for chunk in chunks {
                match lane.ingest(|| chunk.records(encoded), 1).await {
                    Ok(placed) => queued.push((chunk, placed)),
                    Err(error) => failed_rows.extend(fail_all(&chunk.rows, &error)),
                }
            }
            let encoded = encoded.clone();
            let task = tokio::spawn(async move {
                let mut report = SendReport {
                    attempts: u32::from(!queued.is_empty()),
                    failed_rows,
                };
                for (chunk, placed) in queued {
                    let (attempts, failed) = settle(&lane, &encoded, &chunk, placed).await;
                    report.attempts = report.attempts.max(attempts);
                    report.failed_rows.extend(failed);
                }
                drop(ticket);
                report
            });
            let delivery: Delivery = Box::pin(async move {
                task.await.unwrap_or_else(|join_error| SendReport {
                    attempts: 0,
                    failed_rows: vec![(
                        0,
                        ZerobusError::TransmissionError(format!(
                            "delivery task ended abnormally: {join_error}"
                        )),
                    )],
                })
            });
            Ok(delivery)
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async move {
            self.tracker.wait_for_all_begun().await;
            Ok(())
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async move {
            self.tracker.wait_for_all_begun().await;
            let mut result = Ok(());
            for lane in self.all_lanes() {
                result = result.and(lane.close().await);
            }
            self.lanes.lock().unwrap_or_else(|p| p.into_inner()).clear();
            result
        })
    }
}

/// Waits until `chunk` is acknowledged, following it through stream recoveries.
/// Returns the attempts used and the rows that failed.
async fn settle(
    lane: &Lane,
    encoded: &EncodedBatch,
    chunk: &Chunk,
    placed: (Arc<Generation>, i64),
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
                    let error = ZerobusError::RetryExhausted(format!(
                        "records not acknowledged after {} attempts: {error}",
                        attempt - 1
                    ));
                    return (attempt - 1, fail_all(&chunk.rows, &error));
                }
                match lane.ingest(|| chunk.records(encoded), attempt).await {
                    Ok(placed) => placed,
                    Err(error) => return (attempt, fail_all(&chunk.rows, &error)),
                }
            }
            Ok(Some(Placement::Suspect)) => {
                let (streams, failed) = isolate(lane, encoded, &chunk.rows).await;
                return (attempt + streams, failed);
            }
        };
        (generation, offset) = next;
    }
}

/// Sends `rows` on private streams, halving the parts the server refuses, and returns
/// the streams used and the rows that failed (see the module docs).
async fn isolate(
    lane: &Lane,
    encoded: &EncodedBatch,
    rows: &[usize],
) -> (u32, Vec<(usize, ZerobusError)>) {
    let mut failed = Vec::new();
    let mut parts = vec![rows.to_vec()];
    let mut streams = 0;
    while let Some(part) = parts.pop() {
        if streams == MAX_ISOLATION_STREAMS {
            let error = ZerobusError::TransmissionError(format!(
                "rejected by the server as part of a request whose bad records could not be \
                 isolated within {MAX_ISOLATION_STREAMS} streams"
            ));
            failed.extend(fail_all(&part, &error));
            continue;
        }
        streams += 1;
        let chunk = Chunk { rows: part };
        match send_alone(lane, chunk.records(encoded)).await {
            Ok(()) => {}
            Err(Err(error)) => failed.extend(fail_all(&chunk.rows, &error)),
            Err(Ok(refusal)) if chunk.rows.len() == 1 => {
                failed.push((chunk.rows[0], rejected(chunk.rows[0], &refusal)));
            }
            Err(Ok(_)) => {
                let (left, right) = chunk.rows.split_at(chunk.rows.len() / 2);
                parts.push(right.to_vec());
                parts.push(left.to_vec());
            }
        }
    }
    (streams, failed)
}

/// Sends `records` on a private stream and waits for them. `Err(Ok(refusal))` when the
/// server refused them, `Err(Err(error))` for any other failure.
async fn send_alone(
    lane: &Lane,
    records: Vec<Vec<u8>>,
) -> Result<(), Result<SdkError, ZerobusError>> {
    let mut stream = lane.open_with_retry().await.map_err(Err)?;
    let outcome = match stream.ingest_records_offset(records).await {
        Ok(_) => stream.flush().await,
        Err(error) => Err(error),
    };
    let closed = stream.close().await;
    match outcome.and(closed) {
        Ok(()) => Ok(()),
        Err(error) if is_rejection(&error) => Err(Ok(error)),
        Err(error) => Err(Err(from_sdk(&error))),
    }
}

fn fail_all(rows: &[usize], error: &ZerobusError) -> Vec<(usize, ZerobusError)> {
    rows.iter().map(|row| (*row, error.clone())).collect()
}

/// The deliveries in flight, so that `flush` can wait for those submitted before it.
#[derive(Debug)]
struct Tracker {
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
struct Ticket {
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
    fn begin(tracker: &Arc<Self>) -> Ticket {
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
    async fn wait_for_all_begun(&self) {
        let target = self.next.load(Ordering::SeqCst);
        let mut watcher = self.in_flight.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = watcher
            .wait_for(|set| set.first().is_none_or(|first| *first >= target))
            .await;
    }
}
