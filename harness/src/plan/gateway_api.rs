//! The Gateway API flavour of the egress gateway: which CRDs a cluster gets for its
//! Istio release, where the Gateway's own proxy runs, and which objects report the
//! conditions a scenario waits for.

use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use super::Proxies;
use crate::manifest::Object;

/// One pinned Gateway API release: the experimental channel's CRD files, each with
/// the sha256 of its bytes at the release tag (`config/crd/experimental/` of
/// kubernetes-sigs/gateway-api, as istio.io installs them with
/// `kubectl kustomize "github.com/kubernetes-sigs/gateway-api/config/crd/experimental?ref=…"`).
/// The experimental channel, because TLSRoute is only there before v1.5.
#[derive(Debug)]
pub struct CrdRelease {
    pub version: &'static str,
    /// (resource plural, sha256 of `gateway.networking.k8s.io_<plural>.yaml`).
    pub files: &'static [(&'static str, &'static str)],
}

/// The releases the table below names; digests computed from the release tags.
pub const RELEASES: &[CrdRelease] = &[
    CrdRelease {
        version: "v1.1.0",
        files: &[
            (
                "gatewayclasses",
                "423a3513d4bcb31d8b5eafbf4d607e617df373e2c8b48ac61e94086c3e3ef70c",
            ),
            (
                "gateways",
                "94ec57a3acae5a0d914e14d094f60a8b649415ede9f657706be487af383855ce",
            ),
            (
                "httproutes",
                "13490250632c4c8080f151372cb1478902c911d5a93775e05cf23df8e9f6836f",
            ),
            (
                "grpcroutes",
                "3db85d0fd69e5439292fe778fdfa2f38540f6b220656be46fac69ecd51637450",
            ),
            (
                "referencegrants",
                "e0bf4852acb8463a563886a6f04b593ca8c56a3fdefc238a808b1be5fc41b7af",
            ),
            (
                "tcproutes",
                "009e92ddfce86841bd2bf5cef9cfd586d88f53f0da5523b3958ea120cdbacfdf",
            ),
            (
                "tlsroutes",
                "283a0d561682ee039cd413e9663322f66c87e9dc0a8581173c2d26a399694619",
            ),
            (
                "backendtlspolicies",
                "1efc24afc015ec6c1205caf4748c928cb65564037f034fefcab055bb7c2a31e9",
            ),
        ],
    },
    CrdRelease {
        version: "v1.2.0",
        files: &[
            (
                "gatewayclasses",
                "6caae116de59b0878511998f53af95d22e40aaf6fbc6a5a053365be4448148a1",
            ),
            (
                "gateways",
                "6c329ecaea00d9eb35cb1ba00a02230bbda2d1549e415b7500b05f9592de83b7",
            ),
            (
                "httproutes",
                "d82c4f35782c3431cdee270ed83270ee925690ba80150a7f4b0a9e075b8d75eb",
            ),
            (
                "grpcroutes",
                "5cd93f283bc494fc459eeebcd19e34fa95c13059b03b68c906601757dccf9226",
            ),
            (
                "referencegrants",
                "c34c60ded0612b6da048243ea090525549a0df2ea9a2841dcee3e008d6b4e602",
            ),
            (
                "tcproutes",
                "66eb5cf1580664256df194db540e95da64ea4244e727f87ead789dae9afd0d71",
            ),
            (
                "tlsroutes",
                "89f577f9ae5512d0a8fda657cd93b45e33b6f79f74abf16d24d1fbef6194b72c",
            ),
            (
                "backendtlspolicies",
                "8534ad4166416d5730923948c0da8a41659e728b2f044f4def7c5d660b87562b",
            ),
        ],
    },
    CrdRelease {
        version: "v1.2.1",
        files: &[
            (
                "gatewayclasses",
                "3d266f7c5da157685d4be711fa6d62e87cbace6b22ec59fec9b794a3a703b29c",
            ),
            (
                "gateways",
                "a278111bb817600ded5d766ad6b5e52be24329cc5868a7f19395b348ed0831be",
            ),
            (
                "httproutes",
                "3ac07329e5a9e2d5c2212fc90d2e1e05a6a1cdb9b204970684e810fc9ae606df",
            ),
            (
                "grpcroutes",
                "042b9a2fea8986d6421d5c47617fc0dd11b06df256296282124d6a2fc17bb272",
            ),
            (
                "referencegrants",
                "96495ecf9a49d04a3787fc6cc14146f8916f4fff803d45bfa12239593397f1ed",
            ),
            (
                "tcproutes",
                "204ae2eb093432193286b157b27d130bd1d14b34d1a34775d122781169ecc709",
            ),
            (
                "tlsroutes",
                "8d1579fa88853c757d40a415ba105150424ea0962c4eef7114f0aa2dd2bdb620",
            ),
            (
                "backendtlspolicies",
                "8336ffdefdd4ac087ce8e6e86bf4981452d20d8a1141cdb235077e37ba1ac260",
            ),
        ],
    },
    CrdRelease {
        version: "v1.3.0",
        files: &[
            (
                "gatewayclasses",
                "697c559a096b68282fad8e393a135af265bc4fde85409928ea43454e69056df3",
            ),
            (
                "gateways",
                "8a5c5a8a9b86b2e77b86092cf878def81067452095ee4678b0b135731f3aa6b0",
            ),
            (
                "httproutes",
                "a51ad665756cc6c0ab49cfbda9f39f5a69e3c01ae758a09c2f728671403f1606",
            ),
            (
                "grpcroutes",
                "6e7d8fbcab62365c384e96c82cdf6710c397c1328f4f78023eeca0f77fa79928",
            ),
            (
                "referencegrants",
                "a81dcc705567dcd5da24fcb43f3b5acc24a8591c9fad8a69b54762069c5e86c3",
            ),
            (
                "tcproutes",
                "395ccacf611027cd839f4193a5a1cb54f55455a5e88b3a599f5804cbe5b72b87",
            ),
            (
                "tlsroutes",
                "2bc865fedfc13c4f555e14b50cc27e703a54103e011daf653aae51f733ecae3a",
            ),
            (
                "backendtlspolicies",
                "01bfe97770174544be25650f622d48a72eb7741d3b9533ab5f74e4a3ddd9db42",
            ),
        ],
    },
    CrdRelease {
        version: "v1.4.0",
        files: &[
            (
                "gatewayclasses",
                "68f0ead24b6887c9fa1ddb0013cac428995b2c75513047ae5433c740fb4c6ab3",
            ),
            (
                "gateways",
                "2e4a4e15c4a5eb5161d0de51a95d4f0919a1ae76aa68e47c7a65588371ec3574",
            ),
            (
                "httproutes",
                "70bc4cdec8566bc235f380992f4f97fa7a30bb2131b65e0136f71a0a8d3d901b",
            ),
            (
                "grpcroutes",
                "1abeccc603f2ea825a859a382ee609a23aff6e2a5fa23e11b095af865fe507cf",
            ),
            (
                "referencegrants",
                "7817d4441732805724cd8a34416da934a2f0452fdd189bec9a51f5ac890ab256",
            ),
            (
                "tcproutes",
                "6d63964357133b23fb729d2a50f72fa7816e538bf91708c52af26b17a7c75972",
            ),
            (
                "tlsroutes",
                "e7c4a3cddb7af8c0c1a6ed6837f649539b670e1d17ddbc68f1f2a5e2a2b476a7",
            ),
            (
                "backendtlspolicies",
                "e8ef742485fa03aafa988b4cbb0fdd1a6abdb4d710d04da399a709e90d6a5042",
            ),
        ],
    },
    CrdRelease {
        version: "v1.4.1",
        files: &[
            (
                "gatewayclasses",
                "17626267c36f9f36ffcfe82f120211582dd4beec058fc56acf2559cac851b0d0",
            ),
            (
                "gateways",
                "9f7c7b883a4070dee86c65fc9e5be126b54c38514fe8be83e4ac2cbf78e86175",
            ),
            (
                "httproutes",
                "578a5c4e48888757e13e4923b534d253073f43aadd88729f75da1aa95b15b258",
            ),
            (
                "grpcroutes",
                "02bd77f395eae9e3251e1d2e03f1c3fdeb7973ba20419f143b2aaf41eb2e4879",
            ),
            (
                "referencegrants",
                "9f7d8d526e47c19e27c783211ef89995faa6d5dd0cb66fb773655a56e487337c",
            ),
            (
                "tcproutes",
                "d8dc687cdb177c7100ee5cdf3d8c07304c6d1373df10317928b4b98438215d61",
            ),
            (
                "tlsroutes",
                "1dee8d7e1a56dadf0e88466bfef8a8afc5664a94e95d6b2fb812f03d0b198748",
            ),
            (
                "backendtlspolicies",
                "8c910e7f16f508fa367bd333d985fe68949069f40792d8cea6e38dcc899fcc6a",
            ),
        ],
    },
    CrdRelease {
        version: "v1.5.1",
        files: &[
            (
                "gatewayclasses",
                "b0da5c35c796ca21566bbca2964e97b3d9d1b020fa77b4b62001f4aea0bc22c7",
            ),
            (
                "gateways",
                "ecb21e3a23757108e74399c49365864f5e0d87c694679d63e4c34c7ccf579e2a",
            ),
            (
                "httproutes",
                "9012253cf248583189ff74426140556fafa38b66dc57553fd79f9ae34b2eee9f",
            ),
            (
                "grpcroutes",
                "0810b89144989fd7dc7a1a19af513f44b72a16ac55bfdd71672f89bba2238465",
            ),
            (
                "referencegrants",
                "aebb91539c82a18b0b79bba4209eb1f0b7b61eccc69da8f450260d9ad47b2a9a",
            ),
            (
                "tcproutes",
                "b7e8dde43172272e5b006ff849aedad464b2a5688f34305ae55d0faf61378030",
            ),
            (
                "tlsroutes",
                "6a74bbe019916d1b53ec270634185aec2eeee1a4e100d6029a53f63ae448f77c",
            ),
            (
                "backendtlspolicies",
                "84ce6da8f5041c93212ac3cec5954076abae05e73f82100351a68aefbd49a535",
            ),
        ],
    },
    CrdRelease {
        version: "v1.6.0",
        files: &[
            (
                "gatewayclasses",
                "fbc8925ac534b460a4981519e49e8637490b187cc105ff2246920b7bed7546ee",
            ),
            (
                "gateways",
                "b982948e395ca047e09fd4d05f3a894898612e6d0a58047c02496bd4255c284f",
            ),
            (
                "httproutes",
                "6f1fdc9a7f32461fff5186307464217f930b499cbe01acae98f6477e051f7a05",
            ),
            (
                "grpcroutes",
                "22de136908fa17ceed1170f713316eecf37b1be928a379f695be32d30aca0a93",
            ),
            (
                "referencegrants",
                "6d56be71b0272404cf69a588900fb8e317576e29e50268345630a25e2dbd3d37",
            ),
            (
                "tcproutes",
                "6d52e0f6e8dbf3a9ec0818511f348c59515f30e447f87ad6fee62d9702359725",
            ),
            (
                "tlsroutes",
                "2c77bc30a08a5953b18b2c70b1fee9310a84b0122473b07c5c96621830c8db2f",
            ),
            (
                "backendtlspolicies",
                "ba53340457d75531873d54fa82e308ad86d20b0de6128ce8f0c8d609697ff114",
            ),
        ],
    },
];

