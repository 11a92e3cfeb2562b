//! ACS3-HMAC-SHA256 checks of a request (its signature, date and nonce)
//! and the URI helpers the simulators share.

use axum::http::{HeaderMap, Method, Uri};
use kubepkg_platform::provider::sign::acs3;
use kubepkg_util::secret::Secret;
use std::collections::BTreeSet;

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Percent-decodes `s` once.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query pairs of a URI, decoded.
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Checks an ACS3-signed request (shared with the ACR simulator).
/// The error is (HTTP status, code, message), for the caller to answer in
/// its API's shape (ROA or RPC).
pub(crate) fn check_acs3(
    key_id: &str,
    secret: &Secret<String>,
    nonces: &mut BTreeSet<String>,
    m: &Method,
    uri: &Uri,
    h: &HeaderMap,
    body: &[u8],
) -> Result<(), (u16, &'static str, &'static str)> {
    let Some(auth) = acs3::parse_authorization(header(h, "authorization")) else {
        return Err((
            400,
            "MissingAuthorization",
            "Authorization is mandatory for this action.",
        ));
    };
    if auth.access_key_id != key_id {
        return Err((
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    let date = header(h, "x-acs-date");
    let fresh = date
        .parse::<jiff::Timestamp>()
        .map(|t| (jiff::Timestamp::now().as_second() - t.as_second()).abs() <= 900)
        .unwrap_or(false);
    if !fresh {
        return Err((
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let nonce = header(h, "x-acs-signature-nonce");
    if nonce.is_empty() || !nonces.insert(nonce.to_string()) {
        return Err((
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    let query = query_pairs(uri);
    let ct = h.get("content-type").and_then(|v| v.to_str().ok());
    let req = acs3::Acs3Request {
        method: m.as_str(),
        host: header(h, "host"),
        path: &decode(uri.path()),
        query: &query,
        content_type: ct,
        action: header(h, "x-acs-action"),
        version: header(h, "x-acs-version"),
        date,
        nonce,
        body,
    };
    if !acs3::verify(&req, &auth, secret) {
        return Err((
            400,
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation.",
        ));
    }
    Ok(())
}
