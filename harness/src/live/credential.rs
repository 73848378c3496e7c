//! A deadline for a kubeconfig's exec credential plugin (`aws eks get-token`,
//! `gke-gcloud-auth-plugin`, …). kube runs the plugin itself, blocking and with no
//! timeout (kube-client src/client/auth/mod.rs, `auth_exec`), so a plugin that waits
//! for a browser or a dead network would hang the run. Each exec entry of the
//! kubeconfig the harness loads is rewritten to run this same program as a guard:
//! `<self> __egress-credential-guard SECS -- COMMAND ARGS…`. The guard starts the
//! plugin in a process group of its own, hands its output to kube, and kills the
//! whole group when the deadline passes or when the guard is interrupted.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::config::Kubeconfig;

/// The first argument that makes a harness binary act as the guard.
pub const GUARD_ARG: &str = "__egress-credential-guard";

/// Rewrites every exec plugin in `kc` to run under the guard, `deadline` long.
pub fn guard_plugins(kc: &mut Kubeconfig, deadline: Duration) -> Result<(), String> {
    let me = std::env::current_exe()
        .map_err(|e| format!("the harness's own path, to guard the credential plugin: {e}"))?;
    for named in &mut kc.auth_infos {
        let Some(exec) = named.auth_info.as_mut().and_then(|a| a.exec.as_mut()) else {
            continue;
        };
        let Some(command) = exec.command.take() else {
            continue;
        };
        let mut args = vec![
            GUARD_ARG.to_owned(),
            deadline.as_secs().max(1).to_string(),
            "--".to_owned(),
            command,
        ];
        args.extend(exec.args.take().unwrap_or_default());
        exec.command = Some(me.display().to_string());
        exec.args = Some(args);
    }
    Ok(())
}

/// When this process was started as the guard, runs it and returns its exit code;
/// `None` otherwise. Called first thing by every harness binary's `main`.
pub fn guard_if_asked() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(GUARD_ARG) {
        return None;
    }
    Some(match guard(&args[2..]) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("egress: credential plugin: {e}");
            ExitCode::FAILURE
        }
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// `SECS -- COMMAND ARGS…`: the plugin's stdout is copied to ours once it exits in time.
fn guard(args: &[String]) -> Result<ExitCode, String> {
    let (Some(secs), Some("--"), Some(command)) = (
        args.first().and_then(|s| s.parse::<u64>().ok()),
        args.get(1).map(String::as_str),
        args.get(2),
    ) else {
        return Err(format!("usage: {GUARD_ARG} SECS -- COMMAND [ARGS…]"));
    };
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    // A plugin that may prompt (MFA, a login) needs the terminal: a process group of
    // its own would be a background job, stopped by SIGTTIN on its first read. Then
    // only the plugin itself is killed; otherwise its whole group is.
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut plugin = Command::new(command);
    plugin
        .args(&args[3..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !interactive {
        plugin.process_group(0);
    }
    let mut child = plugin.spawn().map_err(|e| format!("{command}: {e}"))?;
    let target = if interactive {
        child.id() as libc::pid_t
    } else {
        -(child.id() as libc::pid_t)
    };
    let kill = || {
        // SAFETY: signals the plugin (or the group it leads), which this guard started.
        unsafe {
            libc::kill(target, libc::SIGKILL);
        }
    };
    // The plugin's answer is small; read it on a thread so a full pipe cannot stall it.
    let mut stdout = child.stdout.take();
    let (sender, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        let _ = sender.send(out);
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        let why = if INTERRUPTED.load(Ordering::SeqCst) {
            Some("interrupted".to_owned())
        } else if Instant::now() >= deadline {
            Some(format!("no answer within {secs}s"))
        } else {
            None
        };
        if let Some(why) = why {
            kill();
            let _ = child.wait();
            return Err(format!(
                "{}: {why}; its process group was killed (a plugin waiting for a browser login or an unreachable identity provider?)",
                PathBuf::from(command).display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the plugin left running (holding its stdout open) goes with it.
    if !interactive {
        kill();
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let out = answer
        .recv_timeout(left.max(Duration::from_millis(100)))
        .map_err(|_| format!("{command}: exited, but something it started kept its output open"))?;
    std::io::Write::write_all(&mut std::io::stdout(), &out).map_err(|e| e.to_string())?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exec_plugin_runs_under_the_guard_with_its_own_arguments() {
        let mut kc: Kubeconfig = kubeconfig_from_json(
            r#"{"apiVersion": "v1", "kind": "Config", "users": [
                {"name": "eks", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws", "args": ["eks", "get-token", "--cluster-name", "c"]}}},
                {"name": "kind", "user": {"token": "t"}}]}"#,
        );
        guard_plugins(&mut kc, Duration::from_secs(30)).unwrap();
        let exec = kc.auth_infos[0]
            .auth_info
            .as_ref()
            .and_then(|a| a.exec.as_ref())
            .unwrap();
        assert_eq!(
            exec.command.as_deref(),
            Some(
                std::env::current_exe()
                    .unwrap()
                    .display()
                    .to_string()
                    .as_str()
            )
        );
        assert_eq!(
            exec.args.as_deref().unwrap(),
            [
                GUARD_ARG,
                "30",
                "--",
                "aws",
                "eks",
                "get-token",
                "--cluster-name",
                "c"
            ]
        );
        assert!(kc.auth_infos[1].auth_info.as_ref().unwrap().exec.is_none());
    }

    fn kubeconfig_from_json(text: &str) -> Kubeconfig {
        serde_json::from_str(text).unwrap()
    }
}
