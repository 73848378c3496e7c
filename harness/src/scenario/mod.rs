//! A scenario file: what to install, what to apply, which requests to send and what
//! each must show. `load` reads one strictly; see `scenarios/README.md` for the format.

mod expect;
mod load;
mod matcher;
mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use semver::VersionReq;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

pub use expect::{
    ExitCodes, Expect, LogExpect, PeerIdExpect, Presence, Share, StatExpect, StatProxy, TimeBounds,
    UpstreamTlsExpect, XfccExpect,
};
pub use load::{LoadError, load_file, load_str, load_unfinished, placeholders};
pub use matcher::{Matcher, Mismatch, Rule};
pub use template::{Template, VARIABLES};

/// The install profile used when a scenario names none: the seed article's setup.
pub const DEFAULT_INSTALL: &str = "registry-only";
/// The client pod manifest used when a scenario names none.
pub const DEFAULT_CLIENT: &str = "curl";

/// One scenario, as written in `scenarios/<name>.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Must equal the file name without `.yaml`; also the Kubernetes namespace it runs in.
    pub name: Spanned<String>,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    /// The section of the seed article this reproduces.
    #[serde(default)]
    pub section: Option<String>,
    /// Istio versions the scenario applies to.
    #[serde(default = "any_version")]
    pub istio: Range,
    /// Install profile: `manifests/install/<name>.yaml`.
    #[serde(default = "default_install")]
    pub install: Spanned<String>,
    /// Client pod: `manifests/client/<name>.yaml`.
    #[serde(default = "default_client")]
    pub client: Spanned<String>,
    /// More client pods beside `client`, each its own identity; a request names one.
    #[serde(default)]
    pub clients: Vec<Client>,
    /// Manifests applied in the scenario's namespace, relative to `manifests/`.
    #[serde(default)]
    pub manifests: Vec<Spanned<String>>,
    /// Where the manifests differ between the harness's echo server and httpbin.org
    /// (the upstream's trust), stated here rather than patched in behind the scenes.
    #[serde(default)]
    pub upstream: UpstreamSpec,
    #[serde(default)]
    pub known_issue: Option<KnownIssue>,
    /// The Gateway API CRD release the cluster gets instead of the one its Istio is
    /// built against (a pinned tag, e.g. `v1.4.1`): to reproduce a CRD mismatch. Such a
    /// scenario gets a cluster of its own.
    #[serde(default)]
    pub gateway_api_crds: Option<Spanned<String>>,
    /// Gateway API objects' status before any request: `Kind/name` → condition type
    /// (`Accepted`, `Programmed`, `ResolvedRefs`) or `attachedRoutes.<listener>` →
    /// matcher. Every Gateway API object the scenario applies is listed.
    #[serde(default)]
    pub status: BTreeMap<String, BTreeMap<String, Matcher>>,
    pub requests: Vec<Request>,
    /// Where the scenario was read from (set by the loader).
    #[serde(skip)]
    pub source: PathBuf,
}

/// Per upstream mode, manifests swapped for others.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// More names the local upstream answers as (network aliases and certificate
    /// names), beside httpbin.org: e.g. the members of a wildcard family.
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    /// More ports the local upstream serves, each of a kind echo-basic does not have
    /// (a TCP echo, a TLS echo, HTTPS that requires a client certificate): a run with
    /// any gets the project's own echo program as its upstream.
    #[serde(default)]
    pub ports: Vec<UpstreamPort>,
    /// Why the scenario needs the real internet (a host the local upstream does not
    /// serve); with `--upstream local` it is skipped with this reason.
    #[serde(default)]
    pub internet_only: Option<String>,
    #[serde(default)]
    pub local: Option<UpstreamVariant>,
    #[serde(default)]
    pub internet: Option<UpstreamVariant>,
}

/// A port of the local upstream beyond its HTTP 80 and HTTPS 443.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPort {
    pub port: Spanned<u32>,
    pub kind: Spanned<UpstreamKind>,
}

