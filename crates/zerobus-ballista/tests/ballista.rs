//! `INSERT INTO` a Zerobus table on a Ballista standalone cluster (a scheduler and an
//! executor in this process, talking gRPC), against the local Zerobus server landing rows
//! in Delta tables; and the codecs on their own (round trips, no secret in the bytes,
//! fallback to the inner codec).

use std::collections::BTreeSet;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_zerobus_sdk_wrapper::sql::{OnError, SinkOptions, ZerobusDataSink, ZerobusTableProvider};
use arrow_zerobus_sdk_wrapper::{TransportKind, WrapperConfiguration};
use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use datafusion::arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{sort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SessionState, SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{displayable, ExecutionPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{
    DefaultPhysicalProtoConverter, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
use zerobus_ballista::{
    with_zerobus_env, ZerobusLogicalCodec, ZerobusPhysicalCodec, ZerobusWriteExec,
};
use zerobus_local::{Auth, LocalZerobus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the client's `CREATE EXTERNAL TABLE` says the secret is: wrong for the server, so
/// a write that lands rows cannot have used it (the executor uses its own).
const CLIENT_SIDE_SECRET: &str = "client-side-secret-never-in-a-plan";

/// The table's columns.
fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

/// Rows `first..first + rows`: `name` is `n<id>` (`poison` every `poison_every` rows, if
/// given), null every 7th row; `score` is `id / 4`.
fn rows(first: i64, rows: usize, poison_every: Option<i64>) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let names: StringArray = ids
        .iter()
        .map(|id| match poison_every {
            Some(every) if id % every == 0 => Some("poison".to_string()),
            _ if id % 7 == 0 => None,
            _ => Some(format!("n{id}")),
        })
        .collect();
    let scores: Float64Array = ids.iter().map(|id| Some(*id as f64 / 4.0)).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(names),
            Arc::new(scores),
        ],
    )
    .expect("batch")
}

/// `files` Parquet files of `per_file` rows each in `dir` (ids from 0, in order); the
/// first file's names are poisoned every `poison` rows, if given.
fn write_parquet(dir: &std::path::Path, files: usize, per_file: usize, poison: Option<i64>) {
    for file in 0..files {
        let poison = poison.filter(|_| file == 0);
        let batch = rows((file * per_file) as i64, per_file, poison);
        let out = File::create(dir.join(format!("part-{file}.parquet"))).expect("file");
        let mut writer = ArrowWriter::try_new(out, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }
}

/// A server with OAuth on (Delta landing in `dir`) and the table created up front.
async fn server(dir: &std::path::Path, table: &str) -> LocalZerobus {
    LocalZerobus::builder()
        .data_dir(dir)
        .auth(Auth::OAuth)
        .table(table, schema())
        .start()
        .await
        .expect("local server")
}

/// A client state with the `STORED AS ZEROBUS` factory and the codecs, whose secret
/// lookup answers `secret` (as a process reads `ZEROBUS_CLIENT_SECRET` from its
/// environment) and counts the questions in `asked`.
///
/// One partition per Parquet file: by default DataFusion splits the files into byte
/// ranges, one per target partition, and a range holding no row group's start reads
/// nothing (its task opens no stream) while another may read two files' row groups.
fn state(secret: Option<String>, asked: Arc<AtomicUsize>) -> SessionState {
    let config = with_zerobus_env(
        SessionConfig::new_with_ballista()
            .with_target_partitions(8)
            .set_bool("datafusion.optimizer.repartition_file_scans", false),
        move |name| {
            asked.fetch_add(1, Ordering::SeqCst);
            secret
                .clone()
                .filter(|_| name == zerobus_ballista::CLIENT_SECRET_VAR)
        },
    );
    arrow_zerobus_sdk_wrapper::sql::with_zerobus(
        SessionStateBuilder::new()
            .with_config(config)
            .with_default_features(),
    )
    .build()
}

/// The server's client secret.
fn secret(server: &LocalZerobus) -> Option<String> {
    use secrecy::ExposeSecret;
    Some(server.client_secret().expose_secret().to_string())
}

/// On `ctx`: the source Parquet directory (if any) as `src` and the Zerobus table as
/// `events` (with [`CLIENT_SIDE_SECRET`], `workers` streams per task).
async fn create_tables(
    ctx: &SessionContext,
    server: &LocalZerobus,
    table: &str,
    source: Option<&std::path::Path>,
    transport: TransportKind,
    workers: usize,
) -> DfResult<()> {
    if let Some(source) = source {
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '{}/'",
            source.display()
        ))
        .await?;
    }
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR, score DOUBLE) \
         STORED AS ZEROBUS LOCATION '{table}' OPTIONS ('endpoint' '{}', \
         'unity_catalog_url' '{}', 'client_id' '{}', 'client_secret' '{CLIENT_SIDE_SECRET}', \
         'transport' '{}', 'workers' '{workers}', 'retry_base_delay_ms' '10')",
        server.endpoint(),
        server.unity_catalog_url(),
        server.client_id(),
        transport.as_str(),
    ))
    .await?;
    Ok(())
}

