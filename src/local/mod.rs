//! A local, in-process server that speaks the Zerobus gRPC protocol (feature `local`).
//!
//! [`LocalZerobus`] serves the `databricks.zerobus.Zerobus` service of the official
//! `databricks-zerobus-ingest-sdk` (its own generated server trait) on `127.0.0.1`, so the
//! **unmodified** official client can be pointed at it in tests: no workspace, no
//! credentials, no network beyond loopback.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use arrow_zerobus_sdk_wrapper::local::{LocalZerobus, ReceivedRecord};
//! use databricks_zerobus_ingest_sdk::ZerobusSdk;
//!
//! let server = LocalZerobus::builder().start().await?;
//! let sdk = ZerobusSdk::builder()
//!     .endpoint(server.endpoint())
//!     .no_tls()
//!     .connector_factory(Arc::new(|_: &str| None))
//!     .build()?;
//! let mut stream = sdk.stream_builder().table("cat.sch.t").no_auth().json().build().await?;
//! stream.ingest_records_offset(vec![r#"{"a":1}"#.to_string()]).await?;
//! stream.flush().await?;
//! stream.close().await?;
//! assert_eq!(server.records("cat.sch.t"), vec![ReceivedRecord::Json(r#"{"a":1}"#.into())]);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Scope of this first slice
//! - **EphemeralStream** with `PROTO` and `JSON` records: the stream is created by the first
//!   message, every record is stored, and each request message is acknowledged cumulatively
//!   once its records are stored. Other record types (Avro, unspecified) are rejected with
//!   `INVALID_ARGUMENT`; `PersistentStream` and `RetireStream` answer `UNIMPLEMENTED`.
//! - **Memory landing only**: records are kept per table in memory and read back with
//!   [`LocalZerobus::records`], [`LocalZerobus::descriptor`] and [`LocalZerobus::counters`].
//! - No authentication is checked (use the SDK's `testing` feature: `.no_tls()` and
//!   `.no_auth()`).
//!
//! Still to come: the Arrow Flight `DoPut` path, the OAuth token and Unity Catalog
//! endpoints, landing into Delta tables, and fault injection (close signals, errors,
//! delayed or withheld acks).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request, ephemeral_stream_response, ingest_record_batch_request,
    ingest_record_request,
    zerobus_server::{Zerobus, ZerobusServer},
    RecordType,
};
use prost::Message;
use prost_types::DescriptorProto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use crate::error::ZerobusError;

/// The default limit on one inbound gRPC message: 32 MiB.
///
/// The client sends up to 10 420 224 record bytes per request plus framing; tonic's own
/// default (4 MiB) would reject large requests with `OUT_OF_RANGE`, terminal for the client.
pub const DEFAULT_MAX_DECODING_MESSAGE_SIZE: usize = 32 << 20;

/// How long [`LocalZerobus::shutdown`] waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Capacity of the per-stream response channel (acks waiting for the client to read them).
const RESPONSE_BUFFER: usize = 1024;

/// One record as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivedRecord {
    /// A protobuf-encoded record of a `PROTO` stream; decode it with
    /// [`LocalZerobus::descriptor`].
    Proto {
        /// The encoded message, exactly as sent.
        bytes: Vec<u8>,
    },
    /// A record of a `JSON` stream, exactly as sent.
    Json(String),
}

/// Record counts of one table, over every stream that wrote to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records received and stored.
    pub received: u64,
    /// Records covered by an acknowledgement sent to the client.
    pub acknowledged: u64,
}

/// What the server holds for one table.
#[derive(Debug, Default)]
struct TableState {
    /// The descriptor of the last `PROTO` stream created for the table.
    descriptor: Option<DescriptorProto>,
    records: Vec<ReceivedRecord>,
    counters: Counters,
}

/// State shared by the gRPC service and the [`LocalZerobus`] handle.
#[derive(Debug, Default)]
struct Shared {
    tables: Mutex<HashMap<String, TableState>>,
    next_stream_id: AtomicU64,
}