/// What the local upstream serves on a declared port (tests/echo/src/main.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamKind {
    /// Plain TCP: each connection gets back its bytes up to the first newline.
    TcpEcho,
    /// The same inside TLS, with the run's server certificate.
    TlsEcho,
    /// echo-basic's HTTPS, refusing a handshake without a client certificate the
    /// run's CA signed.
    HttpsClientCert,
}

impl UpstreamKind {
    /// The name a scenario writes.
    pub fn name(self) -> &'static str {
        match self {
            UpstreamKind::TcpEcho => "tcp-echo",
            UpstreamKind::TlsEcho => "tls-echo",
            UpstreamKind::HttpsClientCert => "https-client-cert",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamVariant {
    /// `manifest in the list: manifest used instead`, both relative to `manifests/`.
    #[serde(default)]
    pub replace: std::collections::BTreeMap<String, String>,
    /// Added to every request's curl arguments in this mode (e.g. trusting the run's CA).
    #[serde(default)]
    pub curl_args: Vec<String>,
}

/// A known Istio bug or limitation the scenario demonstrates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownIssue {
    pub url: Spanned<String>,
    #[serde(default = "any_version")]
    pub versions: Range,
    #[serde(default)]
    pub mode: KnownIssueMode,
    #[serde(default)]
    pub note: Option<String>,
}

/// How a known issue changes the verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnownIssueMode {
    /// Expected to fail; a pass is reported as unexpectedly passing.
    #[default]
    Xfail,
    /// May fail now and then; a failure is reported but does not fail the run.
    Flaky,
    /// Not run on the affected versions.
    Skip,
}

/// A client pod besides the default one: its own manifest, pod name and identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The pod's name in its manifest; what a request's `client:` names.
    pub name: Spanned<String>,
    /// `manifests/client/<manifest>.yaml`.
    pub manifest: Spanned<String>,
    /// The pod's service account (its `serviceAccountName`), for `${service_account}`.
    #[serde(default = "default_service_account")]
    pub service_account: Spanned<String>,
    /// A namespace of its own, `<scenario>-<namespace>`, made and removed with the
    /// scenario; the scenario's namespace when absent.
    #[serde(default)]
    pub namespace: Option<Spanned<String>>,
    /// The data plane of its own namespace: `sidecar` (injected), `none`, or `ambient`
    /// (ambient clusters only). Only with `namespace`.
    #[serde(default)]
    pub mode: Option<DataPlane>,
}

/// How a client namespace's pods join the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPlane {
    Sidecar,
    None,
    Ambient,
}

impl Client {
    /// The namespace the client runs in, for a scenario named `scenario`.
    pub fn namespace_in(&self, scenario: &str) -> String {
        match &self.namespace {
            Some(suffix) => format!("{scenario}-{}", suffix.value),
            None => scenario.to_owned(),
        }
    }
}

/// A change to the scenario's configuration between two requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Action {
    /// Apply a manifest (relative to `manifests/`) in the scenario's namespace.
    Apply(Spanned<String>),
    /// Delete what a manifest applied earlier in the scenario.
    Delete(Spanned<String>),
    /// Change one object a manifest applied earlier: its body with `merge` merged
    /// in (a JSON merge patch, RFC 7386: `null` removes a key), applied again.
    Patch(Patch),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub file: Spanned<String>,
    /// `Kind/name` of an object in `file`.
    pub object: Spanned<String>,
    pub merge: serde_json::Value,
}

impl Action {
    pub fn file(&self) -> &Spanned<String> {
        match self {
            Action::Apply(f) | Action::Delete(f) => f,
            Action::Patch(p) => &p.file,
        }
    }
}

