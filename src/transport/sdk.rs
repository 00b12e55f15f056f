//! [`SdkTransport`]: records over the official SDK's streams, in either format
//! ([`WireFormat`]): dynamic protobuf ([`Protobuf`], here) or Arrow Flight
//! ([`ArrowFlight`](super::flight::ArrowFlight)).
//!
//! Per table schema there are `multiplexed_streams` [`Lane`]s (each one shared stream at
//! a time; one by default). A batch is cut into [chunks](super::chunk) of at most
//! `max_request_bytes`, always under the SDK's payload limit; each chunk is one ingest
//! call. With several lanes, batches take the lanes in turn and a large batch is
//! [spread](super::chunk::spread) over all of them. [`Transport::submit`] returns once
//! every chunk is queued (so batches keep their
//! submission order on the stream); the returned delivery resolves when each chunk's own
//! offset is acknowledged ([`delivery`](super::delivery)), so concurrent callers pipeline
//! on one stream and a dropped delivery still completes.
//!
//! # Outcomes
//! Every row ends acknowledged or failed with its reason: too large for a request
//! (`ConversionError`, `RecordTooLarge`), retries exhausted (`RetryExhausted`), refused by
//! the server (`TransmissionError` "rejected by the server"), or an authentication or
//! connection error that retrying cannot fix.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use databricks_zerobus_ingest_sdk::{
    MessageDescriptor, StreamConfigurationOptions, ZerobusSdk, ZerobusStream,
};
use prost_reflect::DescriptorPool;
use secrecy::SecretString;

use super::chunk::{plan_chunks, spread, Chunk};
use super::delivery::{queue, Payloads, Tracker};
use super::lane::{Lane, LaneStream, ProtoPayload, StreamSettings};
use super::retry::RetryPolicy;
use super::sdk_error::from_sdk;
use super::{BoxFuture, Delivery, Transport};
use crate::config::{WrapperConfiguration, MIN_ROWS_PER_STREAM_PART};
use crate::encode::EncodedBatch;
use crate::error::ZerobusError;
use crate::schema::TableSchema;

/// The rows of one batch, ready for a lane: chunks, rows already known to fail, and how
/// to build a chunk's payload.
pub(crate) struct Prepared<S: LaneStream> {
    pub(crate) chunks: Vec<Chunk>,
    pub(crate) failed_rows: Vec<(usize, ZerobusError)>,
    pub(crate) payloads: Payloads<S>,
}

/// How batches travel on one kind of SDK stream.
pub(crate) trait WireFormat: Send + Sync + 'static {
    /// The SDK stream.
    type Stream: LaneStream;

    /// Whether [`prepare`](Self::prepare) reads the encoded records' bytes (else only
    /// their sizes and failures).
    const NEEDS_RECORDS: bool;

    /// What the lane of `schema` opens its streams with.
    fn stream_format(
        schema: &TableSchema,
    ) -> Result<<Self::Stream as LaneStream>::Format, ZerobusError>;

    /// Whether batches of schemas `a` and `b` can travel on the same streams: the same
    /// protobuf descriptor by default.
    fn same_stream(a: &TableSchema, b: &TableSchema) -> bool {
        a.descriptor() == b.descriptor()
    }

    /// Cuts the rows of `batch` that encoded into chunks ([`plan_chunks`]) of at most
    /// `request_bytes` encoded bytes, or one record within `payload_limit`.
    fn prepare(
        schema: &TableSchema,
        batch: &RecordBatch,
        encoded: &Arc<EncodedBatch>,
        request_bytes: usize,
        payload_limit: usize,
    ) -> Result<Prepared<Self::Stream>, ZerobusError>;
}

/// The dynamic-protobuf format: the encoder's records, as they are.
#[derive(Debug)]
pub(crate) struct Protobuf;

impl WireFormat for Protobuf {
    type Stream = ZerobusStream;
    const NEEDS_RECORDS: bool = true;

    fn stream_format(schema: &TableSchema) -> Result<MessageDescriptor, ZerobusError> {
        message_descriptor(schema)
    }

    fn prepare(
        _schema: &TableSchema,
        _batch: &RecordBatch,
        encoded: &Arc<EncodedBatch>,
        request_bytes: usize,
        payload_limit: usize,
    ) -> Result<Prepared<ZerobusStream>, ZerobusError> {
        let (chunks, failed_rows) = plan_chunks(encoded, request_bytes, payload_limit);
        let encoded = encoded.clone();
        let payloads: Payloads<ZerobusStream> =
            Arc::new(move |rows: &[usize]| ProtoPayload::Fresh(Chunk::records_of(rows, &encoded)));
        Ok(Prepared {
            chunks,
            failed_rows,
            payloads,
        })
    }
}

