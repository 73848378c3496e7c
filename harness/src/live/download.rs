//! Release binaries (kind, istioctl) fetched once per host: the published checksum
//! verified, written atomically into the cache, reused offline afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

pub use crate::seams::Payload;

/// The hex digest in a checksum file: kind's `.sha256sum` (`<hex>  <file>`) and
/// Istio's `.sha256` (`<hex> <file>`, istio/release-builder pkg/util/files.go CreateSha).
pub fn parse_checksum(text: &str) -> Result<String, String> {
    let first = text.split_whitespace().next().unwrap_or_default();
    if first.len() == 64 && first.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(first.to_ascii_lowercase())
    } else {
        Err(format!(
            "not a sha256 checksum file: `{}`",
            text.chars().take(80).collect::<String>()
        ))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The program out of a release archive: the entry whose file name is `name`.
pub fn extract_from_tar_gz(archive: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| format!("reading archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading archive: {e}"))?;
        let is_it = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|f| f == name))
            .unwrap_or(false);
        if is_it {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| format!("reading {name} from archive: {e}"))?;
            return Ok(bytes);
        }
    }
    Err(format!("the archive holds no `{name}`"))
}

/// Writes `bytes` as an executable at `dest` through a temporary file in the same
/// directory and a rename, so a cut-off write never leaves a half binary in the cache.
pub fn install_atomically(bytes: &[u8], dest: &Path) -> Result<(), String> {
    let dir = dest
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", dest.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        dest.file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("download"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", dest.display())
    })
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("egress-conformance/", env!("CARGO_PKG_VERSION")))
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", super::caused(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| format!("GET {url}: {}", super::caused(&e)))
}

/// The program at `dest`, downloading it first unless the cache has it.
pub async fn fetch_verified(
    url: &str,
    checksum_url: &str,
    payload: Payload,
    dest: &Path,
) -> Result<PathBuf, String> {
    if dest.is_file() {
        return Ok(dest.to_owned());
    }
    eprintln!("egress: download: {url}");
    let client = client()?;
    let expected = parse_checksum(&String::from_utf8_lossy(&get(&client, checksum_url).await?))
        .map_err(|e| format!("{checksum_url}: {e}"))?;
    let asset = get(&client, url).await?;
    let actual = sha256_hex(&asset);
    if actual != expected {
        return Err(format!(
            "{url}: sha256 {actual} does not match {expected} from {checksum_url}; nothing was installed"
        ));
    }
    let program = match payload {
        Payload::Binary => asset,
        Payload::TarGz(name) => extract_from_tar_gz(&asset, name)?,
    };
    install_atomically(&program, dest)?;
    Ok(dest.to_owned())
}

/// A file whose sha256 is pinned in the harness (no checksum file to fetch): the
/// cached copy when it still matches, else downloaded, checked and cached.
pub async fn fetch_pinned(url: &str, sha256: &str, dest: &Path) -> Result<Vec<u8>, String> {
    if let Ok(cached) = std::fs::read(dest)
        && sha256_hex(&cached) == sha256
    {
        return Ok(cached);
    }
    eprintln!("egress: download: {url}");
    let body = get(&client()?, url).await?;
    let actual = sha256_hex(&body);
    if actual != sha256 {
        return Err(format!(
            "{url}: sha256 {actual} does not match the pinned {sha256}; nothing was applied"
        ));
    }
    install_atomically(&body, dest)?;
    Ok(body)
}

/// The stable releases in GitHub's `releases` API answer: no drafts, no
/// pre-releases, and no `-rc`/`-beta`/`-alpha` tags (the same rule as istio's
/// release/downloadIstioCandidate.sh, which only accepts `x.y.z`). Newest first.
pub fn stable_releases(releases_json: &str) -> Result<Vec<semver::Version>, String> {
    let releases: Vec<serde_json::Value> =
        serde_json::from_str(releases_json).map_err(|e| format!("GitHub releases answer: {e}"))?;
    let mut versions: Vec<semver::Version> = releases
        .iter()
        .filter(|r| r["draft"] != true && r["prerelease"] != true)
        .filter_map(|r| r["tag_name"].as_str())
        .filter_map(|t| semver::Version::parse(t.trim_start_matches('v')).ok())
        .filter(|v| v.pre.is_empty() && v.build.is_empty())
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions.dedup();
    Ok(versions)
}

