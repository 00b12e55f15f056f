//! `INSERT INTO zerobus_table SELECT ... FROM generate_series(1, N)` against the local
//! server (`none` landing), against the wrapper driven directly with the same batches, with
//! 1 and 2 workers, and the peak RSS of each run (each configuration runs in its own child
//! process, so its peak is its own).
//!
//! ```text
//! cargo bench --features local,datafusion --bench sql_insert              # the matrix
//! cargo bench --features local,datafusion --bench sql_insert -- sql 1000000 2   # one run
//! ```

use std::sync::Arc;
use std::time::Instant;

use arrow_zerobus_sdk_wrapper::datafusion::{SinkOptions, ZerobusTableProvider};
use arrow_zerobus_sdk_wrapper::local::{Landing, LocalZerobus};
use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusWrapper};
use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

const TABLE: &str = "bench.sql.insert";
const QUERY: &str = "SELECT value AS id, CAST(value % 7 AS INT) AS bucket, \
                     'row-' || CAST(value AS VARCHAR) AS label FROM generate_series(1, {rows})";

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, and then one small run only checks that the bench still works.
    let benching = std::env::args().any(|a| a == "--bench");
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.is_empty() && !benching {
        args = ["sql", "20000", "2"].map(String::from).to_vec();
    }
    if let [mode, rows, workers] = args.as_slice() {
        let rows: u64 = rows.parse().expect("rows");
        let workers: usize = workers.parse().expect("workers");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let seconds = runtime.block_on(run(mode, rows, workers));
        println!(
            "{mode:>6} rows={rows:>9} workers={workers} {:>8.2}s {:>10.0} rows/s peak_rss={} MiB",
            seconds,
            rows as f64 / seconds,
            peak_rss_mib()
        );
        return;
    }
    let exe = std::env::current_exe().expect("bench executable");
    let matrix = [
        ("direct", 10_000_000, 1),
        ("sql", 10_000_000, 1),
        ("direct", 10_000_000, 2),
        ("sql", 10_000_000, 2),
        ("sql", 1_000_000, 2),
    ];
    for (mode, rows, workers) in matrix {
        let status = std::process::Command::new(&exe)
            .args([mode, &rows.to_string(), &workers.to_string()])
            .status()
            .expect("child run");
        assert!(status.success(), "{mode} {rows} {workers} failed");
    }
}

/// One run; returns its wall-clock seconds.
async fn run(mode: &str, rows: u64, workers: usize) -> f64 {
    let server = LocalZerobus::builder()
        .landing(Landing::None)
        .start()
        .await
        .expect("local server");
    let config = WrapperConfiguration::new(server.endpoint(), TABLE);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(32_768));
    let query = QUERY.replace("{rows}", &rows.to_string());
    let started = Instant::now();
    let landed = match mode {
        "sql" => {
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("bucket", DataType::Int32, true),
                Field::new("label", DataType::Utf8, true),
            ]));
            let options = SinkOptions {
                workers,
                ..SinkOptions::default()
            };
            let table = ZerobusTableProvider::new(schema, config).with_sink_options(options);
            ctx.register_table("t", Arc::new(table)).expect("register");
            let result = ctx
                .sql(&format!("INSERT INTO t {query}"))
                .await
                .expect("plan")
                .collect()
                .await
                .expect("insert");
            result[0]
                .column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .expect("count column")
                .value(0)
        }
        _ => direct(&ctx, &query, config, workers).await,
    };
    assert_eq!(landed, rows, "rows landed");
    let seconds = started.elapsed().as_secs_f64();
    server.shutdown().await;
    seconds
}

/// The same batches, straight into `workers` wrappers (round robin, 8 batches in flight
/// each): the baseline the SQL path is measured against.
async fn direct(
    ctx: &SessionContext,
    query: &str,
    config: WrapperConfiguration,
    workers: usize,
) -> u64 {
    let mut stream = ctx
        .sql(query)
        .await
        .expect("plan")
        .execute_stream()
        .await
        .expect("execute");
    let mut wrappers = Vec::new();
    for _ in 0..workers {
        wrappers.push(ZerobusWrapper::new(config.clone()).await.expect("wrapper"));
    }
    let mut inflight = std::collections::VecDeque::new();
    let mut landed = 0u64;
    let mut next = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.expect("batch");
        let wrapper = wrappers[next % workers].clone();
        next += 1;
        inflight.push_back(tokio::spawn(async move {
            wrapper.submit_batch(batch).await.expect("submit").await
        }));
        while inflight.len() >= 8 * workers {
            let result = inflight
                .pop_front()
                .expect("in flight")
                .await
                .expect("join");
            landed += result.successful_count as u64;
        }
    }
    for pending in inflight {
        landed += pending.await.expect("join").successful_count as u64;
    }
    for wrapper in wrappers {
        wrapper.shutdown().await.expect("shutdown");
    }
    landed
}

/// The peak resident set size of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