/// A Ballista standalone cluster (scheduler and one executor in this process) and its
/// client, with `src` (if any) and `events` (one worker stream per task).
async fn ballista_context(
    server: &LocalZerobus,
    table: &str,
    source: Option<&std::path::Path>,
    transport: TransportKind,
) -> DfResult<SessionContext> {
    let state = state(secret(server), Arc::default());
    let ctx = SessionContext::standalone_with_state(state).await?;
    create_tables(&ctx, server, table, source, transport, 1).await?;
    Ok(ctx)
}

/// The single `count` of an INSERT's result.
fn count(batches: &[RecordBatch]) -> u64 {
    assert_eq!(batches.len(), 1, "{batches:?}");
    batches[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
        .value(0)
}

/// The landed rows sorted by id.
async fn landed(server: &LocalZerobus, table: &str) -> RecordBatch {
    let batch = server.read_table(table).await.expect("read table");
    let id = batch.column_by_name("id").expect("id column");
    let order = sort_to_indices(id, None, None).expect("sort");
    take_record_batch(&batch, &order).expect("take")
}

/// The `id`, `name` and `score` columns of a landed batch.
fn columns(landed: &RecordBatch) -> (&Int64Array, &StringArray, &Float64Array) {
    let column = |name: &str| landed.column_by_name(name).expect(name);
    (
        column("id").as_primitive::<Int64Type>(),
        column("name").as_string::<i32>(),
        column("score").as_primitive::<Float64Type>(),
    )
}

/// Every row of `expected` landed exactly once with its values (`landed` sorted by id).
fn assert_same_rows(landed: &RecordBatch, expected: &[RecordBatch]) {
    let expected = datafusion::arrow::compute::concat_batches(&schema(), expected).expect("concat");
    assert_eq!(landed.num_rows(), expected.num_rows(), "row count");
    let (ids, names, scores) = columns(landed);
    let want_ids = expected.column(0).as_primitive::<Int64Type>();
    let want_names = expected.column(1).as_string::<i32>();
    let want_scores = expected.column(2).as_primitive::<Float64Type>();
    for row in 0..expected.num_rows() {
        assert_eq!(ids.value(row), want_ids.value(row), "id of row {row}");
        let id = ids.value(row);
        assert_eq!(
            names.is_null(row),
            want_names.is_null(row),
            "name of id {id}"
        );
        if !want_names.is_null(row) {
            assert_eq!(names.value(row), want_names.value(row), "name of id {id}");
        }
        assert_eq!(
            scores.value(row),
            want_scores.value(row),
            "score of id {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_select_from_parquet_lands_every_row_from_the_executor_over_both_transports(
) -> TestResult {
    for (n, transport) in [TransportKind::Protobuf, TransportKind::ArrowFlight]
        .into_iter()
        .enumerate()
    {
        let table = format!("cat.sch.events{n}");
        let source = tempfile::tempdir()?;
        let data = tempfile::tempdir()?;
        write_parquet(source.path(), 4, 2_500, None);
        let server = server(data.path(), &table).await;
        let ctx = ballista_context(&server, &table, Some(source.path()), transport).await?;

        let result = ctx
            .sql("INSERT INTO events SELECT id, name, score FROM src")
            .await?
            .collect()
            .await?;

        assert_eq!(count(&result), 10_000, "{transport:?}");
        let expected: Vec<RecordBatch> = (0..4).map(|f| rows(f * 2_500, 2_500, None)).collect();
        assert_same_rows(&landed(&server, &table).await, &expected);
        let counters = server.counters(&table);
        // The client's secret is wrong: the rows came from the executor, whose decoded
        // sink took the secret from its own environment. One write task per file, each
        // with its own stream (`workers` 1: a single DataSinkExec would have opened one).
        // (`with_zerobus` turns DataFusion's file work stealing off: with it on, a task
        // running two partitions may read both files in one of them, one stream less.)
        assert_eq!(counters.streams_opened, 4, "{transport:?}: {counters:?}");
        assert_eq!(counters.requests, 4, "{transport:?}: {counters:?}");
        assert_eq!(counters.duplicates, 0, "{transport:?}: {counters:?}");
        assert!(server.tokens_issued() >= 1);
        server.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_failing_on_the_executor_fail_the_insert_with_their_count_and_reason() -> TestResult {
    let table = "cat.sch.refusing";
    let source = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    // 3 files of 1,000 rows; in the first, ids divisible by 250 are named "poison".
    write_parquet(source.path(), 3, 1_000, Some(250));
    let server = server(data.path(), table).await;
    server
        .faults(table)
        .reject_records_containing(Some(b"poison".to_vec()));
    let ctx =
        ballista_context(&server, table, Some(source.path()), TransportKind::Protobuf).await?;

    let error = ctx
        .sql("INSERT INTO events SELECT id, name, score FROM src")
        .await?
        .collect()
        .await
        .expect_err("refused rows fail the INSERT");

    // The failing task's own account: its good rows landed (one file per partition, file
    // work stealing off), its refused rows counted and grouped by reason.
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "INSERT into Zerobus table {table}: 996 row(s) landed, 4 row(s) failed: \
             4 × TransmissionError"
        )),
        "{message}"
    );
    assert!(message.contains("rejected by the server"), "{message}");
    // Every good row of the failing partition landed, no poison row did; the other
    // partitions' tasks may have finished or been cancelled when the job failed.
    let landed = landed(&server, table).await;
    let ids: BTreeSet<i64> = landed
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .copied()
        .collect();
    let poison: BTreeSet<i64> = [0, 250, 500, 750].into();
    assert!(ids.is_disjoint(&poison), "a refused row landed");
    assert!((0..1_000)
        .filter(|id| !poison.contains(id))
        .all(|id| ids.contains(&id)));
    assert!(ids.iter().all(|id| (0..3_000).contains(id)));
    let counters = server.counters(table);
    assert_eq!(
        landed.num_rows() as u64,
        ids.len() as u64 + counters.duplicates,
        "a row landing twice is a duplicate the server counted: {counters:?}"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_executors_both_write_partitions_and_the_counts_add_up() -> TestResult {
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let table = "cat.sch.spread";
    let source = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    write_parquet(source.path(), 8, 500, None);
    let server = server(data.path(), table).await;

    // A scheduler without the secret, and two executors with one task slot each, each
    // counting the secret look-ups of its codecs: one per write task it decodes.
    let scheduler_state = state(None, Arc::default());
    let address =
        ballista_scheduler::standalone::new_standalone_scheduler_from_state(&scheduler_state)
            .await?;
    let asked: [Arc<AtomicUsize>; 2] = Default::default();
    for executor in &asked {
        let scheduler =
            SchedulerGrpcClient::connect(format!("http://localhost:{}", address.port())).await?;
        let state = state(secret(&server), Arc::clone(executor));
        ballista_executor::new_standalone_executor_from_state(scheduler, 1, &state).await?;
    }
    let ctx = SessionContext::remote_with_state(
        &format!("df://localhost:{}", address.port()),
        scheduler_state,
    )
    .await?;
    create_tables(
        &ctx,
        &server,
        table,
        Some(source.path()),
        TransportKind::Protobuf,
        1,
    )
    .await?;

    let result = ctx
        .sql("INSERT INTO events SELECT * FROM src")
        .await?
        .collect()
        .await?;

    assert_eq!(count(&result), 4_000);
    let expected: Vec<RecordBatch> = (0..8).map(|f| rows(f * 500, 500, None)).collect();
    assert_same_rows(&landed(&server, table).await, &expected);
    let counters = server.counters(table);
    // A stream per write task, one task per file.
    assert_eq!(counters.streams_opened, 8, "{counters:?}");
    let asked = asked.map(|a| a.load(Ordering::SeqCst));
    assert!(
        asked.iter().all(|n| *n > 0),
        "both executors ran write tasks: {asked:?}"
    );
    server.shutdown().await;
    Ok(())
}

/// A provider and configuration with every serialized field away from its default, and a
/// secret.
fn provider() -> ZerobusTableProvider {
    let config = WrapperConfiguration::new("https://zerobus.example.com", "cat.sch.events")
        .with_unity_catalog("https://workspace.example.com")
        .with_credentials("client-1", CLIENT_SIDE_SECRET)
        .with_transport(TransportKind::ArrowFlight)
        .with_retry_config(3, 20, 400)
        .with_multiplexed_streams(3)
        .with_max_request_bytes(4096);
    let options = SinkOptions::default()
        .with_workers(3)
        .with_max_inflight_batches(7)
        .with_on_error(OnError::Quarantine("/var/quarantine".into()));
    ZerobusTableProvider::new(schema(), config).with_sink_options(options)
}

/// An executor's environment: its own client secret, never the plan's.
fn executor_env(name: &str) -> Option<String> {
    (name == "ZEROBUS_CLIENT_SECRET").then(|| "executor-secret".to_string())
}

fn assert_same_table(
    schema: &SchemaRef,
    config: &WrapperConfiguration,
    options: &SinkOptions,
    want: &ZerobusTableProvider,
) {
    assert_eq!(
        schema,
        want.table_schema(),
        "declared schema, NOT NULL kept"
    );
    assert_eq!(options, want.sink_options());
    let (got, want) = (config, want.config());
    assert_eq!(got.table_name(), want.table_name());
    assert_eq!(got.zerobus_endpoint(), want.zerobus_endpoint());
    assert_eq!(got.unity_catalog_url(), want.unity_catalog_url());
    assert_eq!(got.client_id(), want.client_id());
    assert_eq!(got.transport(), want.transport());
    assert_eq!(got.multiplexed_streams(), want.multiplexed_streams());
    assert_eq!(got.max_request_bytes(), want.max_request_bytes());
    assert_eq!(
        (
            got.retry_max_attempts(),
            got.retry_base_delay_ms(),
            got.retry_max_delay_ms()
        ),
        (3, 20, 400)
    );
    // The secret is the decoding process's own, never the plan's.
    assert_eq!(got.client_secret_str(), Some("executor-secret"));
}

/// A plain (single-process) context with `events` = [`provider`] and `src` a directory
/// of two Parquet files (two partitions), which lives as long as the returned directory.
async fn plain_context() -> DfResult<(SessionContext, tempfile::TempDir)> {
    let source = tempfile::tempdir()?;
    write_parquet(source.path(), 2, 5, None);
    let ctx = SessionContext::new();
    ctx.register_table("events", Arc::new(provider()))?;
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '{}/'",
        source.path().display()
    ))
    .await?;
    Ok((ctx, source))
}

#[tokio::test]
async fn the_insert_plans_round_trip_through_the_codecs_without_the_secret() -> TestResult {
    let (ctx, _source) = plain_context().await?;
    let insert = ctx.sql("INSERT INTO events SELECT * FROM src").await?;
    let task_ctx = ctx.task_ctx();

    // Logical: the DML target goes through `try_encode_table_provider`.
    let logical = ZerobusLogicalCodec::default().with_env(executor_env);
    let bytes = logical_plan_to_bytes_with_extension_codec(insert.logical_plan(), &logical)?;
    assert!(
        !contains(&bytes, CLIENT_SIDE_SECRET.as_bytes()),
        "secret in the logical plan"
    );
    let decoded = logical_plan_from_bytes_with_extension_codec(&bytes, &task_ctx, &logical)?;
    let LogicalPlan::Dml(dml) = &decoded else {
        panic!("not a DML plan: {decoded}")
    };
    let target = datafusion::datasource::source_as_provider(&dml.target)?;
    // A scheduler decodes the table that writes each partition in its own task.
    let table = target
        .downcast_ref::<ZerobusTableProvider>()
        .expect("a Zerobus table");
    assert!(zerobus_ballista::is_partitioned(table), "{table:?}");
    assert_same_table(
        table.table_schema(),
        table.config(),
        table.sink_options(),
        &provider(),
    );

    // Physical, single-process shape: the DataSinkExec through the physical codec, its
    // input natively.
    let plan = insert.create_physical_plan().await?;
    let decoded = physical_round_trip(&plan, &task_ctx)?;
    let sink = decoded
        .downcast_ref::<DataSinkExec>()
        .expect("a DataSinkExec")
        .sink()
        .downcast_ref::<ZerobusDataSink>()
        .expect("a Zerobus sink");
    assert_same_table(
        sink.table_schema(),
        sink.config(),
        sink.sink_options(),
        &provider(),
    );

    // Physical, Ballista shape: ZerobusCountSumExec over ZerobusWriteExec.
    ctx.register_table(
        "partitioned",
        Arc::new(zerobus_ballista::partitioned(provider())),
    )?;
    let insert = ctx.sql("INSERT INTO partitioned SELECT * FROM src").await?;
    let plan = insert.create_physical_plan().await?;
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    assert!(
        shown.starts_with("ZerobusCountSumExec\n  CoalescePartitionsExec\n    ZerobusWriteExec"),
        "{shown}"
    );
    let decoded = physical_round_trip(&plan, &task_ctx)?;
    let write = decoded.children()[0].children()[0]
        .downcast_ref::<ZerobusWriteExec>()
        .expect("a ZerobusWriteExec");
    assert_eq!(
        write.properties().partitioning.partition_count(),
        2,
        "one task per partition"
    );
    let sink = write.sink();
    assert_same_table(
        sink.table_schema(),
        sink.config(),
        sink.sink_options(),
        &provider(),
    );

    // What EXPLAIN and logs print holds no secret either.
    let shown = format!(
        "{}\n{:?}\n{:?}\n{:?}",
        displayable(decoded.as_ref()).indent(true),
        sink,
        table,
        ZerobusPhysicalCodec::default().with_env(executor_env),
    );
    for secret in [CLIENT_SIDE_SECRET, "executor-secret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let explain = ctx
        .sql("EXPLAIN INSERT INTO events SELECT * FROM src")
        .await?
        .collect()
        .await?;
    let explain = datafusion::arrow::util::pretty::pretty_format_batches(&explain)?.to_string();
    assert!(
        explain.contains("ZerobusSink: table=cat.sch.events"),
        "{explain}"
    );
    assert!(!explain.contains(CLIENT_SIDE_SECRET), "{explain}");
    Ok(())
}

/// `plan` encoded with the physical codec (checked to hold no secret), decoded with it as
/// an executor with its own secret, and checked to print as the same plan.
fn physical_round_trip(
    plan: &Arc<dyn ExecutionPlan>,
    task_ctx: &TaskContext,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let physical = ZerobusPhysicalCodec::default().with_env(executor_env);
    let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(plan), &physical)?;
    assert!(
        !contains(&bytes, CLIENT_SIDE_SECRET.as_bytes()),
        "secret in the physical plan"
    );
    let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, task_ctx, &physical)?;
    assert_eq!(
        displayable(plan.as_ref()).indent(true).to_string(),
        displayable(decoded.as_ref()).indent(true).to_string(),
        "the decoded plan is the same plan"
    );
    Ok(decoded)
}

#[tokio::test]
async fn an_executor_without_the_secret_refuses_the_sink_naming_the_variable() -> TestResult {
    let (ctx, _source) = plain_context().await?;
    let plan = ctx
        .sql("INSERT INTO events SELECT * FROM src")
        .await?
        .create_physical_plan()
        .await?;
    let codec = ZerobusPhysicalCodec::default().with_env(|_| None);
    let bytes = physical_plan_to_bytes_with_extension_codec(plan, &codec)?;
    let error = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec)
        .expect_err("no secret");
    let message = error.to_string();
    assert!(
        message.contains("cat.sch.events")
            && message.contains("client-1")
            && message.contains("ZEROBUS_CLIENT_SECRET"),
        "{message}"
    );
    // The scheduler's logical codec plans without it.
    let provider: Arc<dyn TableProvider> = Arc::new(provider());
    let logical = ZerobusLogicalCodec::default().with_env(|_| None);
    let reference = TableReference::bare("events");
    let mut buf = Vec::new();
    logical.try_encode_table_provider(&reference, Arc::clone(&provider), &mut buf)?;
    let decoded =
        logical.try_decode_table_provider(&buf, &reference, provider.schema(), &ctx.task_ctx())?;
    let decoded = decoded
        .downcast_ref::<ZerobusTableProvider>()
        .expect("Zerobus");
    assert!(zerobus_ballista::is_partitioned(decoded));
    assert_eq!(decoded.config().client_secret_str(), None);
    // Damaged bytes are an error, not a panic.
    let cut = &buf[..buf.len() - 3];
    let error = logical
        .try_decode_table_provider(cut, &reference, provider.schema(), &ctx.task_ctx())
        .expect_err("truncated node");
    assert!(
        error.to_string().contains("invalid Zerobus table node"),
        "{error}"
    );
    Ok(())
}

