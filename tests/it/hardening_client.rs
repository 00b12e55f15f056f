//! The wrapper's own hardening, over real HTTP and gRPC: the Unity Catalog schema look-up
//! of `CREATE EXTERNAL TABLE` (timeout, error bodies cut short), URL options checked with a
//! URL parser, streams of many schemas closed when idle, and structs wider than the
//! protobuf field numbers reserved at 19000.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Int64Type, Schema, SchemaRef};
#[cfg(feature = "datafusion")]
use arrow_zerobus_sdk_wrapper::sql::fetch_uc_schema;
use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusError, ZerobusWrapper};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use zerobus_local::{Landing, LocalZerobus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.hardening";

/// A configuration for `TABLE` on a plaintext loopback endpoint (no credentials needed)
/// whose Unity Catalog is at `uc`.
fn config_with_uc(uc: &str) -> WrapperConfiguration {
    WrapperConfiguration::new("http://127.0.0.1:1", TABLE).with_unity_catalog(uc)
}

/// An HTTP server on loopback that answers every request with `status` and `body`.
async fn answering(status: &'static str, body: String) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    Ok(url)
}

/// Before: `fetch_uc_schema` used a `reqwest::Client` without a timeout and waited for
/// ever on a Unity Catalog that accepts the connection and never answers. (It waits the
/// real 30 seconds: tokio's paused clock needs its `test-util` feature, which would
/// rebuild tokio and everything above it for the tests.)
#[cfg(feature = "datafusion")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_look_up_gives_up_on_a_silent_unity_catalog() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let uc = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // never answered, never closed
        }
    });
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        fetch_uc_schema(&config_with_uc(&uc)),
    )
    .await;
    let error = outcome
        .expect("the look-up must time out on its own, well before 90 s")
        .expect_err("a silent Unity Catalog gives no schema");
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(29)..Duration::from_secs(60)).contains(&waited),
        "{waited:?}"
    );
    let message = error.to_string();
    assert!(message.contains("no answer within 30 s"), "{message}");
    assert!(message.contains(TABLE), "{message}");
    Ok(())
}

/// Before: the whole 100 kB error body was copied into the message (by the factory and
/// by the schema check's client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_answer_is_quoted_up_to_512_bytes() -> TestResult {
    let body = format!("{}{}", "e".repeat(512), "z".repeat(100_000));
    let uc = answering("500 Internal Server Error", body).await?;

    let mut messages = Vec::new();
    #[cfg(feature = "datafusion")]
    messages.push(
        fetch_uc_schema(&config_with_uc(&uc))
            .await
            .expect_err("a 500 gives no schema")
            .to_string(),
    );
    messages.push({
        let wrapper = ZerobusWrapper::new(config_with_uc(&uc).with_schema_check(true)).await?;
        let batch = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )])?;
        let outcome = wrapper.send_batch(batch).await;
        let error = match outcome {
            Err(error) => error,
            Ok(result) => result.error.ok_or("the schema check must fail")?,
        };
        assert!(
            matches!(error, ZerobusError::ConnectionError { .. }),
            "{error:?}"
        );
        error.to_string()
    });
    for message in messages {
        assert!(message.contains("HTTP 500"), "{message}");
        assert!(
            message.contains(&format!("{}…", "e".repeat(512))),
            "{message}"
        );
        assert!(
            !message.contains('z'),
            "{}",
            &message[..message.len().min(2000)]
        );
        assert!(message.len() < 1200, "{} bytes", message.len());
    }
    Ok(())
}

/// `http://host:notaport` passed `validate()` before; now the URL parser refuses it,
/// naming the option, and neither a wrapper nor a SQL table is built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_options_are_checked_by_a_url_parser() -> TestResult {
    let cases = [
        (
            WrapperConfiguration::new("http://127.0.0.1:notaport", TABLE),
            "zerobus_endpoint:",
        ),
        (
            WrapperConfiguration::new("http://127.0.0.1:50051", TABLE)
                .with_unity_catalog("http://127.0.0.1:99999"),
            "unity_catalog_url:",
        ),
    ];
    for (config, option) in cases {
        let message = match config.validate() {
            Err(ZerobusError::ConfigurationError { message, .. }) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        };
        assert!(message.starts_with(option), "{message}");
        assert!(message.contains("invalid port number"), "{message}");
        let error = ZerobusWrapper::new(config)
            .await
            .err()
            .ok_or("no wrapper for an invalid URL")?;
        assert!(error.to_string().contains(option), "{error}");
    }
    #[cfg(feature = "datafusion")]
    sql_refuses_an_invalid_endpoint().await?;
    Ok(())
}

#[cfg(feature = "datafusion")]
async fn sql_refuses_an_invalid_endpoint() -> TestResult {
    let ctx = datafusion::prelude::SessionContext::new();
    arrow_zerobus_sdk_wrapper::sql::register(&ctx);
    let error = ctx
        .sql(&format!(
            "CREATE EXTERNAL TABLE t (id BIGINT) STORED AS ZEROBUS LOCATION '{TABLE}' \
             OPTIONS ('endpoint' 'http://127.0.0.1:notaport')"
        ))
        .await
        .err()
        .ok_or("no table for an invalid endpoint")?;
    assert!(
        error.to_string().contains("zerobus_endpoint:")
            && error.to_string().contains("invalid port number"),
        "{error}"
    );
    Ok(())
}

/// The table of the many-schemas test: `id` and the nullable `c0`..`c49`.
fn wide_table(columns: usize) -> SchemaRef {
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    fields.extend((0..columns).map(|i| Field::new(format!("c{i}"), DataType::Int64, true)));
    Arc::new(Schema::new(fields))
}

