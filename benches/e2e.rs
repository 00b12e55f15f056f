//! End to end over gRPC on loopback: `ZerobusWrapper::send_batch` (encode, chunk, send,
//! wait for the durable ack) against the ceiling — the official SDK driven directly with
//! data prepared beforehand — on both paths, against the local server with
//! `Landing::None` (acks as soon as a request is decoded, nothing stored):
//!
//! - **protobuf**: the wrapper's default transport against `ingest_records_offset` fed the
//!   records encoded beforehand;
//! - **flight**: the wrapper with the Arrow Flight transport against the SDK's Arrow
//!   stream (`build_arrow`) and raw `ingest_batch`, fed the batch already normalized to
//!   the SDK's Arrow schema for the table and cut at the same rows as the protobuf chunks
//!   (zero-copy slices).
//!
//! Both contenders send the same requests: the ceiling's records are cut into ingest
//! calls of at most the wrapper's `max_request_bytes` (default 512 KiB; both set by
//! `ZEROBUS_BENCH_REQUEST_BYTES`), counted as the wrapper counts them.
//!
//! Run with `cargo bench --features local --bench e2e`. Besides criterion's estimates (the
//! 1 MB batch, both contenders, throughput in bytes: groups `e2e_1MB` and
//! `e2e_1MB_flight`), the bench's own loop prints rows/s, MB/s and the wrapper/ceiling
//! ratio per batch size and path, and p50/p95/p99 latency of `send_batch` to the durable
//! ack (criterion gives no percentiles). Sizes are protobuf bytes on both paths.
//!
//! Where the server runs (both contenders always talk to the same one, in the same run):
//! - by default in the bench's own process and runtime (client and server share its two
//!   worker threads);
//! - `ZEROBUS_BENCH_SERVER=process`: the same server in a child process (this executable
//!   started again in server mode: landing `none`, no auth, a free port), stopped at the
//!   end;
//! - `ZEROBUS_BENCH_ENDPOINT=http://127.0.0.1:PORT`: a server already running, e.g.
//!   `cargo run --release -p zerobus-local -- --landing none --no-auth`
//!   (its table `bench.e2e.events` is created by the first stream).
//!
//! `ZEROBUS_BENCH_LATENCY_MS=N` puts a loopback proxy that delays every byte by `N` ms
//! each way (a round trip of `2N` ms plus loopback's) between both contenders and the
//! server, to see the wrapper's overhead against a network's round trip rather than
//! loopback's (~0.1 ms).
//!
//! `ZEROBUS_BENCH_FLIGHT_COMPRESSION=zstd|lz4|none` sets the Arrow IPC compression of both
//! Flight contenders (default: the wrapper's and the SDK's default, zstd).
//! `ZEROBUS_BENCH_CASES="1 MB,10 MB"` and `ZEROBUS_BENCH_PATHS=protobuf` run only those
//! rows of the table (names as printed).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use arrow_zerobus_sdk_wrapper::{
    FlightCompression, TransportKind, WrapperConfiguration, ZerobusWrapper,
    DEFAULT_MAX_REQUEST_BYTES,
};
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use databricks_zerobus_ingest_sdk::{ZerobusArrowStream, ZerobusSdk, ZerobusStream};
use tokio::runtime::Runtime;
use zerobus_local::{Landing, LocalZerobus};

use zerobus_test_support::bench_server::{self, BenchServer};
use zerobus_test_support::events::{batch, schema};
use zerobus_test_support::latency::LatencyProxy;

const TABLE: &str = "bench.e2e.events";

/// The Arrow schema the SDK derives for the table (what its Arrow Flight stream carries):
/// STRING is `LargeUtf8`, the other columns keep their types.
fn flight_schema() -> SchemaRef {
    let fields = schema()
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::LargeUtf8),
            _ => field.as_ref().clone(),
        })
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

/// `batch` in the Arrow schema of the SDK's Arrow stream.
fn normalized(batch: &RecordBatch) -> RecordBatch {
    let target = flight_schema();
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| cast(column, field.data_type()).expect("cast"))
        .collect();
    RecordBatch::try_new(target, columns).expect("normalized batch")
}

/// One batch size under test, with its records encoded beforehand for the ceiling.
struct Case {
    name: &'static str,
    batch: RecordBatch,
    /// The encoded records, cut into ingest calls under the SDK's payload limit.
    chunks: Vec<Vec<Vec<u8>>>,
    /// The batch normalized to the SDK's Arrow schema, sliced at the rows of `chunks`.
    flight_chunks: Vec<RecordBatch>,
    bytes: usize,
}

