//! Checks run before any request is sent: a name that fails here yields
//! [`Error::Invalid`] and nothing is changed anywhere.

use crate::error::{Error, Result};

/// Longest object key, in bytes (the S3 limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Checks a bucket name against the S3 naming rules: 3–63 characters of
/// lowercase letters, digits, `.` and `-`, starting and ending with a letter or
/// digit, no `..`, `.-` or `-.`, not shaped like an IPv4 address, and none of
/// the reserved prefixes / suffixes (`xn--`, `sthree-`, `-s3alias`, `--ol-s3`).
pub fn bucket_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("bucket name {name:?}: {why}")));
    if name.len() < 3 || name.len() > 63 {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("must not contain '..', '.-' or '-.'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(p) {
            return bad(&format!("the prefix {p:?} is reserved"));
        }
    }
    for s in ["-s3alias", "--ol-s3", ".mrap", "--x-s3"] {
        if name.ends_with(s) {
            return bad(&format!("the suffix {s:?} is reserved"));
        }
    }
    Ok(())
}

/// Longest `/`-separated segment of an object key, in bytes (MinIO's limit,
/// a file-name limit).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Checks an object key. The rules are MinIO's (and the S3 SDK's), so every
/// backend accepts exactly the keys MinIO stores under their own name:
///
/// - 1–1024 bytes, no control characters (MinIO refuses NUL; the others are
///   refused here because XML listings cannot carry them safely), not only
///   whitespace (the S3 SDK takes such a key for a missing one);
/// - not absolute: MinIO would store `/a` as `a`;
/// - no empty segment (`a//b`); one trailing `/` is fine (`dir/`);
/// - no segment longer than 255 bytes;
/// - no `.` or `..` segment, also padded with spaces (` .. `), so a key can
///   never escape its bucket on a filesystem-backed store.
pub fn object_key(key: &str) -> Result<()> {
    let bad = |why: &str| {
        let shown: String = key.chars().take(64).collect();
        let more = if shown.len() < key.len() { "..." } else { "" };
        Err(Error::Invalid(format!("object key {shown:?}{more}: {why}")))
    };
    if key.is_empty() {
        return bad("must not be empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("must be at most 1024 bytes");
    }
    if key.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    if key.trim().is_empty() {
        return bad("must not be only whitespace");
    }
    if key.starts_with('/') {
        return bad("must not be absolute (start with '/')");
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    for seg in body.split('/') {
        if seg.is_empty() {
            return bad("must not contain an empty path segment ('//')");
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return bad("a path segment (between '/') must be at most 255 bytes");
        }
        if matches!(seg.trim_matches(' '), "." | "..") {
            return bad("must not contain '.' or '..' path segments");
        }
    }
    Ok(())
}

/// Checks a key prefix used for listing: like a key, but may be empty.
pub fn key_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        Ok(())
    } else if prefix.len() > MAX_KEY_LEN || prefix.chars().any(char::is_control) {
        Err(Error::Invalid(format!(
            "prefix {prefix:?}: at most 1024 bytes without control characters"
        )))
    } else {
        Ok(())
    }
}

/// Checks and normalizes user metadata: keys become lowercase and must be
/// non-empty ASCII letters, digits, `-` and `_`; values must be printable
/// ASCII (what S3 carries in `x-amz-meta-*` headers unchanged).
pub fn metadata(
    meta: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in meta {
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Invalid(format!(
                "metadata key {k:?}: only ASCII letters, digits, '-' and '_'"
            )));
        }
        if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Error::Invalid(format!(
                "metadata value of {k:?}: only printable ASCII"
            )));
        }
        out.insert(k.to_ascii_lowercase(), v.clone());
    }
    Ok(out)
}

/// Checks an AMQP exchange or queue name (at most 255 bytes, no control
/// characters). `allow_empty` accepts the default exchange / server-named
/// queue.
pub fn amqp_name(what: &str, name: &str, allow_empty: bool) -> Result<()> {
    if name.is_empty() && !allow_empty {
        return Err(Error::Invalid(format!("{what} name must not be empty")));
    }
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{what} name {name:?}: at most 255 bytes without control characters"
        )));
    }
    Ok(())
}

/// Longest AMQP short string, in bytes.
pub const MAX_AMQP_SHORT: usize = 255;

/// Checks a value AMQP 0-9-1 sends as a short string (routing keys, header
/// names, message / correlation ids, reply-to, content type, consumer tags):
/// at most 255 bytes.
pub fn amqp_short(what: &str, value: &str) -> Result<()> {
    if value.len() > MAX_AMQP_SHORT {
        return Err(Error::Invalid(format!(
            "{what} is {} bytes long; AMQP allows at most {MAX_AMQP_SHORT}",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_rules() {
        for ok in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "under_score",
            "",
        ] {
            let e = bucket_name(bad).unwrap_err();
            assert_eq!(e.kind(), kubepkg_util::ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn key_rules() {
        let seg255 = format!("d/{}", "s".repeat(255));
        let s255 = "s".repeat(255);
        let len1024 = format!("{s255}/{s255}/{s255}/{}/x", "t".repeat(254));
        assert_eq!(len1024.len(), MAX_KEY_LEN);
        for ok in [
            "a",
            "dir/file.txt",
            "dir/",
            "a/b/",
            ".hidden",
            "x..y",
            "ünï",
            " x",
            "a/ /b",
            "x .. y",
            "\u{a0}..",
            &seg255,
            &len1024,
        ] {
            assert!(object_key(ok).is_ok(), "{ok}");
        }
        let seg256 = format!("d/{}", "s".repeat(256));
        for bad in [
            "",
            "/etc/passwd",
            "../up",
            "a/../../b",
            "a/./b",
            "..",
            " .. ",
            "a/ ./b",
            "nul\0",
            "tab\t",
            "a//b",
            "a/b//",
            "/",
            " ",
            "\u{a0} ",
            &seg256,
            &format!("{len1024}x"),
        ] {
            assert!(object_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_is_lowercased_and_checked() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("Owner".to_owned(), "team-a".to_owned());
        let n = metadata(&m).unwrap();
        assert_eq!(n.get("owner").map(String::as_str), Some("team-a"));
        m.insert("bad key".to_owned(), "v".to_owned());
        assert!(metadata(&m).is_err());
    }
}
