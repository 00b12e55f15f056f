//! One table schema's stream of the official SDK: creation with retry, ingest, and the
//! recovery that takes back a dead stream's unacknowledged records.
//!
//! The lane works the same for both kinds of SDK stream ([`LaneStream`]): the
//! dynamic-protobuf [`ZerobusStream`] and the Arrow Flight [`ZerobusArrowStream`].
//!
//! # Generations
//!
//! A [`Lane`] owns at most one open stream at a time, wrapped in a
//! [`Generation`]. Every sender ingests into the current generation (the SDK pipelines:
//! an ingest call only queues the records and returns their logical offset) and then waits
//! for that offset's acknowledgement on its own, so no call waits for another's batch.
//!
//! The SDK recovers from transient failures itself (reconnect and resend, configured from
//! the wrapper's retry settings). When a stream fails for good, the first waiter to notice
//! runs the generation's [`Recovery`] once: it waits until no ingest call is still running
//! on the dead stream, takes its unacknowledged records back with `get_unacked_batches`
//! (a suffix of its logical offsets, in order, since acknowledgements are cumulative), and
//! re-ingests them on a fresh stream, without copying them again. Every waiter then looks
//! up where its offset went ([`Placement`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arrow::array::RecordBatch;
use databricks_zerobus_ingest_sdk::{
    ArrowSchema, EncodedBatch as SdkBatch, MessageDescriptor, OffsetId, StreamBuilder,
    ZerobusArrowStream, ZerobusError as SdkError, ZerobusSdk, ZerobusStream,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, RwLock};

use super::retry::RetryPolicy;
use super::sdk_error::{exhausted, from_sdk, is_rejection};
use crate::error::ZerobusError;
use crate::telemetry::Telemetry;

/// What the lane needs of an SDK stream.
pub(crate) trait LaneStream: Sized + Send + Sync + 'static {
    /// What the stream is opened with (a message descriptor, an Arrow schema).
    type Format: Clone + Send + Sync + 'static;
    /// What one ingest call sends (one logical offset).
    type Payload: Send + 'static;

    /// Finishes `builder` (table, auth and recovery already set) for `format` and opens it.
    fn open(
        builder: StreamBuilder<'_>,
        format: &Self::Format,
    ) -> impl Future<Output = Result<Self, SdkError>> + Send;

    /// Queues `payload`; its logical offset, `None` if it held nothing.
    fn ingest(
        &self,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<Option<OffsetId>, SdkError>> + Send;

    /// Waits until `offset` is acknowledged.
    fn wait_for_offset(
        &self,
        offset: OffsetId,
    ) -> impl Future<Output = Result<(), SdkError>> + Send;

    /// Whether the stream ended (for good: the SDK's own recovery gave up or it was closed).
    fn is_closed(&self) -> bool;

    /// The payloads of a closed stream that were not acknowledged, one per logical offset,
    /// in offset order (a suffix of the offsets handed out).
    fn unacked(&self) -> impl Future<Output = Result<Vec<Self::Payload>, SdkError>> + Send;

    /// Flushes and closes.
    fn close(&mut self) -> impl Future<Output = Result<(), SdkError>> + Send;
}

/// A protobuf ingest call: the wrapper's encoded records, or a dead stream's request.
pub(crate) enum ProtoPayload {
    /// Records from the encoder.
    Fresh(Vec<Vec<u8>>),
    /// A request taken back from a dead stream (re-sent without copying).
    Unacked(SdkBatch),
}

impl LaneStream for ZerobusStream {
    type Format = MessageDescriptor;
    type Payload = ProtoPayload;

    async fn open(
        builder: StreamBuilder<'_>,
        format: &MessageDescriptor,
    ) -> Result<Self, SdkError> {
        builder.dynamic_proto(format.clone()).build().await
    }

    async fn ingest(&self, payload: ProtoPayload) -> Result<Option<OffsetId>, SdkError> {
        match payload {
            ProtoPayload::Fresh(records) => self.ingest_records_offset(records).await,
            ProtoPayload::Unacked(batch) => self.ingest_records_offset(batch).await,
        }
    }

    async fn wait_for_offset(&self, offset: OffsetId) -> Result<(), SdkError> {
        ZerobusStream::wait_for_offset(self, offset).await
    }

    fn is_closed(&self) -> bool {
        ZerobusStream::is_closed(self)
    }

    async fn unacked(&self) -> Result<Vec<ProtoPayload>, SdkError> {
        let batches = self.get_unacked_batches().await?;
        Ok(batches.into_iter().map(ProtoPayload::Unacked).collect())
    }

    async fn close(&mut self) -> Result<(), SdkError> {
        ZerobusStream::close(self).await
    }
}

