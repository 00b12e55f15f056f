//! The local server's faults (ZEROBUS_PROTOCOL §5) against the unmodified official client
//! on the gRPC EphemeralStream path (JSON records): for each fault, the client's
//! documented reaction (retry, recovery and resend, or a terminal error), and no row the
//! client saw acknowledged is missing from the table.
//!
//! The Arrow Flight path has its own fault tests (local_flight.rs), the token faults theirs
//! (local_auth.rs).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use databricks_zerobus_ingest_sdk::{
    AckCallback, OffsetId, StreamBuilder, ZerobusError as SdkError, ZerobusSdk, ZerobusStream,
};
use tonic::Code;
use zerobus_local::{Landing, LocalZerobus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Records per request, requests per run.
const PER_REQUEST: usize = 100;
const REQUESTS: usize = 20;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

async fn memory_server(table: &str) -> LocalZerobus {
    LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(table, schema())
        .start()
        .await
        .expect("local server")
}

/// The highest offset the client reported acknowledged (its ack callback).
struct AckedUpTo(AtomicI64);

impl AckCallback for AckedUpTo {
    fn on_ack(&self, offset: OffsetId) {
        self.0.fetch_max(offset, Ordering::SeqCst);
    }

    fn on_error(&self, _offset: OffsetId, _message: &str) {}
}

impl AckedUpTo {
    fn get(&self) -> OffsetId {
        self.0.load(Ordering::SeqCst)
    }
}

/// The SDK client and what it sent: the ids of each request by offset.
struct Client {
    sdk: ZerobusSdk,
    table: String,
    acked: Arc<AckedUpTo>,
    sent: Vec<(OffsetId, Range<i64>)>,
}

impl Client {
    fn new(server: &LocalZerobus, table: &str) -> Self {
        let sdk = ZerobusSdk::builder()
            .endpoint(server.endpoint())
            .no_tls()
            .connector_factory(Arc::new(|_: &str| None))
            .build()
            .expect("sdk");
        Self {
            sdk,
            table: table.to_string(),
            acked: Arc::new(AckedUpTo(AtomicI64::new(-1))),
            sent: Vec::new(),
        }
    }

    /// Opens a JSON stream with quick recovery; `tune` adjusts the builder further.
    async fn open(
        &self,
        tune: impl FnOnce(StreamBuilder<'_>) -> StreamBuilder<'_>,
    ) -> Result<ZerobusStream, SdkError> {
        let builder = self
            .sdk
            .stream_builder()
            .table(&self.table)
            .no_auth()
            .json()
            .recovery_backoff_ms(50)
            .recovery_retries(8)
            .ack_callback(self.acked.clone());
        tune(builder).build().await
    }

    /// Sends `requests` requests of [`PER_REQUEST`] rows, ids counting on from the last.
    async fn send(&mut self, stream: &ZerobusStream, requests: usize) -> Result<(), SdkError> {
        for _ in 0..requests {
            let first = self.sent.last().map_or(0, |(_, ids)| ids.end);
            let ids = first..first + PER_REQUEST as i64;
            let records: Vec<String> = ids
                .clone()
                .map(|i| format!(r#"{{"id": {i}, "name": "n-{i}"}}"#))
                .collect();
            let offset = stream
                .ingest_records_offset(records)
                .await?
                .expect("a request has an offset");
            self.sent.push((offset, ids));
        }
        Ok(())
    }

    /// Ids of the requests the client saw acknowledged.
    fn acked_ids(&self) -> impl Iterator<Item = i64> + '_ {
        let up_to = self.acked.get();
        self.sent
            .iter()
            .filter(move |(offset, _)| *offset <= up_to)
            .flat_map(|(_, ids)| ids.clone())
    }

    fn all_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.sent.iter().flat_map(|(_, ids)| ids.clone())
    }
}

/// How often each id is in the table (the name checked against the id).
async fn landed(server: &LocalZerobus, table: &str) -> BTreeMap<i64, usize> {
    let batch = server.read_table(table).await.expect("read table");
    let ids = batch
        .column_by_name("id")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .expect("id column")
        .clone();
    let names = batch.column_by_name("name").expect("name column");
    let names = arrow::array::as_string_array(names);
    let mut counts = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let id = ids.value(row);
        assert_eq!(names.value(row), format!("n-{id}"), "row of id {id}");
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Every id of `ids` is in `landed`; returns how many landed more than once.
fn assert_landed(landed: &BTreeMap<i64, usize>, ids: impl Iterator<Item = i64>, what: &str) {
    let missing: Vec<i64> = ids.filter(|id| !landed.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} {what} ids missing from the table, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

fn duplicates(landed: &BTreeMap<i64, usize>) -> usize {
    landed.values().map(|n| n - 1).sum()
}

/// Sends [`REQUESTS`] requests through a fault armed by `arm` after the first few were
/// acknowledged; the client must recover on its own: flush succeeds, every request is
/// acknowledged and every row landed. Returns the rows that landed twice (resent).
async fn recovers(
    table: &str,
    tune: impl FnOnce(StreamBuilder<'_>) -> StreamBuilder<'_>,
    arm: impl FnOnce(&LocalZerobus),
) -> usize {
    let server = memory_server(table).await;
    let mut client = Client::new(&server, table);
    let mut stream = client.open(tune).await.expect("stream");
    client.send(&stream, 2).await.expect("send");
    stream.flush().await.expect("first flush");
    arm(&server);
    client.send(&stream, REQUESTS - 2).await.expect("send");
    stream.flush().await.expect("the client recovers");
    stream.close().await.expect("close");
    let last = client.sent.last().expect("sent").0;
    assert_eq!(client.acked.get(), last, "every request acknowledged");
    let landed = landed(&server, table).await;
    assert_landed(&landed, client.all_ids(), "sent and acknowledged");
    assert_eq!(
        landed.len(),
        REQUESTS * PER_REQUEST,
        "ids never sent landed"
    );
    assert_eq!(
        server.counters(table).duplicates as usize,
        duplicates(&landed),
        "the server's duplicate count"
    );
    server.shutdown().await;
    duplicates(&landed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_creation_failing_with_a_retryable_code_is_retried() -> TestResult {
    let table = "cat.sch.create_retryable";
    let server = memory_server(table).await;
    server
        .faults(table)
        .fail_stream_creation(2, Code::Unavailable);
    let mut client = Client::new(&server, table);
    let mut stream = client.open(|b| b).await?;
    client.send(&stream, 3).await?;
    stream.flush().await?;
    stream.close().await?;
    assert_eq!(client.acked.get(), 2);
    let landed = landed(&server, table).await;
    assert_landed(&landed, client.all_ids(), "acknowledged");
    assert_eq!(duplicates(&landed), 0);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_creation_failing_with_a_terminal_code_is_an_error() -> TestResult {
    let table = "cat.sch.create_terminal";
    let server = memory_server(table).await;
    server.faults(table).fail_stream_creation(2, Code::NotFound);
    let client = Client::new(&server, table);
    for attempt in 0..2 {
        match client.open(|b| b).await {
            Err(SdkError::CreateStreamError(status)) => {
                assert_eq!(status.code(), Code::NotFound, "attempt {attempt}");
            }
            Err(other) => panic!("attempt {attempt}: unexpected error {other:?}"),
            Ok(_) => panic!("attempt {attempt}: the stream must not open"),
        }
    }
    // Each build asked once (no retry of a terminal code): the third finds the fault spent.
    let mut stream = client.open(|b| b).await?;
    stream.close().await?;
    assert!(server.read_table(table).await?.num_rows() == 0);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_after_records_is_recovered_by_resending() {
    let table = "cat.sch.unavailable";
    recovers(
        table,
        |b| b,
        |s| s.faults(table).fail_after_records(550, Code::Unavailable),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_acks_only_slow_the_client_down() {
    let table = "cat.sch.delayed";
    let duplicates = recovers(
        table,
        |b| b,
        |s| s.faults(table).delay_acks(Some(Duration::from_millis(30))),
    )
    .await;
    assert_eq!(duplicates, 0, "a slow ack is no failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_acks_trip_the_ack_timeout_and_the_client_resends() {
    let table = "cat.sch.withheld";
    let duplicates = recovers(
        table,
        |b| b.server_lack_of_ack_timeout_ms(300),
        |s| {
            let faults = s.faults(table);
            faults.withhold_acks(true);
            // Acks flow again after a few ack timeouts; the resent rows land a second time.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
                faults.withhold_acks(false);
            });
        },
    )
    .await;
    assert!(
        duplicates > 0,
        "rows stored without an ack must have been resent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stream_signal_rotates_the_stream_without_loss() {
    let table = "cat.sch.rotate";
    let duplicates = recovers(
        table,
        |b| b,
        |s| s.faults(table).close_stream_after_records(700),
    )
    .await;
    assert_eq!(duplicates, 0, "the client drains its acks before rotating");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_connections_are_a_terminal_authentication_error() -> TestResult {
    let table = "cat.sch.rejected";
    let server = memory_server(table).await;
    let faults = server.faults(table);
    faults.reject_connections(true);
    let mut client = Client::new(&server, table);
    match client.open(|b| b).await {
        Err(SdkError::CreateStreamError(status)) => {
            assert_eq!(status.code(), Code::Unauthenticated)
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("the stream must not open"),
    }

    // Mid-run: the stream breaks and its recovery is refused, so the client gives up.
    faults.reject_connections(false);
    let stream = client.open(|b| b).await?;
    client.send(&stream, 3).await?;
    stream.flush().await?;
    faults.fail_after_records(150, Code::Unavailable);
    faults.reject_connections(true);
    let outcome = async {
        client.send(&stream, 5).await?;
        stream.flush().await
    }
    .await;
    let error = outcome.expect_err("recovery is refused");
    assert!(!error.is_retryable(), "terminal: {error:?}");
    assert!(
        format!("{error:?}").contains("Unauthenticated"),
        "unexpected error {error:?}"
    );
    assert!(client.acked.get() >= 2);
    let landed = landed(&server, table).await;
    assert_landed(&landed, client.acked_ids(), "acknowledged");
    server.shutdown().await;
    Ok(())
}

/// The whole server restarts under a running client (Delta landing, the default): the
/// client reconnects and resends; what was acknowledged before is still there, and so is
/// everything after; a fresh server on the same directory reads it all back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_run_keeps_every_acknowledged_row() -> TestResult {
    let table = "cat.sch.restarted";
    let dir = tempfile::tempdir()?;
    let mut server = LocalZerobus::builder()
        .data_dir(dir.path())
        .table(table, schema())
        .start()
        .await?;
    let mut client = Client::new(&server, table);
    let mut stream = client.open(|b| b).await?;
    client.send(&stream, 4).await?;
    stream.flush().await?;
    // The SDK reports acks from its own callback task, which may lag behind flush.
    let reported = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.acked.get() < 3 && tokio::time::Instant::now() < reported {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Requests in flight while the server goes down.
    client.send(&stream, 4).await?;
    let acked_before = client.acked.get();
    assert!(acked_before >= 3);
    server.restart().await?;
    client.send(&stream, REQUESTS - 8).await?;
    stream.flush().await?;
    stream.close().await?;
    assert_eq!(client.acked.get(), client.sent.last().expect("sent").0);
    let landed_now = landed(&server, table).await;
    assert_landed(&landed_now, client.all_ids(), "acknowledged");
    server.shutdown().await;

    let fresh = LocalZerobus::builder().data_dir(dir.path()).start().await?;
    let on_disk = landed(&fresh, table).await;
    assert_eq!(on_disk, landed_now, "the Delta table holds what was read");
    assert_landed(&on_disk, client.all_ids(), "acknowledged");
    fresh.shutdown().await;
    Ok(())
}
