//! The OCI Distribution / Docker Registry HTTP API v2 backend of [`ImageRegistry`].
//!
//! Works with any registry speaking `/v2/`: CNCF Distribution, Harbor,
//! Docker Hub, ACR, TKE… Authentication: none, HTTP basic, or the bearer
//! token challenge (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`,
//! then a token from the realm, cached per scope until it expires). The
//! scheme is learnt from one unauthenticated `GET /v2/` on first use.
//!
//! What this API does not have:
//! - **namespaces** — all four namespace calls return
//!   [`Error::Unsupported`];
//! - **push times** — [`Artifact::pushed`] is taken from the image config's
//!   `created` field (when the image was built, as recorded by the builder),
//!   the only time the registry keeps; for an index, the latest `created` of
//!   its platform images;
//! - **repository deletion** — [`delete_repository`](ImageRegistry::delete_repository)
//!   deletes every manifest its tags point at; the registry may still list
//!   the (now empty) name in its catalog until its garbage collection runs.
//!
//! Every manifest fetched is checked against the SHA-256 of its body (and
//! against `Docker-Content-Digest` and the requested digest).
//!
//! How this client treats the server (shared with the [`harbor`](crate::harbor)
//! backend):
//! - **Credentials go only where they belong.** The bearer token realm is
//!   asked with the configured credentials only over https, or over plain
//!   http on the registry's own host when the registry itself is plain http
//!   (`allow_http`); any other realm is [`Error::Refused`] (kind Forbidden)
//!   before anything is sent. Without credentials any http(s) realm is used.
//!   Pagination follows `Link: rel="next"` only within the same origin
//!   (scheme, host and port); a link elsewhere is [`Error::Refused`] rather
//!   than a request carrying the registry's credentials to another host.
//! - **Token lifetimes are bounded**: a token is cached for its
//!   `expires_in` less 10 s, at most one hour (60 s when the server gives no
//!   usable figure), whatever the server says.
//! - **Timeouts**: API calls have a total timeout (`timeout_secs`); blob
//!   downloads ([`get_blob`](DistributionRegistry::get_blob),
//!   [`blob_stream`](DistributionRegistry::blob_stream)) have none, so a
//!   large layer is not cut off — every request has a connect timeout
//!   (`connect_timeout_secs`) and an idle timeout between reads
//!   (`read_timeout_secs`) instead.
//! - **Retries**: GET, HEAD and DELETE are retried (`max_retries`, default 3)
//!   on 429 / 502 / 503 / 504 and on connection failures, with exponential
//!   backoff and full jitter ([`kubepkg_util::retry`]), waiting the server's
//!   `Retry-After` when it gives one (up to 30 s; a longer one ends the
//!   retries and the error carries it). A DELETE whose first attempt went
//!   through behind a 502 / 504 may report NotFound on its retry.
//! - **Bounded reads**: manifests over 4 MiB (the registries' own limit),
//!   JSON responses over 16 MiB and in-memory blobs over 16 MiB are
//!   [`Error::TooLarge`] (kind Invalid) instead of being buffered; error
//!   bodies are read up to 64 KiB and the rest is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, OnceCell};
use tracing::Instrument;
use url::Url;

use crate::config::{RegistryConfig, RegistryKind};
use crate::http::{
    self, Budget, HttpClient, MAX_BLOB_IN_MEMORY, MAX_MANIFEST_BYTES, error_from_response,
    next_page, read_limited, retryable_status, transport,
};
use crate::registry::manifest::media_types;
use crate::registry::{
    Artifact, ArtifactRef, ImageRegistry, Manifest, Namespace, NamespaceSpec, RegistryInfo,
    Repository, validate_digest, validate_repository, validate_tag,
};
use crate::{Error, Result};
use kubepkg_util::secret::Secret;

