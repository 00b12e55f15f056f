//! OAuth, bearer-token checks and the Unity Catalog endpoint of the local Zerobus server,
//! against the unmodified official client (its token factory, token cache and `schema`
//! parser). The `zerobus-local` binary is tested in `crates/zerobus-local/tests/cli.rs`.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request, zerobus_client::ZerobusClient,
};
use databricks_zerobus_ingest_sdk::schema::{
    arrow_schema_from_uc_schema, descriptor_from_uc_schema, UcTableSchema,
};
use databricks_zerobus_ingest_sdk::{
    DefaultTokenFactory, ZerobusError as SdkError, ZerobusSdk, ZerobusStream,
};
use futures::StreamExt as _;
use prost_types::field_descriptor_proto::{Label, Type as ProtoType};
use secrecy::ExposeSecret;
use zerobus_local::{Auth, Landing, LocalZerobus};
use zerobus_test_support::local::{sdk, timestamp_field};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.auth_events";

/// A server with OAuth on, rows kept in memory.
async fn oauth_server() -> Result<LocalZerobus, Box<dyn std::error::Error>> {
    Ok(LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .start()
        .await?)
}

/// A JSON stream on `table` with the server's own client credentials.
async fn oauth_stream(
    sdk: &ZerobusSdk,
    server: &LocalZerobus,
    table: &str,
) -> Result<ZerobusStream, SdkError> {
    sdk.stream_builder()
        .table(table)
        .oauth(server.client_id(), server.client_secret().expose_secret())
        .recovery_backoff_ms(100)
        .json()
        .build()
        .await
}