/// An inner codec that answers every call with its own marker and counts the calls.
#[derive(Debug, Default)]
struct Inner {
    calls: AtomicUsize,
}

const INNER: &[u8] = b"inner-codec";

impl Inner {
    fn called(&self) -> DfResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn check(&self, buf: &[u8]) -> DfResult<()> {
        self.called()?;
        if buf == INNER {
            Ok(())
        } else {
            Err(DataFusionError::Internal(format!(
                "not the inner codec's bytes: {buf:?}"
            )))
        }
    }
}

impl LogicalExtensionCodec for Inner {
    fn try_decode(&self, buf: &[u8], _: &[LogicalPlan], _: &TaskContext) -> DfResult<Extension> {
        self.check(buf)?;
        Err(DataFusionError::NotImplemented("inner extension".into()))
    }
    fn try_encode(&self, _: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        buf.extend_from_slice(INNER);
        self.called()
    }
    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        _: &TableReference,
        schema: SchemaRef,
        _: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        self.check(buf)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
    }
    fn try_encode_table_provider(
        &self,
        _: &TableReference,
        _: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        buf.extend_from_slice(INNER);
        self.called()
    }
}

impl PhysicalExtensionCodec for Inner {
    fn try_decode(
        &self,
        buf: &[u8],
        _: &[Arc<dyn ExecutionPlan>],
        _: &TaskContext,
        _: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.check(buf)?;
        Ok(Arc::new(EmptyExec::new(schema())))
    }
    fn try_encode(
        &self,
        _: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        buf.extend_from_slice(INNER);
        self.called()
    }
}