impl Case {
    fn new(name: &'static str, rows: usize, schema: &Arc<TableSchema>) -> Self {
        let batch = batch(rows);
        let encoded = RowEncoder::new(Arc::clone(schema))
            .encode(&batch)
            .expect("encode");
        assert_eq!(encoded.successful_count(), rows);
        // Record bytes plus framing (tag + length varint), as the wrapper counts them.
        // The wrapper's request size, so both contenders send the same requests.
        let limit = request_bytes();
        let mut chunks = vec![Vec::new()];
        let mut used = 0;
        for (_, record) in encoded.records() {
            let framed = framed_len(record.len());
            if used > 0 && used + framed > limit {
                chunks.push(Vec::new());
                used = 0;
            }
            used += framed;
            chunks.last_mut().expect("a chunk").push(record.to_vec());
        }
        let whole = normalized(&batch);
        let mut first = 0;
        let flight_chunks = chunks
            .iter()
            .map(|chunk| {
                let slice = whole.slice(first, chunk.len());
                first += chunk.len();
                slice
            })
            .collect();
        Self {
            name,
            batch,
            chunks,
            flight_chunks,
            bytes: encoded.encoded_len(),
        }
    }

    fn rows(&self) -> usize {
        self.batch.num_rows()
    }
}

/// The one-way latency of the proxy between the contenders and the server:
/// `ZEROBUS_BENCH_LATENCY_MS` (whole milliseconds; none when unset or 0).
fn latency() -> Option<Duration> {
    let ms: u64 = std::env::var("ZEROBUS_BENCH_LATENCY_MS")
        .ok()?
        .parse()
        .expect("ZEROBUS_BENCH_LATENCY_MS: whole milliseconds");
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Bytes of records per ingest call, for the wrapper and the ceiling alike:
/// `ZEROBUS_BENCH_REQUEST_BYTES`, else the wrapper's default.
fn request_bytes() -> usize {
    std::env::var("ZEROBUS_BENCH_REQUEST_BYTES")
        .map(|v| {
            v.parse()
                .expect("ZEROBUS_BENCH_REQUEST_BYTES: a number of bytes")
        })
        .unwrap_or(DEFAULT_MAX_REQUEST_BYTES)
}

/// A record's bytes in the request: field tag, length varint, payload (as the wrapper
/// counts them).
fn framed_len(len: usize) -> usize {
    let mut varint = 1;
    while len >> (7 * varint) > 0 {
        varint += 1;
    }
    1 + varint + len
}

/// Which transport: the wrapper's and the SDK stream it is compared with.
#[derive(Clone, Copy)]
enum Path {
    Protobuf,
    Flight,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Protobuf => "protobuf",
            Path::Flight => "flight",
        }
    }
}

/// The server, a wrapper per path and plain SDK streams pointed at it.
struct Bench {
    _server: BenchServer,
    where_: &'static str,
    /// Between both contenders and the server when `ZEROBUS_BENCH_LATENCY_MS` is set.
    proxy: Option<LatencyProxy>,
    wrapper: ZerobusWrapper,
    flight_wrapper: ZerobusWrapper,
    _sdk: ZerobusSdk,
    stream: ZerobusStream,
    arrow_stream: ZerobusArrowStream,
    schema: Arc<TableSchema>,
}

