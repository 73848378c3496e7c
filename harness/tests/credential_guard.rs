//! The guard kube runs a kubeconfig's credential plugin through (live::credential),
//! as the real `egress` binary: the plugin's answer passes through; a plugin that
//! does not answer in time, or whose guard is interrupted, is killed with its whole
//! process group (a shell script's children too).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GUARD: &str = "__egress-credential-guard";

/// The egress binary as the guard, `secs` long, over `plugin`; no terminal on stdin.
fn guard(secs: &str, plugin: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_egress"));
    command
        .args([GUARD, secs, "--"])
        .args(plugin)
        .stdin(Stdio::null());
    command
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// A plugin that starts a grandchild and waits on it forever; the grandchild's pid
/// is written to `pidfile`.
fn hanging_plugin(pidfile: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("sleep 300 & echo $! > '{}'; wait", pidfile.display()),
    ]
}

fn pid_from(pidfile: &Path) -> String {
    let started = Instant::now();
    loop {
        if let Ok(pid) = std::fs::read_to_string(pidfile)
            && !pid.trim().is_empty()
        {
            return pid.trim().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the plugin never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_plugin_s_answer_passes_through() {
    let out = guard("5", &["sh", "-c", "echo '{\"kind\":\"ExecCredential\"}'"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"kind\":\"ExecCredential\"}\n"
    );
    let failed = guard("5", &["sh", "-c", "exit 3"]).output().unwrap();
    assert_eq!(
        failed.status.code(),
        Some(3),
        "the plugin's own failure is kube's to read"
    );
}

#[test]
fn what_a_plugin_leaves_running_does_not_hold_the_guard() {
    // It answers and exits, but a child it started keeps its stdout open.
    let started = Instant::now();
    let out = guard("30", &["sh", "-c", "echo answer; sleep 300 &"])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "answer\n");
}

#[test]
fn a_plugin_past_its_deadline_is_killed_with_its_process_group() {
    let pidfile =
        std::env::temp_dir().join(format!("egress-guard-deadline-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let started = Instant::now();
    let out = guard("1", &hanging_plugin(&pidfile)).output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no answer within 1s") && said.contains("killed"),
        "{said}"
    );
    let grandchild = pid_from(&pidfile);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !alive(&grandchild),
        "the plugin's child {grandchild} outlived it"
    );
    let _ = std::fs::remove_file(&pidfile);
}

#[test]
fn an_interrupted_guard_kills_the_plugin_s_process_group() {
    let pidfile = std::env::temp_dir().join(format!("egress-guard-sigint-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let mut guard = guard("300", &hanging_plugin(&pidfile))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let grandchild = pid_from(&pidfile);
    let started = Instant::now();
    // SAFETY: signals the guard this test started.
    unsafe {
        libc::kill(guard.id() as libc::pid_t, libc::SIGINT);
    }
    let status = guard.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !alive(&grandchild),
        "the plugin's child {grandchild} outlived the guard"
    );
    let _ = std::fs::remove_file(&pidfile);
}
