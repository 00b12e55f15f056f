//! Observability against the local server: OpenTelemetry metrics and spans recorded by a
//! real run (asserted with the SDK's in-memory exporters), and a run with OAuth whose
//! complete tracing output holds neither the client secret nor any token.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use zerobus_local::{Auth, Landing, LocalZerobus};

use arrow_zerobus_sdk_wrapper::{OtlpConfig, WrapperConfiguration, ZerobusWrapper};
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use secrecy::ExposeSecret;
use tonic::Code;
use zerobus_test_support::local::memory_server;

/// The global providers every observed wrapper in this binary records into.
struct Exporters {
    meters: SdkMeterProvider,
    metrics: InMemoryMetricExporter,
    spans: InMemorySpanExporter,
}

fn exporters() -> &'static Exporters {
    static EXPORTERS: OnceLock<Exporters> = OnceLock::new();
    EXPORTERS.get_or_init(|| {
        let metrics = InMemoryMetricExporter::default();
        let meters = SdkMeterProvider::builder()
            .with_periodic_exporter(metrics.clone())
            .build();
        let spans = InMemorySpanExporter::default();
        let tracers = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        opentelemetry::global::set_meter_provider(meters.clone());
        opentelemetry::global::set_tracer_provider(tracers);
        Exporters {
            meters,
            metrics,
            spans,
        }
    })
}

fn table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn batch(first: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let names = StringArray::from_iter(ids.iter().map(|i| Some(format!("name {i}"))));
    RecordBatch::try_new(
        table_schema(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(names)],
    )
    .expect("batch")
}

/// A batch whose `id` is a UInt64 column; `u64::MAX` rows fail to encode (out of range).
fn batch_with_bad_ids(ids: Vec<u64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let names = StringArray::from_iter(ids.iter().map(|i| Some(format!("name {i}"))));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(UInt64Array::from(ids)), Arc::new(names)],
    )
    .expect("batch")
}

async fn observed_wrapper(server: &LocalZerobus, table: &str) -> ZerobusWrapper {
    exporters();
    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_retry_config(6, 5, 100)
        .with_observability(OtlpConfig::default());
    ZerobusWrapper::new(config).await.expect("wrapper")
}

fn table_attribute(table: &str) -> KeyValue {
    KeyValue::new("zerobus.table", table.to_string())
}