/// Rows `first..first + rows` with `id` and `c<column>` = `id * 10` only: one schema per
/// column.
fn one_column_batch(column: usize, first: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let values: Vec<i64> = ids.iter().map(|id| id * 10).collect();
    RecordBatch::try_from_iter(vec![
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        (
            format!("c{column}").as_str(),
            Arc::new(Int64Array::from(values)) as ArrayRef,
        ),
    ])
    .expect("batch")
}

/// TCP connections the server at `port` holds open (server side, ESTABLISHED), from
/// `/proc/net/tcp`; `None` where that file does not exist.
fn open_connections(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
            })
            .count(),
    )
}

/// [`open_connections`] once at most `max` (a closed stream's connection goes away a moment
/// after the close), or after 5 seconds.
async fn settled_connections(port: u16, max: usize) -> Option<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let open = open_connections(port)?;
        if open <= max || tokio::time::Instant::now() > deadline {
            return Some(open);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Before: every distinct schema kept its stream open for the life of the wrapper (50
/// schemas, 50 open streams). Now at most `max_open_schemas` stay open; a schema whose
/// stream was closed opens a new one when it comes back; every row lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_schemas_keep_few_streams_open_and_every_row_lands() -> TestResult {
    const SCHEMAS: usize = 50;
    const ROWS: usize = 10;
    const OPEN: usize = 4;
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(TABLE, wide_table(SCHEMAS))
        .start()
        .await?;
    let config = WrapperConfiguration::new(server.endpoint(), TABLE)
        .with_retry_config(4, 5, 100)
        .with_max_open_schemas(OPEN);
    let wrapper = ZerobusWrapper::new(config).await?;
    let port = server.local_addr().port();
    let mut sent = Vec::new();
    let mut send = |column: usize| {
        let first = (sent.len() * ROWS) as i64;
        sent.push((column, first));
        one_column_batch(column, first, ROWS)
    };
    let mut most_open = 0;
    for column in 0..SCHEMAS {
        let result = wrapper.send_batch(send(column)).await?;
        assert!(result.success && result.failed_count == 0, "{result:?}");
        // Closing an idle schema's streams runs in the background; flush waits for it.
        wrapper.flush().await?;
        if let Some(open) = settled_connections(port, OPEN).await {
            most_open = most_open.max(open);
        }
    }
    assert_eq!(server.counters(TABLE).streams_opened, SCHEMAS as u64);
    if open_connections(port).is_some() {
        assert!(
            (1..=OPEN).contains(&most_open),
            "{most_open} connections open at once"
        );
    }
    // The most recent schemas still have their streams...
    for column in SCHEMAS - OPEN..SCHEMAS {
        wrapper.send_batch(send(column)).await?;
    }
    assert_eq!(server.counters(TABLE).streams_opened, SCHEMAS as u64);
    // ...the first one's was closed: it opens a new one.
    wrapper.send_batch(send(0)).await?;
    assert_eq!(server.counters(TABLE).streams_opened, SCHEMAS as u64 + 1);
    wrapper.shutdown().await?;

    let landed = server.read_table(TABLE).await?;
    assert_eq!(landed.num_rows(), sent.len() * ROWS);
    let ids = landed.column(0).as_primitive::<Int64Type>();
    let landed_ids: BTreeSet<i64> = ids.values().iter().copied().collect();
    assert_eq!(landed_ids.len(), landed.num_rows(), "no row landed twice");
    for row in 0..landed.num_rows() {
        let id = ids.value(row);
        let (column, _) = sent[(id as usize) / ROWS];
        for c in 0..SCHEMAS {
            let value = landed.column(1 + c).as_primitive::<Int64Type>();
            if c == column {
                assert_eq!(value.value(row), id * 10, "id {id}, c{c}");
            } else {
                assert!(value.is_null(row), "id {id}: c{c} must be null");
            }
        }
    }
    server.shutdown().await;
    Ok(())
}

/// Before: the 19,000th field of the struct got protobuf field number 19000, which
/// protobuf reserves, so the stream's descriptor was refused and no row was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_struct_of_19001_fields_lands() -> TestResult {
    const FIELDS: usize = 19_001;
    const ROWS: i32 = 3;
    let fields: Fields = (0..FIELDS)
        .map(|i| Field::new(format!("f{i}"), DataType::Int32, true))
        .collect();
    let columns: Vec<ArrayRef> = (0..FIELDS)
        .map(|i| {
            Arc::new(Int32Array::from_iter_values(
                (0..ROWS).map(|row| i as i32 * 10 + row),
            )) as ArrayRef
        })
        .collect();
    let wide = StructArray::new(fields, columns, None);
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![0i64, 1, 2])) as ArrayRef,
        ),
        ("wide", Arc::new(wide) as ArrayRef),
    ])?;
    let server = LocalZerobus::builder()
        .landing(Landing::Memory)
        .start()
        .await?;
    let wrapper = ZerobusWrapper::new(WrapperConfiguration::new(server.endpoint(), TABLE)).await?;
    let result = wrapper.send_batch(batch).await?;
    assert!(result.success && result.failed_count == 0, "{result:?}");
    wrapper.shutdown().await?;

    let landed = server.read_table(TABLE).await?;
    assert_eq!(landed.num_rows(), ROWS as usize);
    let wide = landed.column(1).as_struct();
    for i in [0, 18_998, 18_999, 19_000] {
        let field = wide
            .column_by_name(&format!("f{i}"))
            .ok_or("field missing")?
            .as_primitive::<Int32Type>();
        let expected: Vec<i32> = (0..ROWS).map(|row| i * 10 + row).collect();
        assert_eq!(field.values().to_vec(), expected, "f{i}");
    }
    server.shutdown().await;
    Ok(())
}