/// The Gateway API release each Istio release is built against: `sigs.k8s.io/gateway-api`
/// in istio/istio's go.mod at its tag (1.22.0–1.23.6: v1.1.0; 1.24.0–1.24.1: v1.2.0;
/// 1.24.2 a v1.2.1 pseudo-version; to 1.25.5: v1.2.1; 1.26.0 a v1.3.0 pre-release; to
/// 1.27.9: v1.3.0; 1.28.0–1.28.6 and 1.29.0–1.29.2: v1.4.0; 1.28.7–1.28.10 and
/// 1.29.3–1.29.6: v1.4.1; 1.30.x: v1.5.1; master, to become 1.31: v1.6.0). Istio 1.30
/// reads TLSRoute `v1`, which only v1.5 serves (istio/istio.io#17394); 1.28.6 and
/// 1.29.2 ignore a TLSRoute CRD newer than v1.4.0 (pkg/kube/kclient/crdwatcher.go
/// MaximumCRDVersions, istio/istio#59949).
pub const BY_ISTIO_RELEASE: &[(&str, &str)] = &[
    (">=1.22.0, <1.24.0", "v1.1.0"),
    (">=1.24.0, <1.24.2", "v1.2.0"),
    (">=1.24.2, <1.26.0", "v1.2.1"),
    (">=1.26.0, <1.28.0", "v1.3.0"),
    (">=1.28.0, <1.28.7", "v1.4.0"),
    (">=1.28.7, <1.29.0", "v1.4.1"),
    (">=1.29.0, <1.29.3", "v1.4.0"),
    (">=1.29.3, <1.30.0", "v1.4.1"),
    (">=1.30.0, <1.31.0", "v1.5.1"),
    (">=1.31.0", "v1.6.0"),
];

