//! The one runner for external programs (kind, istioctl, docker): the argv is logged,
//! every run has a timeout, the whole process group is killed when it expires (kind
//! runs docker, whose pipes would otherwise keep us waiting), output is kept for the
//! report, and a long run says what it is doing and for how long.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::seams::{Command, Ran};

/// Process groups of runs in flight, so that Ctrl-C can end them all.
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn running() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every process group started by this runner and still running.
pub fn kill_all() {
    for pgid in running().iter() {
        kill_group(*pgid);
    }
}

#[cfg(unix)]
fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pgid: u32) {}

/// Runs `command` on this thread until it ends or its timeout expires. Only failing to
/// start is an error; a non-zero exit or a timeout is in the result.
pub fn run(command: &Command) -> Result<Ran, String> {
    let Some((program, args)) = command.argv.split_first() else {
        return Err("empty command".into());
    };
    eprintln!("egress: run: {}", command.argv.join(" "));
    let expression = duct::cmd(program, args)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    #[cfg(unix)]
    let expression = expression.before_spawn(|c| {
        use std::os::unix::process::CommandExt;
        c.process_group(0);
        Ok(())
    });
    let started = Instant::now();
    let handle = expression
        .start()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    // With process_group(0) the child's pid is its group's id.
    let groups = handle.pids();
    running().extend(groups.iter().copied());
    // Progress while it runs is the step's heartbeat (engine/ctx.rs), once.
    let deadline = started + command.timeout;
    let mut timed_out = false;
    let output = match handle.wait_deadline(deadline) {
        Ok(Some(output)) => Ok(output.clone()),
        Ok(None) => {
            timed_out = true;
            for pgid in &groups {
                kill_group(*pgid);
            }
            handle.wait().cloned()
        }
        Err(e) => Err(e),
    };
    {
        let mut set = running();
        for pgid in &groups {
            set.remove(pgid);
        }
    }
    let output = output.map_err(|e| format!("waiting for `{program}`: {e}"))?;
    Ok(Ran {
        argv: command.argv.clone(),
        exit_code: if timed_out {
            None
        } else {
            output.status.code()
        },
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
        timed_out,
    })
}

/// [`run`] off the async runtime's worker threads.
pub async fn run_async(command: Command) -> Result<Ran, String> {
    tokio::task::spawn_blocking(move || run(&command))
        .await
        .map_err(|e| format!("command runner stopped: {e}"))?
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Command {
        Command {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            timeout,
            what: "test".into(),
        }
    }

    #[test]
    fn output_and_exit_code_are_kept() {
        let ran = run(&sh(
            "echo out; echo err >&2; exit 3",
            Duration::from_secs(10),
        ))
        .unwrap();
        assert_eq!(
            (ran.exit_code, ran.stdout.as_str(), ran.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        assert!(!ran.success());
        let message = ran.failure();
        assert!(
            message.contains("exited with 3") && message.contains("err"),
            "{message}"
        );
    }

    #[test]
    fn a_timeout_kills_the_whole_process_group() {
        let pidfile =
            std::env::temp_dir().join(format!("egress-grandchild-{}", std::process::id()));
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let ran = run(&sh(&script, Duration::from_millis(500))).unwrap();
        assert!(ran.timed_out, "{ran:?}");
        assert!(ran.elapsed < Duration::from_secs(10), "{:?}", ran.elapsed);
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let _ = std::fs::remove_file(&pidfile);
        // Gone, or a zombie waiting for a reaper: either way no longer running. SIGKILL
        // takes effect when the process is next scheduled, so look until a deadline.
        let running = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .unwrap_or_default()
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut alive = running();
        while alive && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            alive = running();
        }
        assert!(!alive, "the grandchild {pid} outlived the timeout");
        assert!(ran.failure().contains("timed out"));
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let err = run(&Command {
            argv: vec!["/nonexistent/kind".into()],
            timeout: Duration::from_secs(1),
            what: "test".into(),
        })
        .unwrap_err();
        assert!(err.contains("/nonexistent/kind"), "{err}");
    }
}

/// The production [`crate::seams::HostPrograms`]: this runner and the release downloads.
pub struct Runner;

#[async_trait::async_trait]
impl crate::seams::HostPrograms for Runner {
    async fn run(&self, command: Command) -> Result<Ran, crate::seams::InfraError> {
        run_async(command)
            .await
            .map_err(crate::seams::InfraError::new)
    }

    async fn download(
        &self,
        url: &str,
        checksum_url: &str,
        payload: crate::seams::Payload,
        dest: &std::path::Path,
        timeout: Duration,
    ) -> Result<std::path::PathBuf, crate::seams::InfraError> {
        let fetch = super::download::fetch_verified(url, checksum_url, payload, dest);
        match tokio::time::timeout(timeout, fetch).await {
            Ok(result) => result.map_err(crate::seams::InfraError::new),
            Err(_) => Err(crate::seams::InfraError::new(format!(
                "downloading {url} took longer than {}s",
                timeout.as_secs()
            ))),
        }
    }

    async fn fetch_pinned(
        &self,
        url: &str,
        sha256: &str,
        dest: &std::path::Path,
        timeout: Duration,
    ) -> Result<Vec<u8>, crate::seams::InfraError> {
        let fetch = super::download::fetch_pinned(url, sha256, dest);
        match tokio::time::timeout(timeout, fetch).await {
            Ok(result) => result.map_err(crate::seams::InfraError::new),
            Err(_) => Err(crate::seams::InfraError::new(format!(
                "downloading {url} took longer than {}s",
                timeout.as_secs()
            ))),
        }
    }

    fn kill_all(&self) {
        kill_all();
    }
}
