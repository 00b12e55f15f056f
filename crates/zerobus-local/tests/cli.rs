//! The `zerobus-local` binary: its banner, OAuth streams against it, its log, Ctrl-C.

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

/// A running `zerobus-local`: its process, the banner it printed, and the rest of stdout.
#[cfg(unix)]
struct Cli {
    child: tokio::process::Child,
    banner: Vec<String>,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

#[cfg(unix)]
impl Cli {
    /// Starts the binary with `args` (ports 0) and `secret` in `ZEROBUS_LOCAL_CLIENT_SECRET`
    /// (none: unset); reads the banner up to "Ctrl-C". Its log (stderr) is piped.
    async fn start(
        args: &[&str],
        secret: Option<&str>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        use tokio::io::{AsyncBufReadExt, BufReader};

        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_zerobus-local"));
        command
            .args(["--port", "0", "--http-port", "0"])
            .args(args)
            .env_remove("ZEROBUS_LOCAL_CLIENT_SECRET")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(secret) = secret {
            command.env("ZEROBUS_LOCAL_CLIENT_SECRET", secret);
        }
        let mut child = command.spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut banner = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = stdout.next_line().await? {
                let done = line.contains("Ctrl-C");
                banner.push(line);
                if done {
                    break;
                }
            }
            Ok::<_, std::io::Error>(())
        })
        .await??;
        Ok(Self {
            child,
            banner,
            stdout,
        })
    }

    fn value(&self, label: &str) -> String {
        banner_value(&self.banner, label).to_string()
    }

    /// An SDK pointed at the printed endpoints.
    fn sdk(&self) -> Result<ZerobusSdk, Box<dyn std::error::Error>> {
        Ok(ZerobusSdk::builder()
            .endpoint(self.value("endpoint:"))
            .unity_catalog_url(self.value("unity_catalog_url:"))
            .no_tls()
            .connector_factory(Arc::new(|_: &str| None))
            .build()?)
    }

    /// Ctrl-C: waits for a clean exit; returns the rest of stdout and the whole log.
    async fn interrupt(mut self) -> Result<(Vec<String>, String), Box<dyn std::error::Error>> {
        use tokio::io::AsyncReadExt;

        let pid = self.child.id().expect("running").to_string();
        assert!(std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()?
            .success());
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        let mut log = String::new();
        let status = tokio::time::timeout(Duration::from_secs(30), async {
            stderr.read_to_string(&mut log).await?;
            self.child.wait().await
        })
        .await??;
        assert!(status.success(), "{status}\n{log}");
        let mut rest = Vec::new();
        while let Some(line) = self.stdout.next_line().await? {
            rest.push(line);
        }
        Ok((rest, log))
    }
}

#[cfg(unix)]
/// Sends three records on an OAuth stream with the given credentials and waits for their
/// acknowledgement.
async fn send_three(sdk: &ZerobusSdk, client_id: &str, secret: &str) -> TestResult {
    let mut stream = sdk
        .stream_builder()
        .table(TABLE)
        .oauth(client_id, secret)
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
    Ok(())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_serves_oauth_streams_until_interrupted() -> TestResult {
    let cli = Cli::start(&["--landing", "memory", "--token-ttl", "60"], None).await?;
    let client_id = cli.value("client_id:");
    // A secret the server made up is printed: nobody else knows it.
    let secret = cli.value("client_secret:");
    assert!(secret.starts_with("zbls_"), "{secret}");
    assert!(cli.value("auth:").starts_with("oauth"));

    let sdk = cli.sdk()?;
    send_three(&sdk, &client_id, &secret).await?;
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
    let (rest, _) = cli.interrupt().await?;
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    Ok(())
}

/// A secret given in the environment is used but never printed, and the server logs its
/// streams and commits (at info, without `RUST_LOG`) to stderr.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_secret_is_not_printed_and_streams_are_logged() -> TestResult {
    const SECRET: &str = "given-secret-4f1c9a";
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_str().expect("UTF-8 path");
    let cli = Cli::start(
        &["--data-dir", data_dir, "--stream-lifetime", "60"],
        Some(SECRET),
    )
    .await?;
    let banner = cli.banner.join("\n");
    assert!(!banner.contains(SECRET), "the secret is printed:\n{banner}");
    assert!(cli.value("client_secret:").contains("as given"), "{banner}");

    send_three(&cli.sdk()?, &cli.value("client_id:"), SECRET).await?;
    let (rest, log) = cli.interrupt().await?;
    assert!(!rest.join("\n").contains(SECRET));
    assert!(!log.contains(SECRET), "the secret is logged:\n{log}");
    for expected in [
        "local Zerobus server started",
        "stream opened",
        "Delta commit",
        "stream closed",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
    assert!(log.contains(TABLE), "{log}");
    Ok(())
}

/// The resident set size of process `pid`, in bytes, from `/proc/<pid>/status`.
#[cfg(target_os = "linux")]
fn rss_bytes(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .ok_or("no VmRSS line")?
        .trim()
        .parse::<u64>()?;
    Ok(kib << 10)
}

/// Sends `ids` as JSON records in requests of 10,000 on one no-auth stream and waits for
/// their acknowledgement.
#[cfg(target_os = "linux")]
async fn send_distinct(sdk: &ZerobusSdk, ids: std::ops::Range<i64>) -> TestResult {
    let mut stream = sdk
        .stream_builder()
        .table(TABLE)
        .no_auth()
        .json()
        .build()
        .await?;
    let mut start = ids.start;
    while start < ids.end {
        let end = (start + 10_000).min(ids.end);
        stream
            .ingest_records_offset(id_name_records(start..end))
            .await?;
        start = end;
    }
    stream.flush().await?;
    stream.close().await?;
    Ok(())
}

/// The server's memory, read from its own process: once the duplicate window is full,
/// 400,000 more distinct rows (Delta landing) and 400 token requests leave its resident
/// set where it was (+4 MB measured). With an unbounded duplicate set (a window of 10^8)
/// the same rows grew it by 24 MB; each kept token request once cost ~100 KB.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_resident_memory_stays_bounded_over_rows_and_tokens() -> TestResult {
    use futures::{StreamExt, TryStreamExt};

    const MIB: u64 = 1 << 20;
    let cli = Cli::start(&["--no-auth", "--duplicate-window", "20000"], None).await?;
    let pid = cli.child.id().ok_or("the server exited")?;
    let sdk = cli.sdk()?;

    // Warm up: the window fills, the Delta table and its writer exist.
    send_distinct(&sdk, 0..100_000).await?;
    let warm = rss_bytes(pid)?;
    send_distinct(&sdk, 100_000..500_000).await?;
    let after_rows = rss_bytes(pid)?;
    assert!(
        after_rows < warm + 12 * MIB,
        "RSS grew from {} to {} MiB over 400,000 distinct rows",
        warm / MIB,
        after_rows / MIB
    );

    // Token requests (anyone may mint tokens without auth): nothing is kept for them.
    let url = cli.value("unity_catalog_url:");
    let requests = futures::stream::iter(0..400).map(|_| {
        databricks_zerobus_ingest_sdk::DefaultTokenFactory::get_token(
            &url, TABLE, "client", "secret", "127",
        )
    });
    let tokens: Vec<_> = requests.buffer_unordered(8).try_collect().await?;
    assert_eq!(tokens.len(), 400);
    let after_tokens = rss_bytes(pid)?;
    assert!(
        after_tokens < after_rows + 12 * MIB,
        "RSS grew from {} to {} MiB over 400 token requests",
        after_rows / MIB,
        after_tokens / MIB
    );
    cli.interrupt().await?;
    Ok(())
}
