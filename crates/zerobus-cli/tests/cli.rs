//! The `zerobus` binary against a local Zerobus started in this process: every
//! subcommand, every input format, globs, failing rows and their quarantine files, wrong
//! credentials and bad input. What landed is read back from the Delta table and compared
//! value by value.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::{sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use zerobus_local::{Auth, LocalZerobus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The rows every format test sends: `id`, `name` (row 2 null where the format can say
/// null), `score`.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: i64,
    name: Option<String>,
    score: f64,
}

fn rows(ids: std::ops::Range<i64>, with_null: bool) -> Vec<Row> {
    ids.map(|id| Row {
        id,
        name: (!(with_null && id % 5 == 2)).then(|| format!("name-{id}")),
        score: id as f64 * 0.5,
    })
    .collect()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.id))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.name.clone()))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.score))),
        ],
    )
    .expect("batch")
}

/// The `id`, `name`, `score` columns of `batch`, sorted by id.
fn read_rows(batch: &RecordBatch) -> Vec<Row> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()))
            .clone()
    };
    let ids = column("id");
    let ids = ids.as_primitive::<Int64Type>();
    let names = column("name");
    let names = names.as_string::<i32>();
    let scores = column("score");
    let scores = scores.as_primitive::<Float64Type>();
    let mut rows: Vec<Row> = (0..batch.num_rows())
        .map(|i| Row {
            id: ids.value(i),
            name: names.is_valid(i).then(|| names.value(i).to_string()),
            score: scores.value(i),
        })
        .collect();
    rows.sort_by_key(|r| r.id);
    rows
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).expect("create");
    let mut writer = ArrowWriter::try_new(file, batches[0].schema(), None).expect("writer");
    for batch in batches {
        writer.write(batch).expect("write");
    }
    writer.close().expect("close");
}

fn write_csv(path: &Path, rows: &[Row]) {
    let mut text = String::from("id,name,score\n");
    for row in rows {
        let name = row.name.as_deref().unwrap_or_default();
        text.push_str(&format!("{},{name},{:?}\n", row.id, row.score));
    }
    std::fs::write(path, text).expect("csv");
}

fn write_ndjson(path: &Path, rows: &[Row]) {
    let lines: Vec<String> = rows
        .iter()
        .map(|r| serde_json::json!({"id": r.id, "name": r.name, "score": r.score}).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("ndjson");
}

fn write_arrow_file(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).expect("create");
    let mut writer = arrow::ipc::writer::FileWriter::try_new(file, &batch.schema()).expect("w");
    writer.write(batch).expect("write");
    writer.finish().expect("finish");
}

fn write_arrow_stream(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).expect("create");
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(file, &batch.schema()).expect("w");
    writer.write(batch).expect("write");
    writer.finish().expect("finish");
}

/// Runs `zerobus args`, without the connection variables of the environment, and waits.
async fn zerobus(args: &[&str]) -> Output {
    zerobus_with_env(args, &[]).await
}

async fn zerobus_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    finish(command(args, env).output()).await
}

/// Runs `zerobus args` as [`zerobus`] does, with `input` on its standard input.
async fn zerobus_with_input(args: &[&str], input: &str) -> Output {
    use tokio::io::AsyncWriteExt;

    let mut command = command(args, &[]);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("zerobus ran");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("stdin written");
    drop(stdin);
    finish(child.wait_with_output()).await
}

/// Waits at most 5 minutes for `output`.
async fn finish(output: impl std::future::Future<Output = std::io::Result<Output>>) -> Output {
    tokio::time::timeout(Duration::from_secs(300), output)
        .await
        .expect("zerobus finished within 5 minutes")
        .expect("zerobus ran")
}

/// `zerobus args` with `env`, without the connection variables of this environment.
fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_zerobus"));
    command.args(args).kill_on_drop(true);
    for key in [
        "ZEROBUS_ENDPOINT",
        "ZEROBUS_UNITY_CATALOG_URL",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "RUST_BACKTRACE",
        "RUST_LOG",
    ] {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exit code, after checking that nothing panicked.
fn code(output: &Output) -> i32 {
    let all = format!("{}{}", stdout(output), stderr(output));
    assert!(
        !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
        "a panic:\n{all}"
    );
    output.status.code().expect("an exit code, not a signal")
}

/// The `--json` summary on stdout.
fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}):\n{}\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// What every ingest test starts with: a local server landing in Delta tables (in a
/// temporary directory) and a temporary directory for the test's files; the binary run
/// against the server and what landed read back.
struct Local {
    server: LocalZerobus,
    dir: tempfile::TempDir,
}