impl LaneStream for ZerobusArrowStream {
    type Format = Arc<ArrowSchema>;
    type Payload = RecordBatch;

    async fn open(builder: StreamBuilder<'_>, format: &Arc<ArrowSchema>) -> Result<Self, SdkError> {
        builder.arrow(format.clone()).build_arrow().await
    }

    async fn ingest(&self, payload: RecordBatch) -> Result<Option<OffsetId>, SdkError> {
        self.ingest_batch(payload).await.map(Some)
    }

    async fn wait_for_offset(&self, offset: OffsetId) -> Result<(), SdkError> {
        ZerobusArrowStream::wait_for_offset(self, offset).await
    }

    fn is_closed(&self) -> bool {
        ZerobusArrowStream::is_closed(self)
    }

    async fn unacked(&self) -> Result<Vec<RecordBatch>, SdkError> {
        self.get_unacked_batches().await
    }

    async fn close(&mut self) -> Result<(), SdkError> {
        ZerobusArrowStream::close(self).await
    }
}

/// What every stream of the transport is opened with.
pub(crate) struct StreamSettings {
    pub(crate) table: String,
    pub(crate) credentials: Option<(String, SecretString)>,
    pub(crate) retry: RetryPolicy,
    pub(crate) payload_limit: usize,
    /// Most bytes of records per ingest call (`max_request_bytes`, within `payload_limit`).
    pub(crate) request_bytes: usize,
    /// Arrow IPC body compression (Arrow Flight streams only).
    pub(crate) flight_compression: Option<arrow::ipc::CompressionType>,
    pub(crate) telemetry: Telemetry,
}

impl std::fmt::Debug for StreamSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is never printed.
        f.debug_struct("StreamSettings")
            .field("table", &self.table)
            .field("oauth", &self.credentials.is_some())
            .field("retry", &self.retry)
            .field("payload_limit", &self.payload_limit)
            .field("request_bytes", &self.request_bytes)
            .field("flight_compression", &self.flight_compression)
            .finish()
    }
}

/// One open SDK stream and what the lane knows about it.
pub(crate) struct Generation<S> {
    pub(crate) stream: S,
    /// Ingest calls hold it shared; the recovery takes it exclusively, so that every
    /// offset the stream handed out is known before the unacked records are matched.
    gate: RwLock<()>,
    /// The highest logical offset handed out.
    last_offset: Mutex<Option<OffsetId>>,
    /// Offsets of records that are already resends, with their attempt count so far.
    resends: Mutex<HashMap<OffsetId, u32>>,
    recovery: OnceCell<Recovery<S>>,
}

impl<S> Generation<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            gate: RwLock::new(()),
            last_offset: Mutex::new(None),
            resends: Mutex::new(HashMap::new()),
            recovery: OnceCell::new(),
        }
    }

    fn record_offset(&self, offset: OffsetId, attempt: u32) {
        let mut last = lock(&self.last_offset);
        *last = Some(last.map_or(offset, |l| l.max(offset)));
        if attempt > 1 {
            lock(&self.resends).insert(offset, attempt);
        }
    }

    fn attempt_of(&self, offset: OffsetId) -> u32 {
        lock(&self.resends).get(&offset).copied().unwrap_or(1)
    }
}

/// Where the records of a dead stream's logical offset went.
pub(crate) enum Placement<S> {
    /// Re-ingested on a newer generation at this offset (`attempt` counts this send).
    Moved {
        generation: Arc<Generation<S>>,
        offset: OffsetId,
        attempt: u32,
    },
    /// Given up: every row of the request fails with this error.
    Failed(ZerobusError),
    /// Taken back but could not be re-ingested; the sender sends its own copy again.
    Lost(ZerobusError),
    /// The server refused a request of the stream and this one was not acknowledged: it
    /// may hold the records at fault, or just have been queued behind them.
    Suspect,
}

/// The outcome of a dead generation's recovery.
pub(crate) struct Recovery<S> {
    /// Offsets below this were acknowledged before the stream died.
    first_unacked: OffsetId,
    placements: Vec<Placement<S>>,
    /// Used when the stream could not be inspected (every offset gets it).
    all: Option<ZerobusError>,
}

impl<S> Recovery<S> {
    fn failed(error: ZerobusError) -> Self {
        Self {
            first_unacked: 0,
            placements: Vec::new(),
            all: Some(error),
        }
    }

    /// Where `offset` went; `None` if it was acknowledged.
    pub(crate) fn placement(
        &self,
        offset: OffsetId,
    ) -> Result<Option<&Placement<S>>, &ZerobusError> {
        if let Some(error) = &self.all {
            return Err(error);
        }
        if offset < self.first_unacked {
            return Ok(None);
        }
        let index = usize::try_from(offset - self.first_unacked).unwrap_or(usize::MAX);
        Ok(self.placements.get(index))
    }
}

