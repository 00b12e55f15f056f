//! The local Zerobus server (feature `local`) against the unmodified official client.
//!
//! Records are sent with `databricks-zerobus-ingest-sdk` over real gRPC on loopback and the
//! table is read back from the server's memory landing, then compared value by value with
//! what was sent.

mod every_type;

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, Int32Builder, Int64Array, ListBuilder, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request, zerobus_client::ZerobusClient,
};
use databricks_zerobus_ingest_sdk::ZerobusError as SdkError;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use zerobus_local::{Counters, Landing, LocalZerobus};
use zerobus_test_support::local::{heavy_test_slot, sdk, timestamp_field};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.events";

/// A server keeping rows in memory.
async fn memory_server() -> Result<LocalZerobus, Box<dyn std::error::Error>> {
    Ok(LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?)
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
        timestamp_field("ts", true),
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
    let mut expected_counters = Counters::default();
    expected_counters.received = 5;
    expected_counters.requests = 2;
    expected_counters.committed = 5;
    expected_counters.acknowledged = 5;
    expected_counters.streams_opened = 1;
    assert_eq!(counters, expected_counters);
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

/// Rows of the million-row tests (of [`every_type::LEAN`] columns), of the every-type
/// tests (all columns), and per ingest call.
const MILLION: usize = 1_000_000;
const EVERY_TYPE_ROWS: usize = 100_000;
const CHUNK: usize = 25_000;

/// How the records of a round trip are sent.
#[derive(Debug, Clone, Copy)]
enum Via {
    CompiledProto,
    DynamicProto,
    Json,
}

/// Sends `rows` rows of `columns` of the every-type table (created up front, landing in a
/// Delta table) in chunks of [`CHUNK`] via `via`, then reads the Delta table back and
/// compares it row for row.
async fn round_trip(via: Via, columns: &[&str], rows: usize) -> TestResult {
    let schema = every_type::project(columns);
    // The default landing: a real Delta table, read back from its Parquet files.
    let server = LocalZerobus::builder()
        .table(TABLE, Arc::clone(&schema))
        .start()
        .await?;
    let table_schema = Arc::new(TableSchema::try_new(Arc::clone(&schema), TABLE)?);
    let sdk = sdk(&server)?;
    let builder = sdk.stream_builder().table(TABLE).no_auth();
    let began = Instant::now();
    match via {
        Via::CompiledProto | Via::DynamicProto => {
            let builder = match via {
                Via::CompiledProto => builder.compiled_proto(table_schema.descriptor().clone()),
                _ => builder.dynamic_proto(packaged_descriptor(&table_schema)),
            };
            let mut stream = builder.build().await?;
            for start in (0..rows).step_by(CHUNK) {
                let batch = every_type::rows(&schema, start, CHUNK);
                let encoded = RowEncoder::new(Arc::clone(&table_schema)).encode(&batch)?;
                assert_eq!(encoded.successful_count(), CHUNK);
                let records: Vec<Vec<u8>> = encoded.records().map(|(_, r)| r.to_vec()).collect();
                stream.ingest_records_offset(records).await?;
            }
            stream.flush().await?;
            stream.close().await?;
        }
        Via::Json => {
            let mut stream = builder.json().build().await?;
            for start in (0..rows).step_by(CHUNK) {
                stream
                    .ingest_records_offset(json_chunk(&schema, start)?)
                    .await?;
            }
            stream.flush().await?;
            stream.close().await?;
        }
    }
    eprintln!(
        "{via:?}: {rows} rows of {} columns sent in {:?}",
        columns.len(),
        began.elapsed()
    );
    let landed = server.read_table(TABLE).await?;
    assert_eq!(landed.num_rows(), rows);
    for start in (0..rows).step_by(CHUNK) {
        assert_same_rows(
            &landed.slice(start, CHUNK),
            &every_type::rows(&schema, start, CHUNK),
        );
    }
    let counters = server.counters(TABLE);
    assert_eq!(
        (
            counters.received,
            counters.acknowledged,
            counters.duplicates
        ),
        (rows as u64, rows as u64, 0)
    );
    server.shutdown().await;
    Ok(())
}

/// Every column of the every-type table.
fn all_columns() -> Vec<String> {
    every_type::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

async fn round_trip_every_type(via: Via) -> TestResult {
    let columns = all_columns();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    round_trip(via, &columns, EVERY_TYPE_ROWS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_proto_lands_a_million_rows() -> TestResult {
    let _alone = heavy_test_slot().await;
    round_trip(Via::CompiledProto, &every_type::LEAN, MILLION).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_proto_lands_a_million_rows() -> TestResult {
    let _alone = heavy_test_slot().await;
    round_trip(Via::DynamicProto, &every_type::LEAN, MILLION).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lands_a_million_rows() -> TestResult {
    let _alone = heavy_test_slot().await;
    round_trip(Via::Json, &every_type::LEAN, MILLION).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_proto_lands_every_type() -> TestResult {
    round_trip_every_type(Via::CompiledProto).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_proto_lands_every_type() -> TestResult {
    round_trip_every_type(Via::DynamicProto).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lands_every_type() -> TestResult {
    round_trip_every_type(Via::Json).await
}

/// The message resolved from a file with a package, so its type references go over the
/// wire fully qualified (`.zerobus.test.events.Point`).
fn packaged_descriptor(schema: &TableSchema) -> MessageDescriptor {
    let mut set = schema.file_descriptor_set();
    set.file[0].package = Some("zerobus.test".into());
    let pool = DescriptorPool::from_file_descriptor_set(set).expect("a valid descriptor");
    pool.get_message_by_name(&format!("zerobus.test.{}", schema.message_name()))
        .expect("the message")
}

#[test]
fn dynamic_descriptors_carry_qualified_type_names() {
    let schema = TableSchema::try_new(every_type::schema(), TABLE).unwrap();
    let descriptor = packaged_descriptor(&schema);
    let names: Vec<&str> = descriptor
        .descriptor_proto()
        .field
        .iter()
        .filter_map(|f| f.type_name.as_deref())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with(".zerobus.test.")),
        "{names:?}"
    );
}

/// Rows `start..start + CHUNK` of `schema` as JSON objects. Even chunks carry timestamps
/// as microsecond integers, odd chunks as RFC 3339 strings.
fn json_chunk(schema: &SchemaRef, start: usize) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut batch = every_type::rows(schema, start, CHUNK);
    if (start / CHUNK).is_multiple_of(2) {
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut columns = batch.columns().to_vec();
        for (i, field) in schema.fields().iter().enumerate() {
            if matches!(field.data_type(), DataType::Timestamp(..)) {
                columns[i] = arrow::compute::cast(&columns[i], &DataType::Int64)?;
                fields[i] = Field::new(field.name(), DataType::Int64, true);
            }
        }
        batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    }
    let mut writer = arrow_json::LineDelimitedWriter::new(Vec::new());
    writer.write(&batch)?;
    writer.finish()?;
    let text = String::from_utf8(writer.into_inner())?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Sends `records` on a new JSON stream to `table`, flushes and closes.
async fn send_json(server: &LocalZerobus, table: &str, records: &[&str]) -> Result<(), SdkError> {
    let mut stream = sdk(server)?
        .stream_builder()
        .table(table)
        .no_auth()
        .json()
        .build()
        .await?;
    stream
        .ingest_records_offset(records.iter().map(|r| r.to_string()).collect::<Vec<_>>())
        .await?;
    stream.flush().await?;
    stream.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_values_in_each_accepted_form() -> TestResult {
    let schema = Arc::new(Schema::new(vec![
        timestamp_field("ts", true),
        timestamp_field("ts_ntz", false),
        Field::new("amount", DataType::Decimal128(10, 3), true),
        Field::new("day", DataType::Date32, true),
        Field::new("blob", DataType::Binary, true),
    ]));
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(TABLE, Arc::clone(&schema))
        .start()
        .await?;
    send_json(
        &server,
        TABLE,
        &[
            r#"{"ts":"2024-05-01T12:00:00Z","ts_ntz":"2024-05-01T12:00:00","amount":"-12.345","day":"2024-05-01","blob":"00ff"}"#,
            r#"{"ts":1714564800000000,"ts_ntz":1714564800000000,"amount":7.5,"day":19844}"#,
            r#"{"ts":"2024-05-01T14:00:00.000001+02:00"}"#,
        ],
    )
    .await?;
    const NOON: i64 = 1_714_564_800_000_000;
    let expected = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![NOON, NOON, NOON + 1]).with_timezone("UTC"),
            ),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(NOON),
                Some(NOON),
                None,
            ])),
            Arc::new(
                arrow::array::Decimal128Array::from(vec![Some(-12_345), Some(7_500), None])
                    .with_precision_and_scale(10, 3)?,
            ),
            Arc::new(arrow::array::Date32Array::from(vec![
                Some(19_844),
                Some(19_844),
                None,
            ])),
            Arc::new(arrow::array::BinaryArray::from(vec![
                Some(&[0u8, 255][..]),
                None,
                None,
            ])),
        ],
    )?;
    assert_same_rows(&server.read_table(TABLE).await?, &expected);

    // A key that is not a column, and a bad value, are terminal errors naming the record.
    for (record, named) in [(r#"{"nope":1}"#, "nope"), (r#"{"amount":"12.x"}"#, "12.x")] {
        let err = send_json(&server, TABLE, &[r#"{}"#, record])
            .await
            .expect_err("a bad record must fail the stream");
        let text = err.to_string();
        assert!(text.contains("record 1") && text.contains(named), "{text}");
    }
    server.shutdown().await;
    Ok(())
}

/// A table with a NOT NULL `id` and a `name`.
fn small_table() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// The error of building a PROTO stream for `columns` (message named after `table`).
async fn proto_stream_error(
    server: &LocalZerobus,
    columns: Vec<Field>,
    table: &str,
) -> Result<tonic::Status, Box<dyn std::error::Error>> {
    let schema = TableSchema::try_new(Arc::new(Schema::new(columns)), table)?;
    let err = sdk(server)?
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .compiled_proto(schema.descriptor().clone())
        .build()
        .await
        .err()
        .ok_or("stream creation should fail")?;
    match err {
        SdkError::CreateStreamError(status) => Ok(status),
        other => Err(format!("unexpected error: {other:?}").into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_descriptors_are_rejected_naming_the_field() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(TABLE, small_table())
        .start()
        .await?;
    let id = Field::new("id", DataType::Int64, false);
    let name = Field::new("name", DataType::Utf8, true);
    let cases = [
        (
            vec![
                id.clone(),
                name.clone(),
                Field::new("extra", DataType::Int32, true),
            ],
            "extra",
        ),
        (
            vec![id.clone(), Field::new("name", DataType::Int64, true)],
            "name",
        ),
        (vec![Field::new("id", DataType::Utf8, false)], "id"),
        (vec![name.clone()], "id"),
    ];
    for (columns, named) in cases {
        let status = proto_stream_error(&server, columns, TABLE).await?;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(named), "{}", status.message());
    }
    // Message names do not matter, and a subset of the nullable columns is fine.
    let schema = TableSchema::try_new(Arc::new(Schema::new(vec![id])), "x.y.other_name")?;
    let mut stream = sdk(&server)?
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .compiled_proto(schema.descriptor().clone())
        .build()
        .await?;
    let input = RecordBatch::try_new(
        Arc::clone(schema.arrow_schema()),
        vec![Arc::new(Int64Array::from(vec![5, -6]))],
    )?;
    let encoded = RowEncoder::new(Arc::new(schema)).encode(&input)?;
    stream
        .ingest_records_offset(
            encoded
                .records()
                .map(|(_, r)| r.to_vec())
                .collect::<Vec<_>>(),
        )
        .await?;
    stream.flush().await?;
    stream.close().await?;
    let expected = RecordBatch::try_new(
        small_table(),
        vec![
            Arc::new(Int64Array::from(vec![5, -6])),
            Arc::new(StringArray::from(vec![None::<&str>, None])),
        ],
    )?;
    assert_same_rows(&server.read_table(TABLE).await?, &expected);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_a_not_null_column_fails_the_stream() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(TABLE, small_table())
        .start()
        .await?;
    // The descriptor has `id` (nullable on the client side), the second record omits it.
    let client_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let schema = Arc::new(TableSchema::try_new(Arc::clone(&client_schema), TABLE)?);
    let input = RecordBatch::try_new(
        client_schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec!["a", "b"])),
        ],
    )?;
    let encoded = RowEncoder::new(Arc::clone(&schema)).encode(&input)?;
    let stream = sdk(&server)?
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .compiled_proto(schema.descriptor().clone())
        .build()
        .await?;
    let sent = stream
        .ingest_records_offset(
            encoded
                .records()
                .map(|(_, r)| r.to_vec())
                .collect::<Vec<_>>(),
        )
        .await;
    let err = match sent {
        Ok(_) => stream.flush().await.expect_err("the stream must fail"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains("record 1") && text.contains("column id"),
        "{text}"
    );
    assert_eq!(server.counters(TABLE).received, 0);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_rejects_unknown_tables_with_not_found() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .strict(true)
        .table(TABLE, small_table())
        .start()
        .await?;
    let schema = TableSchema::try_new(small_table(), TABLE)?;
    let err = sdk(&server)?
        .stream_builder()
        .table("cat.sch.unknown")
        .no_auth()
        .compiled_proto(schema.descriptor().clone())
        .build()
        .await
        .err()
        .expect("an unknown table must be rejected");
    let SdkError::CreateStreamError(status) = &err else {
        panic!("unexpected error: {err:?}");
    };
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    // JSON streams too, at stream creation.
    let err = send_json(&server, "cat.sch.unknown", &[r#"{"id":1}"#])
        .await
        .expect_err("an unknown table must be rejected");
    let SdkError::CreateStreamError(status) = &err else {
        panic!("a JSON stream must fail at creation, got: {err:?}");
    };
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("does not exist"), "{status:?}");
    // The known table works.
    send_json(&server, TABLE, &[r#"{"id":1}"#]).await?;
    assert_eq!(server.tables(), vec![TABLE.to_string()]);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_twice_are_counted_as_duplicates() -> TestResult {
    let server = memory_server().await?;
    let records: Vec<String> = (0..10).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    send_json(&server, "cat.sch.json", &refs).await?;
    send_json(&server, "cat.sch.json", &refs[..4]).await?;
    send_json(&server, "cat.sch.json", &[r#"{"id":10}"#]).await?;
    let counters = server.counters("cat.sch.json");
    assert_eq!((counters.received, counters.duplicates), (15, 4));

    let input = batch(20);
    let schema = Arc::new(TableSchema::try_new(input.schema(), TABLE)?);
    let encoded = RowEncoder::new(Arc::clone(&schema)).encode(&input)?;
    let sent: Vec<Vec<u8>> = encoded.records().map(|(_, r)| r.to_vec()).collect();
    let mut stream = sdk(&server)?
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .compiled_proto(schema.descriptor().clone())
        .build()
        .await?;
    stream.ingest_records_offset(sent.clone()).await?;
    stream.ingest_records_offset(sent[5..].to_vec()).await?;
    stream.flush().await?;
    stream.close().await?;
    let counters = server.counters(TABLE);
    assert_eq!((counters.received, counters.duplicates), (35, 15));
    // Duplicates still land: deduplication is the reader's business.
    assert_eq!(server.read_table(TABLE).await?.num_rows(), 35);
    server.shutdown().await;
    Ok(())
}
