//! The parts of Istio's mesh config a scenario's verdict depends on, read from an
//! install profile (`manifests/install/*.yaml`, `spec.meshConfig`) or from a running
//! mesh (ConfigMap `istio-system/istio`, key `mesh`), so that `--cluster existing`
//! runs only the scenarios whose profile the mesh matches.

use std::fmt;
use std::path::Path;

use serde_json::Value;

/// The ConfigMap istiod reads its mesh config from, and its key (istiod's
/// `--meshConfig` default; a revision's ConfigMap is `istio-<rev>`).
pub const CONFIG_MAP: &str = "istio";
pub const CONFIG_MAP_KEY: &str = "mesh";

/// What a scenario's expectations assume of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// `REGISTRY_ONLY` or `ALLOW_ANY`.
    pub outbound_traffic_policy: String,
    /// Where proxies write their access log (`""`: off).
    pub access_log_file: String,
    /// `TEXT` or `JSON`; the harness parses Istio's TEXT format only.
    pub access_log_encoding: String,
    /// A custom format replaces the one the harness parses.
    pub custom_access_log_format: bool,
    /// Metadata-exchange headers only to in-mesh destinations.
    pub metadata_exchange_in_mesh: bool,
}

impl MeshConfig {
    /// From a mesh config document. Unset fields take Istio's defaults
    /// (istio/istio pkg/config/mesh/mesh.go `DefaultMeshConfig`: outbound
    /// `ALLOW_ANY`, no access log file, `TEXT`; proxyHeaders unset = send them).
    pub fn from_value(mesh: &Value) -> Self {
        let text = |path: &[&str]| {
            path.iter()
                .try_fold(mesh, |v, key| v.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            outbound_traffic_policy: text(&["outboundTrafficPolicy", "mode"])
                .unwrap_or_else(|| "ALLOW_ANY".into()),
            access_log_file: text(&["accessLogFile"]).unwrap_or_default(),
            access_log_encoding: text(&["accessLogEncoding"]).unwrap_or_else(|| "TEXT".into()),
            custom_access_log_format: text(&["accessLogFormat"]).is_some_and(|f| !f.is_empty()),
            metadata_exchange_in_mesh: text(&[
                "defaultConfig",
                "proxyHeaders",
                "metadataExchangeHeaders",
                "mode",
            ])
            .is_some_and(|m| m == "IN_MESH"),
        }
    }

    /// From the YAML text of the ConfigMap's `mesh` key.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let value: Value = serde_saphyr::from_str(yaml)
            .map_err(|e| format!("the mesh config is not YAML: {e}"))?;
        Ok(Self::from_value(&value))
    }

    /// The mesh config an install profile sets up.
    pub fn of_profile(file: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let value: Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let mesh = value
            .pointer("/spec/meshConfig")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(Self::from_value(&mesh))
    }

    /// Why a mesh with this config cannot stand in for `profile`, if it cannot.
    pub fn mismatch(&self, profile: &MeshConfig) -> Option<String> {
        let mut differences = Vec::new();
        if self.outbound_traffic_policy != profile.outbound_traffic_policy {
            differences.push(format!(
                "outboundTrafficPolicy is {}, the profile sets {}",
                self.outbound_traffic_policy, profile.outbound_traffic_policy
            ));
        }
        if self.access_log_file.is_empty() && !profile.access_log_file.is_empty() {
            differences.push(format!(
                "accessLogFile is unset (no access log), the profile sets {}",
                profile.access_log_file
            ));
        }
        if self.access_log_encoding != profile.access_log_encoding {
            differences.push(format!(
                "accessLogEncoding is {}, the harness reads {}",
                self.access_log_encoding, profile.access_log_encoding
            ));
        }
        if self.custom_access_log_format && !profile.custom_access_log_format {
            differences.push(
                "accessLogFormat is customised; the harness reads Istio's default TEXT format"
                    .into(),
            );
        }
        if self.metadata_exchange_in_mesh != profile.metadata_exchange_in_mesh {
            differences.push(format!(
                "metadataExchangeHeaders mode is {}, the profile sets {}",
                in_mesh(self.metadata_exchange_in_mesh),
                in_mesh(profile.metadata_exchange_in_mesh)
            ));
        }
        (!differences.is_empty()).then(|| differences.join("; "))
    }
}

