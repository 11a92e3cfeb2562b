//! Request signers of the vendor APIs, ours (no vendor SDK is used):
//! [`tc3`] (Tencent Cloud API 3.0, `TC3-HMAC-SHA256`) and [`acs3`]
//! (Alibaba Cloud, `ACS3-HMAC-SHA256`), over the shared primitives here.
//!
//! Each signer returns every intermediate step (canonical request, string
//! to sign, signature) so that its tests compare them with the vendor's
//! published worked example, byte for byte. The secrets are taken as
//! [`Secret`](kubepkg_util::secret::Secret) and never appear in what is
//! returned.

pub mod acs3;
pub mod tc3;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Lowercase hex of the SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cold]
fn unreachable_hmac() -> ! {
    // Hmac<Sha256> takes keys of every length (RFC 2104 hashes long ones).
    panic!("HMAC-SHA256 refused a key, which it never does")
}

/// Compares two signatures in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~` is
/// escaped as `%XX` (upper-case hex), so a space is `%20` and `*` is `%2A`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string both algorithms use: pairs sorted by name
/// (then value), names and values percent-encoded, joined with `&`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(percent_encode("a b*c~/"), "a%20b%2Ac~%2F");
        let q = vec![
            ("b".to_string(), "2 3".to_string()),
            ("a".to_string(), "1".to_string()),
        ];
        assert_eq!(canonical_query(&q), "a=1&b=2%203");
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
