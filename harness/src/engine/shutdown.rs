//! The one shutdown path: SIGINT or SIGTERM cancels a token. A run with an engine
//! winds down through it (cleanup, report marked interrupted); a run without one
//! calls `without_engine` and exits 130 as a shell would. A second signal during the
//! cleanup exits at once, naming what the run holds (`held`) and how to remove it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// The process's shutdown state, shared by whoever needs to stop.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    engine_running: Arc<AtomicBool>,
    /// Cancelled when the engine has returned: a later signal is not a second one.
    finished: CancellationToken,
}

impl Shutdown {
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn interrupted(&self) -> bool {
        self.token.is_cancelled()
    }

    /// From now on a signal only cancels: the engine cleans up and returns.
    pub fn engine_started(&self) {
        self.engine_running.store(true, Ordering::SeqCst);
    }

    /// The engine has returned; its listener stops (a later signal is not for it).
    pub fn engine_finished(&self) {
        self.engine_running.store(false, Ordering::SeqCst);
        self.finished.cancel();
    }

    /// Listens for SIGINT and SIGTERM on a thread of its own. On the first, the
    /// token is cancelled; if no engine runs, `without_engine` is called and the
    /// process exits 130.
    pub fn listen(&self, without_engine: impl FnOnce() + Send + 'static) {
        let token = self.token.clone();
        let engine_running = Arc::clone(&self.engine_running);
        let finished = self.finished.clone();
        let spawned = std::thread::Builder::new()
            .name("egress-signals".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                // One pair of streams for the listener's life: a stream made after a
                // signal would miss one that came before it.
                let Some(mut signals) = runtime.block_on(async { Signals::new() }) else {
                    return;
                };
                // An engine that has finished is not interrupted by a later signal:
                // that one is for whatever runs next (a repro's next version).
                let signalled = runtime.block_on(async {
                    tokio::select! {
                        signalled = signals.next() => signalled,
                        () = finished.cancelled() => false,
                    }
                });
                if !signalled {
                    return;
                }
                eprintln!(
                    "egress: interrupted; stopping, cleaning up what this run created (interrupt again to leave at once)"
                );
                token.cancel();
                if !engine_running.load(Ordering::SeqCst) {
                    without_engine();
                    std::process::exit(130);
                }
                let again = runtime.block_on(async {
                    tokio::select! {
                        signalled = signals.next() => signalled,
                        () = finished.cancelled() => false,
                    }
                });
                if again {
                    eprintln!("{}", leaving_now(&held()));
                    std::process::exit(130);
                }
            });
        if let Err(e) = spawned {
            eprintln!("egress: no signal handler ({e}); an interrupted run cleans up nothing");
        }
    }
}

/// What this run made and has not removed yet: kind clusters, the upstream container.
static HELD: Mutex<BTreeSet<Held>> = Mutex::new(BTreeSet::new());

/// Something of this run's that cleanup would remove.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Held {
    Cluster(String),
    Container(String),
}

/// The run now holds `what` (made, not yet removed).
pub fn hold(what: Held) {
    HELD.lock().unwrap_or_else(|e| e.into_inner()).insert(what);
}

/// The run no longer holds `what`.
pub fn release(what: &Held) {
    HELD.lock().unwrap_or_else(|e| e.into_inner()).remove(what);
}

/// Everything held now.
pub fn held() -> Vec<Held> {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// The last words of a run left at once on a second interrupt.
pub fn leaving_now(held: &[Held]) -> String {
    if held.is_empty() {
        return "egress: interrupted again; leaving at once (nothing of this run's is left to remove)"
            .into();
    }
    let names: Vec<String> = held
        .iter()
        .map(|h| match h {
            Held::Cluster(name) => format!("kind cluster {name}"),
            Held::Container(name) => format!("container {name}"),
        })
        .collect();
    format!(
        "egress: interrupted again; leaving at once. Left behind: {}. Remove them with `egress prune` (this run's process is gone, so prune takes them)",
        names.join(", ")
    )
}

/// SIGINT and SIGTERM, as one stream.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Inside a runtime; `None` when the handlers cannot be installed.
    fn new() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Self {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    /// The next SIGINT or SIGTERM; `false` if the streams ended.
    async fn next(&mut self) -> bool {
        tokio::select! {
            got = self.int.recv() => got.is_some(),
            got = self.term.recv() => got.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_interrupt_names_what_is_left_and_the_prune_command() {
        let said = leaving_now(&[
            Held::Cluster("egc-20261203t1-1".into()),
            Held::Container("egc-upstream-20261203T1".into()),
        ]);
        assert!(said.contains("kind cluster egc-20261203t1-1"), "{said}");
        assert!(said.contains("container egc-upstream-20261203T1"), "{said}");
        assert!(said.contains("egress prune"), "{said}");
        assert!(leaving_now(&[]).contains("nothing"));
        hold(Held::Container("egc-test-held".into()));
        assert!(held().contains(&Held::Container("egc-test-held".into())));
        release(&Held::Container("egc-test-held".into()));
        assert!(!held().contains(&Held::Container("egc-test-held".into())));
    }
}
