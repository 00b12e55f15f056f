//! The shape both streaming services share: answer at once, work in a task.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Capacity of a stream's response channel (acks waiting for the client to read them).
const RESPONSE_BUFFER: usize = 1024;

/// Sends one stream's responses.
pub(crate) type ResponseSender<T> = mpsc::Sender<Result<T, Status>>;

/// Runs `work` in a task and returns its response stream at once: the client waits for the
/// response headers before it sends anything, so the handler must not await the requests.
/// `work` sends its responses on the sender it is given; its `Err` becomes the final
/// status of the response (`Ok` ends it with OK).
pub(crate) fn respond_in_task<T, F, Fut>(
    what: &'static str,
    work: F,
) -> ReceiverStream<Result<T, Status>>
where
    T: Send + 'static,
    F: FnOnce(ResponseSender<T>) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
    let work = work(tx.clone());
    tokio::spawn(async move {
        if let Err(status) = work.await {
            tracing::debug!(%status, "local Zerobus: {what} failed");
            let _ = tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx)
}
