//! Workload identity as the run sees it. A recording names its own namespace
//! (`default` in the article); the run's client lives in the scenario's namespace.
//! Istio's CA would have issued the client a certificate for that namespace, so the
//! XFCC's certificate is issued again for it, and the peer metadata re-encoded.

use base64::Engine as _;
use prost::Message as _;
use sha2::Digest as _;

/// A SPIFFE workload certificate for `uri` and its XFCC `Hash` (sha256 of the DER,
/// envoy source/common/http/conn_manager_utility.cc mutateXfccRequestHeader).
fn workload_cert(uri: &str) -> Option<(String, String)> {
    let key = rcgen::KeyPair::generate().ok()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).ok()?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().ok()?)];
    let cert = params.self_signed(&key).ok()?;
    let hash = sha2::Sha256::digest(cert.der());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    Some((cert.pem(), hex))
}

/// Percent-encoding as Envoy writes `Cert=` (every byte but unreserved ones).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The XFCC header value with each element's Cert and Hash issued again for its URI.
pub fn reissue_xfcc(value: &str) -> String {
    value
        .split(',')
        .map(|element| {
            let uri = element
                .split(';')
                .find_map(|kv| kv.strip_prefix("URI="))
                .map(|u| u.trim_matches('"').to_owned());
            let has_cert = element.split(';').any(|kv| kv.starts_with("Cert="));
            let (Some(uri), true) = (uri, has_cert) else {
                return element.to_owned();
            };
            let Some((pem, hash)) = workload_cert(&uri) else {
                return element.to_owned();
            };
            element
                .split(';')
                .map(|kv| {
                    if kv.starts_with("Hash=") {
                        format!("Hash={hash}")
                    } else if kv.starts_with("Cert=") {
                        format!("Cert=\"{}\"", percent_encode(&pem))
                    } else {
                        kv.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `X-Envoy-Peer-Metadata` (base64 of a protobuf Struct) with `NAMESPACE` and the
/// namespace inside `OWNER` renamed, and `ISTIO_VERSION` dropped where Istio no
/// longer sends it (from 1.24: istio/istio pilot/pkg/model/context.go, NodeMetadata).
pub fn rewrite_peer_metadata(value: &str, from: &str, to: &str, drop_version: bool) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(bytes) = engine.decode(value) else {
        return value.to_owned();
    };
    let Ok(mut metadata) = prost_types::Struct::decode(bytes.as_slice()) else {
        return value.to_owned();
    };
    if drop_version {
        metadata.fields.remove("ISTIO_VERSION");
    }
    for (key, field) in metadata.fields.iter_mut() {
        if let Some(prost_types::value::Kind::StringValue(s)) = &mut field.kind {
            if key == "NAMESPACE" && s == from {
                *s = to.to_owned();
            }
            *s = s.replace(
                &format!("/namespaces/{from}/"),
                &format!("/namespaces/{to}/"),
            );
        }
    }
    engine.encode(metadata.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reissued_xfcc_names_its_uri_and_hashes_its_certificate() {
        let value = "By=spiffe://cluster.local/ns/istio-system/sa/gw;Hash=00;Cert=\"x\";Subject=\"\";URI=spiffe://cluster.local/ns/t/sa/default";
        let out = reissue_xfcc(value);
        let elements = egress_harness::evidence::xfcc::parse(&out).unwrap();
        assert_eq!(elements.len(), 1);
        assert_eq!(elements[0].hash_matches(), Some(true));
        let info = elements[0].cert().unwrap().unwrap();
        assert_eq!(
            info.san_uris,
            vec!["spiffe://cluster.local/ns/t/sa/default"]
        );
    }
}
