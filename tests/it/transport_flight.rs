//! `ZerobusWrapper` with the Arrow Flight transport over real gRPC: the official SDK's
//! Arrow stream against the local server (Delta landing), read back and compared value by
//! value with what the protobuf transport lands for the same input, under concurrency
//! and faults.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    FixedSizeBinaryArray, Int32Array, Int64Array, ListViewArray, MapBuilder, RecordBatch, RunArray,
    StringArray, StringBuilder, StringViewArray, StructArray, TimestampMillisecondArray,
    TimestampNanosecondArray, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{
    DataType, Field, Fields, Int16Type, Int32Type, Schema, SchemaRef, TimeUnit,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_zerobus_sdk_wrapper::{
    ConversionErrorKind, FlightCompression, TransmissionResult, TransportKind,
    WrapperConfiguration, ZerobusError, ZerobusWrapper,
};
use tonic::Code;
use zerobus_local::LocalZerobus;
use zerobus_test_support::concurrent::send_concurrently;
use zerobus_test_support::local::timestamp_field;

fn struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ])
}

/// The table as Delta stores it (canonical Arrow types), for both transports.
fn table_schema() -> SchemaRef {
    let utc = Some("UTC".into());
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("small", DataType::Int16, true),
        Field::new("medium", DataType::Int64, true),
        Field::new("big", DataType::Int64, true),
        Field::new("view", DataType::Utf8, true),
        Field::new("dict", DataType::Utf8, true),
        Field::new("ree", DataType::Utf8, true),
        Field::new("fixed", DataType::Binary, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc), true),
        timestamp_field("wall", false),
        Field::new("day", DataType::Date32, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new_list("tags", Field::new("element", DataType::Utf8, true), true),
        Field::new_list("nums", Field::new("element", DataType::Int64, true), true),
        Field::new_struct("pair", struct_fields(), true),
        Field::new_map(
            "attrs",
            "key_value",
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
            false,
            true,
        ),
    ]))
}

/// Rows `first..first + rows` in user types (unsigned, views, dictionary, run-end
/// encoded, decimal, ns / ms timestamps, nested). Row ids with `id % 50 == 7` carry a
/// `big` value over BIGINT's range, so those rows must fail on both transports.
fn batch(first: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let some = |id: &i64| id % 7 != 3;
    let n = ids.len();
    let dict: DictionaryArray<Int16Type> = ids
        .iter()
        .map(|i| some(i).then(|| ["red", "green", "blue"][(*i % 3) as usize]))
        .collect();
    // `try_from_iter` declares a run-end encoded column NOT NULL: no nulls in it.
    let ree_values = StringArray::from_iter_values(ids.iter().map(|i| format!("r{}", i / 2)));
    let run_ends = Int32Array::from_iter_values(1..=n as i32);
    let ree = RunArray::<Int32Type>::try_new(&run_ends, &ree_values).expect("ree");
    let tag_values: Vec<Option<Vec<Option<String>>>> = ids
        .iter()
        .map(|i| some(i).then(|| (0..(*i % 3)).map(|k| Some(format!("t{k}"))).collect()))
        .collect();
    let tags = large_string_list(&tag_values);
    let nums = list_view(&ids);
    let pair = StructArray::new(
        struct_fields(),
        vec![
            Arc::new(Int32Array::from_iter(
                ids.iter().map(|i| some(i).then_some(*i as i32)),
            )),
            Arc::new(StringArray::from_iter(
                ids.iter().map(|i| Some(format!("p{i}"))),
            )),
        ],
        Some(ids.iter().map(|i| i % 11 != 4).collect()),
    );
    let mut attrs = MapBuilder::new(
        None,
        StringBuilder::new(),
        arrow::array::Int64Builder::new(),
    );
    for i in &ids {
        for k in 0..(*i % 3) {
            attrs.keys().append_value(format!("k{k}"));
            // A null map value fails the row on both transports (protobuf maps cannot hold it).
            attrs.values().append_value(i * 10 + k);
        }
        attrs.append(some(i)).expect("map row");
    }
    let columns: Vec<(&str, ArrayRef)> =
        vec![
            ("id", Arc::new(Int64Array::from(ids.clone()))),
            (
                "small",
                Arc::new(UInt8Array::from_iter(
                    ids.iter().map(|i| some(i).then_some(200 + (*i % 50) as u8)),
                )),
            ),
            (
                "medium",
                Arc::new(UInt32Array::from_iter(
                    ids.iter().map(|i| some(i).then_some(u32::MAX - *i as u32)),
                )),
            ),
            (
                "big",
                Arc::new(UInt64Array::from_iter(ids.iter().map(|i| {
                    Some(if i % 50 == 7 {
                        u64::MAX - 1
                    } else {
                        *i as u64 * 1_000_000_007
                    })
                }))),
            ),
            (
                "view",
                Arc::new(StringViewArray::from_iter(ids.iter().map(|i| {
                    some(i).then(|| format!("a longer view string number {i} é"))
                }))),
            ),
            ("dict", Arc::new(dict)),
            ("ree", Arc::new(ree)),
            (
                "fixed",
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        ids.iter()
                            .map(|i| some(i).then(|| (*i as u32).to_be_bytes())),
                        4,
                    )
                    .expect("fixed"),
                ),
            ),
            (
                "price",
                Arc::new(
                    Decimal128Array::from_iter(
                        ids.iter()
                            .map(|i| some(i).then_some(i128::from(i * 137 - 5000))),
                    )
                    .with_precision_and_scale(10, 2)
                    .expect("decimal"),
                ),
            ),
            (
                "at",
                Arc::new(
                    TimestampNanosecondArray::from_iter(ids.iter().map(|i| {
                        some(i).then_some(1_700_000_000_123_456_789 - i * 999_999_999_999)
                    }))
                    .with_timezone("+02:00"),
                ),
            ),
            (
                "wall",
                Arc::new(TimestampMillisecondArray::from_iter(
                    ids.iter()
                        .map(|i| some(i).then_some(-86_400_000 + i * 3_600_001)),
                )),
            ),
            (
                "day",
                Arc::new(Date32Array::from_iter(
                    ids.iter()
                        .map(|i| some(i).then_some(-400 + (*i % 1000) as i32)),
                )),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from_iter(
                    ids.iter().map(|i| some(i).then_some(i % 2 == 0)),
                )),
            ),
            ("tags", tags),
            ("nums", nums),
            ("pair", Arc::new(pair)),
            ("attrs", Arc::new(attrs.finish())),
        ];
    RecordBatch::try_from_iter(columns).expect("batch")
}

