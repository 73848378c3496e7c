//! One Docker test at a time on this host, across test binaries and checkouts: they
//! start containers answering as httpbin.org, and the signal test uses kind's own
//! network. An exclusive `flock` on a file in the temporary folder; the kernel drops
//! it when the holder exits, however it exits, so no lock is ever left stale.

// Not every test binary that includes the support takes the lock.
#![allow(dead_code)]

use std::os::fd::AsRawFd;

/// The open lock file; the lock lives as long as it does.
pub struct DockerLock(std::fs::File);

/// Waits for the lock; held until the value is dropped.
pub fn docker_lock() -> DockerLock {
    let path = std::env::temp_dir().join("egress-conformance-docker-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: flock on a descriptor this File owns for as long as the lock lives.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    DockerLock(file)
}