impl Local {
    /// A server with the builder's defaults (no authentication on loopback).
    async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_with(LocalZerobus::builder()).await
    }

    async fn start_with(
        builder: zerobus_local::LocalZerobusBuilder,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Self {
            server: builder.start().await?,
            dir: tempfile::tempdir()?,
        })
    }

    /// The path of `name` in the test's directory.
    fn path(&self, name: &str) -> String {
        path(self.dir.path(), name)
    }

    /// The arguments of `zerobus ingest INPUT --table TABLE --endpoint (this server)
    /// EXTRA...`.
    fn ingest_args<'a>(&'a self, input: &'a str, table: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut args = vec!["ingest", input, "--table", table, "--endpoint"]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        args.push(self.server.endpoint());
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// Runs `zerobus ingest INPUT --table TABLE --endpoint (this server) EXTRA...`.
    async fn ingest(&self, input: &str, table: &str, extra: &[&str]) -> Output {
        let args = self.ingest_args(input, table, extra);
        zerobus(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
    }

    /// Starts the same, its stdout and stderr piped.
    fn spawn_ingest(&self, input: &str, table: &str, extra: &[&str]) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_zerobus"))
            .args(self.ingest_args(input, table, extra))
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("zerobus ingest")
    }

    /// The rows of `table`, read back from its Delta table, sorted by id.
    async fn landed(&self, table: &str) -> Result<Vec<Row>, zerobus_local::LocalError> {
        Ok(read_rows(&self.server.read_table(table).await?))
    }

    /// Ingests `input` into `table` (with `extra`), expects exit 0 and the table to hold
    /// exactly `expected`; the output, for more checks.
    async fn ingest_lands(
        &self,
        input: &str,
        table: &str,
        extra: &[&str],
        expected: &[Row],
    ) -> Result<Output, Box<dyn std::error::Error>> {
        let output = self.ingest(input, table, extra).await;
        assert_eq!(code(&output), 0, "{table}: {}", stderr(&output));
        assert_eq!(self.landed(table).await?, expected, "{table}");
        Ok(output)
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_format_lands_value_by_value() -> TestResult {
    let local = Local::start().await?;
    let expected = rows(0..25, true);
    let no_null = rows(0..25, false);
    let cases: [(&str, &str, Vec<Row>); 5] = [
        ("parquet", "events.parquet", expected.clone()),
        ("csv", "events.csv", no_null.clone()),
        ("ndjson", "events.ndjson", expected.clone()),
        ("arrow", "events.arrow", expected.clone()),
        ("arrows", "events.arrows", expected.clone()),
    ];
    for (format, name, rows) in &cases {
        let file = local.dir.path().join(name);
        match *format {
            "parquet" => write_parquet(&file, &[batch(rows)]),
            "csv" => write_csv(&file, rows),
            "ndjson" => write_ndjson(&file, rows),
            "arrow" => write_arrow_file(&file, &batch(rows)),
            _ => write_arrow_stream(&file, &batch(rows)),
        }
        let table = format!("main.cli.{format}");
        let options = ["--batch-rows", "10", "--json"];
        let output = local
            .ingest_lands(&local.path(name), &table, &options, rows)
            .await?;
        let summary = json_of(&output);
        assert_eq!(summary["rows_acknowledged"], 25, "{format}: {summary}");
        assert_eq!(summary["rows_failed"], 0, "{format}: {summary}");
    }
    local.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_and_a_directory_land_every_file_over_flight_too() -> TestResult {
    let local = Local::start().await?;
    let parts = local.dir.path().join("parts");
    std::fs::create_dir_all(parts.join("more"))?;
    write_parquet(&parts.join("part-0.parquet"), &[batch(&rows(0..100, true))]);
    write_parquet(
        &parts.join("part-1.parquet"),
        &[batch(&rows(100..150, true))],
    );
    write_ndjson(&parts.join("more/part-2.json"), &rows(150..160, true));
    std::fs::write(parts.join("README.txt"), "not data")?;
    let glob = path(&parts, "part-*.parquet");
    // One reader thread: the files one after the other.
    let options = ["--jobs", "1", "--json"];
    let output = local
        .ingest_lands(&glob, "main.cli.glob", &options, &rows(0..150, true))
        .await?;
    assert_eq!(json_of(&output)["files"], 2);
    // A directory: its Parquet and JSON files, recursively (README.txt is skipped), read
    // by two threads at once (the default), over Arrow Flight.
    let directory = parts.display().to_string();
    let options = ["--transport", "flight", "--json"];
    let expected = rows(0..160, true);
    let output = local
        .ingest_lands(&directory, "main.cli.directory", &options, &expected)
        .await?;
    assert_eq!(json_of(&output)["files"], 3);
    local.stop().await;
    Ok(())
}

/// Rows 1 and 3 of each file carry a name too long for `--max-record-size-bytes 200`.
fn rows_with_long_names(ids: std::ops::Range<i64>) -> Vec<Row> {
    let mut rows = rows(ids, false);
    for row in rows.iter_mut().filter(|r| r.id % 10 == 1 || r.id % 10 == 3) {
        row.name = Some("x".repeat(500));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_rows_are_counted_quarantined_and_exit_3() -> TestResult {
    let local = Local::start().await?;
    let input = rows_with_long_names(0..20);
    write_parquet(&local.dir.path().join("events.parquet"), &[batch(&input)]);
    let quarantine = local.dir.path().join("failed");
    let output = local
        .ingest(
            &local.path("events.parquet"),
            "main.cli.partial",
            &[
                "--max-record-size-bytes",
                "200",
                "--quarantine",
                &quarantine.display().to_string(),
                "--json",
            ],
        )
        .await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let summary = json_of(&output);
    assert_eq!(summary["rows_read"], 20, "{summary}");
    assert_eq!(summary["rows_acknowledged"], 16, "{summary}");
    assert_eq!(summary["rows_failed"], 4, "{summary}");
    assert_eq!(
        summary["failures"][0]["reason"],
        "ConversionError (RecordTooLarge)"
    );
    assert_eq!(summary["failures"][0]["rows"], 4);
    assert_eq!(summary["failures"][0]["first_row"], 1);
    assert_eq!(summary["quarantine_files"][0]["rows"], 4);

    let failed_ids = [1, 3, 11, 13];
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| !failed_ids.contains(&r.id))
        .cloned()
        .collect();
    assert_eq!(local.landed("main.cli.partial").await?, expected);

    // The quarantine file: the failed rows, value by value, with their error and row.
    let file = quarantine.join("events.failed.arrows");
    let reader = arrow::ipc::reader::StreamReader::try_new(std::fs::File::open(&file)?, None)?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let failed = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| failed_ids.contains(&r.id))
        .cloned()
        .collect();
    assert_eq!(read_rows(&failed), expected);
    let input_rows = failed
        .column_by_name("_zerobus_input_row")
        .expect("row column");
    let input_rows: Vec<u64> = input_rows
        .as_primitive::<arrow::datatypes::UInt64Type>()
        .values()
        .to_vec();
    assert_eq!(input_rows, vec![1, 3, 11, 13]);
    let errors = failed
        .column_by_name("_zerobus_error")
        .expect("error column");
    for error in errors.as_string::<i32>().iter() {
        let error = error.expect("an error text");
        assert!(
            error.contains("exceeds") && error.contains("200"),
            "{error}"
        );
    }
    let types = failed
        .column_by_name("_zerobus_error_type")
        .expect("type column");
    assert!(types
        .as_string::<i32>()
        .iter()
        .all(|t| t == Some("ConversionError (RecordTooLarge)")));

    // The same file in a dry run: the same failures, nothing sent, no endpoint needed.
    let output = zerobus(&[
        "ingest",
        &local.path("events.parquet"),
        "--table",
        "main.cli.dry",
        "--max-record-size-bytes",
        "200",
        "--dry-run",
        "--json",
    ])
    .await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let summary = json_of(&output);
    assert_eq!(
        (
            summary["rows_acknowledged"].as_u64(),
            summary["rows_failed"].as_u64()
        ),
        (Some(16), Some(4))
    );
    assert!(!local.server.tables().iter().any(|t| t.contains("dry")));

    // Every row failing: nothing landed, exit 1; the text summary names the reason.
    let all_long: Vec<Row> = rows(0..5, false)
        .into_iter()
        .map(|r| Row {
            name: Some("y".repeat(500)),
            ..r
        })
        .collect();
    write_csv(&local.dir.path().join("long.csv"), &all_long);
    let output = local
        .ingest(
            &local.path("long.csv"),
            "main.cli.none",
            &["--max-record-size-bytes", "200"],
        )
        .await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("5 × ConversionError (RecordTooLarge)"),
        "{text}"
    );
    assert!(text.contains("long.csv row 0"), "{text}");
    local.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_wrong_credentials_fail_with_clear_messages() -> TestResult {
    let local = Local::start_with(
        LocalZerobus::builder()
            .auth(Auth::OAuth)
            .credentials("cli-client", "the-right-secret".to_string()),
    )
    .await?;
    write_parquet(
        &local.dir.path().join("ok.parquet"),
        &[batch(&rows(0..10, true))],
    );
    let endpoint = local.server.endpoint();
    let uc = local.server.unity_catalog_url();
    let connect = [
        "--endpoint",
        endpoint.as_str(),
        "--unity-catalog-url",
        uc.as_str(),
        "--client-id",
        "cli-client",
    ];
    let ok = local.path("ok.parquet");

    // The right secret (from the environment) lands the rows.
    let mut args = vec!["ingest", ok.as_str(), "--table", "main.cli.auth"];
    args.extend(connect);
    let output = zerobus_with_env(&args, &[("DATABRICKS_CLIENT_SECRET", "the-right-secret")]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(local.landed("main.cli.auth").await?, rows(0..10, true));

    // A wrong one: nothing lands, exit 1, an authentication message without the secret;
    // the first batch that fails so stops the ingest.
    let mut args = vec![
        "ingest",
        ok.as_str(),
        "--table",
        "main.cli.auth",
        "--retry-max-attempts",
        "2",
        "--batch-rows",
        "2",
        "--max-inflight",
        "1",
    ];
    args.extend(connect);
    let output = zerobus_with_env(&args, &[("DATABRICKS_CLIENT_SECRET", "wrong-secret-123")]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(all.to_lowercase().contains("auth"), "{all}");
    assert!(
        !all.contains("wrong-secret-123"),
        "the secret leaked:\n{all}"
    );
    assert!(all.contains("stopped after 2 rows read"), "{all}");
    assert!(all.contains("sent:     2 rows"), "{all}");
    assert_eq!(local.landed("main.cli.auth").await?, rows(0..10, true));

    // --help shows neither secret value nor default.
    let output = zerobus_with_env(
        &["ingest", "--help"],
        &[("DATABRICKS_CLIENT_SECRET", "hidden-777")],
    )
    .await;
    assert_eq!(code(&output), 0);
    let help = stdout(&output);
    assert!(
        help.contains("Examples:") && help.contains("--client-secret"),
        "{help}"
    );
    assert!(!help.contains("hidden-777"), "{help}");

    // A missing file.
    let missing = local.path("missing.parquet");
    let output = zerobus(&["ingest", &missing, "--table", "main.cli.x", "--dry-run"]).await;
    assert_eq!(code(&output), 1);
    let message = stdout(&output) + &stderr(&output);
    assert!(
        message.contains(&missing) && message.contains("No such file"),
        "{message}"
    );

    // A corrupt Parquet file, among good ones: the good rows land (exit 3).
    std::fs::write(
        local.dir.path().join("bad.parquet"),
        b"PAR1 this is not parquet",
    )?;
    let bad = local.path("bad.parquet");
    let mut args = vec![
        "ingest",
        bad.as_str(),
        ok.as_str(),
        "--table",
        "main.cli.corrupt",
        "--json",
    ];
    args.extend(connect);
    let output = zerobus_with_env(&args, &[("DATABRICKS_CLIENT_SECRET", "the-right-secret")]).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let errors = json_of(&output)["errors"].to_string();
    assert!(
        errors.contains(&bad) && errors.contains("Parquet"),
        "{errors}"
    );
    assert_eq!(local.landed("main.cli.corrupt").await?, rows(0..10, true));

    // An unknown option: clap's usage error, exit 2, naming it.
    let output = zerobus(&["ingest", &ok, "--table", "t", "--no-such-option"]).await;
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("--no-such-option"),
        "{}",
        stderr(&output)
    );

    // No endpoint.
    let output = zerobus(&["ingest", &ok, "--table", "main.cli.x"]).await;
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("--endpoint") || stdout(&output).contains("--endpoint"));

    // --version.
    let output = zerobus(&["--version"]).await;
    assert_eq!(code(&output), 0);
    assert!(
        stdout(&output).starts_with("zerobus 0."),
        "{}",
        stdout(&output)
    );
    local.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_go_to_stderr_when_it_is_not_a_terminal() -> TestResult {
    let local = Local::start().await?;
    write_parquet(
        &local.dir.path().join("p.parquet"),
        &[batch(&rows(0..100, true))],
    );
    let output = local
        .ingest(
            &local.path("p.parquet"),
            "main.cli.progress",
            &["--batch-rows", "10", "--progress-interval", "0"],
        )
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let progress = stderr(&output);
    assert!(
        progress.contains("rows read") && progress.contains("ETA"),
        "{progress}"
    );
    let text = stdout(&output);
    assert!(text.contains("landed (acknowledged): 100 rows"), "{text}");
    assert_eq!(local.landed("main.cli.progress").await?, rows(0..100, true));

    // --quiet: neither progress nor summary.
    let output = local
        .ingest(&local.path("p.parquet"), "main.cli.progress", &["--quiet"])
        .await;
    assert_eq!(code(&output), 0);
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    local.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_inserts_a_parquet_file_into_a_zerobus_table() -> TestResult {
    let local = Local::start().await?;
    let file = local.dir.path().join("src.parquet");
    write_parquet(&file, &[batch(&rows(0..30, true))]);
    let statements = format!(
        "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '{}';
         CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR, score DOUBLE)
           STORED AS ZEROBUS LOCATION 'main.cli.sql';
         INSERT INTO events SELECT id, name, score FROM src;
         SELECT count(*) AS n, max(id) AS top FROM src;",
        file.display()
    );
    let output = zerobus(&[
        "sql",
        "-c",
        &statements,
        "--endpoint",
        &local.server.endpoint(),
    ])
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("| count |") && text.contains("| 30    |"),
        "{text}"
    );
    assert!(text.contains("| 30 | 29  |"), "{text}");
    assert_eq!(local.landed("main.cli.sql").await?, rows(0..30, true));

    // A file of statements, CSV output; a failing statement names its number.
    let script = local.dir.path().join("q.sql");
    std::fs::write(&script, "SELECT 1 AS one;\nSELECT * FROM no_such_table;")?;
    let output = zerobus(&[
        "sql",
        "-f",
        &script.display().to_string(),
        "--format",
        "csv",
    ])
    .await;
    assert_eq!(code(&output), 1);
    assert!(
        stdout(&output).starts_with("one\n1\n"),
        "{}",
        stdout(&output)
    );
    let error = stderr(&output);
    assert!(
        error.contains("statement 2 of 2") && error.contains("no_such_table"),
        "{error}"
    );

    // Statements on standard input (no terminal, so no prompt): piped, and `-f -`.
    let piped = format!(
        "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '{}';\n\
         SELECT sum(id) AS total FROM src;",
        file.display()
    );
    for args in [
        &["sql", "--format", "csv"][..],
        &["sql", "-f", "-", "--format", "csv"],
    ] {
        let output = zerobus_with_input(args, &piped).await;
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "total\n435\n", "{args:?}");
    }
    local.stop().await;
    Ok(())
}

/// A running `zerobus local serve`: its process and banner.
struct Serve {
    child: tokio::process::Child,
    banner: Vec<String>,
}

impl Serve {
    async fn start(args: &[&str]) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};

        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zerobus"))
            .args(["local", "serve", "--port", "0", "--http-port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("zerobus local serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("banner") {
                let done = line.contains("Ctrl-C");
                banner.push(line);
                if done {
                    break;
                }
            }
        })
        .await
        .expect("the banner within a minute");
        Self { child, banner }
    }

    fn value(&self, label: &str) -> String {
        self.banner
            .iter()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {label} in\n{}", self.banner.join("\n")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_serve_declares_tables_and_schema_reads_them_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    write_parquet(
        &dir.path().join("shape.parquet"),
        &[batch(&rows(0..3, true))],
    );
    let declared = "main.cli.declared=id BIGINT NOT NULL, name STRING, ts TIMESTAMP";
    let from_file = format!("main.cli.from_file={}", path(dir.path(), "shape.parquet"));
    let mut serve = Serve::start(&[
        "--no-auth",
        "--data-dir",
        &data.display().to_string(),
        "--table",
        declared,
        "--table",
        &from_file,
    ])
    .await;
    let endpoint = serve.value("endpoint:");
    let uc = serve.value("unity_catalog_url:");

    // `zerobus schema --table` reads the declared columns from Unity Catalog.
    let output = zerobus(&[
        "schema",
        "--table",
        "main.cli.declared",
        "--endpoint",
        &endpoint,
        "--unity-catalog-url",
        &uc,
        "--json",
    ])
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json_of(&output);
    let columns: Vec<(String, String, bool)> = report["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["delta_type"].as_str().unwrap_or_default().to_string(),
                c["nullable"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        ("id", "BIGINT", false),
        ("name", "STRING", true),
        ("ts", "TIMESTAMP", true),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(n, t, null)| (n.to_string(), t.to_string(), *null))
        .collect();
    assert_eq!(columns, expected);
    let output = zerobus(&[
        "schema",
        "--table",
        "main.cli.from_file",
        "--endpoint",
        &endpoint,
        "--unity-catalog-url",
        &uc,
        "--json",
    ])
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let names: Vec<_> = json_of(&output)["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["id", "name", "score"]);

    // Rows with a timestamp land in the declared table; read back after the server stops.
    let ts_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let ts = RecordBatch::try_new(
        ts_schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("a"), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_001), None])
                    .with_timezone("UTC"),
            ),
        ],
    )?;
    write_parquet(&dir.path().join("ts.parquet"), std::slice::from_ref(&ts));
    let ts_file = path(dir.path(), "ts.parquet");
    let output = zerobus(&[
        "ingest",
        &ts_file,
        "--table",
        "main.cli.declared",
        "--endpoint",
        &endpoint,
    ])
    .await;
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    serve.child.start_kill()?;
    serve.child.wait().await?;
    let server = LocalZerobus::builder().data_dir(&data).start().await?;
    let landed = server.read_table("main.cli.declared").await?;
    let order = sort_to_indices(landed.column(0), None, None)?;
    assert_eq!(take_record_batch(&landed, &order)?, ts);
    server.shutdown().await;

    // A bad --table: clap's usage error naming the column.
    let output = zerobus(&["local", "serve", "--table", "t=id BIGINT, ts TIMESTAMPZ"]).await;
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("unknown type `TIMESTAMPZ`"),
        "{}",
        stderr(&output)
    );
    Ok(())
}

