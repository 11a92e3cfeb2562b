//! The HTTP plumbing the registry backends share: the client and its
//! timeouts, bounded body reads, error bodies, `Retry-After`, retries and
//! `Link` pagination restricted to the origin being paged.

use std::future::Future;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use kubepkg_util::retry::{RetryDecision, RetryPolicy, retry};
use reqwest::header::{HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::config::RegistryConfig;
use crate::{Error, Result};

/// Manifests larger than this are refused (registries refuse to store
/// larger ones: 4 MiB in CNCF Distribution, Harbor, ACR and ECR).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// JSON API responses (token, catalog page, Harbor list page) larger than this are refused.
pub(crate) const MAX_JSON_BYTES: u64 = 16 << 20;
/// Blobs read into memory ([`DistributionRegistry::get_blob`](crate::distribution::DistributionRegistry::get_blob)) are refused beyond this.
pub(crate) const MAX_BLOB_IN_MEMORY: u64 = 16 << 20;
/// Error bodies are read up to this much; the rest is dropped.
pub(crate) const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;
/// The longest `Retry-After` waited for; a longer one ends the retries (the
/// error carries the server's figure for the caller to act on).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Configured timeouts are clamped to `1 s ..= 1 day` (reqwest panics on
/// a read timeout too large to add to an `Instant`).
const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

/// A configured timeout in seconds, clamped to `1 ..= MAX_TIMEOUT_SECS`.
fn timeout(secs: u64) -> Duration {
    Duration::from_secs(secs.clamp(1, MAX_TIMEOUT_SECS))
}

/// The shared HTTP client of one registry config.
#[derive(Clone)]
pub(crate) struct HttpClient {
    /// Connect and per-read timeouts, no total timeout.
    pub client: reqwest::Client,
    /// The total timeout of an API call (not of a blob stream).
    pub api_timeout: Duration,
    /// `None`: no retries.
    retry: Option<RetryPolicy>,
}

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// A small API call: the config's total timeout applies.
    Api,
    /// A body of unknown, possibly large size (blobs): only the connect and
    /// idle (per-read) timeouts apply.
    Stream,
}

impl HttpClient {
    /// Builds the client of a registry config: TLS verified unless
    /// `danger_accept_invalid_certs`, extra CA from `ca_file`.
    pub(crate) fn new(config: &RegistryConfig, backend: &'static str) -> Result<Self> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("kubepkg-image-api/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout(config.connect_timeout_secs))
            .read_timeout(timeout(config.read_timeout_secs))
            .pool_max_idle_per_host(64);
        if config.allow_http {
            tracing::warn!(
                backend,
                url = %config.url,
                "registry config allows plain http: credentials and content travel unencrypted"
            );
        }
        if config.danger_accept_invalid_certs {
            tracing::warn!(
                backend,
                url = %config.url,
                "registry config skips TLS certificate verification (danger_accept_invalid_certs)"
            );
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Config(format!("ca_file {}: {e}", path.display())))?;
            b = b.tls_certs_merge(certs);
        }
        let client = b
            .build()
            .map_err(|e| Error::Config(format!("{backend} http client: {e}")))?;
        let retry = (config.max_retries > 0).then(|| {
            RetryPolicy::default()
                .initial_delay(Duration::from_millis(200))
                .max_delay(Duration::from_secs(5))
                .max_attempts(config.max_retries.saturating_add(1))
                .max_retry_after(MAX_RETRY_AFTER)
        });
        Ok(HttpClient {
            client,
            api_timeout: timeout(config.timeout_secs),
            retry,
        })
    }

    /// Applies the budget's timeout to a request.
    pub(crate) fn budget(
        &self,
        req: reqwest::RequestBuilder,
        budget: Budget,
    ) -> reqwest::RequestBuilder {
        match budget {
            Budget::Api => req.timeout(self.api_timeout),
            Budget::Stream => req,
        }
    }

    /// Runs `attempt` (one complete try of a call) and retries it as the
    /// method allows: GET, HEAD and DELETE on the answers
    /// [`kubepkg_util::http_status::classify`] calls retryable (408, 429,
    /// 500, 502, 503, 504) and on transport failures, honouring `Retry-After`; any other method
    /// (POST, PUT, PATCH) only when the connection could not be established,
    /// so nothing was sent. `attempt` must turn a retryable status into an
    /// error (see [`retryable_status`]).
    pub(crate) async fn retrying<T, F, Fut>(&self, method: &Method, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(policy) = &self.retry else {
            let mut attempt = attempt;
            return attempt().await;
        };
        let idempotent = matches!(*method, Method::GET | Method::HEAD | Method::DELETE);
        let classify = move |e: &Error| -> RetryDecision {
            let again = match e {
                Error::Registry { status, .. } => {
                    idempotent && kubepkg_util::http_status::retryable(*status)
                }
                Error::Transport { source, .. } => {
                    idempotent
                        || source
                            .as_ref()
                            .and_then(|s| s.downcast_ref::<reqwest::Error>())
                            .is_some_and(reqwest::Error::is_connect)
                }
                _ => false,
            };
            if !again {
                return RetryDecision::Stop;
            }
            match kubepkg_util::HasErrorKind::retry_after(e) {
                Some(wait) => RetryDecision::RetryAfter(wait),
                None => RetryDecision::Retry,
            }
        };
        retry(policy, classify, attempt).await
    }
}

