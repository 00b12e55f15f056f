//! The wrapper isolating the records the server refuses: the local server rejects every
//! request message carrying a "poison" record with `INVALID_ARGUMENT`
//! (`Faults::reject_records_containing`); the good rows must land, only the poison rows may
//! fail ("rejected by the server"), with a bounded number of streams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_zerobus_sdk_wrapper::{
    TransmissionResult, TransportKind, WrapperConfiguration, ZerobusWrapper,
};
use zerobus_local::{Landing, LocalZerobus};

const POISON: &str = "POISON";

/// Most streams the wrapper may use for one chunk: the first send, then its isolation
/// bound (64 private streams, `MAX_ISOLATION_STREAMS` in src/transport/sdk.rs).
const MAX_ATTEMPTS: u32 = 1 + 64;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// Rows `first..first + rows`; the ids in `poison` carry the poison marker in `name`.
fn batch(first: i64, rows: usize, poison: &BTreeSet<i64>) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let names = ids.iter().map(|id| {
        if poison.contains(id) {
            format!("{POISON}-{id}")
        } else {
            format!("row-{id}")
        }
    });
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter_values(names)),
        ],
    )
    .expect("batch")
}

/// A memory-landing server whose table refuses records containing [`POISON`], and a
/// wrapper pointed at it that sends with `transport`.
async fn setup(table: &str, transport: TransportKind) -> (LocalZerobus, ZerobusWrapper) {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(table, schema())
        .start()
        .await
        .expect("local server");
    server
        .faults(table)
        .reject_records_containing(Some(POISON.as_bytes().to_vec()));
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_retry_config(4, 5, 100)
        .with_transport(transport);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    (server, wrapper)
}

/// How many times each id landed, with its name.
async fn landed(server: &LocalZerobus, table: &str) -> BTreeMap<i64, (usize, String)> {
    let landed = server.read_table(table).await.expect("read table");
    let ids = landed
        .column_by_name("id")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .expect("id column");
    let names = landed
        .column_by_name("name")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .expect("name column");
    let mut out = BTreeMap::<i64, (usize, String)>::new();
    for row in 0..landed.num_rows() {
        let entry = out
            .entry(ids.value(row))
            .or_insert((0, names.value(row).to_string()));
        entry.0 += 1;
        assert_eq!(entry.1, names.value(row), "id {} changed", ids.value(row));
    }
    out
}

/// The batch-local row indices of `result` that failed as refused by the server.
fn rejected_rows(result: &TransmissionResult) -> BTreeSet<usize> {
    result
        .failed_rows
        .iter()
        .map(|(row, error)| {
            assert!(
                error.to_string().contains("rejected by the server"),
                "row {row} failed for another reason: {error}"
            );
            *row
        })
        .collect()
}

