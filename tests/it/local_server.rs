//! The local Zerobus server (feature `local`) against the unmodified official client.
//!
//! Records are sent with `databricks-zerobus-ingest-sdk` over real gRPC on loopback and the
//! table is read back from the server's memory landing, then compared value by value with
//! what was sent.
#![cfg(feature = "local")]

use std::sync::Arc;

use arrow::array::{
    Array, Int32Builder, Int64Array, ListBuilder, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::local::{Counters, Landing, LocalZerobus};
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request, zerobus_client::ZerobusClient,
};
use databricks_zerobus_ingest_sdk::{ZerobusError as SdkError, ZerobusSdk};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.events";

/// A server keeping rows in memory.
async fn memory_server() -> Result<LocalZerobus, Box<dyn std::error::Error>> {
    Ok(LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?)
}

/// The official SDK pointed at `server`: plaintext, no proxy.
fn sdk(server: &LocalZerobus) -> Result<ZerobusSdk, SdkError> {
    ZerobusSdk::builder()
        .endpoint(server.endpoint())
        .no_tls()
        .connector_factory(Arc::new(|_: &str| None))
        .build()
}

/// Asserts `actual` equals `expected`: schema, then column by column, naming the first
/// row that differs.
fn assert_same_rows(actual: &RecordBatch, expected: &RecordBatch) {
    assert_eq!(actual.schema(), expected.schema(), "schema");
    assert_eq!(actual.num_rows(), expected.num_rows(), "row count");
    for (i, field) in expected.schema().fields().iter().enumerate() {
        let (a, e) = (actual.column(i), expected.column(i));
        if a.to_data() != e.to_data() {
            let row = (0..e.len())
                .find(|&r| a.slice(r, 1).to_data() != e.slice(r, 1).to_data())
                .expect("some row differs");
            panic!(
                "column {}: row {row} differs: got {:?}, expected {:?}",
                field.name(),
                a.slice(row, 1),
                e.slice(row, 1)
            );
        }
    }
}

/// `rows` rows: id, name (every 7th null), tags (a list of 0..3 ints), ts (µs, UTC).
fn batch(rows: usize) -> RecordBatch {
    let item = Arc::new(Field::new("element", DataType::Int32, true));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("tags", DataType::List(Arc::clone(&item)), true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let ids = Int64Array::from_iter_values((0..rows as i64).map(|i| i * 3 - 1000));
    let names: StringArray = (0..rows)
        .map(|i| (i % 7 != 0).then(|| format!("name-{i}")))
        .collect();
    let mut tags = ListBuilder::new(Int32Builder::new()).with_field(item);
    for i in 0..rows {
        for t in 0..(i % 4) as i32 {
            tags.values().append_value(i as i32 + t);
        }
        tags.append(true);
    }
    let ts = TimestampMicrosecondArray::from_iter_values(
        (0..rows as i64).map(|i| 1_700_000_000_000_000 + i),
    )
    .with_timezone("UTC");
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(ids),
            Arc::new(names),
            Arc::new(tags.finish()),
            Arc::new(ts),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoder_records_land_as_the_rows_they_came_from() -> TestResult {
    const ROWS: usize = 10_000;
    let input = batch(ROWS);
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(TABLE, input.schema())
        .start()
        .await?;
    let schema = Arc::new(TableSchema::try_new(input.schema(), TABLE)?);
    let encoded = RowEncoder::new(Arc::clone(&schema)).encode(&input)?;
    assert_eq!(encoded.successful_count(), ROWS);
    let sent: Vec<Vec<u8>> = encoded.records().map(|(_, r)| r.to_vec()).collect();

    let sdk = sdk(&server)?;
    let mut stream = sdk
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .compiled_proto(schema.descriptor().clone())
        .build()
        .await?;
    let mut last = None;
    for chunk in sent.chunks(1000) {
        last = stream.ingest_records_offset(chunk.to_vec()).await?;
    }
    assert_eq!(last, Some(9), "one logical offset per ingest call");
    stream.flush().await?;
    stream.close().await?;

    assert_eq!(server.tables(), vec![TABLE.to_string()]);
    let counters = server.counters(TABLE);
    assert_eq!(
        (counters.received, counters.acknowledged),
        (ROWS as u64, ROWS as u64)
    );
    assert_same_rows(&server.read_table(TABLE).await?, &input);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_create_a_table_and_land() -> TestResult {
    let server = memory_server().await?;
    let sdk = sdk(&server)?;
    let mut stream = sdk
        .stream_builder()
        .table("cat.sch.json_events")
        .no_auth()
        .json()
        .build()
        .await?;
    let records: Vec<String> = (0..5).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
    // One record alone (`ingest_record`), then a batch (`ingest_record_batch`).
    stream
        .ingest_records_offset(vec![records[0].clone()])
        .await?;
    stream.ingest_records_offset(records[1..].to_vec()).await?;
    stream.flush().await?;
    stream.close().await?;

    let expected = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from_iter_values(0..5))],
    )?;
    assert_same_rows(&server.read_table("cat.sch.json_events").await?, &expected);
    let counters = server.counters("cat.sch.json_events");
    assert_eq!(
        counters,
        Counters {
            received: 5,
            committed: 5,
            acknowledged: 5,
            duplicates: 0,
        }
    );
    assert!(server.read_table("cat.sch.other").await.is_err());
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_table_name_is_a_terminal_invalid_argument() -> TestResult {
    let server = memory_server().await?;
    let sdk = sdk(&server)?;
    let err = sdk
        .stream_builder()
        .table("not_three_parts")
        .no_auth()
        .json()
        .build()
        .await
        .err()
        .expect("stream creation must fail");
    let SdkError::CreateStreamError(status) = &err else {
        panic!("unexpected error: {err:?}");
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("not_three_parts"),
        "{}",
        status.message()
    );
    assert!(server.tables().is_empty());
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_streams_are_rejected_naming_the_type() -> TestResult {
    let server = memory_server().await?;
    // The SDK is built without `avro`: speak the protocol with the generated client.
    let mut client = ZerobusClient::connect(server.endpoint()).await?;
    let create = pb::EphemeralStreamRequest {
        payload: Some(ephemeral_stream_request::Payload::CreateStream(
            pb::CreateIngestStreamRequest {
                table_name: Some(TABLE.into()),
                record_type: Some(pb::RecordType::Avro as i32),
                avro_schema_json: Some(r#"{"type":"record","name":"r","fields":[]}"#.into()),
                ..Default::default()
            },
        )),
    };
    let mut responses = client
        .ephemeral_stream(tokio_stream::iter(vec![create]))
        .await?
        .into_inner();
    let status = responses
        .message()
        .await
        .expect_err("AVRO must be rejected");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("AVRO"), "{}", status.message());

    let unimplemented = client
        .retire_stream(pb::RetireStreamRequest::default())
        .await
        .expect_err("RetireStream is not implemented");
    assert_eq!(unimplemented.code(), tonic::Code::Unimplemented);
    server.shutdown().await;
    Ok(())
}