impl Bench {
    async fn start() -> Self {
        let (server, endpoint, where_) = BenchServer::from_env(
            LocalZerobus::builder()
                .landing(Landing::None)
                .table(TABLE, schema()),
        )
        .await;
        let proxy = match latency() {
            Some(one_way) => Some(LatencyProxy::start(&endpoint, one_way).await),
            None => None,
        };
        let endpoint = proxy.as_ref().map_or(endpoint, LatencyProxy::endpoint);
        let compression: FlightCompression = std::env::var("ZEROBUS_BENCH_FLIGHT_COMPRESSION")
            .map(|v| v.parse().expect("ZEROBUS_BENCH_FLIGHT_COMPRESSION"))
            .unwrap_or_default();
        let config = WrapperConfiguration::new(endpoint.clone(), TABLE)
            .with_max_request_bytes(request_bytes());
        let wrapper = ZerobusWrapper::new(config.clone()).await.expect("wrapper");
        let flight_wrapper = ZerobusWrapper::new(
            config
                .with_transport(TransportKind::ArrowFlight)
                .with_flight_ipc_compression(compression),
        )
        .await
        .expect("flight wrapper");
        let schema = Arc::new(TableSchema::try_new(schema(), TABLE).expect("table schema"));
        let sdk = ZerobusSdk::builder()
            .endpoint(endpoint)
            .no_tls()
            .connector_factory(Arc::new(|_: &str| None))
            .build()
            .expect("sdk");
        // The Arrow stream first: a server started without the table creates it from the
        // first stream, and only the Arrow schema says `at` is a timestamp (protobuf
        // carries it as int64, which a TIMESTAMP column accepts, not the other way round).
        let arrow_stream = sdk
            .stream_builder()
            .table(TABLE)
            .no_auth()
            .arrow(flight_schema())
            .ipc_compression(compression.codec())
            .build_arrow()
            .await
            .expect("arrow stream");
        let stream = sdk
            .stream_builder()
            .table(TABLE)
            .no_auth()
            .compiled_proto(schema.descriptor().clone())
            .build()
            .await
            .expect("stream");
        Self {
            _server: server,
            where_,
            proxy,
            wrapper,
            flight_wrapper,
            _sdk: sdk,
            stream,
            arrow_stream,
            schema,
        }
    }

    /// `send_batch` to the durable ack, on `path`.
    async fn wrapper_send(&self, path: Path, batch: &RecordBatch) {
        let wrapper = match path {
            Path::Protobuf => &self.wrapper,
            Path::Flight => &self.flight_wrapper,
        };
        let result = wrapper.send_batch(batch.clone()).await.expect("send");
        assert!(result.success, "failed rows: {}", result.failed_count);
    }

    /// The protobuf ceiling: the records already encoded and copied, ingested and
    /// acknowledged.
    async fn sdk_send(&self, chunks: Vec<Vec<Vec<u8>>>) {
        let mut last = None;
        for chunk in chunks {
            last = self
                .stream
                .ingest_records_offset(chunk)
                .await
                .expect("ingest");
        }
        let last = last.expect("an offset");
        self.stream.wait_for_offset(last).await.expect("ack");
    }

    /// The Flight ceiling: the batch already normalized and sliced, ingested and
    /// acknowledged.
    async fn sdk_send_arrow(&self, chunks: &[RecordBatch]) {
        let mut last = None;
        for chunk in chunks {
            last = Some(
                self.arrow_stream
                    .ingest_batch(chunk.clone())
                    .await
                    .expect("ingest batch"),
            );
        }
        let last = last.expect("an offset");
        self.arrow_stream.wait_for_offset(last).await.expect("ack");
    }

    /// The ceiling of `path` for `case`, timed from its first ingest call (the copy of
    /// the protobuf records is made before).
    fn ceiling(&self, runtime: &Runtime, path: Path, case: &Case) -> Duration {
        match path {
            Path::Protobuf => {
                let chunks = case.chunks.clone();
                let started = Instant::now();
                runtime.block_on(self.sdk_send(chunks));
                started.elapsed()
            }
            Path::Flight => {
                let started = Instant::now();
                runtime.block_on(self.sdk_send_arrow(&case.flight_chunks));
                started.elapsed()
            }
        }
    }
}

/// Sorted durations → the `p`th percentile (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The bench's own loop: throughput of both contenders and the wrapper's latency
/// percentiles per batch size and path, printed as one table.
fn report(runtime: &Runtime, bench: &Bench, cases: &[Case], quick: bool) {
    match &bench.proxy {
        Some(_) => println!(
            "\nserver: {}, behind a proxy adding {} ms each way",
            bench.where_,
            latency().unwrap_or_default().as_millis()
        ),
        None => println!("\nserver: {}", bench.where_),
    }
    println!(
        "{:<10} {:<8} {:>8} {:>9} {:>5} | {:>11} {:>8} | {:>11} {:>8} | {:>5} | {:>8} {:>8} {:>8}",
        "batch",
        "path",
        "rows",
        "MB",
        "n",
        "wrapper r/s",
        "MB/s",
        "ceiling r/s",
        "MB/s",
        "ratio",
        "p50 ms",
        "p95 ms",
        "p99 ms"
    );
    // ZEROBUS_BENCH_CASES="10 MB" and ZEROBUS_BENCH_PATHS=flight (comma-separated names)
    // run only those rows.
    let only = |var: &str, name: &str| {
        std::env::var(var)
            .map(|names| names.split(',').any(|n| n.trim() == name))
            .unwrap_or(true)
    };
    for case in cases
        .iter()
        .filter(|case| only("ZEROBUS_BENCH_CASES", case.name))
    {
        for path in [Path::Protobuf, Path::Flight] {
            if !only("ZEROBUS_BENCH_PATHS", path.name()) {
                continue;
            }
            report_one(runtime, bench, case, path, quick);
        }
    }
    println!();
}

