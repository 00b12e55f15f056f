//! The `zerobus-local` binary: its banner, OAuth streams against it, Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use databricks_zerobus_ingest_sdk::ZerobusSdk;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLE: &str = "cat.sch.cli_events";

/// `{"id": <i64>, "name": "n-<id>"}` records.
fn id_name_records(ids: std::ops::Range<i64>) -> Vec<String> {
    ids.map(|id| format!(r#"{{"id":{id},"name":"n-{id}"}}"#))
        .collect()
}

/// The value printed after `label` (e.g. `endpoint:`) in the banner of `zerobus-local`.
fn banner_value<'a>(banner: &'a [String], label: &str) -> &'a str {
    banner
        .iter()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in the banner:\n{}", banner.join("\n")))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_serves_oauth_streams_until_interrupted() -> TestResult {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zerobus-local"))
        .args(["--port", "0", "--http-port", "0", "--landing", "memory"])
        .args(["--token-ttl", "60"])
        .env_remove("ZEROBUS_LOCAL_CLIENT_SECRET")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            let done = line.contains("Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await??;
    let endpoint = banner_value(&banner, "endpoint:").to_string();
    let uc = banner_value(&banner, "unity_catalog_url:").to_string();
    let client_id = banner_value(&banner, "client_id:").to_string();
    let secret = banner_value(&banner, "client_secret:").to_string();
    assert!(banner_value(&banner, "auth:").starts_with("oauth"));

    let sdk = ZerobusSdk::builder()
        .endpoint(&endpoint)
        .unity_catalog_url(&uc)
        .no_tls()
        .connector_factory(Arc::new(|_: &str| None))
        .build()?;
    let mut stream = sdk
        .stream_builder()
        .table(TABLE)
        .oauth(&client_id, &secret)
        .json()
        .build()
        .await?;
    // Acknowledged (flush returns) once the server stored the records.
    stream
        .ingest_records_offset(id_name_records(0..3))
        .await?
        .ok_or("no offset for 3 records")?;
    stream.flush().await?;
    stream.close().await?;
    let wrong = sdk
        .stream_builder()
        .table(TABLE)
        .oauth(&client_id, "wrong")
        .json()
        .build()
        .await
        .err()
        .expect("the printed secret is the only one accepted");
    assert!(wrong.to_string().contains("401"), "{wrong}");

    // Ctrl-C: the server stops cleanly and says so.
    let pid = child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()?
        .success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert!(status.success(), "{status}");
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await? {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    Ok(())
}
