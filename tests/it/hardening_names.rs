//! Names the local server refuses, and tables it cannot create, over real gRPC and HTTP:
//! table names as Unity Catalog checks them (length, characters, case), column names and
//! counts as Zerobus checks them, JSON records that do not fit their table, and a Delta
//! table whose creation fails (unregistered, its error naming no server path).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use databricks_zerobus_ingest_sdk::ZerobusError as SdkError;
use zerobus_local::{Landing, LocalZerobus};
use zerobus_test_support::local::sdk;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A server landing Delta tables under `dir`, committing quickly.
async fn delta_server(dir: &Path) -> Result<LocalZerobus, Box<dyn std::error::Error>> {
    Ok(LocalZerobus::builder()
        .data_dir(dir)
        .commit_interval(Duration::from_millis(20))
        .start()
        .await?)
}

/// Sends `records` on a new JSON stream to `table` (no recovery, so a server error comes
/// back as is), flushes and closes.
async fn send_json(server: &LocalZerobus, table: &str, records: &[&str]) -> Result<(), SdkError> {
    let mut stream = sdk(server)?
        .stream_builder()
        .table(table)
        .no_auth()
        .recovery(false)
        .json()
        .build()
        .await?;
    stream
        .ingest_records_offset(records.iter().map(|r| r.to_string()).collect::<Vec<_>>())
        .await?;
    stream.flush().await?;
    stream.close().await
}

/// The gRPC status of a failed stream (the SDK keeps only the message of an
/// `INVALID_ARGUMENT` once the stream is open).
fn status(err: &SdkError) -> tonic::Status {
    match err {
        SdkError::CreateStreamError(status) | SdkError::StreamClosedError(status) => status.clone(),
        SdkError::InvalidArgument(message) => tonic::Status::invalid_argument(message),
        other => panic!("expected a server status, got {other:?}"),
    }
}

