//! The wrapper's retry policy: exponential backoff with full jitter (via `backon`).
//!
//! `retry_max_attempts` counts every attempt including the first; the delay before retry
//! `n` (1-based) is drawn uniformly from `[0, min(max_delay, base_delay * 2^(n-1))]`
//! ("full jitter", so that many clients reconnecting at once spread out).

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable};

use crate::config::WrapperConfiguration;

/// Attempts and delays, from the wrapper's retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts including the first (at least 1).
    pub(crate) attempts: u32,
    /// Delay ceiling before the first retry.
    pub(crate) base_delay: Duration,
    /// Largest delay ceiling.
    pub(crate) max_delay: Duration,
}

impl RetryPolicy {
    /// The policy of `config` (`retry_max_attempts`, `retry_base_delay_ms`, `retry_max_delay_ms`).
    pub(crate) fn from_config(config: &WrapperConfiguration) -> Self {
        Self {
            attempts: config.retry_max_attempts.max(1),
            base_delay: Duration::from_millis(config.retry_base_delay_ms),
            max_delay: Duration::from_millis(config.retry_max_delay_ms),
        }
    }

    /// The backoff schedule: `attempts - 1` retries, full jitter.
    pub(crate) fn backoff(&self) -> FullJitterBuilder {
        FullJitterBuilder(
            ExponentialBuilder::new()
                .with_factor(2.0)
                .with_min_delay(self.base_delay)
                .with_max_delay(self.max_delay)
                .with_max_times(self.attempts.saturating_sub(1) as usize),
        )
    }

    /// Runs `operation` until it succeeds, fails with an error `retryable` rejects, or the
    /// attempts run out. Returns the last result and the number of attempts made.
    pub(crate) async fn run<T, E, Fut>(
        &self,
        operation: impl FnMut() -> Fut,
        retryable: impl Fn(&E) -> bool,
        what: &str,
    ) -> (Result<T, E>, u32)
    where
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut retries = 0u32;
        let result = operation
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(|error| retryable(error))
            .notify(|error: &E, delay: Duration| {
                retries += 1;
                tracing::warn!(%error, ?delay, retry = retries, "{what} failed; retrying");
            })
            .await;
        (result, retries + 1)
    }
}

/// Builds [`FullJitter`] schedules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FullJitterBuilder(ExponentialBuilder);

impl BackoffBuilder for FullJitterBuilder {
    type Backoff = FullJitter;

    fn build(self) -> FullJitter {
        FullJitter(self.0.build())
    }
}

/// Exponential delays, each scaled by a uniform random factor in `[0, 1)`.
#[derive(Debug)]
pub(crate) struct FullJitter(ExponentialBackoff);

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.0
            .next()
            .map(|ceiling| ceiling.mul_f64(fastrand::f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(35),
        }
    }

    #[test]
    fn delays_are_jittered_below_the_exponential_ceiling() {
        let ceilings = [10, 20, 35, 35];
        for _ in 0..200 {
            let delays: Vec<_> = policy(5).backoff().build().collect();
            assert_eq!(delays.len(), 4, "attempts - 1 retries");
            for (delay, ceiling) in delays.iter().zip(ceilings) {
                assert!(
                    *delay <= Duration::from_millis(ceiling),
                    "{delay:?} > {ceiling}"
                );
            }
        }
        // Full jitter: some delays fall well below half the ceiling.
        let low = (0..200)
            .filter_map(|_| policy(2).backoff().build().next())
            .filter(|d| *d < Duration::from_millis(5))
            .count();
        assert!(
            low > 20,
            "only {low} of 200 first delays under half the ceiling"
        );
    }

    #[test]
    fn one_attempt_means_no_retry() {
        assert_eq!(policy(1).backoff().build().count(), 0);
    }

    #[tokio::test]
    async fn run_counts_attempts_and_stops_on_permanent_errors() {
        let mut calls = 0;
        let (result, attempts) = policy(4)
            .run(
                || {
                    calls += 1;
                    let outcome = if calls < 3 {
                        Err("transient")
                    } else {
                        Ok(calls)
                    };
                    async move { outcome }
                },
                |_| true,
                "test",
            )
            .await;
        assert_eq!((result, attempts), (Ok(3), 3));

        let (result, attempts) = policy(4)
            .run(|| async { Err::<(), _>("permanent") }, |_| false, "test")
            .await;
        assert_eq!((result, attempts), (Err("permanent"), 1));

        let (result, attempts) = policy(3)
            .run(|| async { Err::<(), _>("transient") }, |_| true, "test")
            .await;
        assert_eq!((result, attempts), (Err("transient"), 3));
    }
}
