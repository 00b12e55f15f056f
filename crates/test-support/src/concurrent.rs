//! Many tasks sending through clones of one [`ZerobusWrapper`] at once.

use arrow::array::RecordBatch;
use arrow_zerobus_sdk_wrapper::{TransmissionResult, ZerobusWrapper};

/// Spawns `tasks` tokio tasks; task `t` sends `batch(t, n)` for `n` in `0..per_task`, one
/// after the other, and checks every result with `check(&batch, &result)`. Returns every
/// batch sent, in task order. Panics if a send fails as a whole or a task panics.
pub async fn send_concurrently<B, C>(
    wrapper: &ZerobusWrapper,
    tasks: i64,
    per_task: i64,
    batch: B,
    check: C,
) -> Vec<RecordBatch>
where
    B: Fn(i64, i64) -> RecordBatch + Clone + Send + 'static,
    C: Fn(&RecordBatch, &TransmissionResult) + Clone + Send + 'static,
{
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (wrapper, batch, check) = (wrapper.clone(), batch.clone(), check.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for n in 0..per_task {
                    let b = batch(task, n);
                    let result = wrapper.send_batch(b.clone()).await.expect("send");
                    check(&b, &result);
                    sent.push(b);
                }
                sent
            })
        })
        .collect();
    let mut sent = Vec::new();
    for handle in handles {
        sent.extend(handle.await.expect("task"));
    }
    sent
}