/// Rows printed as JSON objects (`null` or a missing `name`: null).
fn json_rows(rows: &serde_json::Value) -> Vec<Row> {
    rows.as_array()
        .expect("an array of rows")
        .iter()
        .map(|r| Row {
            id: r["id"].as_i64().expect("id"),
            name: r["name"].as_str().map(str::to_string),
            score: r["score"].as_f64().expect("score"),
        })
        .collect()
}

/// The debug files of an ingest with `debug:` in a `--config` file.
async fn debug_files(local: &Local) -> (PathBuf, PathBuf) {
    let dir = local.dir.path();
    write_parquet(&dir.join("d.parquet"), &[batch(&rows(0..12, true))]);
    let config = dir.join("zerobus.yaml");
    let debug = dir.join("debug");
    std::fs::write(
        &config,
        format!(
            "endpoint: {}\ndebug:\n  arrow_enabled: true\n  protobuf_enabled: true\n  output_dir: {}\n",
            local.server.endpoint(),
            debug.display()
        ),
    )
    .expect("config");
    let output = zerobus(&[
        "ingest",
        &path(dir, "d.parquet"),
        "--table",
        "main.cli.debug",
        "--config",
        &config.display().to_string(),
    ])
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let find = |sub: &str, ext: &str| {
        std::fs::read_dir(debug.join("zerobus").join(sub))
            .expect("debug dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} file"))
    };
    (find("arrow", "arrows"), find("proto", "pb"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_inspect_decodes_the_debug_files_and_schema_shows_what_cannot_be_sent() -> TestResult
{
    let local = Local::start().await?;
    let (arrows, pb) = debug_files(&local).await;
    let expected = rows(0..12, true);

    let output = zerobus(&[
        "debug",
        "inspect",
        &arrows.display().to_string(),
        "--limit",
        "3",
        "--json",
    ])
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["rows"], 12);
    assert_eq!(report["schema"][0]["name"], "id");
    assert_eq!(json_rows(&report["first_rows"]), expected[..3]);

    let output = zerobus(&["debug", "inspect", &pb.display().to_string(), "--json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["records"], 12);
    assert_eq!(json_rows(&report["first_records"]), expected[..10]);
    let output = zerobus(&["debug", "inspect", &arrows.display().to_string()]).await;
    assert_eq!(code(&output), 0);
    assert!(stdout(&output).contains("12 row(s)") && stdout(&output).contains("name-0"));

    // A file with a TIME column: listed with the cast to use, exit 1; the descriptor of
    // the other columns.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("at", DataType::Time64(TimeUnit::Microsecond), true),
    ]));
    let times = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(arrow::array::Time64MicrosecondArray::from(vec![5])),
        ],
    )?;
    write_arrow_file(&local.dir.path().join("times.arrow"), &times);
    let output = zerobus(&[
        "schema",
        &local.path("times.arrow"),
        "--table",
        "main.cli.times",
    ])
    .await;
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(
        text.contains("at: Time64(µs) -> NOT SUPPORTED") && text.contains("cast to Int64"),
        "{text}"
    );
    assert!(
        text.contains("message times {") && text.contains("optional int64 id = 1;"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("1 column(s) cannot be sent"),
        "{}",
        stderr(&output)
    );
    local.stop().await;
    Ok(())
}

