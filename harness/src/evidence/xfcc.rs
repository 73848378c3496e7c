//! X-Forwarded-Client-Cert as Envoy writes it (source/common/http/conn_manager_utility.cc):
//! elements separated by `,`, `Key=value` pairs by `;`, values optionally in double
//! quotes (inside which `,` and `;` are literal and `\"` is a quote), `Cert` and
//! `Chain` URL-encoded PEM.

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// One proxy's statement about the client certificate it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub by: Vec<String>,
    pub hash: Option<String>,
    /// The URL-decoded PEM of `Cert`.
    pub cert_pem: Option<String>,
    pub subject: Option<String>,
    pub uri: Vec<String>,
    pub dns: Vec<String>,
}

/// What the certificate in `Cert` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub san_uris: Vec<String>,
    pub san_dns: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// Hex SHA-256 of the DER.
    pub sha256: String,
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(text: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> Result<String, String> {
    let value = value.trim();
    match value.strip_prefix('"') {
        None => Ok(value.to_owned()),
        Some(rest) => {
            let inner = rest
                .strip_suffix('"')
                .ok_or_else(|| format!("unclosed quote in `{value}`"))?;
            Ok(inner.replace("\\\"", "\""))
        }
    }
}

/// Parses the whole header value.
pub fn parse(header: &str) -> Result<Vec<Element>, String> {
    let mut elements = Vec::new();
    for raw in split_unquoted(header, b',') {
        if raw.trim().is_empty() {
            return Err("an empty element".into());
        }
        let mut e = Element::default();
        for pair in split_unquoted(raw, b';') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not Key=value"))?;
            let value = unquote(value)?;
            match key.trim().to_ascii_lowercase().as_str() {
                "by" => e.by.push(value),
                "hash" => e.hash = Some(value),
                "cert" => e.cert_pem = Some(percent_decode(&value)?),
                "chain" => {}
                "subject" => e.subject = Some(value),
                "uri" => e.uri.push(value),
                "dns" => e.dns.push(value),
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        elements.push(e);
    }
    Ok(elements)
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or("a cut-off %-escape in Cert")?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex} in Cert"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "Cert is not UTF-8 once decoded".to_owned())
}

impl Element {
    /// Parses the certificate in `Cert`.
    pub fn cert(&self) -> Option<Result<CertInfo, String>> {
        self.cert_pem.as_deref().map(cert_info)
    }

    /// Whether `Hash` is the SHA-256 of the certificate's DER; `None` when either is missing.
    pub fn hash_matches(&self) -> Option<bool> {
        let hash = self.hash.as_deref()?;
        let cert = self.cert()?.ok()?;
        Some(cert.sha256.eq_ignore_ascii_case(hash))
    }
}

/// Reads a PEM certificate.
pub fn cert_info(pem: &str) -> Result<CertInfo, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("Cert is not PEM: {e}"))?;
    let (_, cert) = X509Certificate::from_der(&pem.contents)
        .map_err(|e| format!("Cert is not an X.509 certificate: {e}"))?;
    let mut san_uris = Vec::new();
    let mut san_dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) => san_uris.push((*u).to_owned()),
                GeneralName::DNSName(d) => san_dns.push((*d).to_owned()),
                _ => {}
            }
        }
    }
    let sha256 = Sha256::digest(&pem.contents)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let time = |t: x509_parser::time::ASN1Time| t.to_datetime().to_string();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        san_uris,
        san_dns,
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_elements_and_pairs_outside_quotes() {
        let header = r#"By=spiffe://a;Hash=ab;Subject="CN=x, O=y;z";URI=spiffe://b;DNS=d1;DNS=d2,By=spiffe://c;Subject="";URI=spiffe://d"#;
        let elements = parse(header).unwrap();
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0].subject.as_deref(), Some("CN=x, O=y;z"));
        assert_eq!(elements[0].dns, vec!["d1", "d2"]);
        assert_eq!(elements[1].uri, vec!["spiffe://d"]);
        assert_eq!(elements[1].subject.as_deref(), Some(""));
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "",
            "By",
            "By=a;;",
            "Subject=\"open",
            "Cert=\"%4\"",
            "Cert=\"%zz\"",
            "Color=red",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
