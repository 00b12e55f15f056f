//! `ZerobusWrapper` over real gRPC: the official SDK client against the local server
//! (memory landing), read back and compared value by value, under concurrency and faults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use arrow_zerobus_sdk_wrapper::{
    ConversionErrorKind, TransmissionResult, TransportKind, WrapperConfiguration, ZerobusError,
    ZerobusWrapper,
};
use tonic::Code;
use zerobus_local::{Landing, LocalZerobus};
use zerobus_test_support::concurrent::send_concurrently;
use zerobus_test_support::local::{memory_server, timestamp_field};

/// The table's Arrow schema (canonical types, so the landed table has exactly these).
fn table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("small", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("blob", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        timestamp_field("at", true),
    ]))
}

/// Rows `first..first + rows` of the table, with nulls sprinkled in.
fn batch(first: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let some = |id: &i64| id % 7 != 3;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(Int32Array::from_iter(
            ids.iter()
                .map(|i| some(i).then_some((*i % 1000) as i32 - 500)),
        )),
        Arc::new(StringArray::from_iter(
            ids.iter().map(|i| some(i).then(|| format!("name-{i}-é"))),
        )),
        Arc::new(Float64Array::from_iter(
            ids.iter().map(|i| some(i).then_some(*i as f64 / 3.0)),
        )),
        Arc::new(BooleanArray::from_iter(
            ids.iter().map(|i| some(i).then_some(i % 2 == 0)),
        )),
        Arc::new(BinaryArray::from_iter(
            ids.iter()
                .map(|i| some(i).then(|| i.to_le_bytes().to_vec())),
        )),
        Arc::new(Date32Array::from_iter(
            ids.iter()
                .map(|i| some(i).then_some(19_000 + (*i % 365) as i32)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                ids.iter()
                    .map(|i| some(i).then_some(1_700_000_000_000_000 + i * 1_000_003)),
            )
            .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(table_schema(), columns).expect("batch")
}

async fn wrapper_for(server: &LocalZerobus, table: &str) -> ZerobusWrapper {
    let config = WrapperConfiguration::new(server.endpoint(), table).with_retry_config(6, 5, 200);
    ZerobusWrapper::new(config).await.expect("wrapper")
}

/// Every cell of `batch` as text, by column name, keyed by the id column.
fn rows_by_id(batch: &RecordBatch) -> BTreeMap<i64, Vec<String>> {
    let ids = batch
        .column_by_name("id")
        .expect("id column")
        .as_primitive::<Int64Type>()
        .clone();
    let names: Vec<String> = table_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let options = FormatOptions::default().with_null("<null>");
    let formatters: Vec<_> = names
        .iter()
        .map(|name| {
            let column = batch.column_by_name(name).expect("column");
            ArrayFormatter::try_new(column.as_ref(), &options).expect("formatter")
        })
        .collect();
    let mut rows = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let cells = formatters
            .iter()
            .map(|f| f.value(row).to_string())
            .collect();
        // A duplicate id overwrites an identical row; duplicates are counted separately.
        rows.insert(ids.value(row), cells);
    }
    rows
}

/// How many ids of `landed` occur more than once.
fn duplicate_count(landed: &RecordBatch) -> usize {
    let ids = landed
        .column_by_name("id")
        .expect("id")
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|id| !seen.insert(*id)).count()
}

fn assert_all_delivered(result: &TransmissionResult) {
    assert!(
        result.failed_rows.is_empty(),
        "failed rows: {:?}",
        &result.failed_rows[..result.failed_rows.len().min(3)]
    );
    assert!(result.success);
}