impl Shared {
    fn tables(&self) -> MutexGuard<'_, HashMap<String, TableState>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Configures and starts a [`LocalZerobus`]; see [`LocalZerobus::builder`].
#[derive(Debug, Clone)]
pub struct LocalZerobusBuilder {
    max_decoding_message_size: usize,
}

impl Default for LocalZerobusBuilder {
    fn default() -> Self {
        Self {
            max_decoding_message_size: DEFAULT_MAX_DECODING_MESSAGE_SIZE,
        }
    }
}

impl LocalZerobusBuilder {
    /// The largest inbound gRPC message accepted, in bytes (default
    /// [`DEFAULT_MAX_DECODING_MESSAGE_SIZE`]). Larger messages fail the stream with
    /// `OUT_OF_RANGE`.
    pub fn max_decoding_message_size(mut self, bytes: usize) -> Self {
        self.max_decoding_message_size = bytes;
        self
    }

    /// Binds `127.0.0.1` on a free port and starts serving in a background task of the
    /// current tokio runtime.
    ///
    /// # Errors
    /// [`ZerobusError::ConnectionError`] if the port cannot be bound.
    pub async fn start(self) -> Result<LocalZerobus, ZerobusError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ZerobusError::ConnectionError(format!("local Zerobus: bind: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ZerobusError::ConnectionError(format!("local Zerobus: address: {e}")))?;
        let shared = Arc::new(Shared::default());
        let service = ZerobusServer::new(Service {
            shared: Arc::clone(&shared),
        })
        .max_decoding_message_size(self.max_decoding_message_size);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    // A dropped handle stops the server too.
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "local Zerobus server failed");
            }
        });
        tracing::debug!(%addr, "local Zerobus server listening");
        Ok(LocalZerobus {
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }
}

