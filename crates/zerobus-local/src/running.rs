//! One running server (gRPC or HTTP) and the connections it accepted.
//!
//! tonic and axum serve each connection in a task of its own, which outlives the server's
//! task: stopping the server stops accepting, but a client keeping a stream open keeps its
//! connection. So every accepted connection is wrapped in a [`Cuttable`] that fails its
//! reads and writes once the server's [`CancellationToken`] is cancelled: the connection's
//! task then ends and drops the socket, and the client sees the connection reset, as after
//! a crash.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// After the connections were cut, how long a server's task may take to notice.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Binds `127.0.0.1:port` for `service` (`"gRPC"` or `"HTTP"`); port 0 picks a free one.
pub(crate) async fn bind(
    service: &'static str,
    port: u16,
) -> Result<(TcpListener, SocketAddr), crate::LocalError> {
    let listen_error = |source| crate::LocalError::Listen {
        service,
        port,
        source,
    };
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    Ok((listener, addr))
}

/// One running server task and the switch that cuts its connections.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    /// Taken when sent.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    cut: CancellationToken,
}

impl Running {
    /// A server's task, the sender of its stop signal, and the token that cuts its
    /// connections.
    pub(crate) fn new(
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
        cut: CancellationToken,
    ) -> Self {
        Self {
            addr,
            stop: Some(stop),
            task,
            cut,
        }
    }

    /// Moves the running server out, leaving a stopped placeholder on the same address.
    pub(crate) fn take(&mut self) -> Running {
        let (stop, _) = oneshot::channel();
        let placeholder = Running::new(
            self.addr,
            stop,
            tokio::spawn(async {}),
            CancellationToken::new(),
        );
        std::mem::replace(self, placeholder)
    }

    /// Stops accepting connections, lets open ones finish for up to `grace`, then cuts
    /// the rest off and waits for the server's task.
    pub(crate) async fn stop(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if !grace.is_zero() && tokio::time::timeout(grace, &mut self.task).await.is_ok() {
            return;
        }
        self.cut.cancel();
        if tokio::time::timeout(CUT_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Running {
    /// A dropped server cuts its connections too (the stop sender is dropped with it).
    fn drop(&mut self) {
        self.cut.cancel();
    }
}

/// `incoming`'s connections, each cut off when `cut` is cancelled.
pub(crate) fn cuttable<S, IO, E>(
    incoming: S,
    cut: CancellationToken,
) -> impl Stream<Item = Result<Cuttable<IO>, E>>
where
    S: Stream<Item = Result<IO, E>>,
{
    incoming.map(move |io| io.map(|io| Cuttable::new(io, cut.clone())))
}

/// A connection that fails once its server's connections are cut.
pub(crate) struct Cuttable<IO> {
    io: IO,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<IO> Cuttable<IO> {
    fn new(io: IO, cut: CancellationToken) -> Self {
        Self {
            io,
            cut: Box::pin(cut.cancelled_owned()),
        }
    }

    /// `Err` once cut (registering the task to be woken when it is, so a connection idle
    /// in a read notices at once).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.cut.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the local Zerobus server stopped",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Cuttable<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Cuttable<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Cuttable<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// The HTTP server's listener: its connections are [`Cuttable`] too.
pub(crate) struct CuttableListener {
    pub(crate) listener: TcpListener,
    pub(crate) cut: CancellationToken,
}

impl axum::serve::Listener for CuttableListener {
    type Io = Cuttable<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (Cuttable::new(io, self.cut.clone()), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}
