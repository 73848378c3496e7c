//! The one shutdown path: SIGINT or SIGTERM cancels a token. A run with an engine
//! winds down through it (cleanup, report marked interrupted); a run without one
//! calls `without_engine` and exits 130 as a shell would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// The process's shutdown state, shared by whoever needs to stop.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    engine_running: Arc<AtomicBool>,
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

    /// Listens for SIGINT and SIGTERM on a thread of its own. On the first, the
    /// token is cancelled; if no engine runs, `without_engine` is called and the
    /// process exits 130.
    pub fn listen(&self, without_engine: impl FnOnce() + Send + 'static) {
        let token = self.token.clone();
        let engine_running = Arc::clone(&self.engine_running);
        let spawned = std::thread::Builder::new()
            .name("egress-signals".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let signalled = runtime.block_on(wait_for_signal());
                if !signalled {
                    return;
                }
                eprintln!("egress: interrupted; stopping, cleaning up what this run created");
                token.cancel();
                if !engine_running.load(Ordering::SeqCst) {
                    without_engine();
                    std::process::exit(130);
                }
            });
        if let Err(e) = spawned {
            eprintln!("egress: no signal handler ({e}); an interrupted run cleans up nothing");
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return false;
    };
    tokio::select! {
        _ = int.recv() => true,
        _ = term.recv() => true,
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> bool {
    tokio::signal::ctrl_c().await.is_ok()
}
