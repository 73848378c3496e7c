//! Waiting with deadlines: polls until a read holds, retries transient errors. Every
//! deadline comes from the run's one `Timeouts`; both stop when the run is cancelled.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::Backoff;
use crate::seams::InfraError;

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Reads with backoff until `done` holds for what was read, `deadline` passes or the
/// run is cancelled; the last read, and whether it held. A read's error ends the poll.
pub(crate) async fn poll<T, F, Fut>(
    backoff: &Backoff,
    deadline: Duration,
    cancel: &CancellationToken,
    mut read: F,
    done: impl Fn(&T) -> bool,
) -> Result<(T, bool), InfraError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, InfraError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = backoff.initial;
    loop {
        let value = read().await?;
        if done(&value) {
            return Ok((value, true));
        }
        if started.elapsed() + pause > deadline || cancel.is_cancelled() {
            return Ok((value, false));
        }
        tokio::time::sleep(pause).await;
        pause = backoff.next(pause);
    }
}

/// Runs an idempotent call again on transient errors (503s, a watch gone with 410)
/// until it succeeds, fails for good, or `deadline` passes.
pub(crate) async fn retry<T, F, Fut>(
    backoff: &Backoff,
    deadline: Duration,
    cancel: &CancellationToken,
    mut call: F,
) -> Result<T, InfraError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, InfraError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = backoff.initial;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if !e.transient => return Err(e),
            Err(e) if started.elapsed() + pause > deadline => {
                return Err(e.context(&format!(
                    "still failing after {:.0}s of retries",
                    started.elapsed().as_secs_f64()
                )));
            }
            Err(e) => {
                eprintln!(
                    "egress: transient: {e}; again in {:.2}s",
                    pause.as_secs_f64()
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = cancel.cancelled() => return Err(InfraError::new("interrupted")),
                }
                pause = backoff.next(pause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test(start_paused = true)]
    async fn a_poll_ends_when_its_read_holds_or_the_deadline_passes() {
        let backoff = Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(2),
        };
        let cancel = CancellationToken::new();
        let reads = std::sync::atomic::AtomicU32::new(0);
        let read = || std::future::ready(Ok::<_, InfraError>(reads.fetch_add(1, Ordering::SeqCst)));
        let held = poll(&backoff, Duration::from_secs(10), &cancel, read, |n| {
            *n == 3
        })
        .await;
        assert_eq!(held, Ok((3, true)));
        let never = poll(&backoff, Duration::from_secs(1), &cancel, read, |_| false)
            .await
            .unwrap();
        assert!(
            !never.1 && never.0 > 3,
            "the last read comes back: {never:?}"
        );
        let failing = poll(
            &backoff,
            Duration::from_secs(5),
            &cancel,
            || std::future::ready(Err::<u32, _>(InfraError::new("forbidden"))),
            |_| true,
        )
        .await;
        assert_eq!(failing, Err(InfraError::new("forbidden")));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_the_deadline() {
        let backoff = Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(2),
        };
        let cancel = CancellationToken::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got = retry(&backoff, Duration::from_secs(10), &cancel, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(if n < 3 {
                Err(InfraError::transient("503"))
            } else {
                Ok(n)
            })
        })
        .await;
        assert_eq!(got, Ok(3));
        let never = retry(&backoff, Duration::from_secs(5), &cancel, || {
            std::future::ready(Err::<(), _>(InfraError::transient(
                "503 Service Unavailable",
            )))
        })
        .await
        .unwrap_err();
        assert!(never.message.contains("still failing after"), "{never}");
        let fatal = retry(&backoff, Duration::from_secs(5), &cancel, || {
            std::future::ready(Err::<(), _>(InfraError::new("forbidden")))
        })
        .await
        .unwrap_err();
        assert_eq!(fatal.message, "forbidden");
    }
}