/// A token from the server, fetched by the SDK's own token factory.
async fn token(server: &LocalZerobus, table: &str) -> Result<String, SdkError> {
    DefaultTokenFactory::get_token(
        &server.unity_catalog_url(),
        table,
        server.client_id(),
        server.client_secret().expose_secret(),
        "127",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_streams_open_with_a_token_from_the_server() -> TestResult {
    let server = oauth_server().await?;
    let sdk = sdk(&server)?;
    let mut stream = oauth_stream(&sdk, &server, TABLE).await?;
    assert_eq!(server.tokens_issued(), 1);
    stream.close().await?;
    // The SDK caches the token per table: a second stream opens without a new one.
    let mut again = oauth_stream(&sdk, &server, TABLE).await?;
    again.close().await?;
    assert_eq!(server.tokens_issued(), 1);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_a_terminal_401() -> TestResult {
    let server = oauth_server().await?;
    let sdk = sdk(&server)?;
    let err = sdk
        .stream_builder()
        .table(TABLE)
        .oauth(server.client_id(), "not-the-secret")
        .json()
        .build()
        .await
        .err()
        .expect("a wrong secret must not open a stream");
    let message = err.to_string();
    assert!(
        matches!(err, SdkError::InvalidUCTokenError(_)),
        "expected InvalidUCTokenError, got {message}"
    );
    assert!(!err.is_retryable(), "{message}");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!message.contains(server.client_secret().expose_secret()));

    let unknown_client = DefaultTokenFactory::get_token(
        &server.unity_catalog_url(),
        TABLE,
        "someone-else",
        server.client_secret().expose_secret(),
        "127",
    )
    .await
    .expect_err("an unknown client must get no token");
    assert!(
        unknown_client.to_string().contains("401"),
        "{unknown_client}"
    );
    assert_eq!(server.tokens_issued(), 0);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_a_token_are_unauthenticated() -> TestResult {
    let server = oauth_server().await?;
    let sdk = sdk(&server)?;
    let err = sdk
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .recovery_backoff_ms(100)
        .json()
        .build()
        .await
        .err()
        .expect("a stream without a token must be refused");
    match &err {
        SdkError::CreateStreamError(status) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert!(status.message().contains("authorization"), "{status}");
        }
        other => panic!("expected CreateStreamError(UNAUTHENTICATED), got {other}"),
    }
    server.shutdown().await;
    Ok(())
}

/// Opens an EphemeralStream on `table` with `authorization` (if any) using the generated
/// client, and returns the first response or the status the server ended it with.
async fn raw_create(
    server: &LocalZerobus,
    table: &str,
    authorization: Option<String>,
) -> Result<(), tonic::Status> {
    let mut client = ZerobusClient::connect(server.endpoint())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let create = pb::EphemeralStreamRequest {
        payload: Some(ephemeral_stream_request::Payload::CreateStream(
            pb::CreateIngestStreamRequest {
                table_name: Some(table.into()),
                record_type: Some(pb::RecordType::Json as i32),
                ..Default::default()
            },
        )),
    };
    // The request stream stays open (create_stream is answered before EOF) until `_open`
    // is dropped on return.
    let (_open, requests) = tokio::sync::mpsc::channel::<pb::EphemeralStreamRequest>(1);
    let requests = futures::stream::iter(vec![create])
        .chain(tokio_stream::wrappers::ReceiverStream::new(requests));
    let mut request = tonic::Request::new(requests);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ASCII header"));
    }
    let mut responses = client.ephemeral_stream(request).await?.into_inner();
    responses.message().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_expired_and_foreign_tokens_are_unauthenticated() -> TestResult {
    let server = oauth_server().await?;
    let bogus = "zbl_00000000000000000000000000000000";
    let status = raw_create(&server, TABLE, Some(format!("Bearer {bogus}")))
        .await
        .expect_err("an unknown token must be refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status.message().contains("unknown access token"),
        "{status}"
    );
    assert!(
        !status.message().contains(bogus),
        "the token is echoed: {status}"
    );

    let good = token(&server, TABLE).await?;
    raw_create(&server, TABLE, Some(format!("Bearer {good}"))).await?;

    let other = raw_create(&server, "cat.sch.other", Some(format!("Bearer {good}")))
        .await
        .expect_err("a token is only good for its table");
    assert_eq!(other.code(), tonic::Code::Unauthenticated);
    assert!(other.message().contains("cat.sch.other"), "{other}");

    let malformed = raw_create(&server, TABLE, Some(format!("Basic {good}")))
        .await
        .expect_err("not a bearer token");
    assert_eq!(malformed.code(), tonic::Code::Unauthenticated);

    server.expire_tokens();
    let expired = raw_create(&server, TABLE, Some(format!("Bearer {good}")))
        .await
        .expect_err("an expired token must be refused");
    assert_eq!(expired.code(), tonic::Code::Unauthenticated);
    assert!(expired.message().contains("expired"), "{expired}");
    assert!(!expired.message().contains(&good));
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_auth_accepts_streams_without_a_token() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?;
    assert_eq!(server.auth(), Auth::Disabled);
    raw_create(&server, TABLE, None).await?;
    raw_create(&server, TABLE, Some("Bearer whatever".into())).await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_reminted_by_the_client() -> TestResult {
    let server = oauth_server().await?;
    let sdk = sdk(&server)?;
    let mut first = oauth_stream(&sdk, &server, TABLE).await?;
    first.close().await?;
    assert_eq!(server.tokens_issued(), 1);
    // The SDK still holds the token (cached for an hour); the server now refuses it.
    server.expire_tokens();
    let mut stream = oauth_stream(&sdk, &server, TABLE).await?;
    assert_eq!(
        server.tokens_issued(),
        2,
        "the refused token must have been replaced by a new one"
    );
    stream.close().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_server_follows_restart() -> TestResult {
    let mut server = oauth_server().await?;
    let url = server.unity_catalog_url();
    let first = token(&server, TABLE).await?;
    server.restart().await?;
    assert_eq!(server.unity_catalog_url(), url, "same port after restart");
    // Tokens issued before the restart stay valid.
    raw_create(&server, TABLE, Some(format!("Bearer {first}"))).await?;
    token(&server, TABLE).await?;
    assert_eq!(server.tokens_issued(), 2);
    let uc = server.unity_catalog_url();
    server.shutdown().await;
    let refused = DefaultTokenFactory::get_token(&uc, TABLE, "x", "y", "127").await;
    assert!(refused.is_err(), "the HTTP server must stop on shutdown");
    Ok(())
}

/// A table with every canonical column type (and the nested shapes the SDK supports).
fn every_type_schema() -> SchemaRef {
    let map_entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
        ])),
        false,
    );
    Arc::new(Schema::new(vec![
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, false),
        Field::new("i64", DataType::Int64, false),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("bytes", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        timestamp_field("ts", true),
        timestamp_field("ts_ntz", false),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("tags", DataType::new_list(DataType::Int32, true), true),
        Field::new(
            "point",
            DataType::Struct(Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("label", DataType::Utf8, true),
            ])),
            true,
        ),
        Field::new("attrs", DataType::Map(Arc::new(map_entries), false), true),
    ]))
}