#[test]
fn other_providers_and_nodes_go_to_the_inner_codecs() -> TestResult {
    let task_ctx = TaskContext::default();
    let inner = Arc::new(Inner::default());
    let logical = ZerobusLogicalCodec::new(Arc::clone(&inner) as Arc<dyn LogicalExtensionCodec>);
    let reference = TableReference::bare("other");
    let other: Arc<dyn TableProvider> = Arc::new(MemTable::try_new(schema(), vec![vec![]])?);
    let mut buf = Vec::new();
    logical.try_encode_table_provider(&reference, other, &mut buf)?;
    assert_eq!(buf, INNER);
    let decoded = logical.try_decode_table_provider(&buf, &reference, schema(), &task_ctx)?;
    assert!(decoded.downcast_ref::<MemTable>().is_some());
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);

    let physical = ZerobusPhysicalCodec::new(Arc::clone(&inner) as Arc<dyn PhysicalExtensionCodec>);
    let converter = DefaultPhysicalProtoConverter {};
    let plan: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(schema()));
    let mut buf = Vec::new();
    physical.try_encode(plan, &mut buf, &converter)?;
    assert_eq!(buf, INNER);
    let decoded = physical.try_decode(&buf, &[], &task_ctx, &converter)?;
    assert!(
        decoded.downcast_ref::<EmptyExec>().is_some(),
        "decoded by the inner codec"
    );
    assert_eq!(inner.calls.load(Ordering::SeqCst), 4);

    // Registering twice wraps the codecs once.
    let twice =
        zerobus_ballista::with_zerobus(zerobus_ballista::with_zerobus(SessionConfig::new()));
    let codec = twice.ballista_physical_extension_codec();
    let ours = (codec.as_ref() as &dyn std::any::Any)
        .downcast_ref::<ZerobusPhysicalCodec>()
        .expect("ours outside");
    assert!((ours.inner().as_ref() as &dyn std::any::Any)
        .downcast_ref::<ZerobusPhysicalCodec>()
        .is_none());
    // And turns DataFusion's file work stealing off (on by default), as Ballista needs.
    assert!(
        SessionConfig::new()
            .options()
            .execution
            .enable_file_stream_work_stealing
    );
    assert!(!twice.options().execution.enable_file_stream_work_stealing);
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_million_rows_from_a_parquet_directory_land_once_each() -> TestResult {
    const ROWS: i64 = 1_000_000;
    const FILES: i64 = 8;
    let per = ROWS / FILES;
    let table = "cat.sch.million";
    let source = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    // A generated source: `generate_series` cannot be sent to a scheduler (its table
    // provider has no codec), and `unnest(range(a, b))` is folded into a list literal of
    // b - a elements carried in every task's plan.
    write_parquet(source.path(), FILES as usize, per as usize, None);
    let server = server(data.path(), table).await;
    let ctx =
        ballista_context(&server, table, Some(source.path()), TransportKind::Protobuf).await?;
    let started = std::time::Instant::now();

    let result = ctx
        .sql("INSERT INTO events SELECT * FROM src")
        .await?
        .collect()
        .await?;

    let inserted = started.elapsed();
    assert_eq!(count(&result), ROWS as u64);
    let landed = server.read_table(table).await?;
    println!(
        "1M rows: INSERT {inserted:?}, read back {:?}",
        started.elapsed() - inserted
    );
    assert_eq!(landed.num_rows() as i64, ROWS, "rows in the Delta table");
    let (ids, names, scores) = columns(&landed);
    // Every id of 0..1M exactly once: with the row count, no row is missing or doubled.
    let mut row_of = vec![usize::MAX; ROWS as usize];
    for (row, id) in ids.values().iter().enumerate() {
        let slot = usize::try_from(*id)
            .ok()
            .and_then(|i| row_of.get_mut(i))
            .unwrap_or_else(|| panic!("id {id} out of range"));
        assert_eq!(*slot, usize::MAX, "id {id} landed twice");
        *slot = row;
    }
    // Values of a sample (every 997th id, and the first and last of each file).
    let sample = (0..ROWS)
        .step_by(997)
        .chain((0..FILES).flat_map(|f| [f * per, (f + 1) * per - 1]));
    let mut checked = 0;
    for id in sample {
        let row = row_of[id as usize];
        assert_eq!(ids.value(row), id);
        if id % 7 == 0 {
            assert!(names.is_null(row), "name of id {id}");
        } else {
            assert_eq!(names.value(row), format!("n{id}"), "name of id {id}");
        }
        assert_eq!(scores.value(row), id as f64 / 4.0, "score of id {id}");
        checked += 1;
    }
    assert!(checked > 1_000);
    let counters = server.counters(table);
    assert_eq!(counters.received, ROWS as u64, "{counters:?}");
    assert_eq!(counters.duplicates, 0, "{counters:?}");
    // A stream per write task, one per file.
    assert_eq!(counters.streams_opened, FILES as u64, "{counters:?}");
    server.shutdown().await;
    Ok(())
}