/// A running local Zerobus server; see the [module documentation](self).
///
/// Dropping the handle stops the server as well; [`LocalZerobus::shutdown`] also waits for
/// it to finish.
#[derive(Debug)]
pub struct LocalZerobus {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl LocalZerobus {
    /// A builder with the default settings.
    pub fn builder() -> LocalZerobusBuilder {
        LocalZerobusBuilder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to give the SDK: `http://127.0.0.1:PORT` (plaintext h2c, so the SDK
    /// needs `.no_tls()`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every record stored for `table`, in arrival order (empty for an unknown table).
    pub fn records(&self, table: &str) -> Vec<ReceivedRecord> {
        self.shared
            .tables()
            .get(table)
            .map(|t| t.records.clone())
            .unwrap_or_default()
    }

    /// The descriptor sent with the last `PROTO` stream created for `table`.
    pub fn descriptor(&self, table: &str) -> Option<DescriptorProto> {
        self.shared
            .tables()
            .get(table)
            .and_then(|t| t.descriptor.clone())
    }

    /// The record counts of `table` (zero for an unknown table).
    pub fn counters(&self, table: &str) -> Counters {
        self.shared
            .tables()
            .get(table)
            .map(|t| t.counters)
            .unwrap_or_default()
    }

    /// The tables that had at least one stream created, sorted.
    pub fn tables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.shared.tables().keys().cloned().collect();
        names.sort();
        names
    }

    /// Stops accepting connections and waits for the server to finish. Streams still open
    /// after a few seconds are cut off.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// The `Zerobus` gRPC service.
struct Service {
    shared: Arc<Shared>,
}

type ResponseSender<T> = mpsc::Sender<Result<T, Status>>;

#[tonic::async_trait]
impl Zerobus for Service {
    type EphemeralStreamStream = ReceiverStream<Result<pb::EphemeralStreamResponse, Status>>;

    async fn ephemeral_stream(
        &self,
        request: Request<Streaming<pb::EphemeralStreamRequest>>,
    ) -> Result<Response<Self::EphemeralStreamStream>, Status> {
        // The client waits for the response headers before it sends `create_stream`:
        // answer at once and read the requests in a task.
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Err(status) = run_ephemeral(&shared, inbound, &tx).await {
                tracing::debug!(%status, "local Zerobus: stream failed");
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type PersistentStreamStream = ReceiverStream<Result<pb::PersistentStreamResponse, Status>>;

    async fn persistent_stream(
        &self,
        _request: Request<Streaming<pb::PersistentStreamRequest>>,
    ) -> Result<Response<Self::PersistentStreamStream>, Status> {
        Err(Status::unimplemented(
            "PersistentStream is not implemented by the local Zerobus server",
        ))
    }

    async fn retire_stream(
        &self,
        _request: Request<pb::RetireStreamRequest>,
    ) -> Result<Response<pb::RetireStreamResponse>, Status> {
        Err(Status::unimplemented(
            "RetireStream is not implemented by the local Zerobus server",
        ))
    }
}

/// The record type an open stream accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Proto,
    Json,
}

/// Serves one EphemeralStream: create, then store and ack until the client half-closes.
///
/// `Ok` ends the response with status OK; `Err` is sent to the client as the final status.
async fn run_ephemeral(
    shared: &Shared,
    mut inbound: Streaming<pb::EphemeralStreamRequest>,
    tx: &ResponseSender<pb::EphemeralStreamResponse>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let create = match first.payload {
        Some(ephemeral_stream_request::Payload::CreateStream(create)) => create,
        _ => {
            return Err(Status::invalid_argument(
                "the first message of an EphemeralStream must be create_stream",
            ))
        }
    };
    let (table, kind) = open_stream(shared, create)?;
    let stream_id = format!(
        "local-{}",
        shared.next_stream_id.fetch_add(1, Ordering::Relaxed)
    );
    tracing::debug!(%table, %stream_id, ?kind, "local Zerobus: stream created");
    let created =
        ephemeral_stream_response::Payload::CreateStreamResponse(pb::CreateIngestStreamResponse {
            stream_id: Some(stream_id),
        });
    if !send(tx, created).await {
        return Ok(());
    }

    let mut expected_offset: i64 = 0;
    // `message()` returns `Ok(None)` on the client's half-close: finish with OK.
    while let Some(request) = inbound.message().await? {
        let (offset_id, records) = match request.payload {
            Some(ephemeral_stream_request::Payload::IngestRecord(r)) => {
                (r.offset_id, single_record(r.record, kind)?)
            }
            Some(ephemeral_stream_request::Payload::IngestRecordBatch(b)) => {
                (b.offset_id, batch_records(b.batch, kind)?)
            }
            Some(ephemeral_stream_request::Payload::CreateStream(_)) => {
                return Err(Status::invalid_argument(
                    "create_stream sent twice on one EphemeralStream",
                ))
            }
            None => return Err(Status::invalid_argument("empty EphemeralStream request")),
        };
        let offset_id = offset_id.ok_or_else(|| Status::invalid_argument("missing offset_id"))?;
        if offset_id != expected_offset {
            return Err(Status::invalid_argument(format!(
                "offset_id {offset_id} out of order: expected {expected_offset}"
            )));
        }
        expected_offset += 1;

        let count = records.len() as u64;
        {
            let mut tables = shared.tables();
            let state = tables.entry(table.clone()).or_default();
            state.records.extend(records);
            state.counters.received += count;
        }
        // Stored in memory = durable: acknowledge everything up to this message. Counted
        // before sending, so a client that saw the ack never reads a smaller count.
        if let Some(state) = shared.tables().get_mut(&table) {
            state.counters.acknowledged += count;
        }
        let ack =
            ephemeral_stream_response::Payload::IngestRecordResponse(pb::IngestRecordResponse {
                durability_ack_up_to_offset: Some(offset_id),
            });
        if !send(tx, ack).await {
            return Ok(());
        }
    }
    Ok(())
}

/// Validates `create_stream` and registers its table; returns the table and record type.
fn open_stream(
    shared: &Shared,
    create: pb::CreateIngestStreamRequest,
) -> Result<(String, StreamKind), Status> {
    let table = create.table_name.unwrap_or_default();
    validate_table_name(&table)?;
    let record_type = create.record_type.unwrap_or(RecordType::Unspecified as i32);
    let (kind, descriptor) = match RecordType::try_from(record_type) {
        Ok(RecordType::Proto) => {
            let bytes = create.descriptor_proto.ok_or_else(|| {
                Status::invalid_argument("record type PROTO needs descriptor_proto")
            })?;
            let descriptor = DescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                Status::invalid_argument(format!("descriptor_proto is not a DescriptorProto: {e}"))
            })?;
            (StreamKind::Proto, Some(descriptor))
        }
        Ok(RecordType::Json) => (StreamKind::Json, None),
        Ok(other) => {
            return Err(Status::invalid_argument(format!(
                "record type {} is not supported by the local Zerobus server \
                 (only PROTO and JSON)",
                other.as_str_name()
            )))
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown record type {record_type} (the local Zerobus server accepts \
                 PROTO and JSON)"
            )))
        }
    };
    let mut tables = shared.tables();
    let state = tables.entry(table.clone()).or_default();
    if descriptor.is_some() {
        state.descriptor = descriptor;
    }
    Ok((table, kind))
}

