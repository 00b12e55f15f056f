//! Hostile and out-of-order requests sent to the local server as raw gRPC and Arrow
//! Flight messages (the SDK's generated `ZerobusClient`, arrow-flight's generated
//! `FlightServiceClient`): each is refused with the status a client can act on, nothing
//! it carried lands, and the server goes on answering the next client.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::ipc::CompressionType;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightData, PutResult};
use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request::Payload as Request,
    ephemeral_stream_response::Payload as Response, ingest_record_batch_request::Batch,
    zerobus_client::ZerobusClient,
};
use futures::TryStreamExt as _;
use prost::Message as _;
use prost_types::field_descriptor_proto::Type as ProtoType;
use prost_types::DescriptorProto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};
use zerobus_local::{Landing, LocalZerobus};
use zerobus_test_support::data::deep_struct_batch;
use zerobus_test_support::descriptor::{field, message};
use zerobus_test_support::local::memory_server;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.hardening";

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names = StringArray::from_iter_values(ids.clone().map(|i| format!("name-{i}")));
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from_iter_values(ids)), Arc::new(names)],
    )
    .unwrap()
}

/// The status a call ends with, after any responses (OK if it ends cleanly).
async fn final_status<T>(responses: &mut tonic::Streaming<T>) -> Status {
    loop {
        match responses.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => return Status::ok(""),
            Err(status) => return status,
        }
    }
}

/// Asserts that a call sent `second` after offset 0 (3 rows) ended with `status`
/// refusing it, and that only offset 0's rows landed.
async fn assert_offset_refused(server: &LocalZerobus, status: Status, second: i64) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(
        status.message(),
        format!("offset_id {second} out of order: expected 1")
    );
    assert_eq!(landed(server, TABLE).await, (3, 3), "refused rows landed");
}

/// The rows of `table` that landed, and the records the server received for it.
async fn landed(server: &LocalZerobus, table: &str) -> (usize, u64) {
    let rows = server.read_table(table).await.map_or(0, |b| b.num_rows());
    (rows, server.counters(table).received)
}

// ---------------------------------------------------------------------------------------
// gRPC EphemeralStream

/// An EphemeralStream driven message by message.
struct RawStream {
    requests: mpsc::Sender<pb::EphemeralStreamRequest>,
    responses: tonic::Streaming<pb::EphemeralStreamResponse>,
}

impl RawStream {
    /// Sends `create_stream` and waits for its answer.
    async fn open(
        server: &LocalZerobus,
        create: pb::CreateIngestStreamRequest,
    ) -> Result<Self, Status> {
        let mut client = ZerobusClient::connect(server.endpoint())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (requests, rx) = mpsc::channel(8);
        let create = pb::EphemeralStreamRequest {
            payload: Some(Request::CreateStream(create)),
        };
        requests.send(create).await.expect("open");
        let mut responses = client
            .ephemeral_stream(ReceiverStream::new(rx))
            .await?
            .into_inner();
        match responses.message().await? {
            Some(pb::EphemeralStreamResponse {
                payload: Some(Response::CreateStreamResponse(_)),
            }) => Ok(Self {
                requests,
                responses,
            }),
            other => panic!("expected the create_stream response, got {other:?}"),
        }
    }

    async fn json(server: &LocalZerobus, table: &str) -> Result<Self, Status> {
        Self::open(
            server,
            pb::CreateIngestStreamRequest {
                table_name: Some(table.into()),
                record_type: Some(pb::RecordType::Json as i32),
                ..Default::default()
            },
        )
        .await
    }

    async fn send(&self, payload: Request) {
        let request = pb::EphemeralStreamRequest {
            payload: Some(payload),
        };
        self.requests.send(request).await.expect("the call is open");
    }