fn large_string_list(values: &[Option<Vec<Option<String>>>]) -> ArrayRef {
    let mut builder = arrow::array::GenericListBuilder::<i64, _>::new(StringBuilder::new());
    for value in values {
        match value {
            Some(items) => {
                for item in items {
                    builder.values().append_option(item.as_deref());
                }
                builder.append(true);
            }
            None => builder.append(false),
        }
    }
    Arc::new(builder.finish())
}

/// A ListView of Int64: row `i` holds `i % 4` values.
fn list_view(ids: &[i64]) -> ArrayRef {
    let mut values = Vec::new();
    let mut offsets = Vec::new();
    let mut sizes = Vec::new();
    for i in ids {
        offsets.push(values.len() as i32);
        let len = (*i % 4) as i32;
        sizes.push(len);
        values.extend((0..len as i64).map(|k| i * 100 + k));
    }
    Arc::new(
        ListViewArray::try_new(
            Arc::new(Field::new("item", DataType::Int64, true)),
            ScalarBuffer::from(offsets),
            ScalarBuffer::from(sizes),
            Arc::new(Int64Array::from(values)),
            None,
        )
        .expect("list view"),
    )
}

/// Ids of rows that fail on every transport (out-of-range `big`).
fn failing(id: i64) -> bool {
    id % 50 == 7
}

async fn server_with(tables: &[&str]) -> LocalZerobus {
    let mut builder = LocalZerobus::builder();
    for table in tables {
        builder = builder.table(*table, table_schema());
    }
    builder.start().await.expect("local server")
}

async fn wrapper_for(server: &LocalZerobus, table: &str, kind: TransportKind) -> ZerobusWrapper {
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_retry_config(6, 5, 200)
        .with_transport(kind);
    ZerobusWrapper::new(config).await.expect("wrapper")
}

/// Every cell of `batch` as text, keyed by id (a duplicate id overwrites an equal row).
fn rows_by_id(batch: &RecordBatch) -> BTreeMap<i64, Vec<String>> {
    let ids: Int64Array = batch
        .column_by_name("id")
        .expect("id")
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("Int64")
        .clone();
    let options = FormatOptions::default().with_null("<null>");
    let formatters: Vec<_> = table_schema()
        .fields()
        .iter()
        .map(|f| {
            let column = batch.column_by_name(f.name()).expect("column");
            ArrayFormatter::try_new(column.as_ref(), &options).expect("formatter")
        })
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let cells = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            (ids.value(row), cells)
        })
        .collect()
}