/// Every id of `sent` except `poison` landed (at least once) with its own name, and no
/// poison id landed. Returns the rows that landed more than once.
fn assert_good_rows_landed(
    landed: &BTreeMap<i64, (usize, String)>,
    sent: &[RecordBatch],
    poison: &BTreeSet<i64>,
) -> usize {
    let mut duplicates = 0;
    for b in sent {
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        for id in ids.values() {
            match (poison.contains(id), landed.get(id)) {
                (true, Some(_)) => panic!("poison id {id} landed"),
                (true, None) => {}
                (false, None) => panic!("good id {id} is missing"),
                (false, Some((count, name))) => {
                    assert_eq!(name, &format!("row-{id}"));
                    duplicates += count - 1;
                }
            }
        }
    }
    let sent_rows: usize = sent.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(
        landed.len(),
        sent_rows - poison.len(),
        "ids that were not sent landed"
    );
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_poison_rows_of_a_batch_fail() {
    only_the_poison_rows_fail("cat.sch.bisect_one", TransportKind::Protobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_poison_rows_of_a_flight_batch_fail() {
    only_the_poison_rows_fail("cat.sch.bisect_flight", TransportKind::ArrowFlight).await;
}

async fn only_the_poison_rows_fail(table: &str, transport: TransportKind) {
    let (server, wrapper) = setup(table, transport).await;
    let poison: BTreeSet<i64> = [3, 117, 118, 250].into();
    let sent = batch(0, 256, &poison);
    let result = wrapper.send_batch(sent.clone()).await.expect("send");
    let expected: BTreeSet<usize> = poison.iter().map(|id| *id as usize).collect();
    assert_eq!(rejected_rows(&result), expected);
    assert_eq!(result.successful_count, 256 - poison.len());
    assert!(result.is_partial_success());
    assert!(
        result.attempts > 1 && result.attempts <= MAX_ATTEMPTS,
        "attempts {}",
        result.attempts
    );
    wrapper.shutdown().await.expect("shutdown");
    let landed = landed(&server, table).await;
    // Nothing of the batch was acknowledged before the refusal: each good row lands once.
    assert_eq!(assert_good_rows_landed(&landed, &[sent], &poison), 0);
    server.shutdown().await;
}

/// Batches pipelined on one stream around a poisoned one: those queued behind the refused
/// request are resent too, and every batch reports only its own poison rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_queued_behind_a_refused_request_still_land() {
    let table = "cat.sch.bisect_pipelined";
    let (server, wrapper) = setup(table, TransportKind::Protobuf).await;
    let poison: BTreeSet<i64> = [2_010, 2_199].into();
    let sent: Vec<RecordBatch> = (0..6).map(|n| batch(n * 1_000, 200, &poison)).collect();
    let mut pending = Vec::new();
    for b in &sent {
        pending.push(wrapper.submit_batch(b.clone()).await.expect("submit"));
    }
    for (n, handle) in pending.into_iter().enumerate() {
        let result = handle.await;
        let expected: BTreeSet<usize> = poison
            .iter()
            .filter(|id| **id / 1_000 == n as i64)
            .map(|id| (*id % 1_000) as usize)
            .collect();
        assert_eq!(rejected_rows(&result), expected, "batch {n}");
        assert!(result.attempts <= MAX_ATTEMPTS, "batch {n}: {result:?}");
    }
    wrapper.shutdown().await.expect("shutdown");
    let duplicates = assert_good_rows_landed(&landed(&server, table).await, &sent, &poison);
    println!("{table}: {duplicates} rows landed twice (acked late, resent)");
    server.shutdown().await;
}

/// More poison than the isolation bound can single out: the batch still ends (bounded),
/// no poison row lands, and rows left unresolved fail with a note saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_is_bounded() {
    let table = "cat.sch.bisect_bound";
    let (server, wrapper) = setup(table, TransportKind::Protobuf).await;
    let poison: BTreeSet<i64> = (0..1_024).step_by(16).collect();
    let sent = batch(0, 1_024, &poison);
    let result = wrapper.send_batch(sent.clone()).await.expect("send");
    assert!(
        result.attempts <= MAX_ATTEMPTS,
        "attempts {}",
        result.attempts
    );
    let failed = rejected_rows(&result);
    for id in &poison {
        assert!(
            failed.contains(&(*id as usize)),
            "poison row {id} not failed"
        );
    }
    let unresolved = result
        .failed_rows
        .iter()
        .filter(|(_, e)| e.to_string().contains("could not be isolated"))
        .count();
    assert!(unresolved > 0, "64 poison rows need more than 64 streams");
    wrapper.shutdown().await.expect("shutdown");
    let landed = landed(&server, table).await;
    let succeeded: BTreeSet<i64> = result
        .successful_rows
        .iter()
        .map(|row| *row as i64)
        .collect();
    assert!(landed.keys().all(|id| !poison.contains(id)));
    for id in &succeeded {
        assert!(landed.contains_key(id), "acknowledged id {id} missing");
    }
    server.shutdown().await;
}