/// `GET /api/2.1/unity-catalog/tables/{name}`: the HTTP status and the JSON body.
async fn uc_table(
    server: &LocalZerobus,
    name: &str,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
    let url = format!(
        "{}/api/2.1/unity-catalog/tables/{name}",
        server.unity_catalog_url()
    );
    let response = reqwest::Client::new().get(url).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// The `id` column of everything landed in `table`.
async fn ids(server: &LocalZerobus, table: &str) -> Result<Vec<i64>, Box<dyn std::error::Error>> {
    let batch = server.read_table(table).await?;
    let ids = batch
        .column_by_name("id")
        .ok_or("no id column")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("id is not Int64")?;
    let mut ids: Vec<i64> = ids.iter().flatten().collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Before: the 300-character part made creating the Delta directory fail ("File name too
/// long"), the table stayed registered (Unity Catalog answered 200 for it) and every
/// stream failed with a retryable INTERNAL naming the server's data path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_part_longer_than_unity_catalog_allows_is_refused_at_stream_creation() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let server = delta_server(dir.path()).await?;
    let long = format!("cat.sch.{}", "t".repeat(300));
    for _ in 0..2 {
        let err = send_json(&server, &long, &[r#"{"id":1}"#])
            .await
            .expect_err("a 300-character name part must be refused");
        let SdkError::CreateStreamError(status) = &err else {
            panic!("must fail at stream creation, got {err:?}");
        };
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let message = status.message();
        assert!(
            message.contains("the table name has 300 characters")
                && message.contains("at most 255"),
            "{message}"
        );
        assert!(
            !message.contains(&*dir.path().to_string_lossy()),
            "{message}"
        );
    }
    assert!(server.tables().is_empty(), "{:?}", server.tables());
    let (code, body) = uc_table(&server, &long).await?;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{body}");
    // Exactly 255 characters is fine, and the server still serves.
    let longest = format!("cat.sch.{}", "t".repeat(255));
    send_json(&server, &longest, &[r#"{"id":7}"#]).await?;
    assert_eq!(ids(&server, &longest).await?, [7]);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_characters_unity_catalog_refuses_are_invalid_arguments() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?;
    for (name, named) in [
        ("cat.my sch.t", "' '"),
        ("cat.sch.t\u{7f}", "'\\u{7f}'"),
        ("cat.sch.t\tx", "'\\t'"),
        ("cat.sch\\x.t", "'\\\\'"),
    ] {
        let err = send_json(&server, name, &[r#"{"id":1}"#])
            .await
            .expect_err("the name must be refused");
        let status = status(&err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{name:?}");
        assert!(status.message().contains(named), "{}", status.message());
    }
    // Unity Catalog accepts hyphens and non-ASCII letters.
    send_json(&server, "my-cat.sch.événements", &[r#"{"id":2}"#]).await?;
    assert_eq!(server.tables(), ["my-cat.sch.événements"]);
    server.shutdown().await;
    Ok(())
}

/// `c.s.AbC` and `c.s.abc` are one table (Unity Catalog stores names in lowercase): both
/// spellings land in the same Delta table, listed and described in lowercase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_names_are_case_insensitive() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = delta_server(dir.path()).await?;
    send_json(&server, "Cat.Sch.AbC", &[r#"{"id":1}"#]).await?;
    send_json(&server, "cat.sch.abc", &[r#"{"id":2}"#]).await?;
    send_json(&server, "CAT.SCH.ABC", &[r#"{"id":3}"#]).await?;
    assert_eq!(server.tables(), ["cat.sch.abc"]);
    assert_eq!(ids(&server, "cAt.sCh.aBc").await?, [1, 2, 3]);
    assert_eq!(server.counters("CAT.sch.abc").streams_opened, 3);
    assert!(dir.path().join("cat/sch/abc/_delta_log").is_dir());
    let (code, body) = uc_table(&server, "CAT.Sch.ABC").await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["full_name"], "cat.sch.abc");
    assert_eq!(body["name"], "abc");
    // A restarted server finds the one table again.
    server.shutdown().await;
    let reopened = delta_server(dir.path()).await?;
    assert_eq!(reopened.tables(), ["cat.sch.abc"]);
    assert_eq!(ids(&reopened, "Cat.Sch.Abc").await?, [1, 2, 3]);
    reopened.shutdown().await;
    Ok(())
}

/// Before: the file in the way made the table's creation fail in the background, the
/// table stayed registered (listed, described by Unity Catalog with 200) and every
/// stream failed with INTERNAL "Delta table /tmp/.../cat/sch/blocked: ..." for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_creation_fails_is_unregistered_and_its_error_names_no_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = delta_server(dir.path()).await?;
    let table = "cat.sch.blocked";
    let in_the_way = dir.path().join("cat").join("sch").join("blocked");
    std::fs::create_dir_all(in_the_way.parent().ok_or("no parent")?)?;
    std::fs::write(&in_the_way, b"a file where the table's directory goes")?;

    let err = send_json(&server, table, &[r#"{"id":1}"#])
        .await
        .expect_err("the table cannot be created");
    let status = status(&err);
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    let message = status.message();
    assert!(
        message.contains("the Delta table for cat.sch.blocked could not be created"),
        "{message}"
    );
    let data_dir = dir.path().to_string_lossy();
    assert!(!message.contains(&*data_dir), "{message}");
    assert!(!message.contains("/sch/"), "{message}");
    // Unregistered: not listed, unknown to Unity Catalog, nothing counted.
    assert!(server.tables().is_empty(), "{:?}", server.tables());
    let (code, body) = uc_table(&server, table).await?;
    assert_eq!(code, 404, "{body}");
    assert!(!body.to_string().contains(&*data_dir), "{body}");

    // Once the way is clear, the next stream creates the table and its rows land.
    std::fs::remove_file(&in_the_way)?;
    send_json(&server, table, &[r#"{"id":2}"#, r#"{"id":3}"#]).await?;
    assert_eq!(server.tables(), [table]);
    assert_eq!(ids(&server, table).await?, [2, 3]);
    assert_eq!(uc_table(&server, table).await?.0, 200);
    server.shutdown().await;
    Ok(())
}

/// JSON keys that cannot be column names create no table: the stream fails with
/// INVALID_ARGUMENT naming the key, and the server serves the next stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_keys_zerobus_refuses_create_no_table() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = delta_server(dir.path()).await?;
    let wide: String = {
        let keys: Vec<String> = (0..2001).map(|i| format!("\"c{i}\":{i}")).collect();
        format!("{{{}}}", keys.join(","))
    };
    let cases = [
        (
            r#"{"id":1,"":2}"#.to_string(),
            "column \"\": the name is empty",
        ),
        (r#"{"id":1,"a b":2}"#.to_string(), "\"a b\""),
        (r#"{"id":1,"a.b":2}"#.to_string(), "\"a.b\""),
        (r#"{"id":1,"a,b":2}"#.to_string(), "\"a,b\""),
        (r#"{"id":1,"s":{"x-y":1}}"#.to_string(), "\"s.x-y\""),
        (r#"{"id":1,"ID":2}"#.to_string(), "same name ignoring case"),
        (wide, "2001 columns; Zerobus accepts at most 2000"),
    ];
    for (record, named) in &cases {
        let err = send_json(&server, "cat.sch.keys", &[record])
            .await
            .expect_err("the keys must be refused");
        let status = status(&err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(named), "{}", status.message());
        assert!(server.tables().is_empty(), "{:?}", server.tables());
    }
    assert!(!dir.path().join("cat").exists(), "no directory was made");
    send_json(&server, "cat.sch.keys", &[r#"{"id":1,"ok_key":2}"#]).await?;
    assert_eq!(ids(&server, "cat.sch.keys").await?, [1]);
    server.shutdown().await;
    Ok(())
}

/// A table with NOT NULL `id` and `extra`, and a nullable `name`.
fn strict_table() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("extra", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// Before: `Encountered unmasked nulls in non-nullable StructArray child: Field { "extra":
/// Int64 }` (arrow-json's words, no record index for a one-record batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_that_do_not_fit_their_table_are_explained() -> TestResult {
    let table = "cat.sch.strict";
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(table, strict_table())
        .start()
        .await?;
    let good = r#"{"id":1,"extra":1}"#;
    for (record, expected) in [
        (
            r#"{"id":2,"name":"x"}"#,
            "record 1: column extra is NOT NULL but the record has no value for it",
        ),
        (
            r#"{"id":2,"extra":null}"#,
            "record 1: column extra is NOT NULL but the record's value is null",
        ),
        (
            r#"{"id":2,"extra":3,"more":4}"#,
            r#"record 1: key "more" is not a column of the table"#,
        ),
        (
            r#"{"id":2,"extra":"three"}"#,
            r#"record 1: column extra: failed to parse "three" as Int64"#,
        ),
        ("[2, 3]", "record 1: expected a JSON object, got an array"),
    ] {
        let err = send_json(&server, table, &[good, record])
            .await
            .expect_err("the record must be refused");
        let status = status(&err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with(expected),
            "{record}: {}",
            status.message()
        );
        assert!(!status.message().contains("StructArray"), "{status:?}");
    }
    // Nothing of a refused request landed; a fitting one does.
    assert_eq!(server.counters(table).received, 0);
    send_json(&server, table, &[good]).await?;
    assert_eq!(server.read_table(table).await?.num_rows(), 1);
    server.shutdown().await;
    Ok(())
}
