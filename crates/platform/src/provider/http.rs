//! The one HTTP client shape every vendor adapter uses: reqwest with TLS
//! verified (an extra CA may be trusted; skipping verification is not
//! offered), connect and request timeouts, and retries of what the vendor
//! answered as throttling or unavailability (mapped to
//! [`ErrorKind::Unavailable`]: a throttling code, or a bare 429 / 502 / 503
//! by the table every kubepkg HTTP backend shares, see [`status_kind`]) or
//! of a connection that failed, with backoff. Auth failures, bad requests and
//! vendor-side errors are never retried: a create is not idempotent.
//!
//! Every call runs in a `tracing` span with the backend, the operation and
//! the target; neither requests nor answers are logged, so no credential
//! ever is.

use super::{PollResult, VendorNode};
use crate::config::ProviderSettings;
use crate::{Error, Result};
use kubepkg_util::ErrorKind;
use kubepkg_util::retry::{RetryDecision, RetryPolicy, retry};
use kubepkg_util::secret::Secret;
use std::time::Duration;
use tracing::Instrument as _;

/// Connection knobs of a vendor adapter.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The longest one request may take.
    pub timeout: Duration,
    /// The longest a connection may take to open.
    pub connect_timeout: Duration,
    /// Backoff of throttled calls.
    pub retry: RetryPolicy,
    /// An extra CA (PEM) to trust besides the system's roots.
    pub ca_pem: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default()
                .initial_delay(Duration::from_millis(200))
                .max_delay(Duration::from_secs(10))
                .max_attempts(5),
            ca_pem: None,
        }
    }
}

/// A vendor's answer, before the adapter maps it.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The vendor's request id header, when it sent one.
    pub request_id: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A small reqwest client for one vendor account.
#[derive(Debug, Clone)]
pub struct VendorHttp {
    provider: &'static str,
    client: reqwest::Client,
    retry: RetryPolicy,
}

/// The most of a vendor's body an adapter reads (answers are small JSON).
const MAX_BODY: usize = 8 << 20;

impl VendorHttp {
    /// A client for `provider` (its kind, used in errors and spans).
    pub fn new(provider: &'static str, options: &HttpOptions) -> Result<VendorHttp> {
        let mut b = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("kubepkg-platform/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| Error::Invalid(format!("{provider}: the CA is not PEM: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        let client = b
            .build()
            .map_err(|e| Error::Invalid(format!("{provider}: building the HTTP client: {e}")))?;
        Ok(VendorHttp {
            provider,
            client,
            retry: options.retry.clone(),
        })
    }

    /// The reqwest client, to build requests with.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request `build` makes (called again for every attempt, so
    /// each is signed afresh) and hands the answer to `map`; retries while
    /// `map` (or the connection) fails with Unavailable.
    pub async fn call<T, B, M>(&self, operation: &str, target: &str, build: B, map: M) -> Result<T>
    where
        B: Fn(&reqwest::Client) -> Result<reqwest::RequestBuilder>,
        M: Fn(Answer) -> Result<T>,
    {
        let span = tracing::debug_span!("vendor", backend = self.provider, operation, target);
        let provider = self.provider;
        let classify = |e: &Error| {
            if e.kind() == ErrorKind::Unavailable {
                tracing::debug!(backend = provider, error = %e, "throttled or unreachable; retrying");
                RetryDecision::Retry
            } else {
                RetryDecision::Stop
            }
        };
        retry(&self.retry, classify, || async {
            let request = build(&self.client)?;
            let answer = self.send(request).await?;
            map(answer)
        })
        .instrument(span)
        .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer> {
        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let request_id = [
            "x-tc-requestid",
            "x-acs-request-id",
            "x-request-id",
            "audit-id",
        ]
        .iter()
        .find_map(|h| response.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::Unavailable(format!(
                    "{}: the answer exceeds {MAX_BODY} bytes",
                    self.provider
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            request_id,
            body,
        })
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        // reqwest's Display names the URL (host and path), never headers.
        let what = if e.is_timeout() {
            return Error::Timeout(format!("{}: {e}", self.provider));
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        Error::Unavailable(format!("{}: {what}: {e}", self.provider))
    }
}

/// The `host[:port]` of a base URL, for signing; Invalid when it has none.
pub fn host_of(provider: &str, url: &url::Url) -> Result<String> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::Invalid(format!("{provider}: endpoint {url} has no host")))?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Parses an endpoint setting (`https://…`); Invalid naming the provider.
pub fn parse_endpoint(provider: &str, endpoint: &str) -> Result<url::Url> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| Error::Invalid(format!("{provider}: endpoint {endpoint:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Invalid(format!(
            "{provider}: endpoint {endpoint:?} is not an http(s)://host URL"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Invalid(format!(
            "{provider}: an endpoint must not carry credentials"
        )));
    }
    Ok(url)
}

/// A vendor error as the platform's error.
pub fn vendor_error(
    provider: &str,
    kind: ErrorKind,
    code: impl Into<String>,
    message: impl Into<String>,
    request_id: Option<String>,
) -> Error {
    Error::Provider {
        provider: provider.to_string(),
        kind,
        code: code.into(),
        message: message.into(),
        request_id,
    }
}

/// A response that lacks a field the adapter needs.
pub fn missing(provider: &str, what: &str, request_id: Option<String>) -> Error {
    vendor_error(
        provider,
        ErrorKind::Internal,
        "MalformedResponse",
        format!("the answer lacks {what}"),
        request_id,
    )
}

/// The kind an HTTP status maps to when the body says nothing better: the
/// table every kubepkg HTTP backend shares
/// ([`kubepkg_util::http_status::classify`]), so a vendor's bare 408 is
/// Timeout, 410 NotFound, 412 Conflict, 429 / 502 / 503 Unavailable (and so
/// retried by [`VendorHttp::call`]), 500 Internal, 504 Timeout. An adapter
/// refines it with the vendor's error code first.
pub fn status_kind(status: u16) -> ErrorKind {
    kubepkg_util::http_status::kind(status)
}

/// Parses a JSON body; a body that is not JSON is a MalformedResponse.
pub fn json<T: serde::de::DeserializeOwned>(provider: &str, answer: &Answer) -> Result<T> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        vendor_error(
            provider,
            ErrorKind::Internal,
            "MalformedResponse",
            format!(
                "HTTP {}: the body is not the expected JSON: {e}",
                answer.status
            ),
            answer.request_id.clone(),
        )
    })
}

