//! Convergence: a request is sent again and again, and all its expectations judged
//! together each time, until they hold on [`CONSISTENT_PASSES`] consecutive attempts or
//! the deadline passes. Istio pushes configuration asynchronously, so one green
//! attempt right after an apply proves little, and one red attempt proves less.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::Backoff;
pub use crate::model::CONSISTENT_PASSES;

/// One attempt as the loop sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt<T> {
    /// Judged: whether every expectation held, and what was observed.
    Judged { passed: bool, observed: T },
    /// The result was lost (exec cut off, no write-out): proves nothing, not judged.
    Inconclusive { why: String },
    /// Trouble another attempt cannot change (nothing could answer the request): not
    /// judged, and the loop stops at once instead of waiting out its deadline.
    Hopeless { why: String },
}

impl<T> Attempt<T> {
    /// Why an attempt that was not judged proves nothing.
    pub fn unjudged_why(&self) -> Option<&str> {
        match self {
            Attempt::Judged { .. } => None,
            Attempt::Inconclusive { why } | Attempt::Hopeless { why } => Some(why),
        }
    }
}

/// One attempt as the result keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tried<T> {
    /// Since the first attempt started.
    pub at: Duration,
    pub attempt: Attempt<T>,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Converged<T> {
    pub attempts: Vec<Tried<T>>,
    /// When the final run of consecutive passes began, if it reached the goal.
    pub consistent_after: Option<Duration>,
    pub elapsed: Duration,
}

impl<T> Converged<T> {
    pub fn consistent(&self) -> bool {
        self.consistent_after.is_some()
    }

    /// The last judged observation.
    pub fn last_observed(&self) -> Option<&T> {
        self.attempts.iter().rev().find_map(|t| match &t.attempt {
            Attempt::Judged { observed, .. } => Some(observed),
            Attempt::Inconclusive { .. } | Attempt::Hopeless { .. } => None,
        })
    }

    /// The first failing observation: what a flaky pass is reported with.
    pub fn first_failure(&self) -> Option<&T> {
        self.attempts.iter().find_map(|t| match &t.attempt {
            Attempt::Judged {
                passed: false,
                observed,
            } => Some(observed),
            _ => None,
        })
    }

    /// Judged failures after the first judged pass: the configuration had worked and
    /// then did not. Failures before any pass are Istio still converging.
    pub fn relapses(&self) -> Vec<&T> {
        self.attempts
            .iter()
            .filter_map(|t| match &t.attempt {
                Attempt::Judged { passed, observed } => Some((*passed, observed)),
                Attempt::Inconclusive { .. } | Attempt::Hopeless { .. } => None,
            })
            .skip_while(|(passed, _)| !passed)
            .filter(|(passed, _)| !passed)
            .map(|(_, observed)| observed)
            .collect()
    }

    /// Attempts that were not judged.
    pub fn inconclusive(&self) -> usize {
        self.attempts
            .iter()
            .filter(|t| t.attempt.unjudged_why().is_some())
            .count()
    }
}