/// Sends SIGINT (what Ctrl-C sends) to `child`.
#[cfg(unix)]
fn ctrl_c(child: &tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -INT {pid}");
}

/// Waits until `done` holds of the counters of `table` (at most a minute).
async fn wait_for_counters(
    server: &LocalZerobus,
    table: &str,
    done: impl Fn(&zerobus_local::Counters) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !done(&server.counters(table)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{table}: {:?} within a minute", server.counters(table)));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_reading_waits_for_the_rows_sent_and_exits_130() -> TestResult {
    let local = Local::start().await?;
    let table = "main.cli.interrupt";
    // 200 batches of 1,000 rows, each acknowledged 50 ms late: 10 s at least to send.
    let total = 200_000;
    let input = rows(0..total, true);
    write_parquet(&local.dir.path().join("big.parquet"), &[batch(&input)]);
    let big = local.path("big.parquet");
    local
        .server
        .faults(table)
        .delay_acks(Some(Duration::from_millis(50)));
    let child = local.spawn_ingest(&big, table, &["--batch-rows", "1000", "--json"]);
    wait_for_counters(&local.server, table, |c| c.acknowledged > 0).await;
    ctrl_c(&child);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("exited within two minutes of Ctrl-C")?;
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    let summary = json_of(&output);
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert_eq!(summary["exit_code"], 130, "{summary}");
    let read = summary["rows_read"].as_u64().expect("rows_read");
    assert!(read > 0 && read < total as u64, "{summary}");
    // Everything sent was waited for: acknowledged, none left in flight.
    assert_eq!(summary["rows_sent"], read, "{summary}");
    assert_eq!(summary["rows_acknowledged"], read, "{summary}");
    assert_eq!(summary["rows_failed"], 0, "{summary}");
    assert_eq!(summary["rows_not_read"], total as u64 - read, "{summary}");
    let unfinished = &summary["unfinished_files"];
    assert_eq!(unfinished[0]["file"], big.as_str(), "{summary}");
    assert_eq!(unfinished[0]["rows_read"], read, "{summary}");
    assert_eq!(unfinished[0]["rows"], total, "{summary}");
    // The rows said to be acknowledged are exactly those in the table: the first `read`.
    let read = usize::try_from(read)?;
    assert_eq!(local.landed(table).await?, input[..read]);

    // Acknowledgements withheld: the first Ctrl-C waits for them, the second exits at
    // once, without a summary.
    let table = "main.cli.interrupt_twice";
    local.server.faults(table).withhold_acks(true);
    let mut child = local.spawn_ingest(&big, table, &["--batch-rows", "1000"]);
    wait_for_counters(&local.server, table, |c| c.committed > 0).await;
    ctrl_c(&child);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        child.try_wait()?.is_none(),
        "exited before its rows in flight were acknowledged"
    );
    ctrl_c(&child);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("exited at once on the second Ctrl-C")?;
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("zerobus: interrupted: reading stops")
            && message.contains("zerobus: interrupted again: exiting without waiting"),
        "{message}"
    );
    assert!(!stdout(&output).contains("landed"), "{}", stdout(&output));
    assert_eq!(local.server.counters(table).acknowledged, 0);
    local.stop().await;
    Ok(())
}