/// A source that fails once, as a real source does when an executor's read of object
/// storage breaks: [`FlakyTable`] scans a Parquet directory through [`FlakyExec`], which
/// passes batches through until `fail_after` rows went by in one partition, then (the
/// first time only, across every task of the process) ends that partition with an IO
/// error, which Ballista retries. Its codecs are registered before the Zerobus ones,
/// which wrap them (and Ballista's).
mod flaky {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
    use datafusion::arrow::datatypes::SchemaRef;
    use datafusion::catalog::{Session, TableProvider};
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::common::TableReference;
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::file_format::FileFormatFactory;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    use datafusion::error::{DataFusionError, Result};
    use datafusion::execution::{SendableRecordBatchStream, TaskContext};
    use datafusion::logical_expr::{Expr, Extension, LogicalPlan, TableType};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use datafusion::physical_plan::{
        DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
    };
    use datafusion_proto::logical_plan::LogicalExtensionCodec;
    use datafusion_proto::physical_plan::{
        PhysicalExtensionCodec, PhysicalProtoConverterExtension,
    };
    use futures::StreamExt;

    /// What happened to the flaky sources of a test (keyed by the test's key).
    #[derive(Debug, Default, Clone)]
    pub struct Record {
        /// The rows each execution of a partition passed on (a retried task executes its
        /// partition again; a partition of a byte range of a Parquet file holding no row
        /// group's start passes none).
        pub passed: Vec<Arc<AtomicUsize>>,
        /// Rows passed on by the partition that failed, before it failed.
        pub rows_before_failure: Option<usize>,
    }