/// The newest stable release among GitHub's `releases` API answer.
pub fn newest_stable(releases_json: &str) -> Result<semver::Version, String> {
    stable_releases(releases_json)?
        .into_iter()
        .next()
        .ok_or_else(|| "no stable release in GitHub's answer".into())
}

/// The newest patch of each of the `minors` newest minor versions, newest first.
pub fn newest_patches(releases: &[semver::Version], minors: usize) -> Vec<semver::Version> {
    let mut out: Vec<semver::Version> = Vec::new();
    let mut sorted = releases.to_vec();
    sorted.sort_by(|a, b| b.cmp(a));
    for v in sorted {
        if out.len() == minors {
            break;
        }
        if !out.iter().any(|o| o.major == v.major && o.minor == v.minor) {
            out.push(v);
        }
    }
    out
}

/// istio/istio's stable releases, newest first, reaching back to `oldest` (or the
/// newest page only). `GITHUB_TOKEN` is used when set, for the rate limit.
pub async fn istio_releases(
    oldest: Option<&semver::Version>,
) -> Result<Vec<semver::Version>, String> {
    const PAGES: u32 = 10;
    let mut all = Vec::new();
    for page in 1..=PAGES {
        let url =
            format!("https://api.github.com/repos/istio/istio/releases?per_page=100&page={page}");
        let mut request = client()?
            .get(&url)
            .header("accept", "application/vnd.github+json");
        if let Ok(token) = std::env::var("GITHUB_TOKEN") {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "listing Istio releases: GET {url}: {}; name versions instead (--istio 1.30.3)",
                super::caused(&e)
            )
        })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("GET {url}: {}", super::caused(&e)))?;
        if !status.is_success() {
            return Err(format!(
                "listing Istio releases: GET {url}: HTTP {status}; set GITHUB_TOKEN or name versions"
            ));
        }
        let raw: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        let found = stable_releases(&body)?;
        let reached = match oldest {
            Some(oldest) => found.iter().any(|v| v <= oldest),
            None => true,
        };
        all.extend(found);
        if reached || raw.len() < 100 {
            break;
        }
    }
    all.sort_by(|a, b| b.cmp(a));
    all.dedup();
    Ok(all)
}