/// A pinned release by its tag.
pub fn release(version: &str) -> Result<&'static CrdRelease, String> {
    RELEASES
        .iter()
        .find(|r| r.version == version)
        .ok_or_else(|| {
            let pinned: Vec<&str> = RELEASES.iter().map(|r| r.version).collect();
            format!(
                "Gateway API {version} is not pinned here; pinned: {}",
                pinned.join(", ")
            )
        })
}

/// The CRD release for an Istio version; one past the table gets the newest.
pub fn crds_for(istio: &Version) -> Result<&'static CrdRelease, String> {
    let found = BY_ISTIO_RELEASE.iter().find(|(range, _)| {
        crate::versions::parse_range(range)
            .is_ok_and(|r| crate::versions::matches_release(&r, istio))
    });
    match found {
        Some((_, version)) => release(version),
        None => Err(format!(
            "no Gateway API release is pinned for Istio {istio}: the table starts at 1.22"
        )),
    }
}

/// One file fetched and checked against its pinned digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedFile {
    pub url: String,
    pub sha256: String,
    pub dest: PathBuf,
}

/// The CRD files of a release, cached under `cache_dir`.
pub fn crd_files(release: &CrdRelease, cache_dir: &Path) -> Vec<PinnedFile> {
    release
        .files
        .iter()
        .map(|(plural, sha256)| {
            let file = format!("gateway.networking.k8s.io_{plural}.yaml");
            PinnedFile {
                url: format!(
                    "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/{}/config/crd/experimental/{file}",
                    release.version
                ),
                sha256: (*sha256).to_owned(),
                dest: cache_dir
                    .join("gateway-api")
                    .join(release.version)
                    .join(file),
            }
        })
        .collect()
}

