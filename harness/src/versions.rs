//! Istio versions: parsing, ranges, and the one table that maps an Istio minor to the
//! Kubernetes versions it supports and the kind node image that fits.

use semver::{Version, VersionReq};

/// The version the seed article's outputs were recorded on.
pub const SEED_ISTIO: &str = "1.22.1";

/// The newest patch of each Istio minor the harness knows of: istio/istio's newest tag
/// of 1.22–1.27 (all out of support), and the newest announcements under istio/istio.io
/// content/en/news/releases/ for 1.28–1.31 (1.28.10 of 2026-07-01, its last; 1.29.8,
/// 1.30.5 and 1.31.1 of 2026-09-21). 1.30.4/1.29.7 fixed ISTIO-SECURITY-2026-006.
pub const NEWEST_PATCHES: &[&str] = &[
    "1.22.8", "1.23.6", "1.24.6", "1.25.5", "1.26.8", "1.27.9", "1.28.10", "1.29.8", "1.30.5",
    "1.31.1",
];

/// What `--istio` means when it is not given: the newest patch in [`NEWEST_PATCHES`].
pub const DEFAULT_ISTIO: &str = "1.31.1";

/// The kind release the harness downloads when kind is not on PATH (2026-06; its
/// release notes list the node images below that it built).
pub const KIND_VERSION: &str = "v0.32.0";

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
    // 1.28.0 "is officially supported on Kubernetes versions 1.29 to 1.34" (its
    // announcement); the image picked is v1.34 either way.
    (28, 29, 34),
    (29, 31, 35),
    (30, 32, 36),
    // 1.31 as its announcement says ("supported on Kubernetes versions 1.32 to 1.36").
    // No source shows a 1.32 release yet: its row is extrapolated, one Kubernetes
    // minor on, as every row before.
    (31, 32, 36),
    (32, 33, 37),
];

/// The newest node image of each Kubernetes minor, pinned by digest as each kind
/// release's notes publish it (kind's own advice: "You _must_ use the @sha256
/// digest"). 1.33–1.36 are kind v0.32.0's; older minors, still needed by Istio
/// 1.22–1.24, are pinned as v0.30.0 (1.31, 1.32), v0.29.0 (1.30) and v0.27.0 (1.29)
/// built them; v0.31.0's notes list newer patches of 1.31 and 1.32 (v1.31.14,
/// v1.32.11), which would sit closer to kind v0.32.0. kind does not promise that an image of an older release runs on a newer
/// kind; these older images are what the pinned kind is run with all the same.
const NODE_IMAGES: &[(u64, &str, &str)] = &[
    (
        36,
        "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        "v0.32.0",
    ),
    (
        35,
        "kindest/node:v1.35.5@sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
        "v0.32.0",
    ),
    (
        34,
        "kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
        "v0.32.0",
    ),
    (
        33,
        "kindest/node:v1.33.12@sha256:3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4",
        "v0.32.0",
    ),
    (
        32,
        "kindest/node:v1.32.8@sha256:abd489f042d2b644e2d033f5c2d900bc707798d075e8186cb65e3f1367a9d5a1",
        "v0.30.0",
    ),
    (
        31,
        "kindest/node:v1.31.12@sha256:0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2",
        "v0.30.0",
    ),
    (
        30,
        "kindest/node:v1.30.13@sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648",
        "v0.29.0",
    ),
    (
        29,
        "kindest/node:v1.29.14@sha256:8703bd94ee24e51b778d5556ae310c6c0fa67d761fae6379c8e0bb480e6fea29",
        "v0.27.0",
    ),
];

/// The newest release the tables support: what `latest` means where GitHub is not
/// asked (a simulated run).
pub fn newest_supported() -> Version {
    Version::parse(DEFAULT_ISTIO).unwrap_or_else(|_| Version::new(1, 31, 1))
}

