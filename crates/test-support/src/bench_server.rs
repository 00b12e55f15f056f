//! The local server a bench talks to:
//!
//! - in the bench's own process and runtime (the default of `e2e`);
//! - in a child process (landing `none`, no auth, a free port), so the bench process's own
//!   CPU and memory are the client's: the bench's own executable started again in server
//!   mode (see [`serve_if_child`], which a bench's `main` calls first), so no other binary
//!   needs to be built;
//! - a server already running elsewhere (`ZEROBUS_BENCH_ENDPOINT`), e.g. `zerobus-local
//!   --landing none --no-auth`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use zerobus_local::{Auth, Landing, LocalZerobus, LocalZerobusBuilder};

/// Set on a child process started by [`BenchServer::child`]: it serves instead of running
/// the bench.
const CHILD_SERVER_VAR: &str = "ZEROBUS_BENCH_CHILD_SERVER";

/// In a process started by [`BenchServer::child`], serves the local server (landing
/// `none`, no auth, a free port) until killed, printing `endpoint: <url>`; elsewhere
/// returns at once. Call it first in a bench's `main`.
pub fn serve_if_child() {
    if std::env::var_os(CHILD_SERVER_VAR).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let server = LocalZerobus::builder()
            .landing(Landing::None)
            .auth(Auth::Disabled)
            .start()
            .await
            .expect("local server");
        println!("endpoint: {}", server.endpoint());
        std::future::pending::<()>().await;
    });
}

/// The server a bench's contenders talk to; a child process is killed on drop.
pub enum BenchServer {
    /// Kept alive for the run (taken by [`BenchServer::shutdown`]).
    InProcess(Option<Box<LocalZerobus>>),
    /// The bench's own executable in server mode, started by the bench.
    Child(Child),
    /// Started by someone else (`ZEROBUS_BENCH_ENDPOINT`).
    External,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let BenchServer::Child(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl BenchServer {
    /// The server chosen by the environment: `ZEROBUS_BENCH_ENDPOINT` (external),
    /// `ZEROBUS_BENCH_SERVER=process` (child process), else `in_process` started here.
    /// Returns the server, its endpoint and where it runs (for the bench's report).
    pub async fn from_env(in_process: LocalZerobusBuilder) -> (Self, String, &'static str) {
        if let Ok(endpoint) = std::env::var("ZEROBUS_BENCH_ENDPOINT") {
            return (BenchServer::External, endpoint, "external process");
        }
        if std::env::var("ZEROBUS_BENCH_SERVER").as_deref() == Ok("process") {
            let (server, endpoint) = Self::child();
            return (server, endpoint, "child process");
        }
        let server = in_process.start().await.expect("local server");
        let endpoint = server.endpoint();
        (
            BenchServer::InProcess(Some(Box::new(server))),
            endpoint,
            "in process",
        )
    }

    /// Starts this executable again as a server (see [`serve_if_child`]) and reads its
    /// endpoint from what it prints.
    pub fn child() -> (Self, String) {
        let exe = std::env::current_exe().expect("the bench's own executable");
        let mut child = Command::new(exe)
            .env(CHILD_SERVER_VAR, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.trim()
                    .strip_prefix("endpoint:")
                    .map(|e| e.trim().to_string())
            })
            .expect("the child server printed its endpoint");
        // Keep reading the banner so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (BenchServer::Child(child), endpoint)
    }

    /// Stops the server: shuts an in-process one down, kills a child process.
    pub async fn shutdown(mut self) {
        if let BenchServer::InProcess(server) = &mut self {
            if let Some(server) = server.take() {
                server.shutdown().await;
            }
        }
    }

    /// The peak RSS of the server's own process, when it is a child of this one.
    pub fn child_peak_rss_mib(&self) -> Option<u64> {
        match self {
            BenchServer::Child(child) => peak_rss_mib(&format!("/proc/{}/status", child.id())),
            _ => None,
        }
    }
}

/// The peak resident set size (Linux `VmHWM`) in a `/proc/.../status` file, in MiB.
pub fn peak_rss_mib(status_file: &str) -> Option<u64> {
    std::fs::read_to_string(status_file)
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb / 1024)
}