/// The CRD names a release's files define (`<plural>.gateway.networking.k8s.io`).
pub fn crd_names(release: &CrdRelease) -> Vec<String> {
    release
        .files
        .iter()
        .map(|(plural, _)| format!("{plural}.{}", crate::manifest::GATEWAY_API_GROUP))
        .collect()
}

/// Whether any object needs the Gateway API CRDs.
pub fn uses_gateway_api(objects: &[Object]) -> bool {
    objects.iter().any(Object::is_gateway_api)
}

/// The install overlay, under `manifests/install/`, that sets
/// `PILOT_ENABLE_ALPHA_GATEWAY_API=true` on istiod.
pub const ALPHA_FLAG_OVERLAY: &str = "overlays/alpha-gateway-api.yaml";

/// Whether Istio `istio` reads these objects only with `PILOT_ENABLE_ALPHA_GATEWAY_API`
/// (default false in every release, pilot/pkg/features/experimental.go). Before 1.30
/// TLSRoute and TCPRoute are alpha to Istio: 1.22–1.24 leave them out of the stable
/// collection (pkg/config/schema/collections/extras.go `if features.EnableAlphaGatewayAPI`),
/// 1.25–1.29 also refuse a `TLS` or `TCP` listener (pilot/pkg/config/kube/gateway
/// conversion.go "protocol %q is supported, but only when %v=true is configured").
/// 1.30 makes TLSRoute and TLS listeners stable (controller.go reads TLSRoute v1
/// unconditionally) but still gates TCPRoute and TCP listeners; 1.31 makes those
/// stable too (TCPRoute v1, istio/istio#60766). istio.io sets the flag the same way
/// (content/en/boilerplates/gateway-api-gamma-experimental.md, `enable_alpha_crds`).
pub fn needs_alpha_flag(istio: &Version, objects: &[Object]) -> bool {
    // A release candidate counts as its release.
    objects
        .iter()
        .filter_map(stable_from)
        .any(|minor| (istio.major, istio.minor) < (1, minor))
}