/// Landed rows equal the input rows value by value (duplicates reported, not hidden).
async fn assert_landed_equals(server: &LocalZerobus, table: &str, sent: &[RecordBatch]) -> usize {
    let landed = server.read_table(table).await.expect("read table");
    let expected: BTreeMap<_, _> = sent.iter().flat_map(rows_by_id).collect();
    let actual = rows_by_id(&landed);
    let missing: Vec<_> = expected
        .keys()
        .filter(|id| !actual.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} ids lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(actual.len(), expected.len(), "unexpected ids landed");
    for (id, cells) in &expected {
        assert_eq!(&actual[id], cells, "row id {id}");
    }
    let duplicates = duplicate_count(&landed);
    assert_eq!(landed.num_rows(), expected.len() + duplicates);
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_every_type_land_value_by_value() {
    let table = "cat.sch.types";
    let server = memory_server(table, table_schema()).await;
    let wrapper = wrapper_for(&server, table).await;
    let sent: Vec<RecordBatch> = (0..3).map(|i| batch(i * 1000, 250)).collect();
    for b in &sent {
        let result = wrapper.send_batch(b.clone()).await.expect("send");
        assert_all_delivered(&result);
        assert_eq!(result.successful_count, 250);
        assert!(result.batch_size_bytes > 0);
    }
    wrapper.shutdown().await.expect("shutdown");
    assert_eq!(assert_landed_equals(&server, table, &sent).await, 0);
    assert_eq!(server.counters(table).duplicates, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_times_a_hundred_batches_are_all_accounted_for() {
    let table = "cat.sch.concurrent";
    let server = memory_server(table, table_schema()).await;
    let wrapper = wrapper_for(&server, table).await;
    let sent = send_concurrently(
        &wrapper,
        64,
        100,
        |task, n| batch((task * 100 + n) * 10, 10),
        |_, result| assert_all_delivered(result),
    )
    .await;
    wrapper.shutdown().await.expect("shutdown");
    assert_eq!(sent.len(), 6400);
    let duplicates = assert_landed_equals(&server, table, &sent).await;
    assert_eq!(duplicates, 0, "no fault, so no resend");
    server.shutdown().await;
}

/// Sends 24 batches of 400 rows from 4 tasks through `arm`'s fault; nothing may be lost.
async fn survives(table: &str, arm: impl FnOnce(&LocalZerobus)) -> usize {
    let server = memory_server(table, table_schema()).await;
    let wrapper = wrapper_for(&server, table).await;
    // A first batch opens the stream, so that creation faults hit re-creations too.
    let first = batch(0, 400);
    assert_all_delivered(&wrapper.send_batch(first.clone()).await.expect("send"));
    arm(&server);
    let pending: Vec<_> = (1..24i64).map(|n| batch(n * 400, 400)).collect();
    let mut handles = Vec::new();
    for b in &pending {
        handles.push(wrapper.submit_batch(b.clone()).await.expect("submit"));
    }
    for handle in handles {
        assert_all_delivered(&handle.await);
    }
    wrapper.flush().await.expect("flush");
    wrapper.shutdown().await.expect("shutdown");
    let mut sent = vec![first];
    sent.extend(pending);
    let duplicates = assert_landed_equals(&server, table, &sent).await;
    println!(
        "{table}: {duplicates} duplicate rows landed (server counted {})",
        server.counters(table).duplicates
    );
    server.shutdown().await;
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_is_lost_when_a_stream_fails_mid_way() {
    survives("cat.sch.fail_after", |s| {
        s.faults("cat.sch.fail_after")
            .fail_after_records(2_000, Code::Unavailable)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_is_lost_when_the_server_asks_to_rotate() {
    survives("cat.sch.close_after", |s| {
        s.faults("cat.sch.close_after")
            .close_stream_after_records(3_000)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_is_lost_when_acks_are_slow() {
    survives("cat.sch.slow_acks", |s| {
        s.faults("cat.sch.slow_acks")
            .delay_acks(Some(Duration::from_millis(40)))
    })
    .await;
}

/// The SDK's own recovery gives up (more failed re-creations than its retries), so the
/// wrapper takes the unacknowledged records back and sends them on a fresh stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_is_lost_when_the_sdk_recovery_gives_up() {
    survives("cat.sch.dead_stream", |s| {
        let faults = s.faults("cat.sch.dead_stream");
        faults.fail_after_records(1_000, Code::Unavailable);
        // 6 attempts per recovery in the SDK (1 + 5 retries), then ours begin.
        faults.fail_stream_creation(8, Code::Unavailable);
    })
    .await;
}

/// Four multiplexed streams: a large batch is split over all of them, concurrent
/// batches share them, and when one fails it recovers alone while the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplexed_streams_share_the_rows_and_recover_one_by_one() {
    let table = "cat.sch.multiplexed";
    let server = memory_server(table, table_schema()).await;
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_retry_config(6, 5, 200)
        .with_multiplexed_streams(4);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    // 8192 rows = 4 parts of at least MIN_ROWS_PER_STREAM_PART, one per stream.
    let first = batch(0, 8_192);
    assert_all_delivered(&wrapper.send_batch(first.clone()).await.expect("send"));
    assert_eq!(server.counters(table).streams_opened, 4, "one per lane");

    server
        .faults(table)
        .fail_after_records(2_500, Code::Unavailable);
    let mut sent = vec![first];
    sent.extend(
        send_concurrently(
            &wrapper,
            8,
            10,
            |task, n| batch(10_000 + (task * 10 + n) * 300, 300),
            |_, result| assert_all_delivered(result),
        )
        .await,
    );
    wrapper.shutdown().await.expect("shutdown");
    assert_landed_equals(&server, table, &sent).await;
    let streams = server.counters(table).streams_opened;
    assert!(
        streams > 4,
        "the failed stream was replaced: {streams} streams"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_creation_failures_are_retried() {
    let table = "cat.sch.create";
    let server = memory_server(table, table_schema()).await;
    server
        .faults(table)
        .fail_stream_creation(3, Code::Unavailable);
    let wrapper = wrapper_for(&server, table).await;
    let sent = vec![batch(0, 50)];
    let result = wrapper.send_batch(sent[0].clone()).await.expect("send");
    assert_all_delivered(&result);
    wrapper.shutdown().await.expect("shutdown");
    assert_eq!(assert_landed_equals(&server, table, &sent).await, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_failing_encoding_are_reported_while_the_rest_land() {
    let table = "cat.sch.partial";
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("counter", DataType::Int64, true),
    ]));
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(table, schema)
        .start()
        .await
        .expect("server");
    let wrapper = wrapper_for(&server, table).await;
    // u64::MAX does not fit the table's BIGINT: rows 1 and 3 fail, the others land.
    let sent = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])) as ArrayRef,
        ),
        (
            "counter",
            Arc::new(UInt64Array::from(vec![10, u64::MAX, 30, u64::MAX, 50])),
        ),
    ])
    .expect("batch");
    let result = wrapper.send_batch(sent.clone()).await.expect("send");
    assert!(result.is_partial_success());
    assert_eq!(result.get_failed_row_indices(), [1, 3]);
    let kinds = result.group_conversion_errors_by_kind();
    assert_eq!(kinds[&ConversionErrorKind::ValueOutOfRange], [1, 3]);
    wrapper.shutdown().await.expect("shutdown");

    let landed = server.read_table(table).await.expect("read");
    let ids = landed.column(0).as_primitive::<Int64Type>();
    let counters = landed.column(1).as_primitive::<Int64Type>();
    let mut pairs: Vec<(i64, i64)> = (0..landed.num_rows())
        .map(|r| (ids.value(r), counters.value(r)))
        .collect();
    pairs.sort_unstable();
    assert_eq!(pairs, [(1, 10), (3, 30), (5, 50)]);
    assert_eq!(landed.column(1).null_count(), 0);
    server.shutdown().await;
}

/// A batch many requests long (`max_request_bytes` of 16 KiB) is encoded and queued in
/// parts: on both transports, rows that cannot be encoded fail under their own row
/// numbers, the server receives at least as many requests as the limit implies, and every
/// other row lands exactly once, value by value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_a_request_travels_in_parts_and_lands_whole() {
    const ROWS: i64 = 10_000;
    const REQUEST_BYTES: usize = 16 * 1024;
    let tables = [
        ("cat.sch.parts_pb", TransportKind::Protobuf),
        ("cat.sch.parts_ft", TransportKind::ArrowFlight),
    ];
    let table_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("counter", DataType::Int64, true),
    ]));
    let mut builder = LocalZerobus::builder().landing(Landing::Memory);
    for (table, _) in tables {
        builder = builder.table(table, table_schema.clone());
    }
    let server = builder.start().await.expect("server");

    // `counter` arrives as UInt64: the rows with a value over i64::MAX fail, in every part.
    let bad = |id: i64| id % 997 == 5;
    let counter = |id: i64| match id {
        id if bad(id) => Some(u64::MAX - id as u64),
        id if id % 3 == 0 => None,
        id => Some(id as u64 * 1_000_003),
    };
    let name =
        |id: i64| (id % 5 != 0).then(|| format!("name {id} {}", "é".repeat((id % 40) as usize)));
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..ROWS)) as ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from_iter((0..ROWS).map(name))),
        ),
        (
            "counter",
            Arc::new(UInt64Array::from_iter((0..ROWS).map(counter))),
        ),
    ])
    .expect("batch");
    let expected_failed: Vec<usize> = (0..ROWS)
        .filter(|id| bad(*id))
        .map(|id| id as usize)
        .collect();
    assert!(expected_failed.len() >= 10 && expected_failed.last() > Some(&9_000));
    let encoded_len = RowEncoder::new(Arc::new(
        TableSchema::try_new(batch.schema(), "t").expect("schema"),
    ))
    .encode(&batch)
    .expect("encode")
    .encoded_len();
    let fewest_requests = encoded_len.div_ceil(REQUEST_BYTES) as u64;
    assert!(fewest_requests >= 20, "{encoded_len} bytes");

    for (table, kind) in tables {
        let config = WrapperConfiguration::new(server.endpoint(), table)
            .with_retry_config(6, 5, 200)
            .with_transport(kind)
            .with_max_request_bytes(REQUEST_BYTES);
        let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
        let result = wrapper.send_batch(batch.clone()).await.expect("send");
        assert_eq!(result.total_rows, ROWS as usize);
        assert_eq!(result.get_failed_row_indices(), expected_failed, "{table}");
        for (row, error) in &result.failed_rows {
            let failure = error.conversion_failure().expect("a conversion failure");
            assert_eq!(failure.row, Some(*row), "{table}: {error}");
            assert_eq!(
                failure.column.as_deref(),
                Some("counter"),
                "{table}: {error}"
            );
        }
        wrapper.shutdown().await.expect("shutdown");

        let requests = server.counters(table).requests;
        assert!(
            (fewest_requests..=3 * fewest_requests).contains(&requests),
            "{table}: {requests} requests for {encoded_len} bytes in requests of {REQUEST_BYTES}"
        );
        let landed = server.read_table(table).await.expect("read");
        let ids = landed.column(0).as_primitive::<Int64Type>();
        let names = landed.column(1).as_string::<i32>();
        let counters = landed.column(2).as_primitive::<Int64Type>();
        let actual: BTreeMap<i64, (Option<String>, Option<i64>)> = (0..landed.num_rows())
            .map(|r| {
                let name = names.is_valid(r).then(|| names.value(r).to_string());
                let counter = counters.is_valid(r).then(|| counters.value(r));
                (ids.value(r), (name, counter))
            })
            .collect();
        assert_eq!(landed.num_rows(), actual.len(), "{table}: no row twice");
        let expected: BTreeMap<i64, (Option<String>, Option<i64>)> = (0..ROWS)
            .filter(|id| !bad(*id))
            .map(|id| (id, (name(id), counter(id).map(|c| c as i64))))
            .collect();
        assert_eq!(actual, expected, "{table}");
    }
    server.shutdown().await;
}