/// What the SDK's `arrow_schema_from_uc_*` makes of [`every_type_schema`] (its Arrow
/// Flight types: large strings and binaries, decimals as strings, "item" / "entries").
fn every_type_as_the_sdk_reads_it() -> Schema {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::LargeUtf8, false),
            Field::new("values", DataType::Int64, true),
        ])),
        false,
    );
    Schema::new(vec![
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, false),
        Field::new("i64", DataType::Int64, false),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("text", DataType::LargeUtf8, true),
        Field::new("bytes", DataType::LargeBinary, true),
        Field::new("day", DataType::Date32, true),
        timestamp_field("ts", true),
        timestamp_field("ts_ntz", false),
        Field::new("amount", DataType::LargeUtf8, true),
        Field::new("tags", DataType::new_list(DataType::Int32, true), true),
        Field::new(
            "point",
            DataType::Struct(Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("label", DataType::LargeUtf8, true),
            ])),
            true,
        ),
        Field::new("attrs", DataType::Map(Arc::new(entries), false), true),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unity_catalog_tables_are_read_by_the_sdk_schema_parser() -> TestResult {
    let table = "cat.sch.every_type";
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .table(table, every_type_schema())
        .start()
        .await?;
    let url = format!(
        "{}/api/2.1/unity-catalog/tables/{table}",
        server.unity_catalog_url()
    );
    let http = reqwest::Client::new();

    let unauthenticated = http.get(&url).send().await?;
    assert_eq!(unauthenticated.status(), 401);
    let body: serde_json::Value = unauthenticated.json().await?;
    assert_eq!(body["error_code"], "UNAUTHENTICATED");

    let bearer = token(&server, table).await?;
    let response = http.get(&url).bearer_auth(&bearer).send().await?;
    assert_eq!(response.status(), 200);
    let uc: UcTableSchema = response.json().await?;
    assert_eq!(
        (
            uc.catalog_name.as_str(),
            uc.schema_name.as_str(),
            uc.name.as_str()
        ),
        ("cat", "sch", "every_type")
    );
    let names: Vec<&str> = uc.columns.iter().map(|c| c.name.as_str()).collect();
    let schema = every_type_schema();
    let expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, expected);
    let type_names: Vec<&str> = uc.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(
        type_names,
        [
            "BYTE",
            "SHORT",
            "INT",
            "LONG",
            "FLOAT",
            "DOUBLE",
            "BOOLEAN",
            "STRING",
            "BINARY",
            "DATE",
            "TIMESTAMP",
            "TIMESTAMP_NTZ",
            "DECIMAL",
            "ARRAY",
            "STRUCT",
            "MAP"
        ]
    );

    // The SDK's Arrow reading of the UC schema.
    assert_eq!(
        arrow_schema_from_uc_schema(&uc)?,
        every_type_as_the_sdk_reads_it()
    );

    // The SDK's protobuf reading: field numbers = position + 1, labels from nullability.
    let descriptor = descriptor_from_uc_schema(&uc)?;
    let fields: Vec<(&str, i32, ProtoType, Label)> = descriptor
        .field
        .iter()
        .map(|f| (f.name(), f.number(), f.r#type(), f.label()))
        .collect();
    use {Label as L, ProtoType as P};
    assert_eq!(
        fields,
        [
            ("i8", 1, P::Int32, L::Optional),
            ("i16", 2, P::Int32, L::Optional),
            ("i32", 3, P::Int32, L::Required),
            ("i64", 4, P::Int64, L::Required),
            ("f32", 5, P::Float, L::Optional),
            ("f64", 6, P::Double, L::Optional),
            ("flag", 7, P::Bool, L::Optional),
            ("text", 8, P::String, L::Optional),
            ("bytes", 9, P::Bytes, L::Optional),
            ("day", 10, P::Int32, L::Optional),
            ("ts", 11, P::Int64, L::Optional),
            ("ts_ntz", 12, P::Int64, L::Optional),
            ("amount", 13, P::String, L::Optional),
            ("tags", 14, P::Int32, L::Repeated),
            ("point", 15, P::Message, L::Optional),
            ("attrs", 16, P::Message, L::Repeated),
        ]
    );

    let missing = http
        .get(format!(
            "{}/api/2.1/unity-catalog/tables/cat.sch.nope",
            server.unity_catalog_url()
        ))
        .bearer_auth(token(&server, "cat.sch.nope").await?)
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await?;
    assert_eq!(body["error_code"], "TABLE_DOES_NOT_EXIST");
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("cat.sch.nope"));
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_responses_carry_the_configured_lifetime() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .credentials("my-client", "my-secret")
        .token_ttl(Duration::from_secs(42))
        .start()
        .await?;
    assert_eq!(server.client_id(), "my-client");
    assert!(!format!("{server:?}").contains("my-secret"));
    let post = |details: &str| {
        reqwest::Client::new()
            .post(format!("{}/oidc/v1/token", server.unity_catalog_url()))
            .basic_auth("my-client", Some("my-secret"))
            .form(&[
                ("scope", "all-apis"),
                (
                    "resource",
                    "api://databricks/workspaces/127/zerobusDirectWriteApi",
                ),
                ("authorization_details", details),
                ("grant_type", "client_credentials"),
            ])
            .send()
    };
    let details = r#"[{"object_full_path":"c.s.t","object_type":"TABLE","operations":["zerobuswrite"],"privileges":["SELECT","MODIFY"],"type":"unity_catalog_privileges"}]"#;
    let body: serde_json::Value = post(details).await?.json().await?;
    assert_eq!(body["expires_in"], 42);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    server.set_token_ttl(Duration::from_secs(7));
    let body: serde_json::Value = post(details).await?.json().await?;
    assert_eq!(body["expires_in"], 7);

    let no_table = post("[]").await?;
    assert_eq!(no_table.status(), 400);
    let body: serde_json::Value = no_table.json().await?;
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(server.tokens_issued(), 2);
    server.shutdown().await;
    Ok(())
}