fn duplicates(landed: &RecordBatch) -> usize {
    let ids = landed.column_by_name("id").expect("id");
    let ids = ids.as_any().downcast_ref::<Int64Array>().expect("Int64");
    let mut seen = HashSet::new();
    ids.values().iter().filter(|id| !seen.insert(**id)).count()
}

/// What the Flight transport lands for a row the protobuf transport landed as `cells`.
///
/// The one known difference: protobuf cannot tell a null ARRAY or MAP from an empty one,
/// so the protobuf path lands `[]` / `{}` where the input was null; Arrow Flight keeps
/// the null. Everything else is identical.
fn flight_view(id: i64, cells: &[String]) -> Vec<String> {
    let schema = table_schema();
    cells
        .iter()
        .zip(schema.fields())
        .map(|(cell, field)| {
            let collection = matches!(field.data_type(), DataType::List(_) | DataType::Map(..));
            let input_null = id % 7 == 3 && field.name() != "nums";
            if collection && input_null {
                assert!(
                    cell == "[]" || cell == "{}",
                    "id {id} {}: {cell}",
                    field.name()
                );
                "<null>".to_string()
            } else {
                cell.clone()
            }
        })
        .collect()
}

/// Only the out-of-range rows failed, with the encoder's reason.
fn assert_only_out_of_range_failed(batch: &RecordBatch, result: &TransmissionResult) {
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("ids");
    let expected: Vec<usize> = (0..batch.num_rows())
        .filter(|r| failing(ids.value(*r)))
        .collect();
    assert_eq!(
        result.get_failed_row_indices(),
        expected,
        "{:?}",
        result.failed_rows.first()
    );
    if !expected.is_empty() {
        let kinds = result.group_conversion_errors_by_kind();
        assert_eq!(kinds[&ConversionErrorKind::ValueOutOfRange], expected);
    }
}

