//! The local server's Delta landing (the default) against the unmodified official client:
//! JSON records sent over real gRPC on loopback land in a Delta table under the data
//! directory, are acknowledged only once committed, and survive restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use databricks_zerobus_ingest_sdk::{ZerobusSdk, ZerobusStream};
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use zerobus_local::LocalZerobus;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.landed";

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
    ]))
}

/// The JSON record of row `i`: every 7th name is null.
fn record(i: i64) -> String {
    let name = if i % 7 == 0 {
        "null".to_string()
    } else {
        format!("\"n-{i}\"")
    };
    format!(
        r#"{{"id": {i}, "name": {name}, "score": {}, "ok": {}}}"#,
        i as f64 / 4.0,
        i % 3 == 0
    )
}

/// The rows `ids` as the table holds them.
fn expected(ids: std::ops::Range<i64>) -> RecordBatch {
    let ids: Vec<i64> = ids.collect();
    let names: StringArray = ids
        .iter()
        .map(|i| (i % 7 != 0).then(|| format!("n-{i}")))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(names),
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|i| *i as f64 / 4.0),
            )),
            Arc::new(BooleanArray::from_iter(
                ids.iter().map(|i| Some(i % 3 == 0)),
            )),
        ],
    )
    .unwrap()
}

async fn server(data_dir: &Path, commit_interval: Duration) -> LocalZerobus {
    LocalZerobus::builder()
        .data_dir(data_dir)
        .table(TABLE, schema())
        .commit_interval(commit_interval)
        .start()
        .await
        .expect("the local server starts")
}

async fn json_stream(server: &LocalZerobus) -> Result<ZerobusStream, Box<dyn std::error::Error>> {
    let sdk = ZerobusSdk::builder()
        .endpoint(server.endpoint())
        .no_tls()
        .connector_factory(Arc::new(|_: &str| None))
        .build()?;
    Ok(sdk
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .json()
        .build()
        .await?)
}

/// Sends rows `ids` in requests of `chunk` records; returns the last offset.
async fn send(
    stream: &ZerobusStream,
    ids: std::ops::Range<i64>,
    chunk: usize,
) -> Result<i64, Box<dyn std::error::Error>> {
    let records: Vec<String> = ids.map(record).collect();
    let mut last = None;
    for part in records.chunks(chunk) {
        last = stream.ingest_records_offset(part.to_vec()).await?;
    }
    Ok(last.expect("at least one request"))
}

fn table_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cat").join("sch").join("landed")
}

/// Rows in the Delta table at `dir` as an independent reader sees it now.
async fn rows_on_disk(dir: &Path) -> Result<i64, Box<dyn std::error::Error>> {
    let url = deltalake::ensure_table_uri(dir.to_string_lossy())?;
    let table = deltalake::open_table(url).await?;
    let mut rows = 0;
    for file in table.get_file_uris()? {
        let reader = SerializedFileReader::new(std::fs::File::open(&file)?)?;
        rows += reader.metadata().file_metadata().num_rows();
    }
    Ok(rows)
}

#[tokio::test]
async fn json_rows_land_in_a_delta_table_value_by_value() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(dir.path(), Duration::from_millis(20)).await;
    let mut stream = json_stream(&server).await?;
    send(&stream, 0..1000, 100).await?;
    stream.flush().await?;
    stream.close().await?;

    assert_eq!(server.read_table(TABLE).await?, expected(0..1000));
    assert_eq!(rows_on_disk(&table_dir(dir.path())).await?, 1000);
    let counters = server.counters(TABLE);
    assert_eq!(
        (counters.received, counters.committed, counters.acknowledged),
        (1000, 1000, 1000)
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn acks_wait_for_the_commit_and_the_rows_are_on_disk_when_acked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let interval = Duration::from_millis(1500);
    let server = server(dir.path(), interval).await;
    let stream = json_stream(&server).await?;
    for round in 0..3i64 {
        let offset = send(&stream, round * 50..(round + 1) * 50, 25).await?;
        // Well inside the commit interval: received, neither committed nor acknowledged.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = server.counters(TABLE);
        assert_eq!(before.received, ((round + 1) * 50) as u64);
        assert_eq!(before.committed, (round * 50) as u64, "round {round}");
        assert_eq!(before.acknowledged, (round * 50) as u64, "round {round}");
        // Once the client sees the ack, another reader sees the rows in the Delta table.
        stream.wait_for_offset(offset).await?;
        assert_eq!(
            rows_on_disk(&table_dir(dir.path())).await?,
            (round + 1) * 50,
            "round {round}"
        );
        let after = server.counters(TABLE);
        assert!(after.acknowledged <= after.committed, "{after:?}");
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn restarts_and_a_new_server_on_the_same_dir_keep_what_landed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = server(dir.path(), Duration::from_millis(20)).await;
    let mut stream = json_stream(&server).await?;
    send(&stream, 0..300, 50).await?;
    stream.flush().await?;
    stream.close().await?;

    server.restart().await?;
    let mut stream = json_stream(&server).await?;
    send(&stream, 300..500, 50).await?;
    stream.flush().await?;
    stream.close().await?;
    assert_eq!(server.read_table(TABLE).await?, expected(0..500));
    server.shutdown().await;

    // A new server on the same directory, without declaring the table, finds it.
    let fresh = LocalZerobus::builder().data_dir(dir.path()).start().await?;
    assert_eq!(fresh.tables(), vec![TABLE.to_string()]);
    let landed = fresh.read_table(TABLE).await?;
    assert_eq!(landed.num_rows(), 500);
    let expected = expected(0..500);
    for (field, column) in expected.schema().fields().iter().zip(expected.columns()) {
        let back = landed.column_by_name(field.name()).expect("column kept");
        assert_eq!(back.to_data(), column.to_data(), "column {}", field.name());
    }
    fresh.shutdown().await;
    Ok(())
}