/// Parses an Istio release such as `1.22.1` or `1.31.0-rc.0`.
/// `1.22` → the newest 1.22 patch in [`NEWEST_PATCHES`]; `None` for anything that is
/// not a known `MAJOR.MINOR`.
pub fn newest_patch_of(minor: &str) -> Option<Version> {
    let (major, minor) = minor.split_once('.')?;
    if minor.contains('.') {
        return None;
    }
    let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
    NEWEST_PATCHES
        .iter()
        .filter_map(|p| Version::parse(p).ok())
        .find(|v| v.major == major && v.minor == minor)
}

pub fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text.trim().trim_start_matches('v')).map_err(|e| {
        let minors = NEWEST_PATCHES
            .iter()
            .filter_map(|p| p.rsplit_once('.').map(|(m, _)| m))
            .collect::<Vec<_>>();
        format!(
            "`{text}` is not an Istio version like 1.22.1 ({e}); a minor alone names its newest patch for {}",
            minors.join(", ")
        )
    })
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

/// The node image for an Istio version: the newest pinned image inside its range
/// (the table is newest first).
pub fn node_image(istio: &Version) -> Result<&'static str, String> {
    let (lo, hi, extrapolated) = kubernetes_range(istio)?;
    NODE_IMAGES
        .iter()
        .find(|(minor, _, _)| (lo..=hi).contains(minor))
        .map(|(_, image, _)| *image)
        .ok_or_else(|| {
            format!(
                "Istio {istio} supports Kubernetes 1.{lo}-1.{hi}{}; none of kind {KIND_VERSION}'s node images fits. Pass --node-image kindest/node:v1.{hi}.x",
                if extrapolated { " (extrapolated past the support table)" } else { "" }
            )
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_minor_alone_is_its_newest_known_patch() {
        assert_eq!(newest_patch_of("1.22"), Some(Version::new(1, 22, 8)));
        assert_eq!(newest_patch_of("1.31"), Some(Version::new(1, 31, 1)));
        assert_eq!(newest_patch_of("1.21"), None, "unknown minors stay errors");
        assert_eq!(newest_patch_of("1.22.1"), None);
        assert_eq!(newest_patch_of("x.y"), None);
    }
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn seed_version_gets_the_newest_kubernetes_it_supports() {
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
    fn istio_1_31_and_1_32_plan_inside_their_ranges_and_later_ones_are_extrapolated() {
        assert_eq!(kubernetes_range(&v("1.31.1")).unwrap(), (32, 36, false));
        assert!(
            node_image(&v("1.31.1"))
                .unwrap()
                .starts_with("kindest/node:v1.36.")
        );
        assert!(
            node_image(&v("1.32.0"))
                .unwrap()
                .starts_with("kindest/node:v1.36.")
        );
        let (lo, hi, extrapolated) = kubernetes_range(&v("1.36.0")).unwrap();
        assert_eq!((lo, hi, extrapolated), (37, 41, true));
        assert!(
            node_image(&v("1.36.0"))
                .unwrap_err()
                .contains("--node-image")
        );
        assert!(kubernetes_range(&v("1.21.0")).is_err());
    }

    #[test]
    fn every_image_is_pinned_by_digest_and_the_table_is_newest_first() {
        for pair in NODE_IMAGES.windows(2) {
            assert!(pair[0].0 > pair[1].0);
        }
        for (minor, image, _) in NODE_IMAGES {
            assert!(
                image.starts_with(&format!("kindest/node:v1.{minor}.")),
                "{image}"
            );
            let digest = image.split("@sha256:").nth(1).unwrap_or_default();
            assert_eq!(digest.len(), 64, "{image}");
        }
    }

    #[test]
    fn the_default_is_the_newest_patch_known_and_every_minor_has_a_node_image() {
        let known: Vec<Version> = NEWEST_PATCHES.iter().map(|p| v(p)).collect();
        assert!(known.windows(2).all(|w| w[0] < w[1]), "{known:?}");
        assert_eq!(known.last(), Some(&v(DEFAULT_ISTIO)));
        assert_eq!(newest_supported(), v(DEFAULT_ISTIO));
        for patch in &known {
            assert!(node_image(patch).is_ok(), "{patch}");
        }
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
