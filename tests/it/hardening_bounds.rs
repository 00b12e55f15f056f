//! Every resource of the local server has a bound (issue 21): the duplicate-row window,
//! the token map, the ack queue and the streams per connection; open streams end with
//! their token; one server per data directory; restart and shutdown cut open connections.
//! Each test speaks to the server over loopback, with the official SDK or the generated
//! gRPC client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array};
use databricks_zerobus_ingest_sdk::databricks::zerobus::{
    self as pb, ephemeral_stream_request, ephemeral_stream_response, ingest_record_batch_request,
    zerobus_client::ZerobusClient,
};
use databricks_zerobus_ingest_sdk::{DefaultTokenFactory, ZerobusSdk, ZerobusStream};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};
use zerobus_local::{Auth, Landing, LocalError, LocalZerobus, DEFAULT_CLOSE_GRACE};
use zerobus_test_support::local::sdk;

use crate::local_auth::{id_name_records as records, id_name_schema as schema};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.bounds";

/// The ids that landed in `table`, sorted (with repeats).
async fn landed_ids(server: &LocalZerobus, table: &str) -> Vec<i64> {
    let landed = server.read_table(table).await.expect("read back");
    let ids = landed
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("id column");
    let mut ids: Vec<i64> = (0..ids.len()).map(|i| ids.value(i)).collect();
    ids.sort_unstable();
    ids
}

/// A JSON stream of the official SDK, without auth.
async fn json_stream(
    sdk: &ZerobusSdk,
    table: &str,
) -> Result<ZerobusStream, Box<dyn std::error::Error>> {
    Ok(sdk
        .stream_builder()
        .table(table)
        .no_auth()
        .recovery_backoff_ms(100)
        .json()
        .build()
        .await?)
}

/// Sends `ids` in requests of `per_request` records.
async fn send(stream: &ZerobusStream, ids: std::ops::Range<i64>, per_request: i64) -> TestResult {
    let mut start = ids.start;
    while start < ids.end {
        let end = (start + per_request).min(ids.end);
        stream.ingest_records_offset(records(start..end)).await?;
        start = end;
    }
    Ok(())
}

/// A token for `table` from `server`, fetched by the SDK's own token factory.
async fn token(server: &LocalZerobus, table: &str) -> String {
    DefaultTokenFactory::get_token(
        &server.unity_catalog_url(),
        table,
        server.client_id(),
        server.client_secret().expose_secret(),
        "127",
    )
    .await
    .expect("token")
}

/// An EphemeralStream of JSON records over the generated client, driven by hand: the test
/// decides what is sent, and whether responses are read.
struct RawStream {
    requests: mpsc::UnboundedSender<pb::EphemeralStreamRequest>,
    responses: tonic::Streaming<pb::EphemeralStreamResponse>,
    next_offset: i64,
}