/// The Istio 1.x minor from which a route kind or a listener protocol is read without
/// the alpha flag; `None` for what the flag never gated.
pub fn stable_from_minor(kind_or_protocol: &str) -> Option<u64> {
    match kind_or_protocol {
        "TLSRoute" | "TLS" => Some(30),
        "TCPRoute" | "TCP" => Some(31),
        _ => None,
    }
}

/// The Istio 1.x minor from which Istio reads `object` without the alpha flag, for the
/// kinds and listeners it gates (see [`needs_alpha_flag`]).
pub fn stable_from(object: &Object) -> Option<u64> {
    if !object.is_gateway_api() {
        return None;
    }
    let listeners = object.spec()["listeners"].as_array().into_iter().flatten();
    stable_from_minor(&object.kind).max(
        listeners
            .filter(|_| object.kind == "Gateway")
            .filter_map(|l| stable_from_minor(l["protocol"].as_str().unwrap_or_default()))
            .max(),
    )
}

/// A Gateway Istio deploys itself: Deployment, Service and service account
/// `<name>-<gatewayClassName>` in the Gateway's namespace, pods labelled
/// `gateway.networking.k8s.io/gateway-name: <name>` (istio/istio
/// pilot/pkg/config/kube/gatewaycommon/gateway_utils.go GetDefaultName;
/// manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedGateway {
    pub name: String,
    pub namespace: String,
    pub deployment: String,
}

impl DeployedGateway {
    pub fn proxies(&self) -> Proxies {
        Proxies::Selector {
            namespace: self.namespace.clone(),
            selector: format!("gateway.networking.k8s.io/gateway-name={}", self.name),
        }
    }
}

/// The Gateway API Gateways Istio deploys among the objects: class `istio`, and the
/// ambient waypoints of class `istio-waypoint`, whose Deployment takes the Gateway's
/// own name (`disableNameSuffix` in istio/istio
/// pilot/pkg/config/kube/gateway/deploymentcontroller.go).
pub fn deployed_gateways(objects: &[Object], namespace: &str) -> Vec<DeployedGateway> {
    objects
        .iter()
        .filter(|o| o.is_gateway_api() && o.kind == "Gateway")
        .filter_map(|o| {
            let deployment = match o.spec()["gatewayClassName"].as_str()? {
                "istio" => format!("{}-istio", o.name),
                "istio-waypoint" => o.name.clone(),
                _ => return None,
            };
            Some(DeployedGateway {
                name: o.name.clone(),
                namespace: o.namespace.clone().unwrap_or_else(|| namespace.to_owned()),
                deployment,
            })
        })
        .collect()
}

