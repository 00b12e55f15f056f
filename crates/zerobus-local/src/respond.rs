//! The shape both streaming services share: answer at once, work in a task.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
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
/// status of the response (`Ok` ends it with OK). A panic in `work` (a bug: client input
/// must never cause one) ends the response with `INTERNAL` naming it, never with OK and no
/// acknowledgement, and is logged; the server goes on serving other calls.
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
        let status = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(Ok(())) => return,
            Ok(Err(status)) => {
                tracing::debug!(%status, "local Zerobus: {what} failed");
                status
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(panic = %message, "local Zerobus: {what} panicked");
                Status::internal(format!("local Zerobus: the {what} panicked: {message}"))
            }
        };
        let _ = tx.send(Err(status)).await;
    });
    ReceiverStream::new(rx)
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    /// A stream task that panics after a response ends the call with INTERNAL, after that
    /// response, instead of OK.
    #[tokio::test]
    async fn a_panicking_task_ends_the_response_with_internal() {
        let mut responses = respond_in_task("test stream", |tx| async move {
            tx.send(Ok(1)).await.unwrap();
            let empty: &[u8] = &[];
            let index = empty.len() + 3;
            Err(Status::unknown(format!("unreachable {}", empty[index])))
        });
        assert_eq!(responses.next().await.unwrap().unwrap(), 1);
        let status = responses.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(
            status.message(),
            "local Zerobus: the test stream panicked: index out of bounds: the len is 0 but \
             the index is 3"
        );
        assert!(responses.next().await.is_none());
    }

    #[tokio::test]
    async fn an_error_ends_the_response_with_its_status() {
        let mut responses = respond_in_task::<u8, _, _>("test stream", |_| async {
            Err(Status::invalid_argument("bad"))
        });
        let status = responses.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(responses.next().await.is_none());
    }
}