/// The latest cumulative values of `table`'s metrics: counters by name (and
/// `error.type` for failed rows), histogram sample counts as `<name>.count`.
fn metrics_of(table: &str) -> BTreeMap<String, u64> {
    let exporters = exporters();
    exporters.meters.force_flush().expect("flush metrics");
    let exported: Vec<ResourceMetrics> = exporters.metrics.get_finished_metrics().expect("metrics");
    let wanted = table_attribute(table);
    let mut values = BTreeMap::new();
    // Exports are cumulative: later ones overwrite earlier ones.
    for resource in &exported {
        for scope in resource.scope_metrics() {
            if scope.scope().name() != arrow_zerobus_sdk_wrapper::telemetry::SCOPE {
                continue;
            }
            for metric in scope.metrics() {
                let name = metric.name().to_string();
                match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                        for point in sum.data_points() {
                            let attributes: Vec<&KeyValue> = point.attributes().collect();
                            if !attributes.contains(&&wanted) {
                                continue;
                            }
                            let error = attributes
                                .iter()
                                .find(|kv| kv.key.as_str() == "error.type")
                                .map(|kv| format!("{name}[{}]", kv.value));
                            values.insert(error.unwrap_or(name.clone()), point.value());
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                        for point in histogram.data_points() {
                            if point.attributes().any(|kv| *kv == wanted) {
                                values.insert(format!("{name}.count"), point.count());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_records_rows_batches_bytes_durations_and_spans() {
    let table = "cat.sch.otel_run";
    let server = memory_server(table, table_schema()).await;
    let wrapper = observed_wrapper(&server, table).await;

    let mut results = Vec::new();
    for n in 0..3 {
        results.push(wrapper.send_batch(batch(n * 100, 100)).await.expect("send"));
    }
    // One row fails to encode (u64::MAX does not fit BIGINT); the other two land.
    let bad = wrapper
        .send_batch(batch_with_bad_ids(vec![1_000, u64::MAX, 1_001]))
        .await
        .expect("send");
    assert_eq!(bad.failed_count, 1);
    results.push(bad);
    wrapper.shutdown().await.expect("shutdown");
    assert_eq!(
        server.read_table(table).await.expect("read").num_rows(),
        302
    );

    let metrics = metrics_of(table);
    let bytes: usize = results.iter().map(|r| r.batch_size_bytes).sum();
    assert_eq!(metrics.get("zerobus.rows.sent"), Some(&302), "{metrics:?}");
    assert_eq!(
        metrics.get("zerobus.rows.failed[ConversionError]"),
        Some(&1),
        "{metrics:?}"
    );
    assert_eq!(metrics.get("zerobus.batches"), Some(&4), "{metrics:?}");
    assert_eq!(
        metrics.get("zerobus.bytes.sent"),
        Some(&(bytes as u64)),
        "{metrics:?}"
    );
    assert!(bytes > 300 * 8, "{bytes}");
    assert_eq!(
        metrics.get("zerobus.encode.duration.count"),
        Some(&4),
        "{metrics:?}"
    );
    assert_eq!(
        metrics.get("zerobus.send.duration.count"),
        Some(&4),
        "{metrics:?}"
    );
    assert_eq!(
        metrics.get("zerobus.retries"),
        None,
        "no fault, no retry: {metrics:?}"
    );
    assert_eq!(metrics.get("zerobus.reconnects"), None, "{metrics:?}");

    // Spans: one send_batch per batch, each with encode → transmit → ack children.
    let spans: Vec<SpanData> = exporters().spans.get_finished_spans().expect("spans");
    let wanted = table_attribute(table);
    let roots: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "send_batch" && s.attributes.contains(&wanted))
        .collect();
    assert_eq!(roots.len(), 4);
    for root in &roots {
        assert_eq!(root.parent_span_id, SpanId::INVALID, "a root span here");
        let mut children: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.parent_span_id == root.span_context.span_id())
            .collect();
        children.sort_by_key(|s| s.start_time);
        let names: Vec<&str> = children.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["encode", "transmit", "ack"]);
        for child in &children {
            assert_eq!(child.span_context.trace_id(), root.span_context.trace_id());
            assert!(child.start_time >= root.start_time && child.end_time <= root.end_time);
        }
        assert!(
            children[0].end_time <= children[1].start_time,
            "encode before transmit"
        );
        assert!(
            children[1].end_time <= children[2].start_time,
            "transmit before ack"
        );
        let rows = root
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "zerobus.rows")
            .map(|kv| kv.value.clone());
        let failed = root
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "zerobus.rows.failed")
            .map(|kv| kv.value.clone());
        match rows {
            Some(Value::I64(100)) => {
                assert_eq!(failed, Some(Value::I64(0)));
                assert_eq!(root.status, Status::Unset);
            }
            Some(Value::I64(3)) => {
                assert_eq!(failed, Some(Value::I64(1)));
                assert!(
                    matches!(root.status, Status::Error { .. }),
                    "{:?}",
                    root.status
                );
            }
            other => panic!("unexpected zerobus.rows {other:?}"),
        }
    }
    server.shutdown().await;
}

/// The SDK's recovery gives up (stream creation keeps failing), so the wrapper re-creates
/// the stream and resends: reconnects and retries are counted, and every row lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_retries_are_counted() {
    let table = "cat.sch.otel_faults";
    let server = memory_server(table, table_schema()).await;
    let wrapper = observed_wrapper(&server, table).await;
    let first = wrapper.send_batch(batch(0, 400)).await.expect("send");
    assert!(first.success);
    let faults = server.faults(table);
    faults.fail_after_records(1_000, Code::Unavailable);
    faults.fail_stream_creation(8, Code::Unavailable);
    let mut pending = Vec::new();
    for n in 1..8 {
        pending.push(
            wrapper
                .submit_batch(batch(n * 400, 400))
                .await
                .expect("submit"),
        );
    }
    for handle in pending {
        let result = handle.await;
        assert!(result.success, "{:?}", result.failed_rows.first());
    }
    wrapper.shutdown().await.expect("shutdown");

    let metrics = metrics_of(table);
    assert_eq!(
        metrics.get("zerobus.rows.sent"),
        Some(&3_200),
        "{metrics:?}"
    );
    assert!(
        metrics.get("zerobus.reconnects").is_some_and(|n| *n >= 1),
        "{metrics:?}"
    );
    assert!(
        metrics.get("zerobus.retries").is_some_and(|n| *n >= 1),
        "{metrics:?}"
    );
    server.shutdown().await;
}

/// A `Write` into a shared buffer, for the tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs [`secrets_run_alone`] in a child process of this test binary, alone: a process-wide
/// TRACE subscriber then sees every event of the run, which a thread-scoped one does not
/// reliably do while other tests register the same callsites concurrently.
#[test]
fn secrets_and_tokens_never_appear_in_the_logs() {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "telemetry::secrets_run_alone",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the run happened: {stdout}");
}

/// Everything the wrapper, the SDK and their dependencies log at TRACE level during a run
/// with OAuth (token, Unity Catalog schema check, streams, acks) — the local server's own
/// output aside — holds neither the client secret nor a token.
///
/// Run in its own process by [`secrets_and_tokens_never_appear_in_the_logs`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run alone in a child process by secrets_and_tokens_never_appear_in_the_logs"]
async fn secrets_run_alone() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let table = "cat.sch.secret_run";
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .table(table, table_schema())
        .start()
        .await
        .expect("local server");
    let secret = server.client_secret().expose_secret().to_string();
    // A token of our own, to know what the server's tokens look like.
    let own_token = databricks_zerobus_ingest_sdk::DefaultTokenFactory::get_token(
        &server.unity_catalog_url(),
        table,
        server.client_id(),
        &secret,
        "127",
    )
    .await
    .expect("token");
    assert!(own_token.starts_with("zbl_"), "tokens look like zbl_…");
    let issued_before = server.tokens_issued();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(tracing_subscriber::filter::filter_fn(|metadata| {
            // The local server's own output is not the wrapper's.
            !metadata
                .target()
                .starts_with("arrow_zerobus_sdk_wrapper::local")
        }))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false),
        );
    tracing::subscriber::set_global_default(subscriber).expect("alone in this process");

    let config = WrapperConfiguration::new(server.endpoint(), table)
        .with_credentials(server.client_id(), secret.clone())
        .with_unity_catalog(server.unity_catalog_url())
        .with_schema_check(true);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    tracing::debug!(wrapper = ?wrapper, "the wrapper's Debug output");
    for n in 0..3 {
        let result = wrapper.send_batch(batch(n * 50, 50)).await.expect("send");
        assert!(result.success, "{:?}", result.failed_rows.first());
    }
    wrapper.shutdown().await.expect("shutdown");

    assert!(
        server.tokens_issued() > issued_before,
        "the run fetched tokens of its own"
    );
    let logs = String::from_utf8(captured.0.lock().expect("buffer").clone()).expect("utf-8");
    assert!(logs.contains("ZerobusWrapper"), "the capture works: {logs}");
    // The SDK's own token request and stream creation were seen.
    assert!(
        logs.contains("minted Zerobus token"),
        "TRACE output of the run: {logs}"
    );
    assert!(logs.contains("Successfully created stream"), "{logs}");
    assert!(!logs.contains(&secret), "the client secret was logged");
    assert!(!logs.contains(&own_token), "a token was logged");
    assert!(!logs.contains("zbl_"), "a token was logged");
    server.shutdown().await;
}