/// A run several times longer than the token lifetime, with streams rotated every second:
/// the wrapper (through the SDK) mints new tokens as they expire and no row is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_over_a_run_longer_than_their_lifetime() {
    use secrecy::ExposeSecret;
    use zerobus_local::Auth;

    let table = "cat.sch.token_refresh";
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .token_ttl(Duration::from_secs(2))
        .stream_lifetime(Duration::from_secs(1))
        .table(table, table_schema())
        .start()
        .await
        .expect("local server");
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_credentials(
            server.client_id().to_string(),
            server.client_secret().expose_secret().to_string(),
        )
        .with_unity_catalog(server.unity_catalog_url())
        .with_retry_config(6, 5, 200);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    let started = std::time::Instant::now();
    let mut sent = Vec::new();
    let mut n = 0;
    // About four token lifetimes.
    while started.elapsed() < Duration::from_secs(8) {
        let b = batch(n * 200, 200);
        assert_all_delivered(&wrapper.send_batch(b.clone()).await.expect("send"));
        sent.push(b);
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wrapper.shutdown().await.expect("shutdown");
    assert_landed_equals(&server, table, &sent).await;
    let tokens = server.tokens_issued();
    assert!(
        tokens >= 3,
        "only {tokens} tokens issued over {:?} with a 2 s lifetime",
        started.elapsed()
    );
    server.shutdown().await;
}