/// The streams of one table schema.
pub(crate) struct Lane<S: LaneStream> {
    sdk: Arc<ZerobusSdk>,
    settings: Arc<StreamSettings>,
    format: S::Format,
    current: tokio::sync::Mutex<Slot<S>>,
}

struct Slot<S> {
    generation: Option<Arc<Generation<S>>>,
    /// Bumped on every creation attempt series; callers that queued behind a failed
    /// series get its error instead of starting another one.
    epoch: u64,
    last_failure: Option<ZerobusError>,
}

impl<S> Default for Slot<S> {
    fn default() -> Self {
        Self {
            generation: None,
            epoch: 0,
            last_failure: None,
        }
    }
}

impl<S: LaneStream> Lane<S> {
    pub(crate) fn new(
        sdk: Arc<ZerobusSdk>,
        settings: Arc<StreamSettings>,
        format: S::Format,
    ) -> Self {
        Self {
            sdk,
            settings,
            format,
            current: tokio::sync::Mutex::new(Slot::default()),
        }
    }

    pub(crate) fn retry(&self) -> RetryPolicy {
        self.settings.retry
    }

    /// Opens one stream with the transport's settings (no retry).
    async fn open_stream(&self) -> Result<S, SdkError> {
        let settings = &self.settings;
        let retry = settings.retry;
        let builder = self
            .sdk
            .stream_builder()
            .table(settings.table.clone())
            .recovery(true)
            .recovery_retries(retry.attempts - 1)
            .recovery_backoff_ms(u64::try_from(retry.base_delay.as_millis()).unwrap_or(u64::MAX))
            .max_ingest_payload_bytes(settings.payload_limit)
            .ipc_compression(settings.flight_compression);
        let builder = match &settings.credentials {
            Some((id, secret)) => builder.oauth(id.clone(), secret.expose_secret().to_string()),
            None => builder.no_auth(),
        };
        S::open(builder, &self.format).await
    }

    /// Opens a stream, retrying retryable failures with the wrapper's backoff.
    pub(crate) async fn open_with_retry(&self) -> Result<S, ZerobusError> {
        let (result, attempts) = self
            .settings
            .retry
            .run(
                || self.open_stream(),
                SdkError::is_retryable,
                "opening a Zerobus stream",
            )
            .await;
        self.settings.telemetry.retries(u64::from(attempts - 1));
        result.map_err(|error| exhausted(&error, attempts, "opening a Zerobus stream"))
    }

    /// The open generation, creating one (with retry) if there is none or it died.
    async fn current(&self) -> Result<Arc<Generation<S>>, ZerobusError> {
        let seen_epoch = self.current.lock().await.epoch;
        let mut slot = self.current.lock().await;
        if let Some(generation) = &slot.generation {
            if !generation.stream.is_closed() {
                return Ok(generation.clone());
            }
        }
        if slot.epoch != seen_epoch {
            if let Some(error) = &slot.last_failure {
                return Err(error.clone());
            }
        }
        slot.epoch += 1;
        match self.open_with_retry().await {
            Ok(stream) => {
                let generation = Arc::new(Generation::new(stream));
                if slot.generation.replace(generation.clone()).is_some() {
                    self.settings.telemetry.reconnect();
                }
                slot.last_failure = None;
                Ok(generation)
            }
            Err(error) => {
                slot.last_failure = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Queues `records` on the current stream (`attempt` = how many times these records
    /// have been sent, this time included) and returns where they went.
    ///
    /// A stream that died between lookup and ingest is replaced, up to the retry policy's
    /// attempts. The SDK consumes the records even when the ingest fails, so `records` is
    /// called again for each try.
    pub(crate) async fn ingest(
        &self,
        mut records: impl FnMut() -> S::Payload,
        attempt: u32,
    ) -> Result<(Arc<Generation<S>>, OffsetId), ZerobusError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.ingest_once(records(), attempt).await {
                Ok(placed) => return Ok(placed),
                Err(IngestFailure::Failed(error)) => return Err(error),
                Err(IngestFailure::Closed(error)) if tries >= self.settings.retry.attempts => {
                    return Err(exhausted(&error, tries, "queueing records"))
                }
                Err(IngestFailure::Closed(_)) => {}
            }
        }
    }

    /// One ingest call on the current stream.
    async fn ingest_once(
        &self,
        records: S::Payload,
        attempt: u32,
    ) -> Result<(Arc<Generation<S>>, OffsetId), IngestFailure> {
        let generation = self.current().await.map_err(IngestFailure::Failed)?;
        let _shared = generation.gate.read().await;
        match generation.stream.ingest(records).await {
            Ok(Some(offset)) => {
                generation.record_offset(offset, attempt);
                if attempt > 1 {
                    self.settings.telemetry.retries(1);
                }
                Ok((generation.clone(), offset))
            }
            Ok(None) => Err(IngestFailure::Failed(ZerobusError::transmission(
                "internal error: an empty request was queued",
            ))),
            Err(error) if generation.stream.is_closed() => Err(IngestFailure::Closed(error)),
            Err(error) => Err(IngestFailure::Failed(from_sdk(&error))),
        }
    }

    /// The recovery of `generation`, whose wait failed with `error`; run once, shared by
    /// every waiter.
    pub(crate) async fn recover<'g>(
        &self,
        generation: &'g Arc<Generation<S>>,
        error: SdkError,
    ) -> &'g Recovery<S> {
        generation
            .recovery
            .get_or_init(|| self.relocate(generation, error))
            .await
    }

