//! The stand-in echo image for tests on a Docker engine with no registry: the
//! `egress-echo` binary built statically (glibc, `crt-static`) and imported with
//! `docker import` into an image holding nothing else, once per host.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The image's name; its tag is the binary's sha256, so a rebuilt binary is a new image.
pub const IMAGE: &str = "egc-echo-standin";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the binary (its own target folder: no lock shared with the running cargo)
/// and imports it; returns `image:tag`.
pub fn standin_image() -> Result<String, String> {
    let root = workspace();
    let target = root.join("target/echo-static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(&root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "-q",
            "-p",
            "egress-echo",
            "--release",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .map_err(|e| format!("cargo build of the stand-in: {e}"))?;
    if !built.success() {
        return Err("cargo build of the static stand-in failed".into());
    }
    let binary = target.join("x86_64-unknown-linux-gnu/release/egress-echo");
    let bytes = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let tag = format!("{:016x}", fnv(&bytes));
    let image = format!("{IMAGE}:{tag}");
    let present = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(image);
    }
    let rootfs = target.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(rootfs.join("etc")).map_err(|e| e.to_string())?;
    std::fs::copy(&binary, rootfs.join("egress-echo")).map_err(|e| e.to_string())?;
    let script = format!(
        "tar -C '{}' -c . | docker import --change 'ENTRYPOINT [\"/egress-echo\"]' - '{image}'",
        rootfs.display()
    );
    let imported = Command::new("sh")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("docker import: {e}"))?;
    if !imported.status.success() {
        return Err(format!(
            "docker import: {}",
            String::from_utf8_lossy(&imported.stderr)
        ));
    }
    Ok(image)
}

/// FNV-1a: enough to tell two builds apart.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