/// A Gateway API object whose status the run waits for and judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusTarget {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl StatusTarget {
    /// `Kind/name`, as scenarios name it under `status:`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// The Gateway API objects among `objects`, in order.
pub fn status_targets(objects: &[Object], namespace: &str) -> Vec<StatusTarget> {
    objects
        .iter()
        .filter(|o| o.is_gateway_api())
        .map(|o| StatusTarget {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone().unwrap_or_else(|| namespace.to_owned()),
            name: o.name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_istio_release_gets_the_release_its_go_mod_names() {
        let v = |s: &str| Version::parse(s).unwrap();
        let of = |s: &str| crds_for(&v(s)).unwrap().version;
        assert_eq!(of("1.22.1"), "v1.1.0");
        assert_eq!(of("1.24.1"), "v1.2.0");
        assert_eq!(of("1.24.3"), "v1.2.1");
        assert_eq!(of("1.28.6"), "v1.4.0");
        assert_eq!(of("1.28.7"), "v1.4.1");
        assert_eq!(of("1.29.2"), "v1.4.0");
        assert_eq!(of("1.29.6"), "v1.4.1");
        // TLSRoute v1, which Istio 1.30 reads, is served from v1.5 on.
        assert_eq!(of("1.30.3"), "v1.5.1");
        assert_eq!(of("1.31.0-rc.0"), "v1.6.0");
        assert_eq!(of("1.35.0"), "v1.6.0");
        assert!(
            crds_for(&v("1.19.3"))
                .unwrap_err()
                .contains("starts at 1.22")
        );
        assert!(release("v9.9.9").unwrap_err().contains("pinned: v1.1.0"));
        for (range, version) in BY_ISTIO_RELEASE {
            assert!(crate::versions::parse_range(range).is_ok(), "{range}");
            let release = release(version).unwrap();
            assert_eq!(release.files.len(), 8);
            assert!(
                release
                    .files
                    .iter()
                    .all(|(_, d)| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit()))
            );
        }
    }

    #[test]
    fn crd_files_are_fetched_from_the_release_tag_and_cached_per_release() {
        let files = crd_files(release("v1.5.1").unwrap(), Path::new("/cache"));
        assert_eq!(
            files[6].url,
            "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.5.1/config/crd/experimental/gateway.networking.k8s.io_tlsroutes.yaml"
        );
        assert_eq!(
            files[6].dest,
            Path::new("/cache/gateway-api/v1.5.1/gateway.networking.k8s.io_tlsroutes.yaml")
        );
        assert_eq!(
            crd_names(release("v1.5.1").unwrap())[6],
            "tlsroutes.gateway.networking.k8s.io"
        );
    }

    #[test]
    fn an_istio_class_gateway_runs_in_its_namespace_under_its_own_name() {
        let objects = crate::manifest::parse_str(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: egress}\nspec: {gatewayClassName: istio, listeners: []}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: other}\nspec: {gatewayClassName: envoy, listeners: []}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint}\nspec: {gatewayClassName: istio-waypoint, listeners: []}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: classic}\nspec: {selector: {istio: egressgateway}}\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        let gateways = deployed_gateways(&objects, "scenario-ns");
        assert_eq!(
            gateways,
            vec![
                DeployedGateway {
                    name: "egress".into(),
                    namespace: "scenario-ns".into(),
                    deployment: "egress-istio".into(),
                },
                DeployedGateway {
                    name: "waypoint".into(),
                    namespace: "scenario-ns".into(),
                    deployment: "waypoint".into(),
                },
            ]
        );
        assert_eq!(
            gateways[0].proxies().to_string(),
            "scenario-ns/gateway.networking.k8s.io/gateway-name=egress pods"
        );
        let targets: Vec<String> = status_targets(&objects, "scenario-ns")
            .iter()
            .map(StatusTarget::id)
            .collect();
        assert_eq!(
            targets,
            ["Gateway/egress", "Gateway/other", "Gateway/waypoint"]
        );
    }
}