/// One curl from the client pod and what it must show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub name: Spanned<String>,
    /// Which of the scenario's `clients` sends it; the default client when absent.
    #[serde(default)]
    pub client: Option<Spanned<String>>,
    /// Configuration changes made before this request is sent (after the earlier
    /// requests were judged).
    #[serde(default)]
    pub before: Vec<Action>,
    /// `http://` or `https://` URL; may use `${namespace}`.
    pub url: Spanned<String>,
    /// Extra curl arguments (the harness adds -sS, --max-time, -w and the request id).
    #[serde(default)]
    pub curl_args: Vec<Spanned<String>>,
    /// curl's `--max-time`.
    #[serde(default = "default_max_time")]
    pub max_time_seconds: u32,
    /// Sent `count` times per attempt, `concurrency` at once, for `share` expectations
    /// (a circuit breaker trips only under load).
    #[serde(default)]
    pub repeat: Option<Repeat>,
    pub expect: Expect,
}

/// A burst of the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub count: u32,
    #[serde(default = "one")]
    pub concurrency: u32,
}

fn one() -> u32 {
    1
}

fn default_max_time() -> u32 {
    10
}

fn any_version() -> Range {
    Range(vec![VersionReq::STAR])
}

fn default_install() -> Spanned<String> {
    unspanned(DEFAULT_INSTALL)
}

fn default_client() -> Spanned<String> {
    unspanned(DEFAULT_CLIENT)
}

fn default_service_account() -> Spanned<String> {
    unspanned(crate::model::mesh::CLIENT_SERVICE_ACCOUNT)
}

fn unspanned(value: &str) -> Spanned<String> {
    let nowhere = serde_saphyr::Location::UNKNOWN;
    Spanned::new(value.to_owned(), nowhere, nowhere)
}

impl Scenario {
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// The manifests applied with upstream `mode`, replacements made.
    pub fn manifests_for(&self, mode: crate::model::UpstreamMode) -> Vec<Spanned<String>> {
        self.manifests
            .iter()
            .map(|m| self.replaced(m, mode))
            .collect()
    }

    /// curl arguments every request gets with upstream `mode`.
    pub fn curl_args_for(&self, mode: crate::model::UpstreamMode) -> Vec<String> {
        self.upstream_variant(mode)
            .map(|v| v.curl_args.clone())
            .unwrap_or_default()
    }

    fn upstream_variant(&self, mode: crate::model::UpstreamMode) -> Option<&UpstreamVariant> {
        match mode {
            crate::model::UpstreamMode::Local => self.upstream.local.as_ref(),
            crate::model::UpstreamMode::Internet => self.upstream.internet.as_ref(),
        }
    }

    /// Every client manifest it applies (`manifests/client/<name>.yaml`): the default
    /// client's, then its other clients'.
    pub fn client_manifest_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.client.value.as_str())
            .chain(self.clients.iter().map(|c| c.manifest.value.as_str()))
    }

    /// The pod that sends `request` and its service account.
    pub fn client_of(&self, request: &Request) -> (&str, &str) {
        self.client_for(request).map_or(
            (
                crate::model::mesh::CLIENT_POD,
                crate::model::mesh::CLIENT_SERVICE_ACCOUNT,
            ),
            |c| (c.name.value.as_str(), c.service_account.value.as_str()),
        )
    }

    /// The declared client that sends `request`; `None` for the default client.
    pub fn client_for(&self, request: &Request) -> Option<&Client> {
        request
            .client
            .as_ref()
            .and_then(|name| self.clients.iter().find(|c| c.name.value == name.value))
    }

    /// Every manifest a request's `before` applies, replacements for `mode` made.
    pub fn applied_later(&self, mode: crate::model::UpstreamMode) -> Vec<Spanned<String>> {
        let mut files: Vec<Spanned<String>> = Vec::new();
        for r in &self.requests {
            for a in &r.before {
                if let Action::Apply(f) = a {
                    let f = self.replaced(f, mode);
                    if !files.iter().any(|g| g.value == f.value) {
                        files.push(f);
                    }
                }
            }
        }
        files
    }

    /// `file`, or what the upstream `mode` uses instead.
    pub fn replaced(
        &self,
        file: &Spanned<String>,
        mode: crate::model::UpstreamMode,
    ) -> Spanned<String> {
        match self
            .upstream_variant(mode)
            .and_then(|v| v.replace.get(&file.value))
        {
            Some(other) => Spanned::new(other.clone(), file.referenced, file.defined),
            None => file.clone(),
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.value == tag)
    }

    pub fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(|t| t.value.as_str())
    }

    /// The known issue that applies to this Istio version, if any.
    pub fn known_issue_for(&self, istio: &semver::Version) -> Option<&KnownIssue> {
        self.known_issue
            .as_ref()
            .filter(|k| k.versions.matches(istio))
    }

    pub fn applies_to(&self, istio: &semver::Version) -> bool {
        self.istio.matches(istio)
    }
}

