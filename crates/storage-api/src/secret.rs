//! Strings that never show in `Debug`, `Display` or logs.
//!
//! Used for secret keys, passwords and URLs with passwords in the backend
//! configs. Read the value with [`Secret::expose`] at the one place it is
//! needed (signing a request, opening a connection).

/// A secret string: [`kubepkg_util::secret::Secret`] over `String` —
/// redacted in `Debug` and `Display`, zeroed on drop, deserialized from a
/// plain string.
pub type Secret = kubepkg_util::secret::Secret<String>;

/// `amqp://user:password@host/vhost` with the password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("<redacted>"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::from("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
        let parsed: Secret = serde_json::from_str("\"pw\"").unwrap();
        assert_eq!(parsed.expose(), "pw");
    }

    #[test]
    fn urls_lose_their_password() {
        let r = redact_url("amqp://u:topsecret@127.0.0.1:5672/%2f");
        assert!(!r.contains("topsecret"), "{r}");
        assert!(r.contains("u:"), "{r}");
    }
}