/// `n` with thousands separators, as the summary prints counts.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_summary_of_an_interrupted_ingest_names_what_was_not_read() -> TestResult {
    let local = Local::start().await?;
    let table = "main.cli.interrupt_text";
    write_parquet(
        &local.dir.path().join("a.parquet"),
        &[batch(&rows(0..100_000, true))],
    );
    write_csv(
        &local.dir.path().join("b.csv"),
        &rows(100_000..100_010, false),
    );
    local
        .server
        .faults(table)
        .delay_acks(Some(Duration::from_millis(50)));
    let child = local.spawn_ingest(
        &local.path("*.*"),
        table,
        &["--batch-rows", "1000", "--jobs", "1"],
    );
    wait_for_counters(&local.server, table, |c| c.acknowledged > 0).await;
    ctrl_c(&child);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("exited within two minutes of Ctrl-C")?;
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    let text = stdout(&output);
    let landed = local.landed(table).await?.len();
    assert!(
        text.starts_with("interrupted (Ctrl-C): reading stopped")
            && text.contains(&format!(
                "landed (acknowledged): {} rows",
                thousands(landed)
            ))
            && text.contains("not read: an unknown number of rows")
            && text.contains("a.parquet: rows ")
            && text.contains("of 100,000 not read")
            && text.contains("b.csv: rows 0.. not read"),
        "{text}"
    );
    local.stop().await;
    Ok(())
}