/// One row of the table: `case` on `path`, wrapper and ceiling alternately.
fn report_one(runtime: &Runtime, bench: &Bench, case: &Case, path: Path, quick: bool) {
    // About 2 s per contender in a real run, but at least 60 samples, so that the p95 of
    // the 10 MB row is not just its second-worst sample; 3 in test mode.
    let n = if quick {
        3
    } else {
        (200_000_000 / case.bytes.max(1)).clamp(60, 2_000)
    };
    // Untimed rounds first, as criterion warms up: the wrapper opens its stream on its
    // first batch (the ceiling's is opened in `Bench::start`), and both contenders' first
    // batches pay for cold caches and allocator growth.
    for _ in 0..(n / 10).max(1) {
        runtime.block_on(bench.wrapper_send(path, &case.batch));
        bench.ceiling(runtime, path, case);
    }
    let mut latencies = Vec::with_capacity(n);
    let mut wrapper_total = Duration::ZERO;
    let mut ceiling_total = Duration::ZERO;
    for _ in 0..n {
        let started = Instant::now();
        runtime.block_on(bench.wrapper_send(path, &case.batch));
        let took = started.elapsed();
        latencies.push(took);
        wrapper_total += took;
        ceiling_total += bench.ceiling(runtime, path, case);
    }
    latencies.sort_unstable();
    let per_s = |total: Duration, units: usize| (units * n) as f64 / total.as_secs_f64();
    let wrapper_rows = per_s(wrapper_total, case.rows());
    let ceiling_rows = per_s(ceiling_total, case.rows());
    println!(
        "{:<10} {:<8} {:>8} {:>9.2} {:>5} | {:>11.0} {:>8.1} | {:>11.0} {:>8.1} | {:>5.2} | {:>8.2} {:>8.2} {:>8.2}",
        case.name,
        path.name(),
        case.rows(),
        case.bytes as f64 / 1e6,
        n,
        wrapper_rows,
        per_s(wrapper_total, case.bytes) / 1e6,
        ceiling_rows,
        per_s(ceiling_total, case.bytes) / 1e6,
        wrapper_rows / ceiling_rows,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0)),
    );
}

fn e2e(c: &mut Criterion) {
    // `cargo bench` passes `--bench`; `cargo test --bench e2e` does not (one quick pass).
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bench = runtime.block_on(Bench::start());
    let per_row = Case::new("probe", 1_000, &bench.schema).bytes / 1_000;
    let cases = [
        Case::new("1k rows", 1_000, &bench.schema),
        Case::new("1 MB", 1_000_000 / per_row, &bench.schema),
        Case::new("10 MB", 10_000_000 / per_row, &bench.schema),
    ];
    report(&runtime, &bench, &cases, quick);

    let case = &cases[1];
    let mut group = one_mb_group(c, "e2e_1MB", case.bytes);
    group.bench_function("wrapper_send_batch", |b| {
        b.iter(|| runtime.block_on(bench.wrapper_send(Path::Protobuf, black_box(&case.batch))))
    });
    group.bench_function("sdk_pre_encoded", |b| {
        b.iter_batched(
            || case.chunks.clone(),
            |chunks| runtime.block_on(bench.sdk_send(chunks)),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = one_mb_group(c, "e2e_1MB_flight", case.bytes);
    group.bench_function("wrapper_send_batch", |b| {
        b.iter(|| runtime.block_on(bench.wrapper_send(Path::Flight, black_box(&case.batch))))
    });
    group.bench_function("sdk_ingest_batch", |b| {
        b.iter(|| runtime.block_on(bench.sdk_send_arrow(black_box(&case.flight_chunks))))
    });
    group.finish();

    for wrapper in [&bench.wrapper, &bench.flight_wrapper] {
        runtime.block_on(wrapper.shutdown()).expect("shutdown");
    }
}

/// A criterion group for the 1 MB batch (`bytes` of protobuf): 20 samples over 8 s.
fn one_mb_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    bytes: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(bytes as u64));
    group
}

criterion_group!(benches, e2e);

fn main() {
    // `ZEROBUS_BENCH_SERVER=process` starts this executable again as the server.
    bench_server::serve_if_child();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
