//! Istio versions: parsing, ranges, and the one table that maps an Istio minor to the
//! Kubernetes versions it supports and the kind node image that fits.

use semver::{Version, VersionReq};

/// The version the seed article's outputs were recorded on.
pub const SEED_ISTIO: &str = "1.22.1";

/// What `--istio` means when it is not given.
pub const DEFAULT_ISTIO: &str = "1.30.3";

/// The kind release the harness downloads when kind is not on PATH.
pub const KIND_VERSION: &str = "v0.27.0";

/// Kubernetes minors each Istio minor supports, inclusive.
/// Source: istio/istio.io data/compatibility/supportStatus.yml (read 2026-08).
const SUPPORT: &[(u64, u64, u64)] = &[
    // (istio minor, lowest k8s minor, highest k8s minor)
    (22, 27, 30),
    (23, 27, 30),
    (24, 28, 31),
    (25, 29, 32),
    (26, 29, 33),
    (27, 29, 33),
    (28, 30, 34),
    (29, 31, 35),
    (30, 32, 36),
];

/// Node images published with kind v0.27.0 (its release notes), pinned by digest.
const NODE_IMAGES: &[(u64, &str)] = &[
    (
        32,
        "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
    ),
    (
        31,
        "kindest/node:v1.31.6@sha256:28b7cbb993dfe093c76641a0c95807637213c9109b761f1d422c2400e22b8e87",
    ),
    (
        30,
        "kindest/node:v1.30.10@sha256:4de75d0e82481ea846c0ed1de86328d821c1e6a6a91ac37bf804e5313670e507",
    ),
    (
        29,
        "kindest/node:v1.29.14@sha256:8703bd94ee24e51b778d5556ae310c6c0fa67d761fae6379c8e0bb480e6fea29",
    ),
];

/// The newest release the tables support: what `latest` means where GitHub is not
/// asked (a simulated run).
pub fn newest_supported() -> Version {
    Version::parse(DEFAULT_ISTIO).unwrap_or_else(|_| Version::new(1, 30, 3))
}

/// Parses an Istio release such as `1.22.1` or `1.31.0-rc.0`.
pub fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text.trim().trim_start_matches('v'))
        .map_err(|e| format!("`{text}` is not an Istio version like 1.22.1: {e}"))
}

/// Parses a range such as `>=1.22`, `>=1.22, <1.24` or `*`.
pub fn parse_range(text: &str) -> Result<VersionReq, String> {
    VersionReq::parse(text)
        .map_err(|e| format!("`{text}` is not a version range like \">=1.22, <1.24\": {e}"))
}

/// Range matching that treats a pre-release (`1.31.0-rc.0`) as its release, so that
/// `>=1.22` covers release candidates too.
pub fn matches_release(req: &VersionReq, version: &Version) -> bool {
    let release = Version::new(version.major, version.minor, version.patch);
    req.matches(&release)
}

/// The Kubernetes minors an Istio version supports, and whether that was extrapolated
/// past the end of the table (one Kubernetes minor per Istio minor, as the table shows).
pub fn kubernetes_range(istio: &Version) -> Result<(u64, u64, bool), String> {
    if istio.major != 1 {
        return Err(format!("Istio {istio}: only 1.x releases are known"));
    }
    if let Some(&(_, lo, hi)) = SUPPORT.iter().find(|(m, _, _)| *m == istio.minor) {
        return Ok((lo, hi, false));
    }
    let &(first, _, _) = SUPPORT.first().ok_or("empty support table")?;
    let &(last, lo, hi) = SUPPORT.last().ok_or("empty support table")?;
    if istio.minor < first {
        return Err(format!(
            "Istio {istio} is older than the oldest supported here (1.{first}); the harness uses networking.istio.io/v1, served from 1.22"
        ));
    }
    let ahead = istio.minor - last;
    Ok((lo + ahead, hi + ahead, true))
}

/// The node image for an Istio version: the newest pinned image inside its range.
pub fn node_image(istio: &Version) -> Result<&'static str, String> {
    let (lo, hi, extrapolated) = kubernetes_range(istio)?;
    NODE_IMAGES
        .iter()
        .find(|(minor, _)| (lo..=hi).contains(minor))
        .map(|(_, image)| *image)
        .ok_or_else(|| {
            format!(
                "Istio {istio} supports Kubernetes 1.{lo}-1.{hi}{}; none of kind {KIND_VERSION}'s node images fits. Pass --node-image kindest/node:v1.{hi}.x",
                if extrapolated { " (extrapolated past the support table)" } else { "" }
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn seed_version_gets_kubernetes_1_30() {
        let image = node_image(&v("1.22.1")).unwrap();
        assert!(image.starts_with("kindest/node:v1.30."), "{image}");
    }

    #[test]
    fn every_row_has_an_image_in_range() {
        for &(minor, lo, hi) in SUPPORT {
            let image = node_image(&Version::new(1, minor, 0)).unwrap();
            let k8s_minor: u64 = image["kindest/node:v1.".len()..]
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((lo..=hi).contains(&k8s_minor), "1.{minor}: {image}");
        }
    }

    #[test]
    fn newer_than_table_is_extrapolated_and_may_not_fit() {
        let (lo, hi, extrapolated) = kubernetes_range(&v("1.32.0")).unwrap();
        assert_eq!((lo, hi, extrapolated), (34, 38, true));
        assert!(
            node_image(&v("1.32.0"))
                .unwrap_err()
                .contains("--node-image")
        );
        assert!(kubernetes_range(&v("1.21.0")).is_err());
    }

    #[test]
    fn release_candidates_match_ranges() {
        let req = parse_range(">=1.31").unwrap();
        assert!(matches_release(&req, &v("1.31.0-rc.0")));
        assert!(!matches_release(
            &parse_range("<1.24").unwrap(),
            &v("1.24.0")
        ));
    }
}