/// One cloud account signed with an access key pair (TKE, ACK, ACR).
/// `Debug` never shows the key id or the secret.
#[derive(Clone)]
pub struct AccessKeyConfig {
    /// The API endpoint.
    pub endpoint: String,
    /// The region, e.g. `ap-guangzhou`, `cn-hangzhou`.
    pub region: String,
    /// The key id (TKE `SecretId`, Alibaba Cloud `AccessKeyId`).
    pub key_id: String,
    /// The secret (TKE `SecretKey`, Alibaba Cloud `AccessKeySecret`).
    pub secret: Secret<String>,
    /// Connection knobs.
    pub http: HttpOptions,
}

impl std::fmt::Debug for AccessKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AccessKeyConfig {
    /// From a `providers.<name>` entry (`region`, `access_key_id`,
    /// `access_key_secret`, optional `endpoint`); `default_endpoint` maps
    /// the region to the public endpoint.
    pub fn from_settings(
        name: &str,
        s: &ProviderSettings,
        default_endpoint: fn(&str) -> String,
    ) -> Result<AccessKeyConfig> {
        use super::registry::{required, required_secret};
        let region = required(name, "region", &s.region)?.to_string();
        Ok(AccessKeyConfig {
            endpoint: s
                .endpoint
                .clone()
                .unwrap_or_else(|| default_endpoint(&region)),
            key_id: required(name, "access_key_id", &s.access_key_id)?.to_string(),
            secret: required_secret(name, "access_key_secret", &s.access_key_secret)?,
            region,
            http: HttpOptions::default(),
        })
    }
}

/// Where a node operation stands, from its handle and the listed instances.
///
/// Handles: `instances:<id>,<id>` (these instances running),
/// `gone:<id>,<id>` (these instances no longer listed),
/// `pool:<pool>:<n>` (the pool has exactly `n` instances, all running).
pub fn nodes_poll(
    handle: &str,
    nodes: &[VendorNode],
    running_state: &str,
    failed_state: &str,
) -> PollResult {
    let failed = |n: &VendorNode| n.state == failed_state;
    let running = |n: &VendorNode| n.state == running_state;
    if let Some(ids) = handle.strip_prefix("instances:") {
        let mine: Vec<&VendorNode> = nodes
            .iter()
            .filter(|n| ids.split(',').any(|i| i == n.instance_id))
            .collect();
        if let Some(bad) = mine.iter().find(|n| failed(n)) {
            return PollResult::Failed {
                message: format!("instance {} failed to join", bad.instance_id),
                code: Some("InstanceFailed".into()),
            };
        }
        let want = ids.split(',').filter(|s| !s.is_empty()).count();
        return if mine.iter().filter(|n| running(n)).count() >= want {
            PollResult::Succeeded
        } else {
            PollResult::Running
        };
    }
    if let Some(ids) = handle.strip_prefix("gone:") {
        let left = nodes
            .iter()
            .any(|n| ids.split(',').any(|i| i == n.instance_id));
        return if left {
            PollResult::Running
        } else {
            PollResult::Succeeded
        };
    }
    if let Some(rest) = handle.strip_prefix("pool:") {
        let (pool, want) = rest.rsplit_once(':').unwrap_or((rest, "0"));
        let want: usize = want.parse().unwrap_or(0);
        let mine: Vec<&VendorNode> = nodes
            .iter()
            .filter(|n| n.node_pool.as_deref() == Some(pool))
            .collect();
        if let Some(bad) = mine.iter().find(|n| failed(n)) {
            return PollResult::Failed {
                message: format!("instance {} of pool {pool} failed", bad.instance_id),
                code: Some("InstanceFailed".into()),
            };
        }
        return if mine.len() == want && mine.iter().all(|n| running(n)) {
            PollResult::Succeeded
        } else {
            PollResult::Running
        };
    }
    PollResult::Failed {
        message: format!("unknown operation handle {handle:?}"),
        code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor's bare status means what it means to every other kubepkg
    /// HTTP backend (k8s-api, image-api and storage-api's S3 test the same).
    #[test]
    fn bare_statuses_follow_the_shared_table() {
        for status in [
            400, 401, 403, 404, 405, 408, 409, 410, 412, 418, 422, 429, 500, 501, 502, 503, 504,
        ] {
            assert_eq!(
                status_kind(status),
                kubepkg_util::http_status::kind(status),
                "{status}"
            );
        }
        assert_eq!(status_kind(408), ErrorKind::Timeout);
        assert_eq!(status_kind(410), ErrorKind::NotFound);
        assert_eq!(status_kind(500), ErrorKind::Internal);
    }
}