impl RawStream {
    /// Opens a stream on `table` (with `Bearer <token>` if given) and reads the create
    /// response.
    async fn open(
        client: &mut ZerobusClient<Channel>,
        table: &str,
        token: Option<&str>,
    ) -> Result<Self, Status> {
        let (requests, rx) = mpsc::unbounded_channel();
        let create =
            ephemeral_stream_request::Payload::CreateStream(pb::CreateIngestStreamRequest {
                table_name: Some(table.into()),
                record_type: Some(pb::RecordType::Json as i32),
                ..Default::default()
            });
        let _ = requests.send(pb::EphemeralStreamRequest {
            payload: Some(create),
        });
        let mut request = tonic::Request::new(UnboundedReceiverStream::new(rx));
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("ASCII token");
            request.metadata_mut().insert("authorization", value);
        }
        let mut responses = client.ephemeral_stream(request).await?.into_inner();
        match responses.message().await?.and_then(|r| r.payload) {
            Some(ephemeral_stream_response::Payload::CreateStreamResponse(_)) => Ok(Self {
                requests,
                responses,
                next_offset: 0,
            }),
            other => Err(Status::internal(format!(
                "expected a create response, got {other:?}"
            ))),
        }
    }

    /// Queues one request with the records of `ids`; `false` once the stream is gone.
    fn send(&mut self, ids: std::ops::Range<i64>) -> bool {
        let batch = pb::IngestRecordBatchRequest {
            offset_id: Some(self.next_offset),
            batch: Some(ingest_record_batch_request::Batch::JsonBatch(
                pb::JsonRecordBatch {
                    records: records(ids),
                },
            )),
        };
        self.next_offset += 1;
        let payload = ephemeral_stream_request::Payload::IngestRecordBatch(batch);
        self.requests
            .send(pb::EphemeralStreamRequest {
                payload: Some(payload),
            })
            .is_ok()
    }

    /// The next response payload, or the status the stream ended with (`OK`: ended
    /// without one), within `within`.
    async fn next(
        &mut self,
        within: Duration,
    ) -> Result<ephemeral_stream_response::Payload, Status> {
        match tokio::time::timeout(within, self.responses.message()).await {
            Err(_) => Err(Status::deadline_exceeded("no response in time")),
            Ok(Err(status)) => Err(status),
            Ok(Ok(None)) => Err(Status::ok("the stream ended")),
            Ok(Ok(Some(response))) => response
                .payload
                .ok_or_else(|| Status::internal("an empty response")),
        }
    }
}

/// A generated client on one fresh connection to `server`.
async fn raw_client(server: &LocalZerobus) -> ZerobusClient<Channel> {
    let channel = Channel::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    ZerobusClient::new(channel)
}

// Item 5: the duplicate-row set.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_counted_within_the_window_and_memory_stays_bounded() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .duplicate_window(1_000)
        .table(TABLE, schema())
        .start()
        .await?;
    let sdk = sdk(&server)?;
    let mut stream = json_stream(&sdk, TABLE).await?;
    send(&stream, 0..3_000, 500).await?;
    stream.flush().await?;
    assert_eq!(server.counters(TABLE).duplicates, 0);
    // A resend of recent rows (what a recovery resends) is counted...
    send(&stream, 2_500..3_000, 500).await?;
    stream.flush().await?;
    assert_eq!(server.counters(TABLE).duplicates, 500);
    // ... rows older than the window are forgotten: the set holds 1 000 rows, not 3 000.
    send(&stream, 0..100, 100).await?;
    stream.flush().await?;
    stream.close().await?;
    let counters = server.counters(TABLE);
    assert_eq!((counters.received, counters.duplicates), (3_600, 500));
    server.shutdown().await;

    // Window 0: not counted at all.
    let off = LocalZerobus::builder()
        .landing(Landing::Memory)
        .duplicate_window(0)
        .start()
        .await?;
    let sdk = self::sdk(&off)?;
    let mut stream = json_stream(&sdk, TABLE).await?;
    send(&stream, 0..10, 10).await?;
    send(&stream, 0..10, 10).await?;
    stream.flush().await?;
    stream.close().await?;
    assert_eq!(off.counters(TABLE).received, 20);
    assert_eq!(off.counters(TABLE).duplicates, 0);
    off.shutdown().await;
    Ok(())
}

// Item 6: the token map.

