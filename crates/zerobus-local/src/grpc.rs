//! The `databricks.zerobus.Zerobus` gRPC service: EphemeralStream.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_response, zerobus_server, RecordType,
};
use prost::Message;
use prost_types::DescriptorProto;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, StdError};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use crate::acks::Acked;
use crate::catalog::Table;
use crate::decode::{JsonDecoder, ProtoDecoder};
use crate::faults::Faults;
use crate::inbound::{self, Protocol, Stored};
use crate::ingest::{self, EphemeralStreamRequest, IngestCodec, Payload, RecordSpans};
use crate::names::validate_table_name;
use crate::respond::{self, respond_in_task};
use crate::Shared;

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
                Some(stream) => {
                    let session = inbound::Session {
                        protocol: "gRPC",
                        table: stream.table_name.clone(),
                        token_expires_at: stream.token_expires_at,
                        faults: Arc::clone(&stream.faults),
                    };
                    inbound::serve(stream, session, &shared, &tx).await
                }
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
    /// When the stream's access token expires (`None`: auth disabled).
    token_expires_at: Option<Instant>,
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
    validate_table_name(&table_name)?;
    let token_expires_at = shared.auth.check(metadata, &table_name)?;
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
        token_expires_at,
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

impl Protocol for OpenStream {
    type Message = EphemeralStreamRequest;
    type Response = pb::EphemeralStreamResponse;

    async fn next(&mut self) -> Option<Result<EphemeralStreamRequest, Status>> {
        self.inbound.message().await.transpose()
    }

    fn offset(&self, request: &EphemeralStreamRequest) -> Result<Option<i64>, Status> {
        let offset_id = match &request.payload {
            Some(Payload::IngestRecord(r)) => r.offset_id,
            Some(Payload::IngestRecordBatch(b)) => b.offset_id,
            Some(Payload::CreateStream(_)) => {
                return Err(Status::invalid_argument(
                    "create_stream sent twice on one EphemeralStream",
                ))
            }
            None => return Err(Status::invalid_argument("empty EphemeralStream request")),
        };
        offset_id
            .map(Some)
            .ok_or_else(|| Status::invalid_argument("missing offset_id"))
    }

    /// Decodes one request message (its offset already checked) and hands its rows to
    /// the landing.
    fn store(&mut self, request: EphemeralStreamRequest) -> Result<Stored, Status> {
        let records = match request.payload {
            Some(Payload::IngestRecord(r)) => single_record(r.record)?,
            Some(Payload::IngestRecordBatch(b)) => batch_records(b.batch)?,
            _ => unreachable!("offset() accepts ingest requests only"),
        };
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
        Ok(Stored {
            rows,
            table,
            commit,
        })
    }

    fn close_signal(grace: Duration) -> pb::EphemeralStreamResponse {
        pb::EphemeralStreamResponse {
            payload: Some(close_signal(grace)),
        }
    }

    /// `durability_ack_up_to_offset`.
    fn ack(acked: Acked) -> pb::EphemeralStreamResponse {
        pb::EphemeralStreamResponse {
            payload: Some(ephemeral_stream_response::Payload::IngestRecordResponse(
                pb::IngestRecordResponse {
                    durability_ack_up_to_offset: Some(acked.offset_id),
                },
            )),
        }
    }
}

fn close_signal(grace: Duration) -> ephemeral_stream_response::Payload {
    ephemeral_stream_response::Payload::CloseStreamSignal(pb::CloseStreamSignal {
        duration: Some(prost_types::Duration {
            seconds: grace.as_secs() as i64,
            nanos: grace.subsec_nanos() as i32,
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

/// The `databricks.zerobus.Zerobus` gRPC service, routed as the generated
/// `ZerobusServer` routes it, with `EphemeralStream` decoded by [`IngestCodec`].
#[derive(Clone)]
pub(crate) struct ZerobusService {
    service: Arc<Service>,
    max_decoding_message_size: usize,
}

impl ZerobusService {
    /// Serves `service`, refusing inbound messages over `max_decoding_message_size` bytes.
    pub(crate) fn new(service: Service, max_decoding_message_size: usize) -> Self {
        Self {
            service: Arc::new(service),
            max_decoding_message_size,
        }
    }
}

impl NamedService for ZerobusService {
    const NAME: &'static str = zerobus_server::SERVICE_NAME;
}

impl<B> tonic::codegen::Service<http::Request<B>> for ZerobusService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let unimplemented = |message: &str| {
            let response = Status::unimplemented(message).into_http();
            Box::pin(async move { Ok(response) }) as Self::Future
        };
        match request.uri().path() {
            "/databricks.zerobus.Zerobus/EphemeralStream" => {
                let method = EphemeralStream(Arc::clone(&self.service));
                let max = self.max_decoding_message_size;
                Box::pin(async move {
                    let mut grpc =
                        Grpc::new(IngestCodec).apply_max_message_size_config(Some(max), None);
                    Ok(grpc.streaming(method, request).await)
                })
            }
            "/databricks.zerobus.Zerobus/PersistentStream" => {
                unimplemented("PersistentStream is not implemented by the local Zerobus server")
            }
            "/databricks.zerobus.Zerobus/RetireStream" => {
                unimplemented("RetireStream is not implemented by the local Zerobus server")
            }
            _ => unimplemented(""),
        }
    }
}

/// The `EphemeralStream` method.
struct EphemeralStream(Arc<Service>);

impl StreamingService<EphemeralStreamRequest> for EphemeralStream {
    type Response = pb::EphemeralStreamResponse;
    type ResponseStream = EphemeralStreamStream;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<Streaming<EphemeralStreamRequest>>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move { Ok(service.ephemeral_stream(request)) })
    }
}
