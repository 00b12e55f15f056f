//! The local server's Arrow Flight path (feature `local`) against the unmodified official
//! SDK's Arrow stream over loopback: rows are read back from the memory landing and
//! compared value by value with what was sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int32Builder, Int64Array, Int64Builder,
    Int8Array, LargeBinaryArray, LargeStringArray, LargeStringBuilder, ListBuilder, MapBuilder,
    MapFieldNames, RecordBatch, StringArray, StringBuilder, StructArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use databricks_zerobus_ingest_sdk::{
    ReconnectReason, SchemaValidationCause, StatsExporter, StreamBuilder, StreamStat,
    ZerobusArrowStream, ZerobusError as SdkError, ZerobusSdk,
};
use tonic::Code;
use zerobus_local::{Landing, LocalZerobus, LocalZerobusBuilder};
use zerobus_test_support::local::{heavy_test_slot, sdk, timestamp_field};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.flight";

/// A memory-landing server, with `configure` applied to its builder.
pub(crate) async fn server(
    configure: impl FnOnce(LocalZerobusBuilder) -> LocalZerobusBuilder,
) -> Result<LocalZerobus, Box<dyn std::error::Error>> {
    Ok(configure(LocalZerobus::builder().landing(Landing::Memory))
        .start()
        .await?)
}