/// Sends `body` as a token request over plain HTTP/1.1; returns the status line and body.
async fn post_token(server: &LocalZerobus, body: &[u8]) -> std::io::Result<String> {
    let credentials = base64(
        format!(
            "{}:{}",
            server.client_id(),
            server.client_secret().expose_secret()
        )
        .as_bytes(),
    );
    let mut socket = tokio::net::TcpStream::connect(server.http_addr()).await?;
    let head = format!(
        "POST /oidc/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Basic {credentials}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    // The server may answer (413) before it reads the whole body.
    let _ = socket.write_all(body).await;
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response).await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// Standard base64 with padding (the Basic credentials of a raw request).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A token request form naming `tables` tables.
fn token_form(tables: usize) -> String {
    let detail = r#"{"object_full_path":"cat.sch.bounds","object_type":"TABLE"}"#;
    let details = format!("[{}]", vec![detail; tables].join(","));
    let details: String = url_encode(&details);
    format!(
        "grant_type=client_credentials&scope=all-apis&resource=api%3A%2F%2Fdatabricks%2F\
         workspaces%2F127%2FzerobusDirectWriteApi&authorization_details={details}"
    )
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_are_not_kept_without_auth_and_token_requests_are_bounded() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::None)
        .start()
        .await?;
    // Anyone may mint tokens without auth; they cost the server nothing.
    for _ in 0..300 {
        token(&server, TABLE).await;
    }
    assert_eq!(server.tokens_issued(), 300);
    assert_eq!(server.tokens_remembered(), 0);

    // A body over 64 KiB is refused before it is read; the next request is served.
    let huge = post_token(&server, &vec![b'a'; 200 << 10]).await?;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    let ok = post_token(&server, token_form(1).as_bytes()).await?;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    server.shutdown().await;

    // With OAuth, tokens are remembered, for at most 16 tables each.
    let oauth = LocalZerobus::builder()
        .landing(Landing::None)
        .auth(Auth::OAuth)
        .start()
        .await?;
    let many = post_token(&oauth, token_form(17).as_bytes()).await?;
    assert!(many.starts_with("HTTP/1.1 400"), "{many}");
    assert!(many.contains("at most 16"), "{many}");
    let ok = post_token(&oauth, token_form(16).as_bytes()).await?;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert_eq!((oauth.tokens_issued(), oauth.tokens_remembered()), (1, 1));
    oauth.shutdown().await;
    Ok(())
}