/// The newest stable Istio release.
pub async fn latest_istio() -> Result<semver::Version, String> {
    istio_releases(None)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| "resolving `latest`: no stable Istio release on GitHub".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_failed_download_says_its_cause_not_only_that_it_failed() {
        // .invalid never resolves (RFC 6761), online or offline.
        let client = client().unwrap();
        let err = get(&client, "https://kind.releases.invalid/kind-linux-amd64")
            .await
            .unwrap_err();
        assert!(
            err.starts_with("GET https://kind.releases.invalid/"),
            "{err}"
        );
        // reqwest's own words, then the resolver's under them.
        assert!(err.contains("error sending request"), "{err}");
        assert!(
            err.matches(": ").count() >= 3 && (err.contains("dns") || err.contains("lookup")),
            "the cause under the error: {err}"
        );
    }

    #[test]
    fn checksum_files_of_both_projects_parse() {
        let hex = "a".repeat(64);
        assert_eq!(
            parse_checksum(&format!("{hex}  kind-linux-amd64\n")).unwrap(),
            hex
        );
        assert_eq!(
            parse_checksum(&format!(
                "{} istioctl-1.22.1-linux-amd64.tar.gz\n",
                hex.to_uppercase()
            ))
            .unwrap(),
            hex
        );
        assert!(parse_checksum("<html>Not Found</html>").is_err());
    }

    #[test]
    fn newest_patches_takes_the_last_patch_of_each_recent_minor() {
        let v = |s: &str| semver::Version::parse(s).expect("version");
        let releases: Vec<_> = [
            "1.28.1", "1.30.3", "1.29.6", "1.30.2", "1.29.7", "1.27.9", "1.28.4",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        assert_eq!(
            newest_patches(&releases, 3),
            vec![v("1.30.3"), v("1.29.7"), v("1.28.4")]
        );
        assert_eq!(newest_patches(&releases, 1), vec![v("1.30.3")]);
    }

    #[test]
    fn newest_stable_skips_candidates_drafts_and_prereleases() {
        let json = r#"[
            {"tag_name": "1.31.0-rc.0", "prerelease": true, "draft": false},
            {"tag_name": "1.30.3", "prerelease": false, "draft": false},
            {"tag_name": "1.32.0", "prerelease": false, "draft": true},
            {"tag_name": "1.29.6", "prerelease": false, "draft": false},
            {"tag_name": "1.31.0-beta.1", "prerelease": false, "draft": false}
        ]"#;
        assert_eq!(newest_stable(json).unwrap().to_string(), "1.30.3");
        assert!(newest_stable("[]").is_err());
        assert!(newest_stable("{\"message\": \"API rate limit exceeded\"}").is_err());
    }

    fn tar_gz(name: &str, content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, name, content).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    /// A one-shot HTTP server on loopback answering each path from `routes`.
    async fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map_or(("404 Not Found", b"missing".to_vec()), |(_, b)| {
                        ("200 OK", b.clone())
                    });
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            }
        });
        base
    }

    #[tokio::test]
    async fn a_verified_archive_is_installed_and_then_reused_offline() {
        let archive = tar_gz("istioctl", b"#!/bin/sh\necho istioctl\n");
        let sum = format!(
            "{} istioctl-1.22.1-linux-amd64.tar.gz\n",
            sha256_hex(&archive)
        );
        let base = serve(vec![
            ("/a.tar.gz", archive),
            ("/a.tar.gz.sha256", sum.into_bytes()),
        ])
        .await;
        let dir = std::env::temp_dir().join(format!("egress-dl-{}", std::process::id()));
        let dest = dir.join("1.22.1").join("istioctl");
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("{base}/a.tar.gz");
        let got = fetch_verified(
            &url,
            &format!("{url}.sha256"),
            Payload::TarGz("istioctl"),
            &dest,
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), b"#!/bin/sh\necho istioctl\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&got).unwrap().permissions().mode() & 0o777,
                0o755
            );
        }
        // Offline now: the cached file is used without asking the server.
        let again = fetch_verified(
            "http://127.0.0.1:9/gone",
            "http://127.0.0.1:9/gone",
            Payload::TarGz("istioctl"),
            &dest,
        )
        .await
        .unwrap();
        assert_eq!(again, dest);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_checksum_mismatch_installs_nothing() {
        let sum = format!("{}  kind-linux-amd64\n", "0".repeat(64));
        let base = serve(vec![
            ("/kind", b"not kind".to_vec()),
            ("/kind.sha256sum", sum.into_bytes()),
        ])
        .await;
        let dir = std::env::temp_dir().join(format!("egress-dl-bad-{}", std::process::id()));
        let dest = dir.join("kind");
        let url = format!("{base}/kind");
        let err = fetch_verified(&url, &format!("{url}.sha256sum"), Payload::Binary, &dest)
            .await
            .unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        assert!(!dest.exists());
        assert!(
            std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0,
            "no partial file left"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_pinned_file_is_checked_cached_and_refetched_when_the_cache_is_wrong() {
        let crd = b"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n".to_vec();
        let pin = sha256_hex(&crd);
        let base = serve(vec![
            ("/crd.yaml", crd.clone()),
            ("/other.yaml", b"x".to_vec()),
        ])
        .await;
        let dir = std::env::temp_dir().join(format!("egress-pin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dest = dir.join("v1.5.1").join("crd.yaml");
        let url = format!("{base}/crd.yaml");
        assert_eq!(fetch_pinned(&url, &pin, &dest).await.unwrap(), crd);
        assert_eq!(std::fs::read(&dest).unwrap(), crd);
        // Cached: no server needed.
        assert_eq!(
            fetch_pinned("http://127.0.0.1:9/gone", &pin, &dest)
                .await
                .unwrap(),
            crd
        );
        // A cache that no longer matches the pin is fetched again.
        std::fs::write(&dest, b"tampered").unwrap();
        assert_eq!(fetch_pinned(&url, &pin, &dest).await.unwrap(), crd);
        // A served file that is not the pinned one is refused and not cached.
        let other = dir.join("other.yaml");
        let err = fetch_pinned(&format!("{base}/other.yaml"), &pin, &other)
            .await
            .unwrap_err();
        assert!(err.contains("does not match the pinned"), "{err}");
        assert!(!other.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_asset_names_the_url() {
        let base = serve(vec![]).await;
        let url = format!("{base}/istioctl-9.9.9-linux-amd64.tar.gz");
        let dest =
            std::env::temp_dir().join(format!("egress-dl-404-{}/istioctl", std::process::id()));
        let err = fetch_verified(
            &url,
            &format!("{url}.sha256"),
            Payload::TarGz("istioctl"),
            &dest,
        )
        .await
        .unwrap_err();
        assert!(err.contains("404") && err.contains("9.9.9"), "{err}");
    }
}
