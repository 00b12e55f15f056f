//! A loopback TCP proxy that delays every byte by a fixed one-way latency in each
//! direction, so a bench can put a network's round trip between the client and the local
//! server.
//!
//! Bytes keep their order and bandwidth is not limited: each read is forwarded once its
//! deadline (read time + latency) has passed, while later reads keep arriving, as on a
//! long link. Tokio's timers tick in milliseconds, so a latency is a whole number of
//! milliseconds and a delivery may come up to one tick late.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The proxy's listening task; stops when dropped.
pub struct LatencyProxy {
    endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LatencyProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`
    /// (`http://host:port`), `one_way` late in each direction.
    pub async fn start(upstream: &str, one_way: Duration) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let server = TcpStream::connect(&upstream).await.expect("upstream");
                    for stream in [&client, &server] {
                        stream.set_nodelay(true).expect("nodelay");
                    }
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, one_way),
                        pipe(server_read, client_write, one_way),
                    );
                });
            }
        });
        Self { endpoint, task }
    }

    /// Where clients connect (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

/// Forwards `from` to `to`, each read `delay` after it arrived; ends at either side's end.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