// Item 7: the ack queue and the streams per connection.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_acks_are_slow_is_held_back_by_flow_control() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .max_unacked_requests(8)
        .table(TABLE, schema())
        .start()
        .await?;
    // Each ack waits a second: the ack queue fills at once.
    server
        .faults(TABLE)
        .delay_acks(Some(Duration::from_secs(1)));
    let mut client = raw_client(&server).await;
    let mut stream = RawStream::open(&mut client, TABLE, None).await?;
    for i in 0..1_000 {
        assert!(stream.send(i..i + 1));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = server.counters(TABLE).received;
    // One request in the ack task, 8 queued, one stored and waiting for room.
    assert!(
        received <= 10,
        "{received} requests read while their acks were held up (8 may wait)"
    );
    // The client is held back, not failed: once acks flow, everything is read and acked.
    server.faults(TABLE).delay_acks(None);
    let mut acked = -1;
    while acked < 999 {
        match stream.next(Duration::from_secs(10)).await? {
            ephemeral_stream_response::Payload::IngestRecordResponse(ack) => {
                acked = ack.durability_ack_up_to_offset.expect("an offset");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let counters = server.counters(TABLE);
    assert_eq!((counters.received, counters.acknowledged), (1_000, 1_000));
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_of_a_connection_wait_for_a_free_one() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .max_concurrent_streams(2)
        .start()
        .await?;
    let mut client = raw_client(&server).await;
    let first = RawStream::open(&mut client, TABLE, None).await?;
    let _second = RawStream::open(&mut client.clone(), TABLE, None).await?;
    let mut third_client = client.clone();
    let third = tokio::spawn(async move { RawStream::open(&mut third_client, TABLE, None).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third stream opened on a connection limited to 2"
    );
    // Ending the first stream (half-close, the server ends it with OK) frees a slot.
    let RawStream {
        requests,
        mut responses,
        ..
    } = first;
    drop(requests);
    while responses.message().await?.is_some() {}
    let third = tokio::time::timeout(Duration::from_secs(10), third).await??;
    assert!(third.is_ok(), "the third stream opens once one ended");
    server.shutdown().await;
    Ok(())
}

// Item 8: tokens expire on open streams.

/// A server with OAuth on, tokens living `token_ttl`, `TABLE` in memory.
async fn oauth_server(
    token_ttl: Duration,
    close_grace: Duration,
) -> Result<LocalZerobus, LocalError> {
    LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .token_ttl(token_ttl)
        .close_grace(close_grace)
        .table(TABLE, schema())
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_outliving_its_token_is_asked_to_close_then_unauthenticated() -> TestResult {
    let server = oauth_server(Duration::from_secs(1), Duration::from_secs(1)).await?;
    // Before the token is issued: it expires at most 1 s after this.
    let opened = Instant::now();
    let token = token(&server, TABLE).await;
    let mut client = raw_client(&server).await;
    let mut stream = RawStream::open(&mut client, TABLE, Some(&token)).await?;
    assert!(stream.send(0..1));
    assert!(matches!(
        stream.next(Duration::from_secs(5)).await?,
        ephemeral_stream_response::Payload::IngestRecordResponse(_)
    ));
    // The client ignores the close signal and keeps sending.
    let signal = loop {
        match stream.next(Duration::from_secs(5)).await? {
            ephemeral_stream_response::Payload::CloseStreamSignal(signal) => break signal,
            ephemeral_stream_response::Payload::IngestRecordResponse(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let signalled = opened.elapsed();
    assert!(
        signalled < Duration::from_secs(3),
        "close signal after {signalled:?}"
    );
    let grace = signal.duration.expect("a grace");
    assert_eq!((grace.seconds, grace.nanos), (1, 0));
    let mut offset = 1;
    let status = loop {
        stream.send(offset..offset + 1);
        offset += 1;
        match stream.next(Duration::from_millis(200)).await {
            Ok(_) => {}
            Err(status) if status.code() == Code::DeadlineExceeded => {}
            Err(status) => break status,
        }
        assert!(opened.elapsed() < Duration::from_secs(10), "never closed");
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(status.message().contains("expired"), "{status}");
    assert!(!status.message().contains(&token));
    assert!(
        opened.elapsed() >= Duration::from_secs(2),
        "closed before the grace"
    );
    // The server answers the next client.
    let fresh = self::token(&server, TABLE).await;
    RawStream::open(&mut raw_client(&server).await, TABLE, Some(&fresh)).await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_rotates_with_a_new_token_when_its_token_expires() -> TestResult {
    let server = oauth_server(Duration::from_secs(2), DEFAULT_CLOSE_GRACE).await?;
    let sdk = sdk(&server)?;
    let mut stream = sdk
        .stream_builder()
        .table(TABLE)
        .oauth(server.client_id(), server.client_secret().expose_secret())
        .recovery_backoff_ms(100)
        .json()
        .build()
        .await?;
    // About 5 s: past two token lifetimes, with the default 15 min stream lifetime.
    let started = Instant::now();
    let mut next = 0;
    while started.elapsed() < Duration::from_secs(5) {
        send(&stream, next..next + 10, 10).await?;
        next += 10;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stream.flush().await?;
    stream.close().await?;
    let counters = server.counters(TABLE);
    assert!(counters.streams_opened >= 2, "{counters:?}");
    assert!(
        server.tokens_issued() >= 2,
        "{} tokens",
        server.tokens_issued()
    );
    let mut ids = landed_ids(&server, TABLE).await;
    ids.dedup();
    assert_eq!(ids, (0..next).collect::<Vec<_>>());
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrow_stream_rotates_with_a_new_token_when_its_token_expires() -> TestResult {
    use std::sync::atomic::Ordering;

    use crate::local_flight::{self, Reconnects};

    let server =
        local_flight::server(|b| b.auth(Auth::OAuth).token_ttl(Duration::from_secs(2))).await?;
    let sdk = sdk(&server)?;
    let reconnects = Arc::new(Reconnects::default());
    let (id, secret) = (server.client_id(), server.client_secret().expose_secret());
    let mut stream =
        local_flight::arrow_stream_with(&sdk, local_flight::simple_schema(), &reconnects, |b| {
            b.oauth(id, secret)
        })
        .await?;
    // The token's expiry sends the close metadata (`close_stream_duration_ms`).
    let sent = local_flight::send_across_a_rotation(
        &mut stream,
        &reconnects,
        2_000,
        Duration::from_millis(50),
    )
    .await?;
    assert!(reconnects.rotations.load(Ordering::Relaxed) >= 1);
    assert_eq!(reconnects.failures.load(Ordering::Relaxed), 0);
    assert!(
        server.tokens_issued() >= 2,
        "{} tokens",
        server.tokens_issued()
    );
    local_flight::assert_all_landed(&server, sent).await?;
    server.shutdown().await;
    Ok(())
}

// Item 11: one server per data directory.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_a_data_directory_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = LocalZerobus::builder().data_dir(dir.path()).start().await?;
    let err = LocalZerobus::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect_err("two servers on one directory");
    assert!(
        matches!(&err, LocalError::DataDirInUse { dir: d } if d == dir.path()),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("in use"), "{message}");
    // Memory landing writes nothing there: no lock needed.
    LocalZerobus::builder()
        .data_dir(dir.path())
        .landing(Landing::Memory)
        .start()
        .await?
        .shutdown()
        .await;

    // The first server is unharmed, and the directory is free once it stopped.
    let sdk = sdk(&first)?;
    let mut stream = json_stream(&sdk, TABLE).await?;
    send(&stream, 0..10, 10).await?;
    stream.flush().await?;
    stream.close().await?;
    first.shutdown().await;
    let next = LocalZerobus::builder().data_dir(dir.path()).start().await?;
    assert_eq!(landed_ids(&next, TABLE).await, (0..10).collect::<Vec<_>>());
    next.shutdown().await;
    Ok(())
}

// Item 12: restart and shutdown cut open connections.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_cuts_open_streams_and_the_sdk_reconnects() -> TestResult {
    let mut server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(TABLE, schema())
        .start()
        .await?;
    // A raw stream sees its connection go.
    let mut client = raw_client(&server).await;
    let mut raw = RawStream::open(&mut client, TABLE, None).await?;
    let sdk = sdk(&server)?;
    let mut stream = json_stream(&sdk, TABLE).await?;
    send(&stream, 0..100, 10).await?;
    stream.flush().await?;
    assert_eq!(server.counters(TABLE).streams_opened, 2);

    let restarted = Instant::now();
    server.restart().await?;
    assert!(
        restarted.elapsed() < Duration::from_secs(3),
        "{:?}",
        restarted.elapsed()
    );
    let cut = raw.next(Duration::from_secs(5)).await.expect_err("cut");
    assert_ne!(
        cut.code(),
        Code::DeadlineExceeded,
        "the stream was not cut: {cut}"
    );

    // The SDK's stream reconnects (a new stream on the new server) and every row lands.
    send(&stream, 100..200, 10).await?;
    stream.flush().await?;
    stream.close().await?;
    assert!(
        server.counters(TABLE).streams_opened >= 3,
        "{:?}",
        server.counters(TABLE)
    );
    let mut ids = landed_ids(&server, TABLE).await;
    ids.dedup();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_streams_still_open_after_its_grace() -> TestResult {
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?;
    let mut client = raw_client(&server).await;
    let mut raw = RawStream::open(&mut client, TABLE, None).await?;
    let started = Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    let cut = raw.next(Duration::from_secs(20)).await.expect_err("cut");
    assert_ne!(
        cut.code(),
        Code::DeadlineExceeded,
        "the stream was not cut: {cut}"
    );
    tokio::time::timeout(Duration::from_secs(10), shutdown).await??;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}