/// Whether a status is one a retry may cure: the flag of the table every
/// kubepkg HTTP backend shares ([`kubepkg_util::http_status::classify`]:
/// 408, 429, 500, 502, 503, 504).
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    kubepkg_util::http_status::retryable(status.as_u16())
}

/// Maps a transport error. (This crate decodes JSON itself, so reqwest's
/// "decode" errors are failures to read a body — a broken or stalled
/// connection — and are transport errors too.)
pub(crate) fn transport(
    backend: &'static str,
    operation: &'static str,
    target: &str,
    e: reqwest::Error,
) -> Error {
    let timeout = e.is_timeout();
    let e = e.without_url();
    Error::Transport {
        backend,
        operation,
        target: target.to_string(),
        message: e.to_string(),
        timeout,
        source: Some(Box::new(e)),
    }
}

/// Reads a body of at most `limit` bytes; a larger one (announced by
/// `Content-Length` or found while reading) is [`Error::TooLarge`] and is
/// not read further.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: u64,
    what: &'static str,
    backend: &'static str,
    operation: &'static str,
    target: &str,
) -> Result<Bytes> {
    let too_large = || Error::TooLarge {
        backend,
        operation,
        target: target.to_string(),
        what,
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport(backend, operation, target, e))?
    {
        if (buf.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads a JSON body (at most [`MAX_JSON_BYTES`]).
pub(crate) async fn json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    backend: &'static str,
    operation: &'static str,
    target: &str,
) -> Result<T> {
    let bytes = read_limited(resp, MAX_JSON_BYTES, "response", backend, operation, target).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
        backend,
        operation,
        target: target.to_string(),
        message: format!("bad JSON: {e}"),
    })
}

/// The first `limit` bytes of a body (the rest is dropped with the connection).
async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    buf
}