/// The lanes of one schema, and a schema that produced them.
type KnownLanes<F> = (Arc<TableSchema>, Lanes<<F as WireFormat>::Stream>);

/// The `multiplexed_streams` lanes of one schema.
type Lanes<S> = Arc<[Arc<Lane<S>>]>;

/// A transport over the official SDK's streams of format `F`.
pub(crate) struct SdkTransport<F: WireFormat> {
    sdk: Arc<ZerobusSdk>,
    settings: Arc<StreamSettings>,
    /// The lanes of each distinct schema (by pointer, then descriptor), with a schema
    /// that produced them.
    lanes: Mutex<Vec<KnownLanes<F>>>,
    /// Lanes per schema (`multiplexed_streams`).
    streams: usize,
    /// Which lane the next batch starts on.
    next_lane: AtomicUsize,
    tracker: Arc<Tracker>,
    format: PhantomData<F>,
}

impl<F: WireFormat> std::fmt::Debug for SdkTransport<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkTransport")
            .field("format", &std::any::type_name::<F>())
            .field("endpoint", &self.sdk.zerobus_endpoint)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<F: WireFormat> SdkTransport<F> {
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
            ZerobusError::configuration(format!("zerobus_endpoint: {}", from_sdk(&e)))
                .with_source(e)
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
            request_bytes: config.max_request_bytes,
            flight_compression: config.flight_ipc_compression.codec(),
            telemetry: crate::telemetry::Telemetry::from_config(config),
        };
        Ok(Self {
            sdk: Arc::new(sdk),
            settings: Arc::new(settings),
            lanes: Mutex::new(Vec::new()),
            streams: config.multiplexed_streams.max(1),
            next_lane: AtomicUsize::new(0),
            tracker: Arc::new(Tracker::default()),
            format: PhantomData,
        })
    }

    /// The lanes of `schema`, created on first use.
    fn lanes(&self, schema: &Arc<TableSchema>) -> Result<Lanes<F::Stream>, ZerobusError> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let known = lanes
            .iter()
            .find(|(seen, _)| Arc::ptr_eq(seen, schema) || F::same_stream(seen, schema));
        if let Some((_, known)) = known {
            return Ok(known.clone());
        }
        let format = F::stream_format(schema)?;
        let created: Lanes<F::Stream> = (0..self.streams)
            .map(|_| {
                Arc::new(Lane::new(
                    self.sdk.clone(),
                    self.settings.clone(),
                    format.clone(),
                ))
            })
            .collect();
        lanes.push((schema.clone(), created.clone()));
        Ok(created)
    }

    fn all_lanes(&self) -> Vec<Arc<Lane<F::Stream>>> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .iter()
            .flat_map(|(_, lanes)| lanes.iter().cloned())
            .collect()
    }
}

/// The SDK's message descriptor for `schema`, resolved from its file descriptor set.
fn message_descriptor(schema: &TableSchema) -> Result<MessageDescriptor, ZerobusError> {
    let pool =
        DescriptorPool::from_file_descriptor_set(schema.file_descriptor_set()).map_err(|e| {
            ZerobusError::transmission(format!("descriptor of {}: {e}", schema.message_name()))
                .with_source(e)
        })?;
    pool.get_message_by_name(schema.message_name())
        .ok_or_else(|| {
            ZerobusError::transmission(format!(
                "descriptor pool has no message {}",
                schema.message_name()
            ))
        })
}

impl<F: WireFormat> Transport for SdkTransport<F> {
    fn submit<'a>(
        &'a self,
        schema: &'a Arc<TableSchema>,
        batch: &'a RecordBatch,
        encoded: &'a Arc<EncodedBatch>,
    ) -> BoxFuture<'a, Result<Delivery, ZerobusError>> {
        Box::pin(async move {
            let lanes = self.lanes(schema)?;
            let settings = &self.settings;
            let prepared = F::prepare(
                schema,
                batch,
                encoded,
                settings.request_bytes,
                settings.payload_limit,
            )?;
            let chunks = spread(prepared.chunks, lanes.len(), MIN_ROWS_PER_STREAM_PART);
            let first = self.next_lane.fetch_add(chunks.len(), Ordering::Relaxed);
            Ok(queue(
                &lanes,
                first,
                &self.tracker,
                chunks,
                prepared.failed_rows,
                prepared.payloads,
            )
            .await)
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), ZerobusError>> {
        Box::pin(async move {
            self.tracker.wait_for_all_begun().await;
            Ok(())
        })
    }

    fn needs_records(&self) -> bool {
        F::NEEDS_RECORDS
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