    static RECORDS: Mutex<Option<HashMap<String, Record>>> = Mutex::new(None);

    fn with_record<T>(key: &str, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut records = RECORDS.lock().unwrap_or_else(|p| p.into_inner());
        f(records
            .get_or_insert_with(HashMap::new)
            .entry(key.to_string())
            .or_default())
    }

    /// What happened to the flaky sources named `key`.
    pub fn record(key: &str) -> Record {
        with_record(key, |r| r.clone())
    }

    /// A Parquet directory read through [`FlakyExec`].
    #[derive(Debug)]
    pub struct FlakyTable {
        pub dir: String,
        pub schema: SchemaRef,
        pub fail_after: usize,
        pub key: String,
    }

    #[async_trait]
    impl TableProvider for FlakyTable {
        fn schema(&self) -> SchemaRef {
            Arc::clone(&self.schema)
        }

        fn table_type(&self) -> TableType {
            TableType::Base
        }

        async fn scan(
            &self,
            state: &dyn Session,
            projection: Option<&Vec<usize>>,
            filters: &[Expr],
            limit: Option<usize>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new(ListingTableUrl::parse(&self.dir)?)
                .with_listing_options(options)
                .with_schema(Arc::clone(&self.schema));
            let scan = ListingTable::try_new(config)?
                .scan(state, projection, filters, limit)
                .await?;
            Ok(Arc::new(FlakyExec {
                input: scan,
                fail_after: self.fail_after,
                key: self.key.clone(),
            }))
        }
    }