/// A `Retry-After` header: delta-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Reads an error response: `{"errors":[{"code","message"}]}` (both the
/// distribution spec and Harbor use this shape). At most
/// [`MAX_ERROR_BODY_BYTES`] of the body are read.
pub(crate) async fn error_from_response(
    backend: &'static str,
    operation: &'static str,
    target: &str,
    resp: reqwest::Response,
) -> Error {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        message: Option<String>,
    }
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let raw = read_prefix(resp, MAX_ERROR_BODY_BYTES as usize).await;
    let text = String::from_utf8_lossy(&raw);
    let parsed = serde_json::from_str::<Body>(&text).ok();
    let first = parsed.as_ref().and_then(|b| b.errors.first());
    let code = first.and_then(|i| match &i.code {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    });
    let mut message = first
        .and_then(|i| i.message.clone())
        .filter(|m| !m.is_empty())
        .map(|m| truncate(m, 1000))
        .unwrap_or_else(|| {
            let t = text.trim();
            if t.is_empty() || t.len() > 300 {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                t.to_string()
            }
        });
    if let Some(b) = &parsed
        && b.errors.len() > 1
    {
        message.push_str(&format!(" (and {} more)", b.errors.len() - 1));
    }
    Error::Registry {
        backend,
        operation,
        target: target.to_string(),
        status: status.as_u16(),
        code,
        message,
        retry_after,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// The `rel="next"` target of a `Link` header, if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(LINK) {
        let Ok(s) = value.to_str() else { continue };
        for part in s.split(',') {
            let part = part.trim();
            let Some(end) = part.find('>') else { continue };
            if !part.starts_with('<') {
                continue;
            }
            let target = &part[1..end];
            let params = &part[end + 1..];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return Some(target.to_string());
            }
        }
    }
    None
}

/// The next page of a listing at `current`: the `Link: rel="next"` target
/// resolved against it, which must have the same origin (scheme, host and
/// port) — a link elsewhere is [`Error::Refused`], since the next request
/// would carry the registry's credentials. `None` when there is no next page.
pub(crate) fn next_page(
    current: &Url,
    headers: &HeaderMap,
    backend: &'static str,
    operation: &'static str,
    target: &str,
) -> Result<Option<Url>> {
    let Some(link) = next_link(headers) else {
        return Ok(None);
    };
    let next = current.join(&link).map_err(|e| Error::Protocol {
        backend,
        operation,
        target: target.to_string(),
        message: format!("bad Link header {link:?}: {e}"),
    })?;
    if next.origin() != current.origin() {
        return Err(Error::Refused {
            backend,
            operation,
            target: target.to_string(),
            message: format!(
                "the next-page Link points at another origin ({}), not {}; not following it with the registry's credentials",
                next.origin().ascii_serialization(),
                current.origin().ascii_serialization()
            ),
        });
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn link(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LINK, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn link_header_next() {
        let h = link("</v2/_catalog?last=b&n=2>; rel=\"next\"");
        assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        let h = link(
            "</api/v2.0/projects?page=1&page_size=2>; rel=\"prev\" , </api/v2.0/projects?page=3&page_size=2>; rel=\"next\"",
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/api/v2.0/projects?page=3&page_size=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn next_pages_stay_on_the_origin() {
        let cur = Url::parse("https://r.example.com/v2/_catalog?n=2").unwrap();
        let page =
            |v: &'static str| next_page(&cur, &link(v), "distribution", "catalog", "_catalog");
        assert_eq!(
            page("</v2/_catalog?last=b>; rel=\"next\"")
                .unwrap()
                .unwrap()
                .as_str(),
            "https://r.example.com/v2/_catalog?last=b"
        );
        assert!(
            page("<https://r.example.com:443/v2/x>; rel=\"next\"")
                .unwrap()
                .is_some()
        );
        for elsewhere in [
            "<https://evil.example.com/v2/_catalog>; rel=\"next\"",
            "<http://r.example.com/v2/_catalog>; rel=\"next\"",
            "<https://r.example.com:8443/v2/_catalog>; rel=\"next\"",
            "<//evil.example.com/v2/_catalog>; rel=\"next\"",
        ] {
            let e = page(elsewhere).unwrap_err();
            assert_eq!(
                e.kind(),
                kubepkg_util::ErrorKind::Forbidden,
                "{elsewhere}: {e}"
            );
        }
        assert_eq!(
            next_page(&cur, &HeaderMap::new(), "d", "o", "t").unwrap(),
            None
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(90) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn long_messages_are_cut_on_char_boundaries() {
        let s = truncate("é".repeat(600), 1000);
        assert!(s.len() <= 1000 + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert_eq!(truncate("short".into(), 1000), "short");
    }
}
