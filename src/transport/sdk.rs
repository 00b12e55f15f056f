//! [`SdkTransport`]: records over the official SDK's streams, in either format
//! ([`WireFormat`]): dynamic protobuf ([`Protobuf`], here) or Arrow Flight
//! ([`ArrowFlight`](super::flight::ArrowFlight)).
//!
//! Per table schema there are `multiplexed_streams` [`Lane`]s (each one shared stream at
//! a time; one by default). The lanes of at most `max_open_schemas` schemas stay open
//! ([`OpenSchemas`]): a new schema beyond that closes the least recently used idle one's.
//! A batch is cut into [chunks](super::chunk) of at most
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

/// The `multiplexed_streams` lanes of one schema.
type Lanes<S> = Arc<[Arc<Lane<S>>]>;

/// The lanes of the schemas seen lately, least recently used first, at most `max` of
/// them once idle (see [`WrapperConfiguration::with_max_open_schemas`]).
pub(crate) struct OpenSchemas<S: LaneStream> {
    /// Each schema (one that produced the lanes) with its lanes.
    known: Vec<(Arc<TableSchema>, Lanes<S>)>,
    max: usize,
}

impl<S: LaneStream> OpenSchemas<S> {
    fn new(max: usize) -> Self {
        Self {
            known: Vec::new(),
            max: max.max(1),
        }
    }

    /// The lanes of `schema` (the same pointer, or an equal descriptor), now the most
    /// recently used.
    fn get(
        &mut self,
        schema: &Arc<TableSchema>,
        same_stream: fn(&TableSchema, &TableSchema) -> bool,
    ) -> Option<Lanes<S>> {
        let index = self
            .known
            .iter()
            .position(|(seen, _)| Arc::ptr_eq(seen, schema) || same_stream(seen, schema))?;
        let entry = self.known.remove(index);
        let lanes = entry.1.clone();
        self.known.push(entry);
        Some(lanes)
    }

    /// Adds the lanes of a new schema (the most recently used) and takes out the least
    /// recently used idle schemas' lanes beyond `max`, for the caller to close.
    fn insert(&mut self, schema: Arc<TableSchema>, lanes: Lanes<S>) -> Vec<Arc<Lane<S>>> {
        self.known.push((schema, lanes));
        let mut evicted = Vec::new();
        let mut index = 0;
        while self.known.len() > self.max && index < self.known.len() - 1 {
            if is_idle(&self.known[index].1) {
                let (_, lanes) = self.known.remove(index);
                evicted.extend(lanes.iter().cloned());
            } else {
                index += 1;
            }
        }
        evicted
    }

    fn all(&self) -> Vec<Arc<Lane<S>>> {
        self.known
            .iter()
            .flat_map(|(_, lanes)| lanes.iter().cloned())
            .collect()
    }

    /// Schemas whose lanes are open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }
}

/// Whether no batch is in flight on `lanes`: nothing but the map holds them (a submit
/// holds the list while it queues; a delivery holds its lanes until it settles). Only
/// true under the map's lock, which every new holder takes first.
fn is_idle<S: LaneStream>(lanes: &Lanes<S>) -> bool {
    Arc::strong_count(lanes) == 1 && lanes.iter().all(|lane| Arc::strong_count(lane) == 1)
}

