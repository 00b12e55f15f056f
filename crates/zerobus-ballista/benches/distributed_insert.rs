//! `INSERT INTO zerobus_table SELECT * FROM parquet` of 10M rows: single-process DataFusion
//! (the `DataSinkExec` with the Zerobus sink) against Ballista clusters in this process
//! with 1 and 2 executors (`ZerobusWriteExec` per partition), on the same Parquet files,
//! against one local Zerobus server (landing `none`, in this process).
//!
//! ```text
//! cargo bench -p zerobus-ballista --bench distributed_insert            # 10M rows, 3 rounds
//! ZEROBUS_BENCH_ROWS=1000000 ZEROBUS_BENCH_ROUNDS=5 cargo bench -p zerobus-ballista --bench distributed_insert
//! ```
//!
//! Rounds alternate the contenders (single, 1 executor, 2 executors) so they share the
//! machine's load alike; each INSERT's count is checked. Prints every run, then per
//! contender the median time, rows/s and its ratio to single-process (the figure to read:
//! times on a shared machine move, ratios less). `cargo test -p zerobus-ballista --benches`
//! runs it once with 100,000 rows as a smoke test.
//!
//! Setup: 8 Parquet files (one partition each: `repartition_file_scans` off everywhere),
//! 32,768-row batches, rows `id BIGINT, name VARCHAR, score DOUBLE`. Single-process uses
//! the sink's default `workers` (the cores, at most 4) streams; Ballista tasks use
//! `workers` 1 (one stream per partition), each executor has 2 task slots
//! (`ZEROBUS_BENCH_SLOTS`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{SessionConfig, SessionContext};
use zerobus_local::{Landing, LocalZerobus};

const TABLE: &str = "bench.distributed.events";
const FILES: usize = 8;
const BATCH: usize = 32_768;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

/// `rows` rows in [`FILES`] Parquet files in `dir` (batches of [`BATCH`] rows).
fn write_source(dir: &Path, rows: usize) {
    let per_file = rows.div_ceil(FILES);
    for file in 0..FILES {
        let first = file * per_file;
        let last = rows.min(first + per_file);
        let out = File::create(dir.join(format!("part-{file}.parquet"))).expect("file");
        let mut writer = ArrowWriter::try_new(out, schema(), None).expect("writer");
        for start in (first..last).step_by(BATCH) {
            let ids: Vec<i64> = (start as i64..last.min(start + BATCH) as i64).collect();
            let names: StringArray = ids
                .iter()
                .map(|id| (id % 7 != 0).then(|| format!("name-{id}")))
                .collect();
            let scores: Float64Array = ids.iter().map(|id| Some(*id as f64 / 4.0)).collect();
            let batch = RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(names),
                    Arc::new(scores),
                ],
            )
            .expect("batch");
            writer.write(&batch).expect("write");
        }
        writer.close().expect("close");
    }
}

/// A session state with `STORED AS ZEROBUS`, the Zerobus Ballista codecs and one
/// partition per file.
fn state() -> SessionState {
    let config = zerobus_ballista::with_zerobus(
        SessionConfig::new_with_ballista()
            .with_batch_size(BATCH)
            .with_target_partitions(FILES)
            .set_bool("datafusion.optimizer.repartition_file_scans", false),
    );
    arrow_zerobus_sdk_wrapper::sql::with_zerobus(
        SessionStateBuilder::new()
            .with_config(config)
            .with_default_features(),
    )
    .build()
}

/// `src` (the Parquet directory) and `events` (the Zerobus table, `workers` streams per
/// task, or per INSERT in a single process) on `ctx`.
async fn create_tables(ctx: &SessionContext, source: &Path, endpoint: &str, workers: &str) {
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '{}/'",
        source.display()
    ))
    .await
    .expect("src");
    let workers = match workers {
        "" => String::new(),
        n => format!(", 'workers' '{n}'"),
    };
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR, score DOUBLE) \
         STORED AS ZEROBUS LOCATION '{TABLE}' OPTIONS ('endpoint' '{endpoint}'{workers})"
    ))
    .await
    .expect("events");
}

/// A Ballista cluster in this process (a scheduler and `executors` executors of `slots`
/// task slots each, over gRPC) and a client of it.
async fn cluster(executors: usize, slots: usize, source: &Path, endpoint: &str) -> SessionContext {
    let state = state();
    let address = ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state)
        .await
        .expect("scheduler");
    for _ in 0..executors {
        let scheduler =
            SchedulerGrpcClient::connect(format!("http://localhost:{}", address.port()))
                .await
                .expect("connect");
        ballista_executor::new_standalone_executor_from_state(scheduler, slots, &state)
            .await
            .expect("executor");
    }
    let ctx =
        SessionContext::remote_with_state(&format!("df://localhost:{}", address.port()), state)
            .await
            .expect("client");
    create_tables(&ctx, source, endpoint, "1").await;
    ctx
}

/// One INSERT on `ctx`: its wall time, its count checked.
async fn insert(ctx: &SessionContext, rows: usize) -> Duration {
    let started = Instant::now();
    let result = ctx
        .sql("INSERT INTO events SELECT * FROM src")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("insert");
    let took = started.elapsed();
    let count = result[0].column(0).as_primitive::<UInt64Type>().value(0);
    assert_eq!(count, rows as u64, "INSERT count");
    took
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs it without: a quick smoke test.
    let bench = std::env::args().any(|a| a == "--bench");
    let rows = env_usize(
        "ZEROBUS_BENCH_ROWS",
        if bench { 10_000_000 } else { 100_000 },
    );
    let rounds = env_usize("ZEROBUS_BENCH_ROUNDS", if bench { 3 } else { 1 });
    let slots = env_usize("ZEROBUS_BENCH_SLOTS", 2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let source = tempfile::tempdir().expect("tempdir");
        write_source(source.path(), rows);
        let server = LocalZerobus::builder()
            .landing(Landing::None)
            .table(TABLE, schema())
            .start()
            .await
            .expect("server");
        let endpoint = server.endpoint().to_string();

        let single = SessionContext::new_with_state(state());
        create_tables(&single, source.path(), &endpoint, "").await;
        let one = cluster(1, slots, source.path(), &endpoint).await;
        let two = cluster(2, slots, source.path(), &endpoint).await;
        let contenders = [
            ("single-process", &single),
            ("ballista, 1 executor", &one),
            ("ballista, 2 executors", &two),
        ];
        // One untimed warm-up INSERT each.
        for (_, ctx) in &contenders {
            insert(ctx, rows).await;
        }
        let mut times = vec![Vec::new(); contenders.len()];
        for round in 0..rounds {
            for (i, (name, ctx)) in contenders.iter().enumerate() {
                let took = insert(ctx, rows).await;
                println!("round {round}: {name}: {took:.2?}");
                times[i].push(took);
            }
        }
        let baseline = median(&times[0]).as_secs_f64();
        println!("{rows} rows, {rounds} rounds, median:");
        for ((name, _), runs) in contenders.iter().zip(&times) {
            let m = median(runs).as_secs_f64();
            println!(
                "  {name:<22} {m:6.2} s  {:5.2} M rows/s  time / single-process {:.2}",
                rows as f64 / m / 1e6,
                m / baseline
            );
        }
        server.shutdown().await;
    });
}