/// `send_stream`: many batches, a window of 3 in flight, one result whose rows count
/// across batches (a row over the size limit in the fourth batch is stream row 3 × 500 +
/// 7), the failed rows handed over batch by batch; a stream error ends the send after
/// what was read before it landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_stream_numbers_rows_across_batches_and_stops_at_a_stream_error() {
    let table = "cat.sch.stream";
    let server = memory_server(table, table_schema()).await;
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_retry_config(6, 5, 200)
        .with_max_record_size_bytes(200);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    let mut batches: Vec<RecordBatch> = (0..8).map(|i| batch(i * 500, 500)).collect();
    // Row 7 of the fourth batch: a name of 300 bytes, over the 200-byte record limit.
    let mut columns = batches[3].columns().to_vec();
    columns[2] = Arc::new(StringArray::from_iter((0..500).map(|i| {
        Some(if i == 7 {
            "x".repeat(300)
        } else {
            format!("n{i}")
        })
    })));
    batches[3] = RecordBatch::try_new(table_schema(), columns).expect("batch");
    let mut failed_batches = Vec::new();
    let stream = futures::stream::iter(batches.clone().into_iter().map(Ok));
    let result = wrapper
        .send_stream_with_failures(stream, 3, |rows| failed_batches.push(rows))
        .await
        .expect("send_stream");
    assert_eq!(result.total_rows, 4_000);
    assert_eq!(result.get_failed_row_indices(), vec![1_507]);
    let (_, error) = &result.failed_rows[0];
    let failure = error.conversion_failure().expect("a conversion failure");
    assert_eq!(failure.row, Some(1_507));
    assert_eq!(failure.kind, ConversionErrorKind::RecordTooLarge);
    assert_eq!(failed_batches.len(), 1);
    assert_eq!(
        failed_batches[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        1_507
    );

    // The stream fails after two batches: those land, the error says how far it got.
    let broken = futures::stream::iter(vec![
        Ok(batch(10_000, 100)),
        Ok(batch(10_100, 100)),
        Err(ZerobusError::arrow(
            "reading the input",
            arrow::error::ArrowError::IpcError("truncated".into()),
        )),
        Ok(batch(10_200, 100)),
    ]);
    let error = wrapper
        .send_stream(broken, 4)
        .await
        .expect_err("the stream's error");
    assert_eq!(error.error_type(), "ArrowError");
    assert!(
        error
            .to_string()
            .ends_with("(after 200 rows of the stream)"),
        "{error}"
    );
    wrapper.shutdown().await.expect("shutdown");
    let landed = server.read_table(table).await.expect("read back");
    assert_eq!(landed.num_rows(), 3_999 + 200);
    server.shutdown().await;
}