/// Accepts `catalog.schema.table` with three non-empty parts.
fn validate_table_name(table: &str) -> Result<(), Status> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "invalid table name {table:?}: expected catalog.schema.table"
        )))
    }
}

fn single_record(
    record: Option<ingest_record_request::Record>,
    kind: StreamKind,
) -> Result<Vec<ReceivedRecord>, Status> {
    use ingest_record_request::Record;
    match (record, kind) {
        (Some(Record::ProtoEncodedRecord(bytes)), StreamKind::Proto) => {
            Ok(vec![ReceivedRecord::Proto { bytes }])
        }
        (Some(Record::JsonRecord(json)), StreamKind::Json) => Ok(vec![ReceivedRecord::Json(json)]),
        (None, _) => Err(Status::invalid_argument("ingest_record without a record")),
        (Some(_), _) => Err(mismatch(kind)),
    }
}

fn batch_records(
    batch: Option<ingest_record_batch_request::Batch>,
    kind: StreamKind,
) -> Result<Vec<ReceivedRecord>, Status> {
    use ingest_record_batch_request::Batch;
    match (batch, kind) {
        (Some(Batch::ProtoEncodedBatch(b)), StreamKind::Proto) => Ok(b
            .records
            .into_iter()
            .map(|bytes| ReceivedRecord::Proto { bytes })
            .collect()),
        (Some(Batch::JsonBatch(b)), StreamKind::Json) => {
            Ok(b.records.into_iter().map(ReceivedRecord::Json).collect())
        }
        (None, _) => Err(Status::invalid_argument(
            "ingest_record_batch without a batch",
        )),
        (Some(_), _) => Err(mismatch(kind)),
    }
}

fn mismatch(kind: StreamKind) -> Status {
    let expected = match kind {
        StreamKind::Proto => "PROTO",
        StreamKind::Json => "JSON",
    };
    Status::invalid_argument(format!(
        "record does not match the stream's record type {expected}"
    ))
}

/// Sends one response; `false` if the client is gone.
async fn send(
    tx: &ResponseSender<pb::EphemeralStreamResponse>,
    payload: ephemeral_stream_response::Payload,
) -> bool {
    tx.send(Ok(pb::EphemeralStreamResponse {
        payload: Some(payload),
    }))
    .await
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(validate_table_name("a.b.c").is_ok());
        for bad in ["", "a.b", "a..c", "a.b.c.d", ".b.c"] {
            let err = validate_table_name(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }
}
