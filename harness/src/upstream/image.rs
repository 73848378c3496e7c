//! The project's own echo program (tests/echo) as the upstream's image: what a run
//! gets when its scenarios declare `upstream.ports` of kinds echo-basic does not
//! serve (a TCP or TLS echo, HTTPS that requires a client certificate).
//!
//! It is built where the harness runs, with no registry: cargo builds the program
//! statically for Linux and `docker import` makes an image holding only it. The same
//! build gives the Docker tests their upstream, so what they exercise is what runs
//! live. On macOS (or wherever no Linux target builds) a run that needs it says so
//! and takes `--upstream-image` instead: an image whose entrypoint is the program.

use std::path::{Path, PathBuf};

/// The image's name; its tag is a hash of the program's source and lock file, so a
/// changed program is a new image and an image already on the host is kept.
pub const IMAGE: &str = "egc-echo";

/// How to build the image: two programs run in order, unless `image` is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectEcho {
    pub image: String,
    /// cargo, building the static binary into its own target folder (no lock shared
    /// with a running cargo).
    pub build: Vec<String>,
    /// A shell pipeline: the binary alone in a folder, tarred into `docker import`.
    pub import: Vec<String>,
}

/// Where the project's sources are: the workspace this harness was built from.
pub fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The build of the echo program in `root` for this host, or why there is none.
pub fn project_echo(root: &Path) -> Result<ProjectEcho, String> {
    let fallback = "pass --upstream-image with an image whose entrypoint is tests/echo's egress-echo, built for Linux";
    if !cfg!(target_os = "linux") {
        return Err(format!(
            "the project's echo image is built with cargo for Linux, and this is {}: {fallback}",
            std::env::consts::OS
        ));
    }
    let mut hash = Fnv::default();
    for file in [
        "tests/echo/src/main.rs",
        "tests/echo/Cargo.toml",
        "Cargo.lock",
    ] {
        let bytes = std::fs::read(root.join(file)).map_err(|e| {
            format!(
                "the echo program's source is not here ({}: {e}): {fallback}",
                root.join(file).display()
            )
        })?;
        hash.write(&bytes);
    }
    let image = format!("{IMAGE}:{:016x}", hash.0);
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let target = root.join("target/echo-static");
    let binary = target.join(&triple).join("release/egress-echo");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let path = |p: &Path| p.display().to_string();
    let build = [
        "env",
        "RUSTFLAGS=-C target-feature=+crt-static",
        &cargo,
        "build",
        "-q",
        "-p",
        "egress-echo",
        "--release",
        "--target",
        &triple,
        "--target-dir",
        &path(&target),
        "--manifest-path",
        &path(&root.join("Cargo.toml")),
    ]
    .map(str::to_owned)
    .to_vec();
    // Paths and the image name are arguments, never parts of the script. /etc is
    // where Docker mounts resolv.conf.
    let script = r#"d=$(mktemp -d) && mkdir "$d/etc" && cp "$1" "$d/egress-echo" && tar -C "$d" -c . | docker import --change 'ENTRYPOINT ["/egress-echo"]' - "$2"; rc=$?; rm -rf "$d"; exit $rc"#;
    let import = ["sh", "-c", script, "sh", &path(&binary), &image]
        .map(str::to_owned)
        .to_vec();
    Ok(ProjectEcho {
        image,
        build,
        import,
    })
}

impl ProjectEcho {
    /// Builds and imports the image unless it is on the host; returns its name. For
    /// tests, which need it outside a run; a run builds it as a planned step.
    pub fn build_blocking(&self) -> Result<String, String> {
        let run = |argv: &[String]| {
            std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .map_err(|e| format!("{}: {e}", argv[0]))
                .and_then(|o| {
                    if o.status.success() {
                        Ok(())
                    } else {
                        Err(format!(
                            "{}: {}",
                            argv.join(" "),
                            String::from_utf8_lossy(&o.stderr).trim()
                        ))
                    }
                })
        };
        if docker_has_image(&self.image) {
            return Ok(self.image.clone());
        }
        run(&self.build)?;
        run(&self.import)?;
        Ok(self.image.clone())
    }
}

/// Whether this host's Docker has `image` (`docker image inspect`), outside a run.
pub fn docker_has_image(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// FNV-1a: enough to tell two sources apart.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_named_by_its_source_and_built_without_a_shell_reading_paths() {
        let echo = project_echo(&source_root()).unwrap();
        assert!(echo.image.starts_with("egc-echo:"), "{}", echo.image);
        assert_eq!(echo.image.len(), "egc-echo:".len() + 16);
        assert!(echo.build.contains(&"egress-echo".to_owned()));
        assert!(echo.build.iter().any(|a| a.ends_with("-unknown-linux-gnu")));
        // The binary and the image are the script's arguments, not its text.
        assert_eq!(echo.import[..2], ["sh", "-c"]);
        assert!(!echo.import[2].contains("target"));
        assert_eq!(echo.import.last(), Some(&echo.image));
        // The same source, the same image: kept between runs.
        assert_eq!(project_echo(&source_root()).unwrap(), echo);
    }

    #[test]
    fn without_the_program_s_source_the_run_is_told_what_to_pass() {
        let err = project_echo(Path::new("/nonexistent-egress-source")).unwrap_err();
        assert!(err.contains("--upstream-image"), "{err}");
    }
}
