//! Validation of Kubernetes names, label keys and label values.
//!
//! Each kind of name has three functions:
//!
//! - `is_*` — a fast yes/no that does not allocate;
//! - `*_messages` — the list of problems, worded exactly as the Kubernetes
//!   API server words them (so a client can show the same text the server
//!   would have returned), empty when the value is valid;
//! - `validate_*` — a [`Result`] carrying those messages in an
//!   [`Error::Invalid`].
//!
//! | kind | used for | rule |
//! |---|---|---|
//! | DNS-1123 label | most object names (namespaces, services...) | `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters |
//! | DNS-1123 subdomain | names of most other objects, label-key prefixes | dot-separated DNS-1123 labels, at most 253 characters |
//! | DNS-1035 label | service names in some contexts | like a DNS-1123 label but starting with a letter |
//! | qualified name | label and annotation keys | `[prefix/]name`, the prefix a DNS-1123 subdomain, the name at most 63 characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric |
//! | label value | label values | empty, or like a qualified name's name part |
//!
//! Lengths are counted in bytes, as the API server counts them.
//!
//! ```
//! use kubepkg_util::names;
//!
//! assert!(names::is_dns1123_label("my-app"));
//! assert!(names::validate_dns1123_subdomain("example.com").is_ok());
//! assert!(names::is_qualified_name("app.kubernetes.io/name"));
//! let messages = names::dns1123_label_messages("My_App");
//! assert!(messages[0].starts_with("a lowercase RFC 1123 label must consist of"));
//! assert_eq!(names::dns1123_label_messages("a.b"), ["must not contain dots"]);
//! ```

use crate::error::{Error, Result};