/// The table landed exactly the sent rows that can land, by unique id, value by value
/// against `reference` (the protobuf transport's table) when given. Returns duplicates.
async fn assert_landed(
    server: &LocalZerobus,
    table: &str,
    sent: &[RecordBatch],
    reference: Option<&BTreeMap<i64, Vec<String>>>,
) -> usize {
    let landed = server.read_table(table).await.expect("read table");
    let actual = rows_by_id(&landed);
    let expected_ids: Vec<i64> = sent
        .iter()
        .flat_map(|b| {
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids");
            ids.values().to_vec()
        })
        .filter(|id| !failing(*id))
        .collect();
    let missing: Vec<_> = expected_ids
        .iter()
        .filter(|id| !actual.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} ids lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(actual.len(), expected_ids.len(), "unexpected ids landed");
    if let Some(reference) = reference {
        assert_eq!(reference.len(), actual.len());
        for (id, cells) in reference {
            assert_eq!(
                &actual[id],
                &flight_view(*id, cells),
                "row id {id} (left: Flight, right: protobuf)"
            );
        }
    }
    let duplicates = duplicates(&landed);
    assert_eq!(landed.num_rows(), expected_ids.len() + duplicates);
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_lands_every_type_as_the_protobuf_path_does() {
    let (flight, proto) = ("cat.sch.ft_types", "cat.sch.pb_types");
    let server = server_with(&[flight, proto]).await;
    let sent: Vec<RecordBatch> = (0..3).map(|i| batch(i * 1000, 120)).collect();
    for (table, kind) in [
        (proto, TransportKind::Protobuf),
        (flight, TransportKind::ArrowFlight),
    ] {
        let wrapper = wrapper_for(&server, table, kind).await;
        for b in &sent {
            let result = wrapper.send_batch(b.clone()).await.expect("send");
            assert_only_out_of_range_failed(b, &result);
            assert_eq!(result.total_rows, 120);
        }
        wrapper.shutdown().await.expect("shutdown");
    }
    let reference = rows_by_id(&server.read_table(proto).await.expect("read proto table"));
    assert_eq!(assert_landed(&server, proto, &sent, None).await, 0);
    assert_eq!(
        assert_landed(&server, flight, &sent, Some(&reference)).await,
        0
    );

    // Spot checks against the input itself, so the comparison is not circular.
    let row = &reference[&1001];
    let schema = table_schema();
    let cells: BTreeMap<&str, &str> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .zip(row.iter().map(String::as_str))
        .collect();
    assert_eq!(cells["small"], "201");
    assert_eq!(cells["medium"], (u64::from(u32::MAX) - 1001).to_string());
    assert_eq!(cells["big"], (1001u64 * 1_000_000_007).to_string());
    assert_eq!(cells["dict"], "blue");
    assert_eq!(cells["ree"], "r500");
    assert_eq!(cells["price"], "1321.37");
    assert_eq!(cells["view"], "a longer view string number 1001 é");
    assert_eq!(cells["tags"], "[t0, t1]");
    assert_eq!(cells["nums"], "[100100]");
    assert_eq!(cells["pair"], "{a: 1001, b: p1001}");
    assert_eq!(cells["attrs"], "{k0: 10010, k1: 10011}");
    server.shutdown().await;
}

/// Each `flight_ipc_compression` reaches the wire (the server counts the codec each
/// batch's IPC header declares) and lands the same rows, value by value, as protobuf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flight_ipc_compression_reaches_the_server_and_lands_the_same_rows() {
    let proto = "cat.sch.pb_codecs";
    let codecs = [
        ("cat.sch.ft_zstd", FlightCompression::Zstd),
        ("cat.sch.ft_lz4", FlightCompression::Lz4),
        ("cat.sch.ft_plain", FlightCompression::None),
    ];
    let mut tables: Vec<&str> = codecs.iter().map(|(table, _)| *table).collect();
    tables.push(proto);
    let server = server_with(&tables).await;
    let sent: Vec<RecordBatch> = (0..2).map(|i| batch(i * 1000, 150)).collect();
    let send_all = |wrapper: ZerobusWrapper| {
        let sent = sent.clone();
        async move {
            for b in &sent {
                let result = wrapper.send_batch(b.clone()).await.expect("send");
                assert_only_out_of_range_failed(b, &result);
            }
            wrapper.shutdown().await.expect("shutdown");
        }
    };
    send_all(wrapper_for(&server, proto, TransportKind::Protobuf).await).await;
    let reference = rows_by_id(&server.read_table(proto).await.expect("read proto table"));
    for (table, compression) in codecs {
        let config = WrapperConfiguration::new(server.endpoint(), table)
            .with_transport(TransportKind::ArrowFlight)
            .with_flight_ipc_compression(compression);
        send_all(ZerobusWrapper::new(config).await.expect("wrapper")).await;
        assert_eq!(
            assert_landed(&server, table, &sent, Some(&reference)).await,
            0
        );
        let counters = server.counters(table);
        let seen = [
            counters.flight_batches_zstd,
            counters.flight_batches_lz4,
            counters.flight_batches_uncompressed,
        ];
        let expected_slot = match compression {
            FlightCompression::Zstd => 0,
            FlightCompression::Lz4 => 1,
            FlightCompression::None => 2,
            other => panic!("no counter for {other:?}"),
        };
        for (slot, batches) in seen.iter().enumerate() {
            if slot == expected_slot {
                assert!(*batches >= 2, "{table}: {seen:?}");
            } else {
                assert_eq!(*batches, 0, "{table}: {seen:?}");
            }
        }
    }
    server.shutdown().await;
}

/// Concurrent callers on three multiplexed Flight streams (the single-stream pipelining
/// is exercised by `survives`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_tasks_times_twenty_batches_are_all_accounted_for() {
    let table = "cat.sch.ft_concurrent";
    let server = server_with(&[table]).await;
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_retry_config(6, 5, 200)
        .with_transport(TransportKind::ArrowFlight)
        .with_multiplexed_streams(3);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    let sent = send_concurrently(
        &wrapper,
        16,
        20,
        |task, n| batch((task * 20 + n) * 25, 25),
        assert_only_out_of_range_failed,
    )
    .await;
    wrapper.shutdown().await.expect("shutdown");
    assert_eq!(sent.len(), 320);
    assert_eq!(
        assert_landed(&server, table, &sent, None).await,
        0,
        "no fault, no resend"
    );
    assert_eq!(
        server.counters(table).streams_opened,
        3,
        "one Flight stream per lane"
    );
    server.shutdown().await;
}

