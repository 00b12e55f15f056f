//! The `databricks.zerobus.Zerobus` gRPC service: EphemeralStream.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_response, RecordType,
};
use prost::Message;
use prost_types::DescriptorProto;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::acks::{AckTask, Pending};
use super::catalog::Table;
use super::decode::{JsonDecoder, ProtoDecoder};
use super::faults::{Faults, RecordFault};
use super::ingest::{self, EphemeralStreamRequest, Payload, RecordSpans};
use super::respond::{self, respond_in_task};
use super::Shared;

/// How long a client may take to finish after a CloseStreamSignal.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

/// The `Zerobus` gRPC service.
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

type ResponseSender = respond::ResponseSender<pb::EphemeralStreamResponse>;

/// The response stream of an `EphemeralStream` call.
pub(crate) type EphemeralStreamStream = ReceiverStream<Result<pb::EphemeralStreamResponse, Status>>;

impl Service {
    /// Serves one `EphemeralStream` call (routed here by
    /// [`super::ingest::ZerobusService`]).
    pub(crate) fn ephemeral_stream(
        &self,
        request: Request<Streaming<EphemeralStreamRequest>>,
    ) -> Response<EphemeralStreamStream> {
        // The client waits for the response headers before it sends `create_stream`:
        // answer at once and read the requests in a task.
        let metadata = request.metadata().clone();
        let inbound = request.into_inner();
        let shared = Arc::clone(&self.shared);
        Response::new(respond_in_task("stream", |tx| async move {
            match open(&shared, &metadata, inbound, &tx).await? {
                Some(stream) => stream.run(&tx).await,
                None => Ok(()),
            }
        }))
    }
}

/// How an open stream turns records into rows.
enum Format {
    Proto(ProtoDecoder),
    Json(JsonDecoder),
}

/// An EphemeralStream after `create_stream`.
struct OpenStream {
    shared: Arc<Shared>,
    inbound: Streaming<EphemeralStreamRequest>,
    table_name: String,
    /// `None` for a JSON stream whose table is created from its first records.
    table: Option<Arc<Table>>,
    format: Format,
    faults: Arc<Faults>,
}

/// Reads `create_stream`, checks it, and answers it. `Ok(None)`: the client left first.
async fn open(
    shared: &Arc<Shared>,
    metadata: &tonic::metadata::MetadataMap,
    mut inbound: Streaming<EphemeralStreamRequest>,
    tx: &ResponseSender,
) -> Result<Option<OpenStream>, Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(None);
    };
    let Some(Payload::CreateStream(create)) = first.payload else {
        return Err(Status::invalid_argument(
            "the first message of an EphemeralStream must be create_stream",
        ));
    };
    let table_name = create.table_name.clone().unwrap_or_default();
    super::catalog::validate_table_name(&table_name)?;
    shared.auth.check(metadata, &table_name)?;
    let faults = shared.catalog.faults(&table_name);
    faults.on_create()?;
    let (format, table) = match record_type(&create)? {
        RecordType::Proto => {
            let bytes = create.descriptor_proto.unwrap_or_default();
            let descriptor = DescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                Status::invalid_argument(format!("descriptor_proto is not a DescriptorProto: {e}"))
            })?;
            let decoder = ProtoDecoder::new(descriptor)?;
            let table = shared
                .catalog
                .open_for_stream(&table_name, || decoder.table_schema())?;
            decoder.check(table.schema())?;
            (Format::Proto(decoder), Some(table))
        }
        // A JSON stream's table may be created from its first records, so only strict mode
        // can refuse it now.
        _ => {
            let table = shared.catalog.existing(&table_name)?;
            if let Some(table) = &table {
                table.count_stream();
            }
            (Format::Json(JsonDecoder), table)
        }
    };
    let stream_id = format!(
        "local-{}",
        shared.next_stream_id.fetch_add(1, Ordering::Relaxed)
    );
    tracing::debug!(table = %table_name, %stream_id, "local Zerobus: stream created");
    let created =
        ephemeral_stream_response::Payload::CreateStreamResponse(pb::CreateIngestStreamResponse {
            stream_id: Some(stream_id),
        });
    if !send(tx, created).await {
        return Ok(None);
    }
    Ok(Some(OpenStream {
        shared: Arc::clone(shared),
        inbound,
        table_name,
        table,
        format,
        faults,
    }))
}