/// Counts the client's reconnects by reason.
#[derive(Debug, Default)]
pub(crate) struct Reconnects {
    pub(crate) rotations: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl StatsExporter for Reconnects {
    fn record(&self, stat: StreamStat) {
        if let StreamStat::Reconnected { reason } = stat {
            match reason {
                ReconnectReason::ServerRotation => &self.rotations,
                _ => &self.failures,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An Arrow stream to `TABLE` with fast recovery, reporting reconnects to `reconnects`.
async fn arrow_stream(
    sdk: &ZerobusSdk,
    schema: SchemaRef,
    reconnects: &Arc<Reconnects>,
) -> Result<ZerobusArrowStream, SdkError> {
    arrow_stream_with(sdk, schema, reconnects, |b| b).await
}

/// [`arrow_stream`] with more settings.
pub(crate) async fn arrow_stream_with(
    sdk: &ZerobusSdk,
    schema: SchemaRef,
    reconnects: &Arc<Reconnects>,
    configure: impl FnOnce(StreamBuilder<'_>) -> StreamBuilder<'_>,
) -> Result<ZerobusArrowStream, SdkError> {
    configure(
        sdk.stream_builder()
            .table(TABLE)
            .no_auth()
            .arrow(schema)
            .recovery_backoff_ms(100)
            .stats_exporter(Arc::clone(reconnects)),
    )
    .build_arrow()
    .await
}

fn decimal_text(i: i64) -> String {
    let cents = i * 37 - 500_000;
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", cents.abs() / 1000, cents.abs() % 1000)
}

/// Rows of the "many types" table, as the SDK sends them (`sent`)
/// and as the table stores them (`stored`), built from the same values.
struct ManyTypes {
    sent: RecordBatch,
    stored: RecordBatch,
}

fn sdk_map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("keys", DataType::LargeUtf8, false),
        Field::new("values", DataType::Int64, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

fn table_map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Int64, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

fn point_fields(text: DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("label", text, true),
    ])
}

/// The SDK-side schema (what `arrow_schema_from_uc_columns` gives) and the table's. The
/// columns whose type differs between the two come last.
fn many_types_schemas() -> (SchemaRef, SchemaRef) {
    let same = || {
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("i8", DataType::Int8, true),
            Field::new("i16", DataType::Int16, true),
            Field::new("i32", DataType::Int32, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
            timestamp_field("ts", true),
            timestamp_field("ts_ntz", false),
        ]
    };
    let varying = |text: DataType, binary, decimal, list_item: &str, map| {
        [
            Field::new("name", text.clone(), true),
            Field::new("blob", binary, true),
            Field::new("amount", decimal, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new(list_item, DataType::Int32, true))),
                true,
            ),
            Field::new("point", DataType::Struct(point_fields(text)), true),
            Field::new("attrs", map, true),
        ]
    };
    let mut sent = same();
    sent.extend(varying(
        DataType::LargeUtf8,
        DataType::LargeBinary,
        DataType::LargeUtf8,
        "item",
        sdk_map_type(),
    ));
    let mut stored = same();
    stored.extend(varying(
        DataType::Utf8,
        DataType::Binary,
        DataType::Decimal128(18, 3),
        "element",
        table_map_type(),
    ));
    (Arc::new(Schema::new(sent)), Arc::new(Schema::new(stored)))
}

fn tags(ids: &[i64], item: &str) -> ArrayRef {
    let mut list =
        ListBuilder::new(Int32Builder::new()).with_field(Field::new(item, DataType::Int32, true));
    for &i in ids {
        if i % 11 == 0 {
            list.append_null();
            continue;
        }
        for t in 0..(i % 4) {
            if t == 2 {
                list.values().append_null();
            } else {
                list.values().append_value((i + t) as i32);
            }
        }
        list.append(true);
    }
    Arc::new(list.finish())
}

/// Maps of 0..2 entries `k<n>` → `id * 10 + n` (the second one null); every 13th map null.
fn attrs<K: ArrayBuilder>(
    ids: &[i64],
    mut map: MapBuilder<K, Int64Builder>,
    append_key: impl Fn(&mut K, &str),
) -> ArrayRef {
    for &i in ids {
        for k in 0..(i % 3) {
            append_key(map.keys(), &format!("k{k}"));
            if k == 1 {
                map.values().append_null();
            } else {
                map.values().append_value(i * 10 + k);
            }
        }
        map.append(i % 13 != 0).unwrap();
    }
    Arc::new(map.finish())
}

fn map_names(entry: &str, key: &str, value: &str) -> Option<MapFieldNames> {
    Some(MapFieldNames {
        entry: entry.into(),
        key: key.into(),
        value: value.into(),
    })
}

fn point(ids: &[i64], label: ArrayRef, text: DataType) -> ArrayRef {
    let x = Float64Array::from_iter(ids.iter().map(|&i| (i % 12 != 0).then_some(i as f64 / 2.0)));
    Arc::new(StructArray::new(
        point_fields(text),
        vec![Arc::new(x), label],
        Some(ids.iter().map(|&i| i % 15 != 0).collect()),
    ))
}

/// `rows` rows with ids `0..rows`; see [`with_ids`] for more.
fn many_types(rows: usize) -> ManyTypes {
    let (sent_schema, stored_schema) = many_types_schemas();
    let ids: Vec<i64> = (0..rows as i64).collect();
    // Each row `i` with whether it holds a value (null every `every` rows).
    let each = |every: i64| ids.iter().map(move |&i| (i, i % every != 0));
    let same: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(Int8Array::from_iter(
            each(3).map(|(i, v)| v.then_some((i % 256 - 128) as i8)),
        )),
        Arc::new(Int16Array::from_iter(
            each(3).map(|(i, v)| v.then_some((i % 65536 - 32768) as i16)),
        )),
        Arc::new(Int32Array::from_iter(
            each(6).map(|(i, v)| v.then_some((i as i32).wrapping_mul(7919))),
        )),
        Arc::new(Float32Array::from_iter(
            each(8).map(|(i, v)| v.then_some(i as f32 / 3.0)),
        )),
        Arc::new(Float64Array::from_iter(
            each(8).map(|(i, v)| v.then_some(i as f64 * -1.25e-3)),
        )),
        Arc::new(BooleanArray::from_iter(
            each(10).map(|(i, v)| v.then_some(i % 2 == 0)),
        )),
        Arc::new(Date32Array::from_iter(
            each(4).map(|(i, v)| v.then_some((i % 40_000) as i32 - 20_000)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                each(6).map(|(i, v)| v.then_some(1_700_000_000_000_000 + i * 1_001)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from_iter(
            each(5).map(|(i, v)| v.then_some(-i * 999)),
        )),
    ];
    let names: Vec<Option<String>> = each(7)
        .map(|(i, v)| v.then(|| format!("name-{i}-é")))
        .collect();
    let blobs: Vec<Option<Vec<u8>>> = each(5)
        .map(|(i, v)| v.then(|| i.to_le_bytes()[..(i % 8) as usize].to_vec()))
        .collect();
    let labels: Vec<Option<String>> = each(4).map(|(i, v)| v.then(|| format!("p{i}"))).collect();
    let batch = |schema: &SchemaRef, varying: [ArrayRef; 6]| {
        let columns = same.iter().cloned().chain(varying).collect();
        RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
    };
    let sent = batch(
        &sent_schema,
        [
            Arc::new(LargeStringArray::from(names.clone())),
            Arc::new(LargeBinaryArray::from_iter(blobs.clone())),
            Arc::new(LargeStringArray::from_iter(
                each(9).map(|(i, v)| v.then(|| decimal_text(i))),
            )),
            tags(&ids, "item"),
            point(
                &ids,
                Arc::new(LargeStringArray::from(labels.clone())),
                DataType::LargeUtf8,
            ),
            attrs(
                &ids,
                MapBuilder::new(
                    map_names("entries", "keys", "values"),
                    LargeStringBuilder::new(),
                    Int64Builder::new(),
                ),
                |b, k| b.append_value(k),
            ),
        ],
    );
    let amounts =
        Decimal128Array::from_iter(each(9).map(|(i, v)| v.then_some(i128::from(i * 37 - 500_000))))
            .with_precision_and_scale(18, 3)
            .unwrap();
    let stored = batch(
        &stored_schema,
        [
            Arc::new(StringArray::from(names)),
            Arc::new(BinaryArray::from_iter(blobs)),
            Arc::new(amounts),
            tags(&ids, "element"),
            point(&ids, Arc::new(StringArray::from(labels)), DataType::Utf8),
            attrs(
                &ids,
                MapBuilder::new(
                    map_names("key_value", "key", "value"),
                    StringBuilder::new(),
                    Int64Builder::new(),
                ),
                |b, k| b.append_value(k),
            ),
        ],
    );
    ManyTypes { sent, stored }
}

/// Asserts equal schemas and equal values, naming the first differing column and row.
fn assert_same(actual: &RecordBatch, expected: &RecordBatch) {
    assert_eq!(actual.schema(), expected.schema(), "schemas differ");
    assert_eq!(actual.num_rows(), expected.num_rows(), "row counts differ");
    for (i, field) in expected.schema().fields().iter().enumerate() {
        let (a, e) = (actual.column(i), expected.column(i));
        if a.as_ref() == e.as_ref() {
            continue;
        }
        let row = (0..e.len())
            .find(|&r| a.slice(r, 1).as_ref() != e.slice(r, 1).as_ref())
            .unwrap_or(0);
        panic!(
            "column {} differs first at row {row}: got {:?}, expected {:?}",
            field.name(),
            a.slice(row, 1),
            e.slice(row, 1)
        );
    }
}

/// `batch` with its first column (`id`) replaced by `start..`: the same values under new,
/// unique ids, so that no row repeats.
fn with_ids(batch: &RecordBatch, start: usize) -> RecordBatch {
    let ids = Int64Array::from_iter_values((start..start + batch.num_rows()).map(|i| i as i64));
    let mut columns = batch.columns().to_vec();
    columns[0] = Arc::new(ids);
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

/// Sends `total` rows of the many-types columns `columns` (`id` first) in chunks of
/// `chunk` rows to a table created with their canonical types, and checks that the table
/// holds exactly them, value by value.
async fn many_types_land_value_by_value(
    columns: &[usize],
    total: usize,
    chunk: usize,
) -> TestResult {
    let template = many_types(chunk);
    let (sent, stored) = (
        template.sent.project(columns)?,
        template.stored.project(columns)?,
    );
    // The default landing: a real Delta table, read back from its Parquet files.
    let server = server(|b| b.table(TABLE, stored.schema()).landing(Landing::Delta)).await?;
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    // All batches are in flight at once; in a debug build on a loaded machine the Delta
    // writer's first commits can take longer than the SDK's default 60 s without an ack,
    // after which it would (correctly) resend and land duplicates. This test checks the
    // landing, so it gives the server time; timeouts are tested in local_faults.rs.
    let mut stream = arrow_stream_with(&sdk, sent.schema(), &reconnects, |b| {
        b.server_lack_of_ack_timeout_ms(600_000)
    })
    .await?;
    let started = Instant::now();
    let mut expected = Vec::new();
    for start in (0..total).step_by(chunk) {
        stream.ingest_batch(with_ids(&sent, start)).await?;
        expected.push(with_ids(&stored, start));
    }
    stream.flush().await?;
    stream.close().await?;
    eprintln!(
        "{total} rows, {} columns through Flight in {:?} (debug)",
        columns.len(),
        started.elapsed()
    );

    let landed = server.read_table(TABLE).await?;
    assert_same(
        &landed,
        &arrow::compute::concat_batches(&stored.schema(), &expected)?,
    );
    let counters = server.counters(TABLE);
    assert_eq!(counters.received, total as u64);
    assert_eq!(counters.committed, total as u64);
    assert_eq!(counters.acknowledged, total as u64);
    assert_eq!(counters.duplicates, 0);
    assert_eq!(reconnects.failures.load(Ordering::Relaxed), 0);
    server.shutdown().await;
    Ok(())
}

/// A million rows of every flat type (the nested columns are left out: in debug builds the
/// server's duplicate check on maps and lists alone would take minutes at this size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_of_flat_types_land_value_by_value() -> TestResult {
    let flat: Vec<usize> = (0..13).collect();
    let _alone = heavy_test_slot().await;
    many_types_land_value_by_value(&flat, 1_000_000, 50_000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_structs_and_maps_land_value_by_value() -> TestResult {
    let all: Vec<usize> = (0..many_types_schemas().0.fields().len()).collect();
    many_types_land_value_by_value(&all, 100_000, 50_000).await
}

/// `id` (not null), `name`; rows `start..start + rows`, name = `n<id>`.
pub(crate) fn simple_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::LargeUtf8, true),
    ]))
}

fn simple_batch(start: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (start..start + rows as i64).collect();
    let names = LargeStringArray::from_iter_values(ids.iter().map(|i| format!("n{i}")));
    RecordBatch::try_new(
        simple_schema(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(names)],
    )
    .unwrap()
}

/// Sends batches of `rows` rows every `pause` until the client has rotated once, then a
/// few more; flushes and closes. Returns the rows sent.
///
/// The stream is closed well after the rotation: a `close()` that lands in the middle of a
/// rotation fails with the client's rotation error even when every row was acknowledged.
pub(crate) async fn send_across_a_rotation(
    stream: &mut ZerobusArrowStream,
    reconnects: &Reconnects,
    rows: usize,
    pause: Duration,
) -> Result<u64, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    let mut after_rotation = 0;
    while after_rotation < 3 {
        stream.ingest_batch(simple_batch(sent, rows)).await?;
        sent += rows as i64;
        if reconnects.rotations.load(Ordering::Relaxed) > 0 {
            after_rotation += 1;
        }
        assert!(Instant::now() < deadline, "the client never rotated");
        tokio::time::sleep(pause).await;
    }
    stream.flush().await?;
    stream.close().await?;
    Ok(sent as u64)
}

/// Every id `0..total` landed at least once with its own name; the repeats are exactly
/// the duplicates the server counted.
pub(crate) async fn assert_all_landed(server: &LocalZerobus, total: u64) -> TestResult {
    let landed = server.read_table(TABLE).await?;
    assert_eq!(
        server.table_schema(TABLE).unwrap().field(1).data_type(),
        &DataType::Utf8
    );
    let ids = landed
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let names = landed
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let mut seen: HashMap<i64, u32> = HashMap::new();
    for r in 0..landed.num_rows() {
        assert_eq!(names.value(r), format!("n{}", ids.value(r)), "row {r}");
        *seen.entry(ids.value(r)).or_default() += 1;
    }
    let missing: Vec<u64> = (0..total)
        .filter(|i| !seen.contains_key(&(*i as i64)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} ids missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(seen.len() as u64, total, "ids outside 0..{total}");
    let counters = server.counters(TABLE);
    assert_eq!(counters.received, landed.num_rows() as u64);
    assert_eq!(counters.duplicates, counters.received - total);
    assert!(counters.acknowledged <= counters.committed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_that_does_not_fit_the_table_is_an_invalid_schema_error() -> TestResult {
    let table = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let server = server(|b| b.table(TABLE, table)).await?;
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    let cases = [
        (
            // score as text, before name, plus a column the table lacks.
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("score", DataType::LargeUtf8, true),
                Field::new("name", DataType::LargeUtf8, true),
                Field::new("extra", DataType::Int32, true),
            ],
            vec![
                SchemaValidationCause::TypeIncompatible,
                SchemaValidationCause::FieldOutOfOrder,
                SchemaValidationCause::FieldNotInTable,
            ],
            "column score",
        ),
        (
            vec![Field::new("name", DataType::LargeUtf8, true)],
            vec![SchemaValidationCause::MissingRequiredColumn],
            "required column id",
        ),
    ];
    for (fields, expected_causes, mentions) in cases {
        let schema = Arc::new(Schema::new(fields));
        match arrow_stream(&sdk, schema, &reconnects).await {
            Err(SdkError::InvalidSchema {
                message,
                causes,
                error_code,
                ..
            }) => {
                assert_eq!(causes, expected_causes, "{message}");
                assert_eq!(error_code.as_deref(), Some("8001"));
                assert!(message.contains(mentions), "{message}");
            }
            Err(other) => panic!("expected InvalidSchema, got {other:?}"),
            Ok(_) => panic!("a mismatched schema was accepted"),
        }
    }
    // A subset in table order with the required column is fine.
    let fitting = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("score", DataType::Float64, true),
    ]));
    let mut stream = arrow_stream(&sdk, Arc::clone(&fitting), &reconnects).await?;
    let batch = RecordBatch::try_new(
        fitting,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(Float64Array::from(vec![0.5, 1.5])),
        ],
    )?;
    stream.ingest_batch(batch).await?;
    stream.flush().await?;
    stream.close().await?;
    let landed = server.read_table(TABLE).await?;
    assert_eq!(landed.num_rows(), 2);
    assert_eq!(
        landed.column(1).null_count(),
        2,
        "absent name lands as null"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_signal_after_records_makes_the_client_rotate_without_losing_rows() -> TestResult {
    let server = server(|b| b).await?;
    server.faults(TABLE).close_stream_after_records(25_000);
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    let mut stream = arrow_stream_with(&sdk, simple_schema(), &reconnects, |b| {
        b.ipc_compression(Some(arrow::ipc::CompressionType::LZ4_FRAME))
    })
    .await?;
    let sent =
        send_across_a_rotation(&mut stream, &reconnects, 5_000, Duration::from_millis(20)).await?;
    assert_eq!(reconnects.rotations.load(Ordering::Relaxed), 1);
    assert_eq!(reconnects.failures.load(Ordering::Relaxed), 0);
    assert_all_landed(&server, sent).await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_lifetime_makes_the_client_rotate_without_losing_rows() -> TestResult {
    let server = server(|b| b.stream_lifetime(Duration::from_millis(1_500))).await?;
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    let mut stream = arrow_stream(&sdk, simple_schema(), &reconnects).await?;
    let sent =
        send_across_a_rotation(&mut stream, &reconnects, 2_000, Duration::from_millis(50)).await?;
    assert_eq!(reconnects.rotations.load(Ordering::Relaxed), 1);
    assert_eq!(reconnects.failures.load(Ordering::Relaxed), 0);
    assert_all_landed(&server, sent).await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_stream_is_recovered_and_every_acked_row_is_stored() -> TestResult {
    let server = server(|b| b).await?;
    server
        .faults(TABLE)
        .fail_after_records(42_000, Code::Unavailable);
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    let mut stream = arrow_stream(&sdk, simple_schema(), &reconnects).await?;
    // Every offset the client saw acknowledged must already be in the table.
    for b in 0..25 {
        let offset = stream.ingest_batch(simple_batch(b * 4_000, 4_000)).await?;
        if b % 5 == 4 {
            stream.wait_for_offset(offset).await?;
            let landed = server.read_table(TABLE).await?;
            let ids = landed
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let max_acked = (b + 1) * 4_000;
            let present: std::collections::HashSet<i64> = ids.iter().flatten().collect();
            assert!(
                (0..max_acked).all(|i| present.contains(&i)),
                "an acknowledged row is missing after batch {b}"
            );
        }
    }
    stream.flush().await?;
    stream.close().await?;
    assert_eq!(reconnects.failures.load(Ordering::Relaxed), 1);
    assert_all_landed(&server, 100_000).await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_never_run_ahead_of_commits() -> TestResult {
    let server = server(|b| b).await?;
    let faults = server.faults(TABLE);
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    let mut stream = arrow_stream_with(&sdk, simple_schema(), &reconnects, |b| {
        b.server_lack_of_ack_timeout_ms(1_500)
    })
    .await?;

    // Delayed acks: sampled while they trickle in, the counts stay ordered.
    faults.delay_acks(Some(Duration::from_millis(30)));
    for b in 0..10 {
        stream.ingest_batch(simple_batch(b * 1_000, 1_000)).await?;
    }
    let mut lagged = false;
    loop {
        let c = server.counters(TABLE);
        assert!(
            c.acknowledged <= c.committed && c.committed <= c.received,
            "{c:?}"
        );
        lagged |= c.acknowledged < c.committed;
        if c.acknowledged == 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(lagged, "acks were never seen behind commits");
    stream.flush().await?;

    // Withheld acks: rows are committed, nothing is acknowledged, flush cannot finish;
    // the client's ack timeout then recovers and resends them.
    faults.delay_acks(None);
    faults.withhold_acks(true);
    let offset = stream.ingest_batch(simple_batch(10_000, 1_000)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = server.counters(TABLE);
    assert_eq!((c.committed, c.acknowledged), (11_000, 10_000));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.wait_for_offset(offset))
            .await
            .is_err(),
        "the batch was acknowledged while acks were withheld"
    );
    faults.withhold_acks(false);
    stream.flush().await?;
    stream.close().await?;
    assert_eq!(reconnects.failures.load(Ordering::Relaxed), 1);
    assert_all_landed(&server, 11_000).await?;
    assert_eq!(server.counters(TABLE).duplicates, 1_000);
    server.shutdown().await;
    Ok(())
}