/// A semver range of Istio versions, e.g. `>=1.22, <1.24`; `||` joins alternatives
/// (`>=1.22.4, <1.22.5 || >=1.23.0, <1.23.1`), as a bug fixed on several branches needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range(pub Vec<VersionReq>);

impl Range {
    pub fn parse(text: &str) -> Result<Self, String> {
        let alternatives = text
            .split("||")
            .map(|part| crate::versions::parse_range(part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(alternatives))
    }

    /// Whether the release matches one alternative (pre-releases as their release).
    pub fn matches(&self, istio: &semver::Version) -> bool {
        self.0
            .iter()
            .any(|req| crate::versions::matches_release(req, istio))
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(" || "))
    }
}

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Range::parse(&text).map_err(de::Error::custom)
    }
}

/// A map that refuses the same key twice (ignoring case), for header names.
pub(crate) fn case_insensitive_map<'de, D, V>(
    deserializer: D,
) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct MapVisitor<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of header names to matchers")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<V>()?;
                if out.keys().any(|k: &String| k.eq_ignore_ascii_case(&key)) {
                    return Err(de::Error::custom(format!(
                        "header `{key}` is given twice (header names ignore case)"
                    )));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
}

/// `exit_code: 0` or `exit_code: [7, 28]`.
/// `status:` as a code, a matcher, or a list of matchers (each may name its releases).
pub(crate) fn statuses<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Matcher>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Matcher>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an HTTP status code, a matcher, or a list of matchers")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            let code = u16::try_from(v).map_err(E::custom)?;
            let text = Template::parse(&code.to_string()).map_err(E::custom)?;
            Ok(vec![Matcher::new(matcher::Rule::Equals(text))])
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("{v} is no HTTP status code")))
                .and_then(|v| self.visit_u64(v))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Matcher::deserialize(de::value::MapAccessDeserializer::new(map)).map(|m| vec![m])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element::<Matcher>()? {
                out.push(m);
            }
            if out.is_empty() {
                return Err(de::Error::custom(
                    "an empty list of statuses accepts nothing",
                ));
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(V)
}

pub(crate) fn exit_codes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ExitCodes>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<ExitCodes>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an exit code or a list of exit codes")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            let code = i32::try_from(v).map_err(E::custom)?;
            Ok(Some(ExitCodes(vec![code])))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            let code = i32::try_from(v).map_err(E::custom)?;
            Ok(Some(ExitCodes(vec![code])))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut codes = Vec::new();
            while let Some(code) = seq.next_element::<i32>()? {
                codes.push(code);
            }
            if codes.is_empty() {
                return Err(de::Error::custom(
                    "an empty list of exit codes accepts nothing",
                ));
            }
            Ok(Some(ExitCodes(codes)))
        }
    }
    deserializer.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_may_join_alternatives_for_a_fix_on_several_branches() {
        let r = Range::parse(">=1.22.4, <1.22.5 || >=1.23.0, <1.23.1").unwrap();
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(r.matches(&v("1.22.4")) && r.matches(&v("1.23.0")));
        assert!(!r.matches(&v("1.22.5")) && !r.matches(&v("1.23.1")) && !r.matches(&v("1.22.3")));
        assert!(r.matches(&v("1.23.0-rc.1")));
        assert_eq!(r.to_string(), ">=1.22.4, <1.22.5 || >=1.23.0, <1.23.1");
        assert!(Range::parse(">=1.22 || nonsense").is_err());
    }
}