/// The stream's record type: PROTO (with a descriptor) or JSON.
fn record_type(create: &pb::CreateIngestStreamRequest) -> Result<RecordType, Status> {
    let raw = create.record_type.unwrap_or(RecordType::Unspecified as i32);
    match RecordType::try_from(raw) {
        Ok(RecordType::Proto) if create.descriptor_proto.is_none() => Err(
            Status::invalid_argument("record type PROTO needs descriptor_proto"),
        ),
        Ok(t @ (RecordType::Proto | RecordType::Json)) => Ok(t),
        Ok(other) => Err(Status::invalid_argument(format!(
            "record type {} is not supported by the local Zerobus server (only PROTO and JSON)",
            other.as_str_name()
        ))),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown record type {raw} (the local Zerobus server accepts PROTO and JSON)"
        ))),
    }
}

impl OpenStream {
    /// Stores and acknowledges records until the client half-closes.
    async fn run(mut self, tx: &ResponseSender) -> Result<(), Status> {
        let acks = spawn_acks(Arc::clone(&self.faults), tx.clone());
        let result = self.receive(tx, &acks).await;
        // Half-close: every outstanding ack goes out before the response ends with OK.
        acks.finish(result.is_ok()).await;
        result
    }

    async fn receive(&mut self, tx: &ResponseSender, acks: &AckTask) -> Result<(), Status> {
        let mut expected_offset: i64 = 0;
        let lifetime = tokio::time::sleep(self.shared.stream_lifetime);
        tokio::pin!(lifetime);
        let mut lifetime_signalled = false;
        loop {
            let request = tokio::select! {
                request = self.inbound.message() => request?,
                () = &mut lifetime, if !lifetime_signalled => {
                    lifetime_signalled = true;
                    if !send(tx, close_signal()).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            // `None`: the client half-closed (close() or before a reconnect).
            let Some(request) = request else {
                return Ok(());
            };
            let (offset_id, rows) = self.store(request, acks)?;
            if offset_id != expected_offset {
                return Err(Status::invalid_argument(format!(
                    "offset_id {offset_id} out of order: expected {expected_offset}"
                )));
            }
            expected_offset += 1;
            match self.faults.after_records(rows) {
                RecordFault::None => {}
                RecordFault::Fail(status) => return Err(status),
                RecordFault::Close => {
                    if !send(tx, close_signal()).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Decodes one request message and hands its rows to the landing; returns its
    /// offset and row count.
    fn store(
        &mut self,
        request: EphemeralStreamRequest,
        acks: &AckTask,
    ) -> Result<(i64, u64), Status> {
        let (offset_id, records) = match request.payload {
            Some(Payload::IngestRecord(r)) => (r.offset_id, single_record(r.record)?),
            Some(Payload::IngestRecordBatch(b)) => (b.offset_id, batch_records(b.batch)?),
            Some(Payload::CreateStream(_)) => {
                return Err(Status::invalid_argument(
                    "create_stream sent twice on one EphemeralStream",
                ))
            }
            None => return Err(Status::invalid_argument("empty EphemeralStream request")),
        };
        let offset_id = offset_id.ok_or_else(|| Status::invalid_argument("missing offset_id"))?;
        self.faults.check_records(records.iter())?;
        let batch = match (&self.format, records) {
            (Format::Proto(decoder), Records::Proto(records)) => {
                let table = self.table.as_ref().expect("a PROTO stream has its table");
                let batch = decoder.decode(table.schema(), &records.slices())?;
                table.count_duplicate_records(records.iter());
                batch
            }
            (Format::Json(decoder), Records::Json(records)) => {
                let table = match &self.table {
                    Some(table) => Arc::clone(table),
                    None => {
                        let table = self
                            .shared
                            .catalog
                            .open_for_stream(&self.table_name, || decoder.infer_schema(&records))?;
                        self.table = Some(Arc::clone(&table));
                        table
                    }
                };
                let batch = decoder.decode(table.schema(), &records)?;
                table.count_duplicate_records(records.iter().map(String::as_bytes));
                batch
            }
            (Format::Proto(_), _) => return Err(mismatch("PROTO")),
            (Format::Json(_), _) => return Err(mismatch("JSON")),
        };
        let table = Arc::clone(self.table.as_ref().expect("opened above"));
        let rows = batch.num_rows() as u64;
        let commit = table.submit(batch);
        acks.push(Pending {
            offset_id,
            rows,
            table,
            commit,
        });
        Ok((offset_id, rows))
    }
}

/// The stream's ack task: `durability_ack_up_to_offset` per durable request message.
fn spawn_acks(faults: Arc<Faults>, tx: ResponseSender) -> AckTask {
    AckTask::spawn(faults, move |outcome| {
        let tx = tx.clone();
        async move {
            let response = outcome.map(|acked| pb::EphemeralStreamResponse {
                payload: Some(ephemeral_stream_response::Payload::IngestRecordResponse(
                    pb::IngestRecordResponse {
                        durability_ack_up_to_offset: Some(acked.offset_id),
                    },
                )),
            });
            tx.send(response).await.is_ok()
        }
    })
}

fn close_signal() -> ephemeral_stream_response::Payload {
    ephemeral_stream_response::Payload::CloseStreamSignal(pb::CloseStreamSignal {
        duration: Some(prost_types::Duration {
            seconds: CLOSE_GRACE.as_secs() as i64,
            nanos: 0,
        }),
    })
}

/// The records of one request message.
enum Records {
    /// Each a span of the received message.
    Proto(RecordSpans),
    Json(Vec<String>),
}

impl Records {
    /// The raw bytes of each record (the protobuf encoding or the JSON text).
    fn iter(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match self {
            Records::Proto(records) => Box::new(records.iter()),
            Records::Json(records) => Box::new(records.iter().map(String::as_bytes)),
        }
    }
}

fn single_record(record: Option<ingest::Record>) -> Result<Records, Status> {
    use ingest::Record;
    match record {
        Some(Record::Proto(bytes)) => Ok(Records::Proto(RecordSpans::single(bytes))),
        Some(Record::Json(json)) => Ok(Records::Json(vec![json])),
        Some(_) => Err(Status::invalid_argument(
            "only PROTO and JSON records are supported by the local Zerobus server",
        )),
        None => Err(Status::invalid_argument("ingest_record without a record")),
    }
}

fn batch_records(batch: Option<ingest::Batch>) -> Result<Records, Status> {
    use ingest::Batch;
    match batch {
        Some(Batch::Proto(message)) => RecordSpans::parse(message).map(Records::Proto),
        Some(Batch::Json(b)) => Ok(Records::Json(b.records)),
        Some(_) => Err(Status::invalid_argument(
            "only PROTO and JSON records are supported by the local Zerobus server",
        )),
        None => Err(Status::invalid_argument(
            "ingest_record_batch without a batch",
        )),
    }
}

fn mismatch(expected: &str) -> Status {
    Status::invalid_argument(format!(
        "record does not match the stream's record type {expected}"
    ))
}

/// Sends one response; `false` if the client is gone.
async fn send(tx: &ResponseSender, payload: ephemeral_stream_response::Payload) -> bool {
    tx.send(Ok(pb::EphemeralStreamResponse {
        payload: Some(payload),
    }))
    .await
    .is_ok()
}
