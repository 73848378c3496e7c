//! Whether a Docker daemon answers, with one clear line when not (`doctor` builds on it).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// A missing prerequisite and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub what: String,
    pub fix: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}; {}", self.what, self.fix)
    }
}

/// Where the Docker daemon listens, as the docker CLI would look for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    Unix(PathBuf),
    Tcp(String),
    /// A `DOCKER_HOST` this harness does not speak (`ssh://`, `npipe://`): said, never
    /// taken for the local socket.
    Unsupported(String),
}

impl DockerEndpoint {
    /// `DOCKER_HOST`, else the standard socket.
    pub fn from_env() -> Self {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => {
                Self::Unix(PathBuf::from(&host["unix://".len()..]))
            }
            Ok(host) if host.starts_with("tcp://") => Self::Tcp(host["tcp://".len()..].to_owned()),
            Ok(host) if !host.is_empty() => Self::Unsupported(host),
            _ => Self::Unix(PathBuf::from("/var/run/docker.sock")),
        }
    }
}

impl std::fmt::Display for DockerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
            Self::Unsupported(host) => f.write_str(host),
        }
    }
}

const PING: &[u8] = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";

/// Asks the Docker daemon for `/_ping`; any answer but `200 OK` is an error.
pub fn check_docker(endpoint: &DockerEndpoint) -> Result<(), Missing> {
    let timeout = Duration::from_secs(3);
    let answer = match endpoint {
        DockerEndpoint::Unix(path) => {
            #[cfg(unix)]
            {
                std::os::unix::net::UnixStream::connect(path).and_then(|mut s| {
                    s.set_read_timeout(Some(timeout))?;
                    s.set_write_timeout(Some(timeout))?;
                    exchange(&mut s)
                })
            }
            #[cfg(not(unix))]
            {
                let _ = path;
                Err(std::io::Error::other("unix sockets need a unix host"))
            }
        }
        DockerEndpoint::Tcp(addr) => {
            std::net::TcpStream::connect(addr.as_str()).and_then(|mut s| {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                exchange(&mut s)
            })
        }
        DockerEndpoint::Unsupported(host) => {
            return Err(Missing {
                what: format!("DOCKER_HOST={host}: this harness speaks to Docker over unix:// and tcp:// only"),
                fix: "point DOCKER_HOST at a unix socket or a tcp:// address (for an ssh:// host: `ssh -L /tmp/docker.sock:/var/run/docker.sock HOST` and DOCKER_HOST=unix:///tmp/docker.sock)".into(),
            });
        }
    };
    match answer {
        Ok(reply) if reply.starts_with("HTTP/1.") && reply.split_whitespace().nth(1) == Some("200") => Ok(()),
        Ok(reply) => Err(Missing {
            what: format!("the Docker daemon at {endpoint} answered /_ping with `{}`", reply.lines().next().unwrap_or_default()),
            fix: "check that Docker is running and that you may use it (docker info)".into(),
        }),
        Err(e) => Err(Missing {
            what: format!("no Docker daemon reachable at {endpoint} ({e})"),
            fix: "install Docker (https://docs.docker.com/engine/install/) and start it, or set DOCKER_HOST".into(),
        }),
    }
}

fn exchange(stream: &mut (impl Read + Write)) -> std::io::Result<String> {
    stream.write_all(PING)?;
    let mut reply = Vec::new();
    stream.take(4096).read_to_end(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// One line naming everything missing.
pub fn describe(missing: &[Missing]) -> String {
    let parts: Vec<String> = missing.iter().map(ToString::to_string).collect();
    format!("cannot run live: {}", parts.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_host_of_another_scheme_is_said_not_taken_for_the_local_socket() {
        let m = check_docker(&DockerEndpoint::Unsupported("ssh://me@build".into())).unwrap_err();
        assert!(
            m.what.contains("DOCKER_HOST=ssh://me@build") && m.what.contains("unix:// and tcp://"),
            "{m}"
        );
    }

    #[test]
    fn a_missing_socket_says_what_and_how() {
        let m = check_docker(&DockerEndpoint::Unix("/nonexistent/docker.sock".into())).unwrap_err();
        assert!(m.what.contains("unix:///nonexistent/docker.sock"), "{m}");
        assert!(m.fix.contains("install Docker"), "{m}");
    }

    #[cfg(unix)]
    #[test]
    fn a_daemon_that_answers_200_passes_and_others_fail() {
        use std::os::unix::net::UnixListener;
        for (reply, ok) in [
            ("HTTP/1.1 200 OK\r\n\r\nOK", true),
            ("HTTP/1.1 500 Internal Server Error\r\n\r\n", false),
        ] {
            let path = std::env::temp_dir()
                .join(format!("egress-docker-{}-{ok}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 128];
                let _ = s.read(&mut buf).unwrap();
                s.write_all(reply.as_bytes()).unwrap();
            });
            let result = check_docker(&DockerEndpoint::Unix(path.clone()));
            server.join().unwrap();
            assert_eq!(result.is_ok(), ok, "{result:?}");
            let _ = std::fs::remove_file(&path);
        }
    }
}