    /// Sends rows `ids` as one JSON batch request with `offset_id`.
    async fn send_json(&self, offset_id: i64, ids: std::ops::Range<i64>) {
        let records = ids
            .map(|i| format!(r#"{{"id":{i},"name":"name-{i}"}}"#))
            .collect();
        self.send(Request::IngestRecordBatch(pb::IngestRecordBatchRequest {
            offset_id: Some(offset_id),
            batch: Some(Batch::JsonBatch(pb::JsonRecordBatch { records })),
        }))
        .await;
    }

    /// The next acknowledged offset.
    async fn ack(&mut self) -> Result<i64, Status> {
        match self.responses.message().await? {
            Some(pb::EphemeralStreamResponse {
                payload: Some(Response::IngestRecordResponse(ack)),
            }) => Ok(ack.durability_ack_up_to_offset.expect("an offset")),
            other => panic!("expected an ack, got {other:?}"),
        }
    }

    async fn end(mut self) -> Status {
        final_status(&mut self.responses).await
    }
}

/// `offset_id`s sent as `offsets` on a JSON stream after offset 0 was acked: the call
/// ends with INVALID_ARGUMENT and only offset 0's rows land.
async fn grpc_offsets_refused(second: i64) -> TestResult {
    let server = memory_server(TABLE, schema()).await;
    let mut stream = RawStream::json(&server, TABLE).await?;
    stream.send_json(0, 0..3).await;
    assert_eq!(stream.ack().await?, 0);
    stream.send_json(second, 3..10).await;
    assert_offset_refused(&server, stream.end().await, second).await;

    // The next client is served.
    let mut next = RawStream::json(&server, TABLE).await?;
    next.send_json(0, 10..12).await;
    assert_eq!(next.ack().await?, 0);
    assert_eq!(landed(&server, TABLE).await, (5, 5));
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_offset_0_then_7_lands_only_offset_0() -> TestResult {
    grpc_offsets_refused(7).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_offset_0_twice_lands_it_once() -> TestResult {
    grpc_offsets_refused(0).await
}

fn proto_create(table: &str, descriptor: &DescriptorProto) -> pb::CreateIngestStreamRequest {
    pb::CreateIngestStreamRequest {
        table_name: Some(table.into()),
        record_type: Some(pb::RecordType::Proto as i32),
        descriptor_proto: Some(descriptor.encode_to_vec()),
        ..Default::default()
    }
}

/// `message R { R r = 1; }` for a table that does not exist yet: the descriptor → Arrow
/// conversion recursed until the stack overflowed and the process aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_referential_descriptor_is_refused_and_the_server_stays_up() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?;
    let recursive = message(
        "R",
        vec![
            field("id", 1, ProtoType::Int64, None),
            field("r", 2, ProtoType::Message, Some("R")),
        ],
    );
    let status = RawStream::open(&server, proto_create("cat.sch.recursive", &recursive))
        .await
        .err()
        .expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(
        status.message(),
        "descriptor_proto: field r: message R contains itself; a recursive message cannot be \
         a table column"
    );
    assert!(server.tables().is_empty(), "{:?}", server.tables());

    let mut next = RawStream::json(&server, TABLE).await?;
    next.send_json(0, 0..2).await;
    assert_eq!(next.ack().await?, 0);
    assert_eq!(landed(&server, TABLE).await, (2, 2));
    server.shutdown().await;
    Ok(())
}

/// The deepest descriptor the wrapper makes (64 levels) creates its table and lands its
/// record through the server's stream task; one level more is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deepest_allowed_descriptor_lands_and_one_level_more_is_refused() -> TestResult {
    use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
    use arrow_zerobus_sdk_wrapper::schema::{TableSchema, MAX_NESTING_DEPTH};
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?;
    let deep = "cat.sch.deep";
    let batch = deep_struct_batch(MAX_NESTING_DEPTH);
    let table = Arc::new(TableSchema::try_new(batch.schema(), deep)?);
    let encoded = RowEncoder::new(Arc::clone(&table)).encode(&batch)?;
    let records = encoded.records().map(|(_, r)| r.to_vec()).collect();
    let mut stream = RawStream::open(&server, proto_create(deep, table.descriptor())).await?;
    stream
        .send(Request::IngestRecordBatch(pb::IngestRecordBatchRequest {
            offset_id: Some(0),
            batch: Some(Batch::ProtoEncodedBatch(pb::ProtoEncodedRecordBatch {
                records,
            })),
        }))
        .await;
    assert_eq!(stream.ack().await?, 0);
    assert_eq!(server.read_table(deep).await?.column(0), batch.column(0));

    // One more level: the wrapper refuses to make it, so wrap the descriptor by hand.
    let mut deeper = table.descriptor().clone();
    deeper.name = Some("Inner".into());
    let mut outer = message(
        "Outer",
        vec![field("s", 1, ProtoType::Message, Some("Inner"))],
    );
    outer.nested_type = vec![deeper];
    let status = RawStream::open(&server, proto_create("cat.sch.deeper", &outer))
        .await
        .err()
        .expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(
        status
            .message()
            .ends_with(": nesting deeper than 64 levels of struct/list/map is not supported"),
        "{status}"
    );
    server.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Arrow Flight DoPut

/// A DoPut call driven message by message.
struct RawPut {
    requests: mpsc::Sender<FlightData>,
    responses: tonic::Streaming<PutResult>,
}

impl RawPut {
    /// Sends `schema` (a schema message) and waits for the ready signal.
    async fn open(server: &LocalZerobus, table: &str, schema: FlightData) -> Result<Self, Status> {
        let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
            .map_err(|e| Status::invalid_argument(e.to_string()))?
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut client = FlightServiceClient::new(channel);
        let (requests, rx) = mpsc::channel(8);
        requests.send(schema).await.expect("open");
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request.metadata_mut().insert(
            "x-databricks-zerobus-table-name",
            table.parse().expect("ASCII"),
        );
        let responses = client.do_put(request).await?.into_inner();
        let mut put = Self {
            requests,
            responses,
        };
        assert_eq!(put.ack().await?, (-1, 0), "the ready signal");
        Ok(put)
    }

    async fn send(&self, data: FlightData) {
        self.requests.send(data).await.expect("the call is open");
    }

    /// The next `(ack_up_to_offset, ack_up_to_records)`.
    async fn ack(&mut self) -> Result<(i64, u64), Status> {
        let result = self.responses.message().await?.expect("a response");
        let json: serde_json::Value = serde_json::from_slice(&result.app_metadata).unwrap();
        Ok((
            json["ack_up_to_offset"].as_i64().unwrap(),
            json["ack_up_to_records"].as_u64().unwrap(),
        ))
    }

    async fn end(mut self) -> Status {
        final_status(&mut self.responses).await
    }
}

/// `batch` as the SDK sends it: its schema message, then the batch tagged `offset_id`.
async fn flight_messages(
    batch: &RecordBatch,
    offset_id: i64,
    compression: Option<CompressionType>,
) -> (FlightData, FlightData) {
    let options = IpcWriteOptions::default()
        .try_with_compression(compression)
        .unwrap();
    let mut messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
        .with_options(options)
        .build(futures::stream::iter([Ok(batch.clone())]))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(messages.len(), 2, "a schema and one batch");
    let mut data = messages.pop().unwrap();
    data.app_metadata = format!(r#"{{"offset_id":{offset_id}}}"#)
        .into_bytes()
        .into();
    (messages.pop().unwrap(), data)
}

/// A DoPut of rows `ids` at offset 0, acked: the server still serves clients.
async fn flight_lands(server: &LocalZerobus, ids: std::ops::Range<i64>) -> TestResult {
    let rows = (ids.end - ids.start) as u64;
    let (schema, data) = flight_messages(&batch(ids), 0, None).await;
    let mut put = RawPut::open(server, TABLE, schema).await?;
    put.send(data).await;
    assert_eq!(put.ack().await?, (0, rows));
    Ok(())
}

async fn flight_offsets_refused(second: i64) -> TestResult {
    let server = memory_server(TABLE, schema()).await;
    let (schema, first) = flight_messages(&batch(0..3), 0, None).await;
    let mut put = RawPut::open(&server, TABLE, schema).await?;
    put.send(first).await;
    assert_eq!(put.ack().await?, (0, 3));
    put.send(flight_messages(&batch(3..10), second, None).await.1)
        .await;
    assert_offset_refused(&server, put.end().await, second).await;
    flight_lands(&server, 10..12).await?;
    assert_eq!(landed(&server, TABLE).await, (5, 5));
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_offset_0_then_7_lands_only_offset_0() -> TestResult {
    flight_offsets_refused(7).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_offset_0_twice_lands_it_once() -> TestResult {
    flight_offsets_refused(0).await
}

/// Sets the uncompressed-length prefix of the batch's buffer `index` (compressed).
fn declare_length(data: &mut FlightData, index: usize, declared: i64) {
    let message = arrow::ipc::root_as_message(&data.data_header).unwrap();
    let buffers = message.header_as_record_batch().unwrap().buffers().unwrap();
    let at = buffers.get(index).offset() as usize;
    let mut body = data.data_body.to_vec();
    body[at..at + 8].copy_from_slice(&declared.to_le_bytes());
    data.data_body = body.into();
}

/// Sends `data` after `schema` on a DoPut of a table created up front, and returns the
/// status the call ends with; nothing may land, and the next client must be served.
async fn flight_refusal(
    schema: FlightData,
    data: FlightData,
) -> Result<Status, Box<dyn std::error::Error>> {
    let server = memory_server(TABLE, self::schema()).await;
    let put = RawPut::open(&server, TABLE, schema).await?;
    put.send(data).await;
    let status = put.end().await;
    assert_eq!(landed(&server, TABLE).await, (0, 0), "refused rows landed");
    flight_lands(&server, 0..2).await?;
    assert_eq!(landed(&server, TABLE).await, (2, 2));
    server.shutdown().await;
    Ok(status)
}

/// An LZ4 (and a ZSTD) buffer declaring 1 TiB uncompressed, in a message of a few
/// hundred bytes: arrow-ipc allocated it up front and the process aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_buffer_declaring_1_tib_is_refused() -> TestResult {
    for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
        let (schema, mut data) = flight_messages(&batch(0..100), 0, Some(codec)).await;
        declare_length(&mut data, 1, 1 << 40);
        assert!(data.data_body.len() < 5_000, "{}", data.data_body.len());
        let status = flight_refusal(schema, data).await?;
        assert_eq!(status.code(), Code::InvalidArgument, "{codec:?}: {status}");
        assert_eq!(
            status.message(),
            "bad Arrow Flight data: record batch buffer 1 declares 1099511627776 bytes \
             uncompressed: the batch's buffers would take more than the limit of 134217728 \
             bytes (4 × max_decoding_message_size)"
        );
    }
    Ok(())
}

/// A record batch header with an empty body: an arrow-buffer slice assertion panicked in
/// the stream task, and the call ended with OK and no ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_header_with_an_empty_body_is_refused() -> TestResult {
    let (schema, mut data) = flight_messages(&batch(0..3), 0, None).await;
    data.data_body = Default::default();
    let status = flight_refusal(schema, data).await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(
        status.message(),
        "bad Arrow Flight data: record batch buffer 1: offset 0 and length 24 lie outside the \
         0-byte body"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_schema_message_is_refused() -> TestResult {
    let (schema, _) = flight_messages(&batch(0..1), 0, None).await;
    let status = flight_refusal(schema.clone(), schema).await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(status.message(), "schema sent twice on one DoPut");
    Ok(())
}