fn in_mesh(on: bool) -> &'static str {
    if on { "IN_MESH" } else { "unset" }
}

impl fmt::Display for MeshConfig {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "outboundTrafficPolicy {}, accessLogFile {}, {}{}, metadataExchangeHeaders {}",
            self.outbound_traffic_policy,
            if self.access_log_file.is_empty() {
                "unset"
            } else {
                &self.access_log_file
            },
            self.access_log_encoding,
            if self.custom_access_log_format {
                " (custom format)"
            } else {
                ""
            },
            in_mesh(self.metadata_exchange_in_mesh)
        )
    }
}

/// The Istio release an istiod image runs, from its tag (`…/pilot:1.22.1`,
/// `…/pilot:1.22.1-distroless`); `None` for tags that are not a release.
pub fn istio_version_of_image(image: &str) -> Option<semver::Version> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let (_, tag) = last.split_once(':')?;
    let tag = tag
        .strip_suffix("-distroless")
        .or_else(|| tag.strip_suffix("-debug"))
        .unwrap_or(tag);
    let version = semver::Version::parse(tag).ok()?;
    version.pre.is_empty().then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str) -> MeshConfig {
        MeshConfig::of_profile(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../manifests/install")
                .join(format!("{name}.yaml")),
        )
        .expect("profile")
    }

    #[test]
    fn the_install_profiles_read_as_they_are_written() {
        let registry_only = profile("registry-only");
        assert_eq!(registry_only.outbound_traffic_policy, "REGISTRY_ONLY");
        assert_eq!(registry_only.access_log_file, "/dev/stdout");
        assert!(!registry_only.metadata_exchange_in_mesh);
        assert_eq!(profile("allow-any").outbound_traffic_policy, "ALLOW_ANY");
        assert!(profile("in-mesh-headers").metadata_exchange_in_mesh);
    }

    #[test]
    fn a_running_mesh_matches_its_own_profile_and_says_how_it_differs_from_others() {
        // The shape istioctl writes into the ConfigMap for registry-only.
        let mesh = MeshConfig::parse(
            "accessLogFile: /dev/stdout\ndefaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\nrootNamespace: istio-system\n",
        )
        .expect("mesh");
        assert_eq!(mesh.mismatch(&profile("registry-only")), None);
        let why = mesh.mismatch(&profile("allow-any")).expect("differs");
        assert_eq!(
            why,
            "outboundTrafficPolicy is REGISTRY_ONLY, the profile sets ALLOW_ANY"
        );
        assert!(
            mesh.mismatch(&profile("in-mesh-headers"))
                .expect("differs")
                .contains("metadataExchangeHeaders mode is unset, the profile sets IN_MESH")
        );
    }

    #[test]
    fn istio_defaults_fill_what_the_mesh_config_leaves_out() {
        let bare = MeshConfig::parse("rootNamespace: istio-system\n").expect("mesh");
        assert_eq!(bare.outbound_traffic_policy, "ALLOW_ANY");
        let why = bare.mismatch(&profile("allow-any")).expect("no access log");
        assert!(why.contains("accessLogFile is unset"), "{why}");
        let json = MeshConfig::parse(
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\noutboundTrafficPolicy: {mode: ALLOW_ANY}\n",
        )
        .expect("mesh");
        assert!(
            json.mismatch(&profile("allow-any"))
                .expect("json")
                .contains("accessLogEncoding is JSON")
        );
        assert!(MeshConfig::parse("a: [").is_err());
    }

    #[test]
    fn istiod_image_tags_name_the_release() {
        let v = |s| istio_version_of_image(s).map(|v| v.to_string());
        assert_eq!(v("docker.io/istio/pilot:1.22.1").as_deref(), Some("1.22.1"));
        assert_eq!(
            v("gcr.io/istio-release/pilot:1.30.3-distroless").as_deref(),
            Some("1.30.3")
        );
        assert_eq!(
            v("localhost:5000/istio/pilot:1.24.2@sha256:abc").as_deref(),
            Some("1.24.2")
        );
        assert_eq!(v("docker.io/istio/pilot:latest"), None);
        assert_eq!(v("docker.io/istio/pilot:1.31.0-rc.0"), None);
        assert_eq!(v("localhost:5000/pilot"), None);
    }
}