/// Page size asked for in catalog and tag listings.
const PAGE_SIZE: u32 = 1000;
/// Config blobs larger than this are not read for their `created` time.
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Tokens are refreshed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// The longest a token is cached, whatever `expires_in` says.
const MAX_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The token lifetime when the server gives none (the token spec's default).
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The `sha256:<hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// How the registry wants to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone)]
struct Token {
    value: Secret<String>,
    expires: Instant,
}

/// A client for one OCI Distribution registry. Cheap to clone.
#[derive(Clone)]
pub struct DistributionRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    backend: &'static str,
    base: Url,
    host: String,
    http: HttpClient,
    username: Option<String>,
    password: Option<Secret<String>>,
    scheme: OnceCell<Scheme>,
    tokens: Mutex<HashMap<String, Token>>,
    concurrency: usize,
}

impl std::fmt::Debug for DistributionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributionRegistry")
            .field("base", &self.inner.base.as_str())
            .field("username", &self.inner.username)
            .field("password", &self.inner.password)
            .finish()
    }
}

/// One request of a call: what `send` replays on every attempt.
struct Req {
    method: Method,
    url: Url,
    accept: Option<&'static str>,
    budget: Budget,
}

impl Req {
    fn new(method: Method, url: Url) -> Self {
        Req {
            method,
            url,
            accept: None,
            budget: Budget::Api,
        }
    }

    fn get(url: Url) -> Self {
        Req::new(Method::GET, url)
    }

    fn accept(mut self, accept: &'static str) -> Self {
        self.accept = Some(accept);
        self
    }

    /// A body of unknown size: no total timeout, only connect + idle.
    fn stream(mut self) -> Self {
        self.budget = Budget::Stream;
        self
    }
}

/// How long a token from a server-given `expires_in` is cached: the
/// lifetime less a safety margin, at least one second, at most
/// [`MAX_TOKEN_TTL`]; the spec's default when absent, zero, negative or not
/// a number.
fn token_ttl(expires_in: Option<&serde_json::Value>) -> Duration {
    let secs = expires_in
        .and_then(serde_json::Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 1.0);
    let ttl = match secs {
        Some(s) if s >= MAX_TOKEN_TTL.as_secs_f64() => MAX_TOKEN_TTL,
        Some(s) => Duration::from_secs_f64(s),
        None => DEFAULT_TOKEN_TTL,
    };
    ttl.saturating_sub(TOKEN_MARGIN).max(Duration::from_secs(1))
}

/// Parses one challenge of a `WWW-Authenticate` header.
fn parse_challenge(value: &str) -> Option<(String, BTreeMap<String, String>)> {
    let value = value.trim();
    let (scheme, rest) = match value.split_once(' ') {
        Some((s, r)) => (s, r),
        None => (value, ""),
    };
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let val;
        if let Some(stripped) = rest.strip_prefix('"') {
            let Some(close) = stripped.find('"') else {
                break;
            };
            val = stripped[..close].to_string();
            rest = stripped[close + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            val = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start_matches(',').trim_start();
        params.insert(key, val);
    }
    Some((scheme.to_ascii_lowercase(), params))
}

fn scope_pull(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn scope_delete(repo: &str) -> String {
    format!("repository:{repo}:delete")
}

const SCOPE_CATALOG: &str = "registry:catalog:*";

impl DistributionRegistry {
    /// Builds a client from a config (no I/O yet). `kind` is not checked, so
    /// the Harbor backend can use this for its `/v2/` endpoint.
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        let backend = match config.kind {
            RegistryKind::Harbor => "harbor",
            RegistryKind::Distribution => "distribution",
        };
        let mut base = config.base_url()?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = HttpClient::new(config, backend)?;
        Self::with_client(config, base, http, backend)
    }

    pub(crate) fn with_client(
        config: &RegistryConfig,
        base: Url,
        http: HttpClient,
        backend: &'static str,
    ) -> Result<Self> {
        Ok(DistributionRegistry {
            inner: Arc::new(Inner {
                backend,
                host: config.host()?,
                base,
                http,
                username: config.username.clone(),
                password: config.password.clone(),
                scheme: OnceCell::new(),
                tokens: Mutex::new(HashMap::new()),
                concurrency: config.concurrency.max(1),
            }),
        })
    }

    fn span(&self, operation: &'static str, target: &str) -> tracing::Span {
        tracing::info_span!(
            "image.registry",
            backend = self.inner.backend,
            operation,
            target = %target
        )
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.inner
            .base
            .join(path)
            .map_err(|e| Error::Invalid(format!("bad request path {path:?}: {e}")))
    }

    fn has_credentials(&self) -> bool {
        self.inner.username.is_some()
    }

    /// Learns the auth scheme from an unauthenticated `GET /v2/` (once).
    async fn scheme(&self, operation: &'static str) -> Result<Scheme> {
        let b = self.inner.backend;
        self.inner
            .scheme
            .get_or_try_init(|| async {
                let url = self.url("v2/")?;
                let http = &self.inner.http;
                let resp = http
                    .retrying(&Method::GET, || async {
                        let resp = http
                            .budget(http.client.get(url.clone()), Budget::Api)
                            .send()
                            .await
                            .map_err(|e| transport(b, operation, "/v2/", e))?;
                        if retryable_status(resp.status()) {
                            return Err(error_from_response(b, operation, "/v2/", resp).await);
                        }
                        Ok(resp)
                    })
                    .await?;
                if resp.status() != StatusCode::UNAUTHORIZED {
                    if resp.status().is_success() {
                        return Ok(Scheme::Anonymous);
                    }
                    return Err(error_from_response(b, operation, "/v2/", resp).await);
                }
                self.scheme_from_401(operation, resp.headers())
            })
            .await
            .cloned()
    }

    fn scheme_from_401(&self, operation: &'static str, headers: &HeaderMap) -> Result<Scheme> {
        for v in headers.get_all(WWW_AUTHENTICATE) {
            let Some((scheme, params)) = v.to_str().ok().and_then(parse_challenge) else {
                continue;
            };
            match scheme.as_str() {
                "bearer" => {
                    let realm = params
                        .get("realm")
                        .cloned()
                        .ok_or_else(|| Error::Protocol {
                            backend: self.inner.backend,
                            operation,
                            target: "/v2/".into(),
                            message: "bearer challenge without realm".into(),
                        })?;
                    return Ok(Scheme::Bearer {
                        realm,
                        service: params.get("service").cloned(),
                    });
                }
                "basic" => return Ok(Scheme::Basic),
                _ => {}
            }
        }
        Err(Error::Protocol {
            backend: self.inner.backend,
            operation,
            target: "/v2/".into(),
            message: "401 without a Basic or Bearer challenge".into(),
        })
    }

    /// Parses a token realm and checks it may be asked for a token: an
    /// http(s) URL, and — when credentials are configured, since they go
    /// along — https, or plain http only on the registry's own host while the
    /// registry itself is plain http (which its config had to allow).
    fn realm_url(&self, operation: &'static str, realm: &str) -> Result<Url> {
        let b = self.inner.backend;
        let refuse = |message: String| Error::Refused {
            backend: b,
            operation,
            target: "token realm".into(),
            message,
        };
        let url = Url::parse(realm).map_err(|e| Error::Protocol {
            backend: b,
            operation,
            target: "token realm".into(),
            message: format!("bad token realm {realm:?}: {e}"),
        })?;
        let base = &self.inner.base;
        match url.scheme() {
            "https" => Ok(url),
            "http" if !self.has_credentials() => Ok(url),
            "http" if base.scheme() == "http" && url.host_str() == base.host_str() => Ok(url),
            "http" if base.scheme() == "http" => Err(refuse(format!(
                "the registry's token realm is plain http on another host ({}); credentials are sent over http only to the registry's own host ({})",
                url.host_str().unwrap_or_default(),
                base.host_str().unwrap_or_default()
            ))),
            "http" => Err(refuse(format!(
                "the registry is https but its token realm is plain http ({}); credentials are not sent unencrypted",
                url.host_str().unwrap_or_default()
            ))),
            other => Err(refuse(format!(
                "the token realm has scheme {other:?}; only https (or http on the registry's own host) is used"
            ))),
        }
    }

    /// A bearer token for `scopes` (joined by space as the cache key).
    async fn token(
        &self,
        operation: &'static str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        force: bool,
    ) -> Result<Secret<String>> {
        let key = scopes.join(" ");
        let mut cache = self.inner.tokens.lock().await;
        if !force
            && let Some(t) = cache.get(&key)
            && t.expires > Instant::now()
        {
            return Ok(t.value.clone());
        }
        let b = self.inner.backend;
        let mut url = self.realm_url(operation, realm)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes.iter().filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
        }
        let http = &self.inner.http;
        let resp = http
            .retrying(&Method::GET, || async {
                let mut req = http.budget(http.client.get(url.clone()), Budget::Api);
                if let Some(user) = &self.inner.username {
                    req = req.basic_auth(user, self.inner.password.as_ref().map(|p| p.expose()));
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| transport(b, operation, "token endpoint", e))?;
                if !resp.status().is_success() {
                    return Err(error_from_response(b, operation, "token endpoint", resp).await);
                }
                Ok(resp)
            })
            .await?;
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let body: TokenResponse = http::json(resp, b, operation, "token endpoint").await?;
        let value = body
            .token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Protocol {
                backend: b,
                operation,
                target: "token endpoint".into(),
                message: "token response without token".into(),
            })?;
        let now = Instant::now();
        let ttl = token_ttl(body.expires_in.as_ref());
        let token = Token {
            value: Secret::new(value),
            // `ttl` is at most an hour, so this cannot overflow in practice;
            // if it ever did, the token is simply not reused.
            expires: now.checked_add(ttl).unwrap_or(now),
        };
        cache.insert(key, token.clone());
        Ok(token.value)
    }

    /// Sends a request, authenticating as the registry asks; retries once
    /// after a 401 with a fresh token for the scope the challenge names, and
    /// retries idempotent requests on a retryable status (408, 429, 500, 502,
    /// 503, 504: [`kubepkg_util::http_status::classify`]) and transport
    /// failures (see [`HttpClient::retrying`]). Returns the response whatever
    /// its status, except a retryable status that outlasted the retries,
    /// which is an error.
    async fn send(
        &self,
        operation: &'static str,
        target: &str,
        scope: &str,
        req: &Req,
    ) -> Result<reqwest::Response> {
        let b = self.inner.backend;
        let scheme = self.scheme(operation).await?;
        let http = &self.inner.http;
        http.retrying(&req.method, || async {
            let resp = self
                .send_once(operation, target, scope, req, &scheme)
                .await?;
            if retryable_status(resp.status()) {
                return Err(error_from_response(b, operation, target, resp).await);
            }
            Ok(resp)
        })
        .await
    }

    /// One attempt of [`send`](Self::send): the request, and after a 401
    /// for a bearer scheme, the request again with a token for what the
    /// challenge names.
    async fn send_once(
        &self,
        operation: &'static str,
        target: &str,
        scope: &str,
        req: &Req,
        scheme: &Scheme,
    ) -> Result<reqwest::Response> {
        let b = self.inner.backend;
        let http = &self.inner.http;
        let mut scopes = vec![scope.to_string()];
        let mut force = false;
        for attempt in 0..2 {
            let mut r = http.budget(
                http.client.request(req.method.clone(), req.url.clone()),
                req.budget,
            );
            if let Some(accept) = req.accept {
                r = r.header(ACCEPT, accept);
            }
            match scheme {
                Scheme::Anonymous => {}
                Scheme::Basic => {
                    if let Some(user) = &self.inner.username {
                        r = r.basic_auth(user, self.inner.password.as_ref().map(|p| p.expose()));
                    }
                }
                Scheme::Bearer { realm, service } => {
                    let token = self
                        .token(operation, realm, service.as_deref(), &scopes, force)
                        .await?;
                    r = r.bearer_auth(token.expose());
                }
            }
            let resp = r
                .send()
                .await
                .map_err(|e| transport(b, operation, target, e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            match scheme {
                Scheme::Bearer { .. } => {
                    // Ask again for exactly what the challenge names.
                    let wanted: Vec<String> = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok().and_then(parse_challenge))
                        .filter(|(s, _)| s == "bearer")
                        .filter_map(|(_, p)| p.get("scope").cloned())
                        .collect();
                    if !wanted.is_empty() {
                        scopes = wanted;
                    }
                    force = true;
                }
                // Basic credentials were rejected, or the registry wants
                // credentials we do not have: nothing to retry with.
                Scheme::Basic | Scheme::Anonymous => return Ok(resp),
            }
        }
        // The loop returns on its second pass.
        Err(Error::Protocol {
            backend: b,
            operation,
            target: target.to_string(),
            message: "authentication retry loop ended".into(),
        })
    }

    /// `send` + error mapping for non-success statuses.
    async fn send_ok(
        &self,
        operation: &'static str,
        target: &str,
        scope: &str,
        req: &Req,
    ) -> Result<reqwest::Response> {
        let resp = self.send(operation, target, scope, req).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_from_response(self.inner.backend, operation, target, resp).await)
        }
    }

    /// Follows `Link: <…>; rel="next"` pages starting at `first`, collecting
    /// the items `extract` takes from each page. Links to another origin are
    /// refused ([`Error::Refused`]).
    async fn paginate<T, F>(
        &self,
        operation: &'static str,
        target: &str,
        scope: &str,
        first: Url,
        extract: F,
    ) -> Result<Vec<T>>
    where
        F: Fn(serde_json::Value) -> Result<Vec<T>>,
    {
        let backend = self.inner.backend;
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0u32;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100_000 {
                return Err(Error::Protocol {
                    backend,
                    operation,
                    target: target.to_string(),
                    message: "pagination does not end".into(),
                });
            }
            let resp = self
                .send_ok(operation, target, scope, &Req::get(url.clone()))
                .await?;
            if let Some(joined) = next_page(&url, resp.headers(), backend, operation, target)? {
                if joined == url {
                    return Err(Error::Protocol {
                        backend,
                        operation,
                        target: target.to_string(),
                        message: "Link header points at the same page".into(),
                    });
                }
                next = Some(joined);
            }
            let page: serde_json::Value = http::json(resp, backend, operation, target).await?;
            out.extend(extract(page)?);
        }
        Ok(out)
    }

    /// All repository names in the catalog (`GET /v2/_catalog`, paginated).
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let op = "catalog";
        async {
            let mut first = self.url("v2/_catalog")?;
            first
                .query_pairs_mut()
                .append_pair("n", &PAGE_SIZE.to_string());
            let backend = self.inner.backend;
            self.paginate(op, "_catalog", SCOPE_CATALOG, first, |v| {
                #[derive(Deserialize)]
                struct Page {
                    #[serde(default)]
                    repositories: Option<Vec<String>>,
                }
                serde_json::from_value::<Page>(v)
                    .map(|p| p.repositories.unwrap_or_default())
                    .map_err(|e| Error::Protocol {
                        backend,
                        operation: op,
                        target: "_catalog".into(),
                        message: e.to_string(),
                    })
            })
            .await
        }
        .instrument(self.span(op, "_catalog"))
        .await
    }

    async fn tags_inner(&self, repository: &str) -> Result<Vec<String>> {
        validate_repository(repository)?;
        let op = "list_tags";
        let mut first = self.url(&format!("v2/{repository}/tags/list"))?;
        first
            .query_pairs_mut()
            .append_pair("n", &PAGE_SIZE.to_string());
        let backend = self.inner.backend;
        let mut tags = self
            .paginate(op, repository, &scope_pull(repository), first, |v| {
                #[derive(Deserialize)]
                struct Page {
                    #[serde(default)]
                    tags: Option<Vec<String>>,
                }
                serde_json::from_value::<Page>(v)
                    .map(|p| p.tags.unwrap_or_default())
                    .map_err(|e| Error::Protocol {
                        backend,
                        operation: op,
                        target: repository.to_string(),
                        message: e.to_string(),
                    })
            })
            .await?;
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    fn manifest_url(&self, repository: &str, reference: &ArtifactRef) -> Result<Url> {
        validate_repository(repository)?;
        match reference {
            ArtifactRef::Tag(t) => validate_tag(t)?,
            ArtifactRef::Digest(d) => validate_digest(d)?,
        }
        self.url(&format!("v2/{repository}/manifests/{}", reference.as_str()))
    }

    async fn resolve_inner(&self, repository: &str, reference: &ArtifactRef) -> Result<String> {
        let url = self.manifest_url(repository, reference)?;
        let target = format!("{repository}:{reference}");
        let req = Req::new(Method::HEAD, url).accept(media_types::ACCEPT_MANIFESTS);
        let resp = self
            .send_ok("resolve", &target, &scope_pull(repository), &req)
            .await?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| validate_digest(d).is_ok())
        {
            return Ok(d.to_string());
        }
        // No digest header: fetch the body and hash it.
        Ok(self.manifest_inner(repository, reference).await?.digest)
    }

    async fn manifest_inner(&self, repository: &str, reference: &ArtifactRef) -> Result<Manifest> {
        let url = self.manifest_url(repository, reference)?;
        let target = format!("{repository}:{reference}");
        let op = "get_manifest";
        let b = self.inner.backend;
        let req = Req::get(url).accept(media_types::ACCEPT_MANIFESTS);
        let resp = self
            .send_ok(op, &target, &scope_pull(repository), &req)
            .await?;
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, MAX_MANIFEST_BYTES, "manifest", b, op, &target).await?;
        let actual = sha256_digest(&body);
        let mut expected = vec![];
        if let ArtifactRef::Digest(d) = reference {
            expected.push(d.clone());
        }
        expected.extend(header_digest);
        for e in &expected {
            if e.starts_with("sha256:") && *e != actual {
                return Err(Error::DigestMismatch {
                    target,
                    expected: e.clone(),
                    actual,
                });
            }
            if !e.starts_with("sha256:") {
                tracing::debug!(digest = %e, "not verifying a non-sha256 digest");
            }
        }
        Manifest::parse(actual, content_type.as_deref(), &body).map_err(|e| Error::Protocol {
            backend: b,
            operation: op,
            target,
            message: e.to_string(),
        })
    }

    /// Reads a blob into memory (at most 16 MiB, else [`Error::TooLarge`])
    /// and verifies its digest. For small blobs (configs); stream large
    /// layers with [`blob_stream`](Self::blob_stream).
    pub async fn get_blob(&self, repository: &str, digest: &str) -> Result<Bytes> {
        let op = "get_blob";
        let target = format!("{repository}@{digest}");
        async {
            let resp = self.blob_response(repository, digest, op).await?;
            let b = self.inner.backend;
            let body = read_limited(resp, MAX_BLOB_IN_MEMORY, "blob", b, op, &target).await?;
            if digest.starts_with("sha256:") {
                let actual = sha256_digest(&body);
                if actual != digest {
                    return Err(Error::DigestMismatch {
                        target: target.clone(),
                        expected: digest.to_string(),
                        actual,
                    });
                }
            }
            Ok(body)
        }
        .instrument(self.span(op, &target))
        .await
    }

    /// Streams a blob (not verified: hash the bytes yourself if you need to).
    ///
    /// The config's total timeout does not apply: a large layer may take as
    /// long as it needs, as long as bytes keep arriving (a gap longer than
    /// `read_timeout_secs` fails the stream with a timeout).
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<crate::engine::ByteStream> {
        let op = "blob_stream";
        let target = format!("{repository}@{digest}");
        let resp = self
            .blob_response(repository, digest, op)
            .instrument(self.span(op, &target))
            .await?;
        let backend = self.inner.backend;
        Ok(Box::pin(
            resp.bytes_stream()
                .map_err(move |e| transport(backend, op, &target, e)),
        ))
    }

    /// The size of a blob (`HEAD`), or NotFound.
    pub async fn blob_size(&self, repository: &str, digest: &str) -> Result<u64> {
        let op = "blob_size";
        validate_repository(repository)?;
        validate_digest(digest)?;
        let target = format!("{repository}@{digest}");
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"))?;
        let resp = self
            .send_ok(
                op,
                &target,
                &scope_pull(repository),
                &Req::new(Method::HEAD, url),
            )
            .instrument(self.span(op, &target))
            .await?;
        Ok(resp.content_length().unwrap_or(0))
    }

    /// Unlinks a blob from a repository (`DELETE /v2/<name>/blobs/<digest>`;
    /// the registry frees the bytes at its next garbage collection).
    pub async fn delete_blob(&self, repository: &str, digest: &str) -> Result<()> {
        let op = "delete_blob";
        validate_repository(repository)?;
        validate_digest(digest)?;
        let target = format!("{repository}@{digest}");
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"))?;
        self.send_ok(
            op,
            &target,
            &scope_delete(repository),
            &Req::new(Method::DELETE, url),
        )
        .instrument(self.span(op, &target))
        .await?;
        Ok(())
    }

    /// The response of a blob GET (no total timeout: see [`blob_stream`](Self::blob_stream)).
    async fn blob_response(
        &self,
        repository: &str,
        digest: &str,
        op: &'static str,
    ) -> Result<reqwest::Response> {
        validate_repository(repository)?;
        validate_digest(digest)?;
        let target = format!("{repository}@{digest}");
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"))?;
        self.send_ok(
            op,
            &target,
            &scope_pull(repository),
            &Req::get(url).stream(),
        )
        .await
    }

    async fn config_created(
        &self,
        repository: &str,
        config: &crate::registry::Descriptor,
    ) -> Option<String> {
        if config.size > MAX_CONFIG_BYTES {
            return None;
        }
        #[derive(Deserialize)]
        struct Cfg {
            #[serde(default)]
            created: Option<String>,
        }
        match self.get_blob(repository, &config.digest).await {
            Ok(b) => serde_json::from_slice::<Cfg>(&b)
                .ok()
                .and_then(|c| c.created),
            Err(e) => {
                tracing::debug!(repository, digest = %config.digest, error = %e, "config blob unreadable");
                None
            }
        }
    }

    /// Builds an artifact from its manifest: sizes from the manifest(s),
    /// time from the config blob(s).
    async fn artifact_from(
        &self,
        repository: &str,
        manifest: Manifest,
        tags: Vec<String>,
    ) -> Result<Artifact> {
        let mut artifact = Artifact {
            repository: repository.to_string(),
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            tags,
            size: 0,
            pushed: None,
            platforms: vec![],
        };
        if let Some(image) = manifest.as_image() {
            artifact.size = image.total_size();
            artifact.pushed = self.config_created(repository, &image.config).await;
        } else if let Some(index) = manifest.as_index() {
            artifact.platforms = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.clone())
                .collect();
            let children: Vec<Result<(u64, Option<String>)>> =
                futures::stream::iter(index.manifests.clone().into_iter().map(|d| async move {
                    let child = self
                        .manifest_inner(repository, &ArtifactRef::Digest(d.digest.clone()))
                        .await?;
                    Ok(match child.as_image() {
                        Some(img) => (
                            img.total_size().saturating_add(d.size),
                            self.config_created(repository, &img.config).await,
                        ),
                        None => (d.size, None),
                    })
                }))
                .buffer_unordered(self.inner.concurrency)
                .collect()
                .await;
            for c in children {
                match c {
                    Ok((size, created)) => {
                        artifact.size = artifact.size.saturating_add(size);
                        if created > artifact.pushed {
                            artifact.pushed = created;
                        }
                    }
                    // A platform manifest the registry no longer has (e.g. a
                    // partial copy) leaves the figure as a lower bound.
                    Err(e) if e.kind() == kubepkg_util::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(artifact)
    }

    /// Resolves every tag to its digest: digest → tags.
    async fn tags_by_digest(&self, repository: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let tags = self.tags_inner(repository).await?;
        let resolved: Vec<Result<(String, String)>> =
            futures::stream::iter(tags.into_iter().map(|t| async move {
                let d = self
                    .resolve_inner(repository, &ArtifactRef::Tag(t.clone()))
                    .await?;
                Ok((d, t))
            }))
            .buffer_unordered(self.inner.concurrency)
            .collect()
            .await;
        let mut by_digest: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in resolved {
            match r {
                Ok((d, t)) => by_digest.entry(d).or_default().push(t),
                // deleted between the listing and the HEAD
                Err(e) if e.kind() == kubepkg_util::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for tags in by_digest.values_mut() {
            tags.sort();
        }
        Ok(by_digest)
    }

    async fn delete_digest(&self, repository: &str, digest: &str) -> Result<()> {
        let reference = ArtifactRef::Digest(digest.to_string());
        let url = self.manifest_url(repository, &reference)?;
        let target = format!("{repository}@{digest}");
        self.send_ok(
            "delete_artifact",
            &target,
            &scope_delete(repository),
            &Req::new(Method::DELETE, url),
        )
        .await?;
        Ok(())
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported(format!(
            "an OCI distribution registry has no {what}; use a Harbor backend for projects"
        ))
    }
}

#[async_trait]
impl ImageRegistry for DistributionRegistry {
    fn kind(&self) -> RegistryKind {
        RegistryKind::Distribution
    }

    fn host(&self) -> &str {
        &self.inner.host
    }

    async fn check_credentials(&self) -> Result<()> {
        let op = "check_credentials";
        async {
            let url = self.url("v2/")?;
            let scheme = self.scheme(op).await?;
            if let Scheme::Bearer { realm, service } = &scheme {
                // The token endpoint is what checks the credentials.
                self.token(op, realm, service.as_deref(), &[String::new()], true)
                    .await?;
            }
            if !self.has_credentials() && scheme != Scheme::Anonymous {
                return Err(Error::Registry {
                    backend: self.inner.backend,
                    operation: op,
                    target: "/v2/".into(),
                    status: 401,
                    code: Some("UNAUTHORIZED".into()),
                    message: "the registry requires credentials and none are configured".into(),
                    retry_after: None,
                });
            }
            self.send_ok(op, "/v2/", "", &Req::get(url)).await?;
            Ok(())
        }
        .instrument(self.span(op, self.inner.base.as_str()))
        .await
    }

    async fn info(&self) -> Result<RegistryInfo> {
        let op = "info";
        async {
            let url = self.url("v2/")?;
            let resp = self.send_ok(op, "/v2/", "", &Req::get(url)).await?;
            let version = resp
                .headers()
                .get("docker-distribution-api-version")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut extra = BTreeMap::new();
            let scheme = self.scheme(op).await?;
            extra.insert(
                "auth".to_string(),
                match scheme {
                    Scheme::Anonymous => "none",
                    Scheme::Basic => "basic",
                    Scheme::Bearer { .. } => "bearer",
                }
                .to_string(),
            );
            Ok(RegistryInfo {
                backend: self.inner.backend.to_string(),
                version,
                extra,
            })
        }
        .instrument(self.span(op, self.inner.base.as_str()))
        .await
    }

    async fn create_namespace(&self, _spec: &NamespaceSpec) -> Result<Namespace> {
        Err(self.unsupported("namespaces to create"))
    }

    async fn get_namespace(&self, _name: &str) -> Result<Namespace> {
        Err(self.unsupported("namespaces to get"))
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        Err(self.unsupported("namespaces to list"))
    }

    async fn delete_namespace(&self, _name: &str) -> Result<()> {
        Err(self.unsupported("namespaces to delete"))
    }

    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>> {
        let names = self.catalog().await?;
        let prefix = namespace.map(|n| format!("{}/", n.trim_end_matches('/')));
        Ok(names
            .into_iter()
            .filter(|n| prefix.as_deref().is_none_or(|p| n.starts_with(p)))
            .map(Repository::named)
            .collect())
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        let op = "delete_repository";
        async {
            let by_digest = self.tags_by_digest(repository).await?;
            let results: Vec<Result<()>> = futures::stream::iter(
                by_digest
                    .into_keys()
                    .map(|d| async move { self.delete_digest(repository, &d).await }),
            )
            .buffer_unordered(self.inner.concurrency)
            .collect()
            .await;
            for r in results {
                match r {
                    Err(e) if e.kind() != kubepkg_util::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        }
        .instrument(self.span(op, repository))
        .await
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        self.tags_inner(repository)
            .instrument(self.span("list_tags", repository))
            .await
    }

    async fn list_artifacts(&self, repository: &str) -> Result<Vec<Artifact>> {
        let op = "list_artifacts";
        async {
            let by_digest = self.tags_by_digest(repository).await?;
            let results: Vec<Result<Artifact>> =
                futures::stream::iter(by_digest.into_iter().map(|(digest, tags)| async move {
                    let m = self
                        .manifest_inner(repository, &ArtifactRef::Digest(digest))
                        .await?;
                    self.artifact_from(repository, m, tags).await
                }))
                .buffer_unordered(self.inner.concurrency)
                .collect()
                .await;
            let mut out = Vec::with_capacity(results.len());
            for r in results {
                match r {
                    Ok(a) => out.push(a),
                    Err(e) if e.kind() == kubepkg_util::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            out.sort_by(|a, b| a.digest.cmp(&b.digest));
            Ok(out)
        }
        .instrument(self.span(op, repository))
        .await
    }

    async fn get_artifact(&self, repository: &str, reference: &ArtifactRef) -> Result<Artifact> {
        let op = "get_artifact";
        let target = format!("{repository}:{reference}");
        async {
            let manifest = self.manifest_inner(repository, reference).await?;
            // Which tags point here: resolve them all (one HEAD per tag).
            let tags = self
                .tags_by_digest(repository)
                .await?
                .remove(&manifest.digest)
                .unwrap_or_default();
            self.artifact_from(repository, manifest, tags).await
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn delete_artifact(&self, repository: &str, reference: &ArtifactRef) -> Result<()> {
        let op = "delete_artifact";
        let target = format!("{repository}:{reference}");
        async {
            let digest = match reference {
                ArtifactRef::Digest(d) => {
                    validate_digest(d)?;
                    d.clone()
                }
                ArtifactRef::Tag(_) => self.resolve_inner(repository, reference).await?,
            };
            self.delete_digest(repository, &digest).await
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let op = "delete_tag";
        let target = format!("{repository}:{tag}");
        async {
            let url = self.manifest_url(repository, &ArtifactRef::Tag(tag.to_string()))?;
            let resp = self
                .send(op, &target, &scope_delete(repository), &Req::new(Method::DELETE, url))
                .await?;
            if resp.status().is_success() {
                return Ok(());
            }
            let err = error_from_response(self.inner.backend, op, &target, resp).await;
            // Registries that only delete by digest answer 400/405 here
            // (DIGEST_INVALID or UNSUPPORTED).
            match &err {
                Error::Registry { status: 400 | 405, code, message, .. }
                    if matches!(code.as_deref(), Some("DIGEST_INVALID" | "UNSUPPORTED") | None) =>
                {
                    Err(Error::Unsupported(format!(
                        "this registry cannot delete a tag alone ({message}); delete the artifact by digest instead"
                    )))
                }
                _ => Err(err),
            }
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn get_manifest(&self, repository: &str, reference: &ArtifactRef) -> Result<Manifest> {
        let target = format!("{repository}:{reference}");
        self.manifest_inner(repository, reference)
            .instrument(self.span("get_manifest", &target))
            .await
    }

    async fn resolve(&self, repository: &str, reference: &ArtifactRef) -> Result<String> {
        let target = format!("{repository}:{reference}");
        self.resolve_inner(repository, reference)
            .instrument(self.span("resolve", &target))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["service"], "registry.example.com");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(s, "basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn token_lifetimes_are_bounded() {
        use serde_json::json;
        let ttl = |v: serde_json::Value| token_ttl(Some(&v));
        assert_eq!(token_ttl(None), Duration::from_secs(50));
        assert_eq!(ttl(json!(300)), Duration::from_secs(290));
        // huge, negative, zero, fractional and non-numeric lifetimes
        assert_eq!(ttl(json!(u64::MAX)), MAX_TOKEN_TTL - TOKEN_MARGIN);
        assert_eq!(ttl(json!(1e300)), MAX_TOKEN_TTL - TOKEN_MARGIN);
        assert_eq!(ttl(json!(-5)), Duration::from_secs(50));
        assert_eq!(ttl(json!(0)), Duration::from_secs(50));
        assert_eq!(ttl(json!(5)), Duration::from_secs(1));
        assert_eq!(ttl(json!(30.5)), Duration::from_secs_f64(20.5));
        assert_eq!(ttl(json!("300")), Duration::from_secs(50));
    }

    #[test]
    fn credentials_go_only_to_safe_realms() {
        let with_creds = |url: &str| {
            DistributionRegistry::new(
                &RegistryConfig::new(url)
                    .credentials("u", "p")
                    .allow_http(true),
            )
            .unwrap()
        };
        let https = with_creds("https://r.example.com");
        let ok = |r: &DistributionRegistry, realm: &str| r.realm_url("t", realm).is_ok();
        // https anywhere (Docker Hub's realm is auth.docker.io)
        assert!(ok(&https, "https://auth.example.net/token"));
        // an https registry never sends credentials over http, not even to itself
        for realm in [
            "http://r.example.com/token",
            "http://auth.example.net/token",
            "ftp://r.example.com/token",
        ] {
            let e = https.realm_url("t", realm).unwrap_err();
            assert_eq!(e.kind(), kubepkg_util::ErrorKind::Forbidden, "{realm}: {e}");
        }
        assert!(https.realm_url("t", "not a url").is_err());
        // a plain-http registry may use http on its own host only
        let http = with_creds("http://r.example.com:5000");
        assert!(ok(&http, "http://r.example.com:5001/token"));
        assert!(!ok(&http, "http://auth.example.net/token"));
        assert!(ok(&http, "https://auth.example.net/token"));
        // without credentials nothing secret is sent: any http(s) realm
        let anon =
            DistributionRegistry::new(&RegistryConfig::new("https://r.example.com")).unwrap();
        assert!(ok(&anon, "http://auth.example.net/token"));
        assert!(!ok(&anon, "file:///etc/passwd"));
    }

    #[test]
    fn digest_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
