//! `INSERT INTO zerobus_table SELECT ... FROM generate_series(1, N)` against the local
//! server (`none` landing), against its baseline: the wrapper driven directly with the same
//! batches (same query, same number of workers).
//!
//! Two parts, one run:
//! - criterion group `sql_insert_1M`: SQL and direct, 1 and 2 workers, 1M rows each
//!   (10 samples); the bench then prints each contender's median and the SQL/direct and
//!   2-workers/1-worker ratios of those medians;
//! - the bench's own matrix at 10M rows (and SQL at 1M rows), each configuration in a child
//!   process talking to the local server in a process of its own, so the child's peak RSS
//!   (`VmHWM`) is the client's alone: rows/s, SQL/direct, 2 workers/1 worker, and the peak
//!   RSS of 10M rows over that of 1M rows (the server's peak RSS is printed beside it).
//!
//! The criterion group's server runs in the bench's process unless
//! `ZEROBUS_BENCH_SERVER=process` or `ZEROBUS_BENCH_ENDPOINT` says otherwise (as in `e2e`).
//!
//! ```text
//! cargo bench --features local,datafusion --bench sql_insert                # everything
//! cargo bench --features local,datafusion --bench sql_insert -- sql 1000000 2   # one run
//! cargo test --features local,datafusion --bench sql_insert                 # smoke run
//! ```
//!
//! Without `--bench` (`cargo test`) everything runs once at a few thousand rows.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_zerobus_sdk_wrapper::sql::{
    SinkOptions, ZerobusTableProvider, DEFAULT_MAX_INFLIGHT_BATCHES,
};
use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusWrapper};
use criterion::{Criterion, SamplingMode};
use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use tokio::runtime::Runtime;
use zerobus_local::{Landing, LocalZerobus};

use zerobus_test_support::bench_server::{self, peak_rss_mib, BenchServer};

const TABLE: &str = "bench.sql.insert";
const QUERY: &str = "SELECT value AS id, CAST(value % 7 AS INT) AS bucket, \
                     'row-' || CAST(value AS VARCHAR) AS label FROM generate_series(1, {rows})";

fn main() {
    // The child processes of the matrix start this executable again as their server.
    bench_server::serve_if_child();
    // `cargo bench` passes `--bench`; `cargo test --bench sql_insert` does not.
    let benching = std::env::args().any(|a| a == "--bench");
    let positional: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let [mode, rows, workers] = positional.as_slice() {
        child(&runtime, mode, rows, workers);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    compare(
        &mut criterion,
        &runtime,
        if benching { 1_000_000 } else { 5_000 },
    );
    criterion.final_summary();
    drop(runtime);
    matrix(if benching { 1 } else { 1_000 });
}

/// One configuration, timed, in this process against the local server in a child process
/// (so this process's peak RSS is the client's alone): prints seconds, rows/s and the peak
/// RSS of both processes.
fn child(runtime: &Runtime, mode: &str, rows: &str, workers: &str) {
    let rows: u64 = rows.parse().expect("rows: a whole number");
    let workers: usize = workers.parse().expect("workers: a whole number");
    let (server, endpoint) = BenchServer::child();
    let started = Instant::now();
    let landed = runtime.block_on(insert(&endpoint, mode, rows, workers));
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(landed, rows, "rows landed");
    println!(
        "{mode} rows={rows} workers={workers} seconds={seconds:.3} rows_per_s={:.0} \
         peak_rss_mib={} server_peak_rss_mib={}",
        rows as f64 / seconds,
        peak_rss_mib("/proc/self/status").unwrap_or(0),
        server.child_peak_rss_mib().unwrap_or(0)
    );
}

/// The criterion group: SQL and direct, 1 and 2 workers, `rows` rows per run against one
/// server; then the medians and their ratios.
fn compare(criterion: &mut Criterion, runtime: &Runtime, rows: u64) {
    let (server, endpoint, where_) = runtime.block_on(BenchServer::from_env(
        LocalZerobus::builder().landing(Landing::None),
    ));
    println!("sql_insert criterion group: server {where_}");
    // Every run's wall time per contender (warm-up runs included; the median is robust).
    let runs: RefCell<BTreeMap<String, Vec<Duration>>> = RefCell::default();
    let name = if rows == 1_000_000 {
        "sql_insert_1M".to_string()
    } else {
        format!("sql_insert_{rows}")
    };
    let mut group = criterion.benchmark_group(&name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(criterion::Throughput::Elements(rows));
    for workers in [1, 2] {
        for mode in ["sql", "direct"] {
            let id = format!("{mode}_{workers}w");
            group.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let landed = runtime.block_on(insert(&endpoint, mode, rows, workers));
                        let took = started.elapsed();
                        assert_eq!(landed, rows, "{id}: rows landed");
                        runs.borrow_mut().entry(id.clone()).or_default().push(took);
                        total += took;
                    }
                    total
                })
            });
        }
    }
    group.finish();
    runtime.block_on(server.shutdown());

    let median = |id: &str| {
        let mut all = runs.borrow().get(id).cloned().unwrap_or_default();
        all.sort_unstable();
        all.get(all.len() / 2).copied().unwrap_or_default()
    };
    println!("\n{name}: medians of every run ({rows} rows)");
    for workers in [1, 2] {
        let sql = median(&format!("sql_{workers}w"));
        let direct = median(&format!("direct_{workers}w"));
        println!(
            "  {workers} worker(s): sql {:>8.1} ms ({:>9.0} rows/s)  direct {:>8.1} ms \
             ({:>9.0} rows/s)  sql/direct throughput {:.2}",
            sql.as_secs_f64() * 1e3,
            rows as f64 / sql.as_secs_f64(),
            direct.as_secs_f64() * 1e3,
            rows as f64 / direct.as_secs_f64(),
            direct.as_secs_f64() / sql.as_secs_f64()
        );
    }
    println!(
        "  2 workers/1 worker throughput: sql {:.2}, direct {:.2}\n",
        median("sql_1w").as_secs_f64() / median("sql_2w").as_secs_f64(),
        median("direct_1w").as_secs_f64() / median("direct_2w").as_secs_f64()
    );
}

