//! The generic webhook: the whole event as JSON, signed with HMAC-SHA256.

use crate::Request;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Weft-Signature";

/// `sha256=<lower-case hex HMAC-SHA256 of body keyed by secret>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A JSON POST of `body` to `url`, signed when `secret` is given.
pub fn build(
    url: &str,
    body: &serde_json::Value,
    secret: Option<&[u8]>,
) -> Result<Request, String> {
    let url =
        crate::target_url(url).ok_or_else(|| format!("webhook URL {url:?} is not http(s)"))?;
    let body = body.to_string().into_bytes();
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("User-Agent".to_string(), "weft".to_string()),
    ];
    if let Some(secret) = secret {
        headers.push((SIGNATURE_HEADER.to_string(), sign(secret, &body)));
    }
    Ok(Request {
        method: "POST",
        url,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_vectors() {
        // RFC 4231 test cases 1 and 2.
        let table: [(&[u8], &[u8], &str); 2] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
        ];
        for (key, data, hex) in table {
            assert_eq!(sign(key, data), format!("sha256={hex}"));
        }
    }

    #[test]
    fn builds_signed_and_unsigned() {
        let body = serde_json::json!({"run": {"name": "r"}});
        let r = build("http://127.0.0.1:9/hook", &body, Some(b"s3")).expect("builds");
        assert_eq!(r.url, "http://127.0.0.1:9/hook");
        assert_eq!(
            r.header("x-weft-signature"),
            Some(sign(b"s3", &r.body).as_str())
        );
        assert_eq!(r.json(), body);
        let r = build("https://h/", &body, None).expect("builds");
        assert!(r.header(SIGNATURE_HEADER).is_none());
        assert!(build("ftp://h/", &body, None).is_err());
    }
}