/// A child process on a pseudo-terminal: what it printed so far, read on a thread.
struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn spawn(args: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        use std::io::Read;
        use std::process::Stdio;

        let pty = nix::pty::openpty(None, None)?;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_zerobus"))
            .args(args)
            .stdin(Stdio::from(pty.slave.try_clone()?))
            .stdout(Stdio::from(pty.slave.try_clone()?))
            .stderr(Stdio::from(pty.slave))
            .spawn()?;
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone()?;
        let (sender, chunks) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with an error (EIO) once the child has exited and closed the terminal.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if sender.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            master,
            chunks,
            seen: String::new(),
        })
    }

    /// Waits (at most 60 s) until the output since the last call holds `text`.
    fn expect(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("no {text:?} on the terminal; it shows:\n{}", self.seen),
            }
        }
        let end = self.seen.find(text).expect("found") + text.len();
        self.seen.drain(..end);
    }

    /// Types `keys`.
    fn type_keys(&mut self, keys: &str) {
        use std::io::Write;
        self.master.write_all(keys.as_bytes()).expect("typed");
    }
}

impl Drop for Terminal {
    /// A test that failed half-way leaves no prompt running (a no-op once it has exited).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sql_on_a_terminal_is_an_interactive_prompt() -> TestResult {
    // Each step waits for what only its statement's end prints (its result, `row(s) in`,
    // `error:`) before the next prompt: the prompt line is also redrawn while typing.
    let mut terminal = Terminal::spawn(&["sql"])?;
    terminal.expect("\\q to quit");
    terminal.expect("zerobus> ");
    // A statement over two lines runs at its `;`.
    terminal.type_keys("SELECT 40 + 2 AS answer,\r");
    terminal.expect("-> ");
    terminal.type_keys("'x' AS y;\r");
    terminal.expect("| answer | y |");
    terminal.expect("| 42     | x |");
    terminal.expect("1 row(s) in");
    terminal.expect("zerobus> ");
    // An error is shown and the prompt goes on, with the session's tables.
    terminal.type_keys("CREATE TABLE t AS VALUES (1), (2);\r");
    terminal.expect("0 row(s) in");
    terminal.expect("zerobus> ");
    terminal.type_keys("SELECT no_such_column FROM t;\r");
    terminal.expect("error: ");
    terminal.expect("no_such_column");
    terminal.expect("zerobus> ");
    terminal.type_keys("SELECT sum(column1) AS total FROM t;\r");
    terminal.expect("| 3     |");
    terminal.expect("1 row(s) in");
    terminal.expect("zerobus> ");
    // Ctrl-C drops the statement being typed (else the next would not parse); \q leaves
    // with exit code 0.
    terminal.type_keys("SELECT 1");
    terminal.type_keys("\x03");
    terminal.expect("(\\q or Ctrl-D to quit)");
    terminal.expect("zerobus> ");
    terminal.type_keys("SELECT 5 AS five;\r");
    terminal.expect("| five |");
    terminal.expect("| 5    |");
    terminal.expect("1 row(s) in");
    terminal.expect("zerobus> ");
    terminal.type_keys("\\q\r");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = terminal.child.try_wait()? {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "\\q did not leave");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    Ok(())
}
