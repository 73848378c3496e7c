//! One GET on Envoy's admin port, over any byte stream (a kube port-forward in a run,
//! a TCP connection in the tests against a real Envoy).
//!
//! Envoy's admin codec refuses HTTP/1.0 with `426 Upgrade Required` (envoy
//! source/common/http/http1/codec_impl.cc: `accept_http_10_` is false in the admin's
//! default Http1Settings, source/server/admin/admin.cc) and chunk-encodes its HTTP/1.1
//! answers. So: HTTP/1.1, `Connection: close` (the end of the body is the end of the
//! stream), and a chunked-body decoder.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `GET path` and the body of a `200` answer.
pub async fn get<S>(stream: &mut S, path: &str) -> Result<String, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending GET {path}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("reading the answer to GET {path}: {e}"))?;
    body_of(&response)
}

/// The body of an HTTP/1.x answer if its status is 200, de-chunked.
pub fn body_of(response: &[u8]) -> Result<String, String> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP (no end of headers)")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("Envoy admin answered {status_line}"));
    }
    let chunked = head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let bytes = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    String::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_owned())
}

/// RFC 9112 §7.1 chunked transfer coding: `<hex size>[;ext]\r\n<data>\r\n`… `0\r\n\r\n`.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut off")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err("a chunk is cut off".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_plain_bodies_are_read_and_other_statuses_refused() {
        let chunked = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"con\r\n8;x=y\r\nfigs\": [\r\n2\r\n]}\r\n0\r\n\r\n";
        assert_eq!(body_of(chunked).unwrap(), "{\"configs\": []}");
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(body_of(plain).unwrap(), "{}");
        let refused = b"HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\n\r\n";
        assert!(body_of(refused).unwrap_err().contains("426"));
        assert!(body_of(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nff\r\nab").is_err());
    }
}