/// Runs `attempt` until `goal` consecutive judged passes or `deadline` from now.
/// Inconclusive attempts neither count nor break a run of passes.
/// The pause between attempts doubles along `backoff`, so fast convergence is seen
/// quickly without hammering a slow one.
/// A cancelled run stops after the attempt in flight.
pub async fn converge<T, F, Fut>(
    deadline: Duration,
    goal: u32,
    backoff: &Backoff,
    cancel: &tokio_util::sync::CancellationToken,
    mut attempt: F,
) -> Converged<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let started = Instant::now();
    let mut attempts = Vec::new();
    let mut streak = 0u32;
    let mut streak_began = Duration::ZERO;
    let mut number = 0u32;
    let mut pause = backoff.initial;
    loop {
        let at = started.elapsed();
        number += 1;
        let result = attempt(number).await;
        match &result {
            Attempt::Judged { passed: true, .. } => {
                if streak == 0 {
                    streak_began = at;
                }
                streak += 1;
            }
            Attempt::Judged { passed: false, .. } => streak = 0,
            Attempt::Inconclusive { .. } | Attempt::Hopeless { .. } => {}
        }
        let hopeless = matches!(result, Attempt::Hopeless { .. });
        attempts.push(Tried {
            at,
            attempt: result,
        });
        if hopeless {
            return Converged {
                attempts,
                consistent_after: None,
                elapsed: started.elapsed(),
            };
        }
        if streak >= goal {
            return Converged {
                attempts,
                consistent_after: Some(streak_began),
                elapsed: started.elapsed(),
            };
        }
        if number > 1 {
            pause = backoff.next(pause);
        }
        if started.elapsed() + pause >= deadline || cancel.is_cancelled() {
            return Converged {
                attempts,
                consistent_after: None,
                elapsed: started.elapsed(),
            };
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = cancel.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio_util::sync::CancellationToken;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(250),
        max: Duration::from_secs(2),
    };

    fn script(outcomes: &'static str) -> impl FnMut(u32) -> std::future::Ready<Attempt<u32>> {
        move |n| {
            let c = outcomes
                .as_bytes()
                .get(n as usize - 1)
                .copied()
                .unwrap_or(b'.');
            std::future::ready(match c {
                b'P' => Attempt::Judged {
                    passed: true,
                    observed: n,
                },
                b'?' => Attempt::Inconclusive {
                    why: "exec lost".into(),
                },
                b'X' => Attempt::Hopeless {
                    why: "no answer".into(),
                },
                _ => Attempt::Judged {
                    passed: false,
                    observed: n,
                },
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hopeless_attempt_ends_the_loop_at_once() {
        let clock = Instant::now();
        let r = converge(
            Duration::from_secs(60),
            3,
            &B,
            &CancellationToken::new(),
            script("?XPPP"),
        )
        .await;
        assert_eq!(r.attempts.len(), 2);
        assert!(!r.consistent());
        assert_eq!(r.inconclusive(), 2);
        assert_eq!(r.attempts[1].attempt.unjudged_why(), Some("no answer"));
        // One pause after the first attempt, none after the hopeless one.
        assert_eq!(clock.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn three_consecutive_passes_make_it_consistent() {
        let r = converge(
            Duration::from_secs(60),
            3,
            &B,
            &CancellationToken::new(),
            script("FFPFPPP"),
        )
        .await;
        assert!(r.consistent());
        assert_eq!(r.attempts.len(), 7);
        assert_eq!(r.first_failure(), Some(&1));
        assert_eq!(r.last_observed(), Some(&7));
        // The streak began at the fifth attempt, after the pauses 250+500+1000+2000 ms.
        assert_eq!(r.consistent_after, Some(Duration::from_millis(3750)));
        assert_eq!(
            r.relapses(),
            vec![&4],
            "the failure after a pass, not the warm-up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_before_the_first_pass_are_not_relapses() {
        let r = converge(
            Duration::from_secs(60),
            3,
            &B,
            &CancellationToken::new(),
            script("FF?FPPP"),
        )
        .await;
        assert!(r.consistent());
        assert!(r.relapses().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn inconclusive_attempts_are_never_judged() {
        let r = converge(
            Duration::from_secs(60),
            3,
            &B,
            &CancellationToken::new(),
            script("P?P?P"),
        )
        .await;
        assert!(r.consistent());
        assert_eq!(r.inconclusive(), 2);
        assert_eq!(r.first_failure(), None);
        let r = converge(
            Duration::from_secs(5),
            3,
            &B,
            &CancellationToken::new(),
            script("??????????????"),
        )
        .await;
        assert!(!r.consistent());
        assert_eq!(
            r.last_observed(),
            None,
            "nothing judged, nothing to report as observed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_persists_ends_at_the_deadline() {
        let r = converge(
            Duration::from_secs(10),
            3,
            &B,
            &CancellationToken::new(),
            script("PPFPPFPPFPPFPPFPPF"),
        )
        .await;
        assert!(!r.consistent(), "never three in a row");
        assert!(r.elapsed <= Duration::from_secs(10), "{:?}", r.elapsed);
        assert!(r.attempts.len() >= 5);
    }
}