/// Sends 16 batches of 300 rows through `arm`'s fault; nothing may be lost.
async fn survives(table: &str, arm: impl FnOnce(&LocalZerobus)) -> usize {
    let server = server_with(&[table]).await;
    let wrapper = wrapper_for(&server, table, TransportKind::ArrowFlight).await;
    let first = batch(0, 300);
    assert_only_out_of_range_failed(
        &first,
        &wrapper.send_batch(first.clone()).await.expect("send"),
    );
    arm(&server);
    let pending: Vec<_> = (1..16i64).map(|n| batch(n * 300, 300)).collect();
    let mut handles = Vec::new();
    for b in &pending {
        handles.push(wrapper.submit_batch(b.clone()).await.expect("submit"));
    }
    for (b, handle) in pending.iter().zip(handles) {
        assert_only_out_of_range_failed(b, &handle.await);
    }
    wrapper.flush().await.expect("flush");
    wrapper.shutdown().await.expect("shutdown");
    let mut sent = vec![first];
    sent.extend(pending);
    let duplicates = assert_landed(&server, table, &sent, None).await;
    println!(
        "{table}: {duplicates} duplicate rows landed (server counted {})",
        server.counters(table).duplicates
    );
    server.shutdown().await;
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_loses_no_row_when_a_stream_fails_mid_way() {
    let table = "cat.sch.ft_fail_after";
    survives(table, |s| {
        s.faults(table).fail_after_records(1_500, Code::Unavailable)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_loses_no_row_when_the_server_asks_to_rotate() {
    let table = "cat.sch.ft_close_after";
    survives(table, |s| s.faults(table).close_stream_after_records(2_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_loses_no_row_when_the_sdk_recovery_gives_up() {
    let table = "cat.sch.ft_dead_stream";
    survives(table, |s| {
        let faults = s.faults(table);
        faults.fail_after_records(1_000, Code::Unavailable);
        faults.fail_stream_creation(8, Code::Unavailable);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_loses_no_row_when_acks_are_slow() {
    let table = "cat.sch.ft_slow_acks";
    survives(table, |s| {
        s.faults(table)
            .delay_acks(Some(std::time::Duration::from_millis(40)))
    })
    .await;
}

/// Streams refused for bad credentials: on both transports every row of the batch ends
/// in `failed_rows` as an authentication error (not retryable), none is silently lost,
/// and nothing lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_fail_every_row_with_the_reason() {
    let tables = ["cat.sch.pb_refused", "cat.sch.ft_refused"];
    let server = server_with(&tables).await;
    for (table, kind) in tables
        .into_iter()
        .zip([TransportKind::Protobuf, TransportKind::ArrowFlight])
    {
        server.faults(table).reject_connections(true);
        let wrapper = wrapper_for(&server, table, kind).await;
        let sent = batch(0, 100);
        let result = wrapper.send_batch(sent).await.expect("send");
        assert!(!result.success, "{kind:?}");
        assert_eq!(result.successful_count, 0, "{kind:?}");
        assert_eq!(
            result.get_failed_row_indices(),
            (0..100).collect::<Vec<_>>()
        );
        let authentication = result
            .failed_rows
            .iter()
            .filter(|(_, error)| {
                matches!(error, ZerobusError::AuthenticationError { .. }) && !error.is_retryable()
            })
            .count();
        // Rows out of range for the table fail before sending, with their own reason.
        let out_of_range = (0..100).filter(|id| failing(*id)).count();
        assert_eq!(
            authentication,
            100 - out_of_range,
            "{kind:?}: {:?}",
            result.failed_rows[0]
        );
        let _ = wrapper.shutdown().await;
        assert_eq!(server.counters(table).received, 0, "{kind:?}");
    }
    server.shutdown().await;
}

/// Two Arrow schemas with one protobuf descriptor, `id` NOT NULL in one and nullable in
/// the other (a Polars frame exports every column nullable): the SDK refuses a batch whose
/// schema is not its stream's, so each gets streams of its own and both land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_differing_only_in_nullability_get_their_own_streams() {
    let table = "cat.sch.ft_nullability";
    let schema = |nullable: bool| {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, nullable),
            Field::new("name", DataType::Utf8, true),
        ]))
    };
    let rows = |nullable: bool, first: i64| {
        RecordBatch::try_new(
            schema(nullable),
            vec![
                Arc::new(Int64Array::from_iter_values(first..first + 3)),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
            ],
        )
        .expect("batch")
    };
    let server = LocalZerobus::builder()
        .table(table, schema(false))
        .start()
        .await
        .expect("local server");
    let wrapper = wrapper_for(&server, table, TransportKind::ArrowFlight).await;
    for (nullable, first) in [(false, 0), (true, 10), (false, 20)] {
        let result = wrapper
            .send_batch(rows(nullable, first))
            .await
            .expect("send");
        assert!(result.failed_rows.is_empty(), "{:?}", result.failed_rows);
    }
    wrapper.shutdown().await.expect("shutdown");
    let landed = server.read_table(table).await.expect("read back");
    let mut ids =
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(landed.column(0))
            .values()
            .to_vec();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 10, 11, 12, 20, 21, 22]);
    assert_eq!(server.counters(table).streams_opened, 2);
    server.shutdown().await;
}