    async fn relocate(&self, generation: &Arc<Generation<S>>, error: SdkError) -> Recovery<S> {
        let _exclusive = generation.gate.write().await;
        if !generation.stream.is_closed() {
            // The wait timed out on a stream that is still open: nothing can be taken back.
            return Recovery::failed(
                ZerobusError::transmission(format!("no acknowledgement from Zerobus: {error}"))
                    .with_source(error),
            );
        }
        let batches = match generation.stream.unacked().await {
            Ok(batches) => batches,
            Err(inspect) => {
                return Recovery::failed(
                    ZerobusError::transmission(format!(
                        "the stream failed ({error}) and its unacknowledged records could not \
                         be read back: {inspect}"
                    ))
                    .with_source(error),
                )
            }
        };
        let last = lock(&generation.last_offset).unwrap_or(-1);
        let count = OffsetId::try_from(batches.len()).unwrap_or(OffsetId::MAX);
        let first_unacked = last + 1 - count;
        tracing::warn!(
            table = %self.settings.table,
            %error,
            unacked_requests = batches.len(),
            "Zerobus stream failed; sending its unacknowledged records again"
        );
        if is_rejection(&error) {
            return Recovery {
                first_unacked,
                placements: batches.iter().map(|_| Placement::Suspect).collect(),
                all: None,
            };
        }
        let mut placements = Vec::with_capacity(batches.len());
        for (offset, batch) in (first_unacked..).zip(batches) {
            let attempt = generation.attempt_of(offset) + 1;
            if attempt > self.settings.retry.attempts {
                placements.push(Placement::Failed(
                    ZerobusError::retry_exhausted(format!(
                        "records not acknowledged after {} attempts: {error}",
                        attempt - 1
                    ))
                    .with_source(error.clone()),
                ));
                continue;
            }
            placements.push(match self.ingest_once(batch, attempt).await {
                Ok((generation, offset)) => Placement::Moved {
                    generation,
                    offset,
                    attempt,
                },
                Err(IngestFailure::Closed(lost)) => Placement::Lost(from_sdk(&lost)),
                // No stream could be opened, with retries: the records fail.
                Err(IngestFailure::Failed(error)) => Placement::Failed(error),
            });
        }
        Recovery {
            first_unacked,
            placements,
            all: None,
        }
    }

    /// Closes the current stream (after everything was acknowledged).
    ///
    /// The SDK's close can report an error although nothing is lost, e.g. when the server
    /// had just asked for a stream rotation (the Arrow stream then returns the rotation's
    /// `Unavailable` trigger even with every batch acknowledged), or when the stream died
    /// and its unacknowledged records were already taken over by a recovery (resent, or
    /// isolated on private streams after a rejection). Such an error is only returned
    /// when the closed stream still holds unacknowledged records nobody took over.
    pub(crate) async fn close(&self) -> Result<(), ZerobusError> {
        let generation = self.current.lock().await.generation.take();
        let Some(Ok(mut generation)) = generation.map(Arc::try_unwrap) else {
            // None open, or still referenced (a caller is mid-send): dropping our handle
            // is all we can do.
            return Ok(());
        };
        let Err(error) = generation.stream.close().await else {
            return Ok(());
        };
        if generation.recovery.initialized() {
            tracing::debug!(
                table = %self.settings.table,
                %error,
                "closed a failed Zerobus stream whose records a recovery took over"
            );
            return Ok(());
        }
        match generation.stream.unacked().await {
            Ok(unacked) if unacked.is_empty() => {
                tracing::debug!(
                    table = %self.settings.table,
                    %error,
                    "Zerobus stream closed with an error after every record was acknowledged"
                );
                Ok(())
            }
            _ => Err(from_sdk(&error)),
        }
    }
}

/// Why one ingest call failed.
enum IngestFailure {
    /// The stream died; another stream may take the records.
    Closed(SdkError),
    /// No stream could be opened, or the records themselves were refused.
    Failed(ZerobusError),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