/// The 10M-row matrix (rows divided by `scale_down`), each configuration in a child
/// process; prints one table with the ratios.
fn matrix(scale_down: u64) {
    let exe = std::env::current_exe().expect("bench executable");
    let (large, small) = (10_000_000 / scale_down, 1_000_000 / scale_down);
    let configurations = [
        ("direct", large, 1),
        ("sql", large, 1),
        ("direct", large, 2),
        ("sql", large, 2),
        ("sql", small, 2),
    ];
    let mut results = Vec::new();
    for (mode, rows, workers) in configurations {
        let output = std::process::Command::new(&exe)
            .args([mode, &rows.to_string(), &workers.to_string()])
            .output()
            .expect("child run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{mode} {rows} {workers} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let field = |key: &str| -> f64 {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{key} in the child's output: {stdout}"))
        };
        results.push((
            mode,
            rows,
            workers,
            field("seconds="),
            field("peak_rss_mib="),
            field("server_peak_rss_mib="),
        ));
    }
    println!("\nsql_insert matrix (each row a child process)");
    println!(
        "{:>6} {:>10} {:>7} {:>9} {:>11} {:>13} {:>13}",
        "mode", "rows", "workers", "seconds", "rows/s", "peak RSS MiB", "server's MiB"
    );
    for (mode, rows, workers, seconds, rss, server_rss) in &results {
        println!(
            "{mode:>6} {rows:>10} {workers:>7} {seconds:>9.2} {:>11.0} {rss:>13.0} \
             {server_rss:>13.0}",
            *rows as f64 / seconds
        );
    }
    let seconds = |i: usize| results[i].3;
    println!(
        "sql/direct throughput: 1 worker {:.2}, 2 workers {:.2}; 2 workers/1 worker: \
         sql {:.2}, direct {:.2}; peak RSS (client process) sql {large}/{small} rows: {:.2}\n",
        seconds(0) / seconds(1),
        seconds(2) / seconds(3),
        seconds(1) / seconds(3),
        seconds(0) / seconds(2),
        results[3].4 / results[4].4
    );
}

/// One INSERT of `rows` rows (`mode` `sql`) or the same batches through the wrapper
/// directly (any other `mode`); returns the rows that landed.
async fn insert(endpoint: &str, mode: &str, rows: u64, workers: usize) -> u64 {
    let config = WrapperConfiguration::new(endpoint, TABLE);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(32_768));
    let query = QUERY.replace("{rows}", &rows.to_string());
    if mode != "sql" {
        return direct(&ctx, &query, config, workers).await;
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("bucket", DataType::Int32, true),
        Field::new("label", DataType::Utf8, true),
    ]));
    let options = SinkOptions::default().with_workers(workers);
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

/// The same batches, straight into `workers` wrappers (round robin, as many batches in
/// flight each as the sink's default): the baseline the SQL path is measured against.
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
        while inflight.len() >= DEFAULT_MAX_INFLIGHT_BATCHES * workers {
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