/// The table the JSON tests write: `{"id": <i64>, "name": "n-<id>"}`.
pub(crate) fn id_name_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// `{"id": <id>, "name": "n-<id>"}` records.
pub(crate) fn id_name_records(ids: std::ops::Range<i64>) -> Vec<String> {
    ids.map(|id| format!(r#"{{"id":{id},"name":"n-{id}"}}"#))
        .collect()
}

/// The distinct `(id, name)` rows landed in `table`, sorted by id.
async fn landed_rows(
    server: &LocalZerobus,
    table: &str,
) -> Result<Vec<(i64, String)>, Box<dyn std::error::Error>> {
    use arrow::array::{AsArray, Int64Array};
    let batch = server.read_table(table).await?;
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("id is not Int64")?;
    let names = batch.column(1).as_string::<i32>();
    let mut rows: Vec<(i64, String)> = ids
        .iter()
        .zip(names.iter())
        .map(|(id, name)| (id.unwrap_or(-1), name.unwrap_or_default().to_string()))
        .collect();
    rows.sort();
    rows.dedup();
    Ok(rows)
}

fn expected_rows(ids: std::ops::Range<i64>) -> Vec<(i64, String)> {
    ids.map(|id| (id, format!("n-{id}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_json_records_are_acknowledged_and_land() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .table(TABLE, id_name_schema())
        .start()
        .await?;
    let sdk = sdk(&server)?;
    let mut stream = oauth_stream(&sdk, &server, TABLE).await?;
    for chunk in 0..5 {
        stream
            .ingest_records_offset(id_name_records(chunk * 20..(chunk + 1) * 20))
            .await?;
    }
    stream.flush().await?;
    stream.close().await?;
    let counters = server.counters(TABLE);
    assert_eq!(counters.received, 100);
    assert_eq!(counters.acknowledged, 100);
    assert_eq!(landed_rows(&server, TABLE).await?, expected_rows(0..100));
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_reminted_across_stream_rotations() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .token_ttl(Duration::from_secs(2))
        .stream_lifetime(Duration::from_secs(1))
        .table(TABLE, id_name_schema())
        .start()
        .await?;
    let sdk = sdk(&server)?;
    let mut stream = oauth_stream(&sdk, &server, TABLE).await?;
    // About 10 s of traffic; the server rotates the stream every second and each new
    // connection presents the SDK's cached token, which it refreshes in the last half of
    // its 2 s life.
    let started = std::time::Instant::now();
    let mut next = 0;
    while started.elapsed() < Duration::from_secs(10) {
        stream
            .ingest_records_offset(id_name_records(next..next + 10))
            .await?;
        next += 10;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stream.flush().await?;
    stream.close().await?;
    let issued = server.tokens_issued();
    assert!(
        issued > 1,
        "only {issued} token(s) issued over 10 s of 2 s tokens"
    );
    assert_eq!(landed_rows(&server, TABLE).await?, expected_rows(0..next));
    assert!(server.counters(TABLE).acknowledged >= next as u64);
    server.shutdown().await;
    Ok(())
}
