//! The local Zerobus server (feature `local`) against the unmodified official client.
//!
//! Records are encoded by our `RowEncoder`, sent with `databricks-zerobus-ingest-sdk` over
//! real gRPC on loopback, and read back from the server's memory landing.
#![cfg(feature = "local")]

use std::sync::Arc;

use arrow::array::{
    Array, Int32Builder, Int64Array, ListBuilder, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::local::{Counters, LocalZerobus, ReceivedRecord};
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request, zerobus_client::ZerobusClient,
};
use databricks_zerobus_ingest_sdk::{ZerobusError as SdkError, ZerobusSdk};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.events";

/// The official SDK pointed at `server`: plaintext, no proxy.
fn sdk(server: &LocalZerobus) -> Result<ZerobusSdk, SdkError> {
    ZerobusSdk::builder()
        .endpoint(server.endpoint())
        .no_tls()
        .connector_factory(Arc::new(|_: &str| None))
        .build()
}

/// `rows` rows: id, name (every 7th null), tags (a list of 0..3 ints), ts (µs, UTC).
fn batch(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("tags", DataType::new_list(DataType::Int32, true), true),
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
    let mut tags = ListBuilder::new(Int32Builder::new());
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

/// The message named like `schema`'s in a pool built from `schema`'s file, with the
/// message itself replaced by `descriptor`.
fn message_descriptor(
    schema: &TableSchema,
    descriptor: prost_types::DescriptorProto,
) -> MessageDescriptor {
    let mut set = schema.file_descriptor_set();
    set.file[0].message_type = vec![descriptor];
    let pool = DescriptorPool::from_file_descriptor_set(set).unwrap();
    pool.get_message_by_name(schema.message_name()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_lands_encoder_records_unchanged() -> TestResult {
    const ROWS: usize = 10_000;
    let server = LocalZerobus::builder().start().await?;
    let input = batch(ROWS);
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
    assert_eq!(
        server.counters(TABLE),
        Counters {
            received: ROWS as u64,
            acknowledged: ROWS as u64
        }
    );
    let received = server.records(TABLE);
    assert_eq!(received.len(), ROWS);

    // The descriptor that went over the wire is ours, and decodes every record like ours.
    let wire_descriptor = server
        .descriptor(TABLE)
        .expect("PROTO stream has a descriptor");
    assert_eq!(&wire_descriptor, schema.descriptor());
    let theirs = message_descriptor(&schema, wire_descriptor);
    let ours = message_descriptor(&schema, schema.descriptor().clone());

    let ids = input
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let names = input
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    for (row, record) in received.iter().enumerate() {
        let ReceivedRecord::Proto { bytes } = record else {
            panic!("row {row}: not a proto record: {record:?}");
        };
        assert_eq!(bytes, &sent[row], "row {row}: bytes changed on the way");
        let decoded = DynamicMessage::decode(theirs.clone(), bytes.as_slice())?;
        let expected = DynamicMessage::decode(ours.clone(), bytes.as_slice())?;
        for field in ours.fields() {
            let n = field.number();
            assert_eq!(
                decoded.has_field_by_number(n),
                expected.has_field_by_number(n),
                "row {row}: presence of {}",
                field.name()
            );
            assert_eq!(
                decoded.get_field_by_number(n),
                expected.get_field_by_number(n),
                "row {row}: {}",
                field.name()
            );
        }

        assert_eq!(
            *decoded.get_field_by_name("id").unwrap(),
            Value::I64(ids.value(row)),
            "row {row}: id"
        );
        if names.is_null(row) {
            assert!(
                !decoded.has_field_by_name("name"),
                "row {row}: name is null"
            );
        } else {
            assert_eq!(
                *decoded.get_field_by_name("name").unwrap(),
                Value::String(names.value(row).to_string()),
                "row {row}: name"
            );
        }
        let tags = decoded.get_field_by_name("tags").unwrap();
        let tags = tags.as_list().unwrap();
        assert_eq!(tags.len(), row % 4, "row {row}: tags");
        assert_eq!(
            *decoded.get_field_by_name("ts").unwrap(),
            Value::I64(1_700_000_000_000_000 + row as i64),
            "row {row}: ts"
        );
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_land_as_sent() -> TestResult {
    let server = LocalZerobus::builder().start().await?;
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

    let expected: Vec<ReceivedRecord> = records.into_iter().map(ReceivedRecord::Json).collect();
    assert_eq!(server.records("cat.sch.json_events"), expected);
    assert_eq!(server.descriptor("cat.sch.json_events"), None);
    assert_eq!(
        server.counters("cat.sch.json_events"),
        Counters {
            received: 5,
            acknowledged: 5
        }
    );
    assert!(server.records("cat.sch.other").is_empty());
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_table_name_is_a_terminal_invalid_argument() -> TestResult {
    let server = LocalZerobus::builder().start().await?;
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
    let server = LocalZerobus::builder().start().await?;
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