    /// Passes its input through; see the [module docs](self).
    #[derive(Debug)]
    pub struct FlakyExec {
        input: Arc<dyn ExecutionPlan>,
        fail_after: usize,
        key: String,
    }

    impl DisplayAs for FlakyExec {
        fn fmt_as(
            &self,
            _: DisplayFormatType,
            f: &mut std::fmt::Formatter<'_>,
        ) -> std::fmt::Result {
            write!(f, "FlakyExec: fail_after={}", self.fail_after)
        }
    }

    impl ExecutionPlan for FlakyExec {
        fn name(&self) -> &'static str {
            "FlakyExec"
        }

        fn properties(&self) -> &Arc<PlanProperties> {
            self.input.properties()
        }

        fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
            vec![&self.input]
        }

        fn with_new_children(
            self: Arc<Self>,
            mut children: Vec<Arc<dyn ExecutionPlan>>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            Ok(Arc::new(FlakyExec {
                input: children.remove(0),
                fail_after: self.fail_after,
                key: self.key.clone(),
            }))
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
        ) -> Result<TreeNodeRecursion> {
            Ok(TreeNodeRecursion::Continue)
        }

        fn execute(
            &self,
            partition: usize,
            context: Arc<TaskContext>,
        ) -> Result<SendableRecordBatchStream> {
            let input = self.input.execute(partition, context)?;
            let schema = input.schema();
            let counter = Arc::new(AtomicUsize::new(0));
            with_record(&self.key, |r| r.passed.push(Arc::clone(&counter)));
            let (key, fail_after) = (self.key.clone(), self.fail_after);
            let mut passed = 0;
            let stream = input.map(move |batch| {
                let batch = batch?;
                if passed >= fail_after {
                    let fail = with_record(&key, |r| {
                        r.rows_before_failure.is_none().then(|| {
                            r.rows_before_failure = Some(passed);
                        })
                    });
                    if fail.is_some() {
                        return Err(DataFusionError::IoError(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "injected: the source's connection was reset",
                        )));
                    }
                }
                passed += batch.num_rows();
                counter.store(passed, Ordering::SeqCst);
                Ok(batch)
            });
            Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
        }
    }

    const TABLE: &[u8] = b"flaky-table:";
    const EXEC: &[u8] = b"flaky-exec:";

    /// `prefix` then `fields` joined by `\n`.
    fn encode(prefix: &[u8], fields: &[&str], buf: &mut Vec<u8>) {
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(fields.join("\n").as_bytes());
    }

    /// The fields of a buffer written by [`encode`] with `prefix`, if it was.
    fn decode<'a>(prefix: &[u8], buf: &'a [u8]) -> Option<Vec<&'a str>> {
        let body = buf.strip_prefix(prefix)?;
        Some(std::str::from_utf8(body).ok()?.split('\n').collect())
    }

    fn number(text: &str) -> Result<usize> {
        text.parse()
            .map_err(|e| DataFusionError::Internal(format!("flaky codec: {e}")))
    }

    /// The logical codec of [`FlakyTable`], over Ballista's.
    #[derive(Debug, Default)]
    pub struct Logical(BallistaLogicalExtensionCodec);

    impl LogicalExtensionCodec for Logical {
        fn try_decode(
            &self,
            buf: &[u8],
            inputs: &[LogicalPlan],
            ctx: &TaskContext,
        ) -> Result<Extension> {
            self.0.try_decode(buf, inputs, ctx)
        }

        fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
            self.0.try_encode(node, buf)
        }

        fn try_decode_table_provider(
            &self,
            buf: &[u8],
            table_ref: &TableReference,
            schema: SchemaRef,
            ctx: &TaskContext,
        ) -> Result<Arc<dyn TableProvider>> {
            match decode(TABLE, buf).as_deref() {
                Some([dir, fail_after, key]) => Ok(Arc::new(FlakyTable {
                    dir: dir.to_string(),
                    schema,
                    fail_after: number(fail_after)?,
                    key: key.to_string(),
                })),
                _ => self
                    .0
                    .try_decode_table_provider(buf, table_ref, schema, ctx),
            }
        }

        fn try_encode_table_provider(
            &self,
            table_ref: &TableReference,
            node: Arc<dyn TableProvider>,
            buf: &mut Vec<u8>,
        ) -> Result<()> {
            match node.downcast_ref::<FlakyTable>() {
                Some(t) => {
                    encode(TABLE, &[&t.dir, &t.fail_after.to_string(), &t.key], buf);
                    Ok(())
                }
                None => self.0.try_encode_table_provider(table_ref, node, buf),
            }
        }

        fn try_decode_file_format(
            &self,
            buf: &[u8],
            ctx: &TaskContext,
        ) -> Result<Arc<dyn FileFormatFactory>> {
            self.0.try_decode_file_format(buf, ctx)
        }

        fn try_encode_file_format(
            &self,
            buf: &mut Vec<u8>,
            node: Arc<dyn FileFormatFactory>,
        ) -> Result<()> {
            self.0.try_encode_file_format(buf, node)
        }
    }

    /// The physical codec of [`FlakyExec`], over Ballista's.
    #[derive(Debug, Default)]
    pub struct Physical(BallistaPhysicalExtensionCodec);

    impl PhysicalExtensionCodec for Physical {
        fn try_decode(
            &self,
            buf: &[u8],
            inputs: &[Arc<dyn ExecutionPlan>],
            ctx: &TaskContext,
            converter: &dyn PhysicalProtoConverterExtension,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            match (decode(EXEC, buf).as_deref(), inputs) {
                (Some([fail_after, key]), [input]) => Ok(Arc::new(FlakyExec {
                    input: Arc::clone(input),
                    fail_after: number(fail_after)?,
                    key: key.to_string(),
                })),
                _ => self.0.try_decode(buf, inputs, ctx, converter),
            }
        }

        fn try_encode(
            &self,
            node: Arc<dyn ExecutionPlan>,
            buf: &mut Vec<u8>,
            converter: &dyn PhysicalProtoConverterExtension,
        ) -> Result<()> {
            match node.downcast_ref::<FlakyExec>() {
                Some(exec) => {
                    encode(EXEC, &[&exec.fail_after.to_string(), &exec.key], buf);
                    Ok(())
                }
                None => self.0.try_encode(node, buf, converter),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_ballista_retries_sends_its_rows_again_and_the_server_counts_the_duplicates(
) -> TestResult {
    const FILES: usize = 4;
    const PER_FILE: usize = 25_000;
    const TOTAL: usize = FILES * PER_FILE;
    let table = "cat.sch.retried";
    let key = "retry-test";
    let source = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    write_parquet(source.path(), FILES, PER_FILE, None);
    let server = server(data.path(), table).await;
    // The flaky source's codecs first, the Zerobus codecs around them (and Ballista's).
    // One partition per task (the default packs up to an executor's free slots into one
    // task, and a retry then runs every partition of the task again).
    let config = SessionConfig::new_with_ballista()
        .with_target_partitions(8)
        .set_usize("ballista.scheduler.max_partitions_per_task", 1)
        .with_ballista_logical_extension_codec(Arc::new(flaky::Logical::default()))
        .with_ballista_physical_extension_codec(Arc::new(flaky::Physical::default()));
    let executor_secret = secret(&server);
    let config = with_zerobus_env(config, move |name| {
        executor_secret
            .clone()
            .filter(|_| name == zerobus_ballista::CLIENT_SECRET_VAR)
    });
    let state = arrow_zerobus_sdk_wrapper::sql::with_zerobus(
        SessionStateBuilder::new()
            .with_config(config)
            .with_default_features(),
    )
    .build();
    let ctx = SessionContext::standalone_with_state(state).await?;
    create_tables(&ctx, &server, table, None, TransportKind::Protobuf, 1).await?;
    ctx.register_table(
        "src",
        Arc::new(flaky::FlakyTable {
            dir: format!("{}/", source.path().display()),
            schema: schema(),
            fail_after: 10_000,
            key: key.to_string(),
        }),
    )?;

    let result = ctx
        .sql("INSERT INTO events SELECT * FROM src")
        .await?
        .collect()
        .await?;

    let record = flaky::record(key);
    let resent = record
        .rows_before_failure
        .expect("a partition failed (and Ballista retried it: the INSERT succeeded)");
    // The failed attempt's rows (whole 8,192-row batches, at least `fail_after`) landed
    // before the task failed: its sink waits for what it sent.
    assert!((10_000..PER_FILE).contains(&resent), "{record:?}");
    // Each file (one row group) is read by one partition, and the failed one once more.
    let with_rows = record
        .passed
        .iter()
        .filter(|n| n.load(Ordering::SeqCst) > 0)
        .count();
    assert_eq!(with_rows, FILES + 1, "{record:?}");
    // A stream per execution with rows (workers 1).
    let counters = server.counters(table);
    assert_eq!(counters.streams_opened, with_rows as u64, "{counters:?}");
    // The INSERT's count adds the successful attempts only: every row once.
    assert_eq!(count(&result), TOTAL as u64);
    // What landed: every row, and the failed attempt's rows a second time.
    let landed = landed(&server, table).await;
    assert_eq!(landed.num_rows(), TOTAL + resent, "{counters:?}");
    let ids = landed.column(0).as_primitive::<Int64Type>().values();
    let mut times = vec![0u8; TOTAL];
    for id in ids.iter() {
        times[usize::try_from(*id)?] += 1;
    }
    assert!(
        times.iter().all(|t| (1..=2).contains(t)),
        "every id once or twice"
    );
    let twice: Vec<usize> = (0..TOTAL).filter(|id| times[*id] == 2).collect();
    assert_eq!(twice.len(), resent);
    // Resent rows are the first rows of one file (one partition), sent again.
    let first = twice[0] / PER_FILE * PER_FILE;
    assert_eq!(twice, (first..first + resent).collect::<Vec<_>>());
    // The server saw them all and counted the repeats: duplicates are not assumed away.
    assert_eq!(counters.received, (TOTAL + resent) as u64, "{counters:?}");
    assert_eq!(counters.duplicates, resent as u64, "{counters:?}");
    server.shutdown().await;
    Ok(())
}