/// Longest DNS-1123 label, in bytes.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain, in bytes.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest DNS-1035 label, in bytes.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Longest name part of a qualified name (label key), in bytes.
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Longest label value, in bytes.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// The API server's wording for a regular-expression mismatch.
fn regex_message(message: &str, regex: &str, examples: &[&str]) -> String {
    let mut out = String::with_capacity(message.len() + regex.len() + 64);
    out.push_str(message);
    out.push_str(" (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(regex);
    out.push_str("')");
    out
}

/// The API server has two wordings for the length limit: DNS names say
/// "characters", label keys and values (and label-key prefixes) say "bytes".
fn max_len_message(max: usize, unit: &str) -> String {
    format!("must be no more than {max} {unit}")
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` with no length limit.
fn matches_dns1123_label(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(&first), Some(&last)) => {
            lower_alnum(first)
                && lower_alnum(last)
                && s.iter().all(|&b| lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// Dot-separated DNS-1123 labels with no length limit.
fn matches_dns1123_subdomain(s: &[u8]) -> bool {
    s.split(|&b| b == b'.').all(matches_dns1123_label)
}

fn matches_dns1035_label(s: &[u8]) -> bool {
    matches!(s.first(), Some(b) if b.is_ascii_lowercase()) && matches_dns1123_label(s)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn matches_label_name(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && s.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Whether `value` is a valid DNS-1123 label (RFC 1123), e.g. `my-name`.
pub fn is_dns1123_label(value: &str) -> bool {
    value.len() <= DNS1123_LABEL_MAX_LENGTH && matches_dns1123_label(value.as_bytes())
}

/// The API server's messages for an invalid DNS-1123 label; empty if valid.
pub fn dns1123_label_messages(value: &str) -> Vec<String> {
    let mut messages = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        messages.push(max_len_message(DNS1123_LABEL_MAX_LENGTH, "characters"));
    }
    if !matches_dns1123_label(value.as_bytes()) {
        if matches_dns1123_subdomain(value.as_bytes()) {
            messages.push("must not contain dots".to_owned());
        } else {
            messages.push(regex_message(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    messages
}

/// Whether `value` is a valid DNS-1123 subdomain, e.g. `example.com`.
pub fn is_dns1123_subdomain(value: &str) -> bool {
    value.len() <= DNS1123_SUBDOMAIN_MAX_LENGTH && matches_dns1123_subdomain(value.as_bytes())
}

/// The API server's messages for an invalid DNS-1123 subdomain; empty if valid.
pub fn dns1123_subdomain_messages(value: &str) -> Vec<String> {
    subdomain_messages(value, "characters")
}

fn subdomain_messages(value: &str, unit: &str) -> Vec<String> {
    let mut messages = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        messages.push(max_len_message(DNS1123_SUBDOMAIN_MAX_LENGTH, unit));
    }
    if !matches_dns1123_subdomain(value.as_bytes()) {
        messages.push(regex_message(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    messages
}

/// Whether `value` is a valid DNS-1035 label (starts with a letter), e.g. `my-name`.
pub fn is_dns1035_label(value: &str) -> bool {
    value.len() <= DNS1035_LABEL_MAX_LENGTH && matches_dns1035_label(value.as_bytes())
}

/// The API server's messages for an invalid DNS-1035 label; empty if valid.
pub fn dns1035_label_messages(value: &str) -> Vec<String> {
    let mut messages = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        messages.push(max_len_message(DNS1035_LABEL_MAX_LENGTH, "characters"));
    }
    if !matches_dns1035_label(value.as_bytes()) {
        messages.push(regex_message(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    messages
}

/// Whether `value` is a valid qualified name (a label or annotation key),
/// e.g. `app`, `app.kubernetes.io/name`.
pub fn is_qualified_name(value: &str) -> bool {
    let (prefix, name) = match value.split_once('/') {
        None => (None, value),
        Some((prefix, name)) => (Some(prefix), name),
    };
    if name.contains('/') {
        return false;
    }
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return false;
    }
    name.len() <= QUALIFIED_NAME_MAX_LENGTH && matches_label_name(name.as_bytes())
}

/// The API server's messages for an invalid qualified name; empty if valid.
pub fn qualified_name_messages(value: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                messages.push("prefix part must be non-empty".to_owned());
            } else {
                messages.extend(
                    subdomain_messages(prefix, "bytes")
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            messages.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_message(LABEL_KEY_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return messages;
        }
    };
    if name.is_empty() {
        messages.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        messages.push(format!(
            "name part {}",
            max_len_message(QUALIFIED_NAME_MAX_LENGTH, "bytes")
        ));
    }
    if !matches_label_name(name.as_bytes()) {
        messages.push(format!(
            "name part {}",
            regex_message(
                LABEL_KEY_MSG,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    messages
}

/// Whether `value` is a valid label value (possibly empty), e.g. `v1.2_beta`.
pub fn is_label_value(value: &str) -> bool {
    value.len() <= LABEL_VALUE_MAX_LENGTH
        && (value.is_empty() || matches_label_name(value.as_bytes()))
}

/// The API server's messages for an invalid label value; empty if valid.
pub fn label_value_messages(value: &str) -> Vec<String> {
    let mut messages = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        messages.push(max_len_message(LABEL_VALUE_MAX_LENGTH, "bytes"));
    }
    if !value.is_empty() && !matches_label_name(value.as_bytes()) {
        messages.push(regex_message(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    messages
}

fn to_result(what: &'static str, value: &str, messages: Vec<String>) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let shown: String = value.chars().take(300).collect();
    Err(Error::invalid(
        what,
        format!("{shown:?}: {}", messages.join("; ")),
    ))
}

/// Validates a DNS-1123 label; the error message is the API server's.
pub fn validate_dns1123_label(value: &str) -> Result<()> {
    if is_dns1123_label(value) {
        return Ok(());
    }
    to_result("DNS-1123 label", value, dns1123_label_messages(value))
}

/// Validates a DNS-1123 subdomain; the error message is the API server's.
pub fn validate_dns1123_subdomain(value: &str) -> Result<()> {
    if is_dns1123_subdomain(value) {
        return Ok(());
    }
    to_result(
        "DNS-1123 subdomain",
        value,
        dns1123_subdomain_messages(value),
    )
}

/// Validates a DNS-1035 label; the error message is the API server's.
pub fn validate_dns1035_label(value: &str) -> Result<()> {
    if is_dns1035_label(value) {
        return Ok(());
    }
    to_result("DNS-1035 label", value, dns1035_label_messages(value))
}

/// Validates a qualified name (label key); the error message is the API server's.
pub fn validate_qualified_name(value: &str) -> Result<()> {
    if is_qualified_name(value) {
        return Ok(());
    }
    to_result("label key", value, qualified_name_messages(value))
}

/// Validates a label value; the error message is the API server's.
pub fn validate_label_value(value: &str) -> Result<()> {
    if is_label_value(value) {
        return Ok(());
    }
    to_result("label value", value, label_value_messages(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast checks agree with the message lists on every input.
    #[test]
    fn fast_checks_agree_with_messages() {
        let long = "a".repeat(64);
        let inputs = [
            "",
            "a",
            "A",
            "a-b",
            "-a",
            "a-",
            "a.b",
            "a_b",
            "1",
            "a/b",
            "/a",
            "a/",
            "a/b/c",
            "example.com/Name",
            "Example.com/x",
            "x/-",
            &long,
        ];
        for s in inputs {
            assert_eq!(
                is_dns1123_label(s),
                dns1123_label_messages(s).is_empty(),
                "{s}"
            );
            assert_eq!(
                is_dns1123_subdomain(s),
                dns1123_subdomain_messages(s).is_empty(),
                "{s}"
            );
            assert_eq!(
                is_dns1035_label(s),
                dns1035_label_messages(s).is_empty(),
                "{s}"
            );
            assert_eq!(
                is_qualified_name(s),
                qualified_name_messages(s).is_empty(),
                "{s}"
            );
            assert_eq!(is_label_value(s), label_value_messages(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn validate_wraps_messages() {
        let err = validate_dns1123_label("My_Name").expect_err("invalid");
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        let text = err.to_string();
        assert!(
            text.starts_with("invalid DNS-1123 label: \"My_Name\": a lowercase RFC 1123 label"),
            "{text}"
        );
        assert!(validate_label_value("").is_ok());
    }
}