/// A transport over the official SDK's streams of format `F`.
pub(crate) struct SdkTransport<F: WireFormat> {
    sdk: Arc<ZerobusSdk>,
    settings: Arc<StreamSettings>,
    /// The lanes of the distinct schemas seen lately.
    lanes: Mutex<OpenSchemas<F::Stream>>,
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
            lanes: Mutex::new(OpenSchemas::new(config.max_open_schemas)),
            streams: config.multiplexed_streams.max(1),
            next_lane: AtomicUsize::new(0),
            tracker: Arc::new(Tracker::default()),
            format: PhantomData,
        })
    }

    /// The lanes of `schema`, created on first use; when that makes one schema too many,
    /// the streams of the least recently used idle schema are closed in the background
    /// (a task [`flush`](Transport::flush) and [`shutdown`](Transport::shutdown) wait for).
    fn lanes(&self, schema: &Arc<TableSchema>) -> Result<Lanes<F::Stream>, ZerobusError> {
        let mut open = self.open_schemas();
        if let Some(known) = open.get(schema, F::same_stream) {
            return Ok(known);
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
        let evicted = open.insert(schema.clone(), created.clone());
        drop(open);
        if !evicted.is_empty() {
            let ticket = Tracker::begin(&self.tracker);
            let table = self.settings.table.clone();
            tokio::spawn(async move {
                for lane in evicted {
                    if let Err(error) = lane.close().await {
                        tracing::warn!(%table, %error, "closing the stream of an idle schema failed");
                    }
                }
                drop(ticket);
            });
        }
        Ok(created)
    }

    fn open_schemas(&self) -> std::sync::MutexGuard<'_, OpenSchemas<F::Stream>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
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
            let lanes = self.open_schemas().all();
            for lane in lanes {
                result = result.and(lane.close().await);
            }
            self.open_schemas().known.clear();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// A schema with the one column `c<i>`.
    fn schema(i: usize) -> Arc<TableSchema> {
        let arrow = Schema::new(vec![Field::new(format!("c{i}"), DataType::Int64, true)]);
        Arc::new(TableSchema::try_new(Arc::new(arrow), "c.s.t").unwrap())
    }

    fn transport(max_open_schemas: usize) -> SdkTransport<Protobuf> {
        let config = WrapperConfiguration::new("http://127.0.0.1:1", "c.s.t")
            .with_multiplexed_streams(2)
            .with_max_open_schemas(max_open_schemas);
        SdkTransport::new(&config).unwrap()
    }

    #[tokio::test]
    async fn the_least_recently_used_idle_schemas_are_closed_beyond_the_bound() {
        let transport = transport(2);
        let schemas: Vec<_> = (0..5).map(schema).collect();
        let first = transport.lanes(&schemas[0]).unwrap();
        assert_eq!(first.len(), 2, "multiplexed_streams lanes per schema");
        drop(first);
        transport.lanes(&schemas[1]).unwrap();
        // Schema 0 used again: schema 1 is now the least recently used.
        let again = transport.lanes(&schemas[0]).unwrap();
        drop(again);
        transport.lanes(&schemas[2]).unwrap();
        assert_eq!(transport.open_schemas().len(), 2);
        let kept = transport.open_schemas().all();
        let zero = transport.lanes(&schemas[0]).unwrap();
        assert!(
            zero.iter()
                .all(|lane| kept.iter().any(|k| Arc::ptr_eq(k, lane))),
            "schema 0 was used more recently than schema 1 and kept its lanes"
        );
        drop(kept);
        // A schema in use (its lanes held, as by a submit or a delivery) is never closed,
        // so the bound is passed while it is busy.
        transport.lanes(&schemas[3]).unwrap();
        transport.lanes(&schemas[4]).unwrap();
        assert_eq!(transport.open_schemas().len(), 2);
        let busy = transport.lanes(&schemas[4]).unwrap();
        let busy_lane = Arc::clone(&busy[1]);
        drop(busy);
        transport.lanes(&schemas[1]).unwrap();
        transport.lanes(&schemas[2]).unwrap();
        assert_eq!(transport.open_schemas().len(), 3, "schema 4 is busy");
        let four = transport.lanes(&schemas[4]).unwrap();
        assert!(Arc::ptr_eq(&four[1], &busy_lane), "schema 4 kept its lanes");
        drop((four, busy_lane, zero));
        transport.lanes(&schemas[3]).unwrap();
        assert_eq!(
            transport.open_schemas().len(),
            2,
            "back within the bound once idle"
        );
        transport.flush().await.unwrap();
    }
}
