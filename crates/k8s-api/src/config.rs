//! [`ClusterConfig`]: where a cluster is and how to talk to it, as data.
//!
//! A config names a [`ClusterSource`] (a kubeconfig file, kubeconfig text or
//! base64, a server URL with CA and bearer token, the in-cluster service
//! account, or the conventional default chain) plus the client knobs: QPS /
//! burst of the client-side rate limiter, connect and request timeouts, and
//! the retry budget.
//!
//! It is `serde`, so it can sit in an application's TOML or YAML config:
//!
//! ```
//! use kubepkg_k8s_api::config::{ClusterConfig, ClusterSource};
//!
//! let cfg: ClusterConfig = serde_json::from_str(
//!     r#"{"source": "kubeconfig_file", "path": "/etc/kube/config", "context": "prod", "qps": 20}"#,
//! ).unwrap();
//! assert!(matches!(cfg.source, ClusterSource::KubeconfigFile { .. }));
//! assert_eq!(cfg.qps, 20.0);
//! assert_eq!(cfg.burst, ClusterConfig::DEFAULT_BURST);
//! ```
//!
//! ## Token files
//!
//! A kubeconfig user may name its bearer token by file (`tokenFile:`, also
//! how the in-cluster service account token is read). Like client-go,
//! kubepkg trims surrounding whitespace from the file's content, so a file
//! written by `echo "$TOKEN" > token` works (kube itself would send the
//! trailing newline, which is not valid in a header). When the file has
//! nothing to trim, kube keeps re-reading it (about once a minute), so a
//! rotated token — a projected service-account token, say — is picked up
//! by the running client. When it does need trimming, the trimmed token is
//! read once, when the client is built: after rotating such a file, build
//! the client again (re-[`add`](crate::ClusterManager::add) the cluster
//! with a changed config, or
//! [`mark_broken`](crate::ClusterManager::mark_broken) it so the next
//! `get` rebuilds it), or write the file without a trailing newline. A
//! token file that cannot be read, is empty or holds characters that
//! cannot be sent in an HTTP header is an [`Error::Config`] when the client
//! is built.
//!
//! Inline tokens (a kubeconfig user's `token:`, [`ClusterSource::Token`])
//! are trimmed the same way (a YAML block scalar ends in a newline), and
//! one that still cannot be sent in a header is an [`Error::Config`] too
//! (kube itself would panic building the client). A token that only turns
//! out unsendable per request (refreshed by an exec plugin) fails those
//! requests with an [`Error::Config`] (kind Invalid), not Unavailable.
//!
//! ## Warnings
//!
//! Resolving a config ([`ClusterConfig::to_kube_config`], so also every
//! client build) logs a `tracing` warning when TLS verification is off
//! ([`ClusterConfig::insecure_skip_tls_verify`] or a kubeconfig's
//! `insecure-skip-tls-verify: true`), and when a credential — a bearer
//! token or token file, basic auth, an exec plugin or auth provider — is
//! configured for an `http://` server, where it would travel in clear
//! text. The warnings name the server as `scheme://host:port` only: never
//! a credential, nor user-info in the URL.
//!
//! ## Parse errors
//!
//! A kubeconfig that does not parse is an [`Error::Config`] saying where
//! (line and column, and the field when it is one kubeconfig defines) but
//! never quoting the text there: a misplaced token or key would otherwise
//! end up in the error, and from there in a log.

use crate::{Error, Result};
use base64::Engine as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubepkg_util::secret::{Secret, serde_expose};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the cluster's address and credentials come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClusterSource {
    /// The conventional chain: the in-cluster service account when running
    /// in a pod, else `$KUBECONFIG` (a `:`-separated list, merged, missing
    /// files skipped), else `~/.kube/config`.
    Default {
        /// Context to use instead of the current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    /// The pod's service account (`KUBERNETES_SERVICE_HOST` and
    /// `/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
    /// A kubeconfig file; relative certificate paths resolve against it.
    KubeconfigFile {
        /// The file.
        path: PathBuf,
        /// Context to use instead of the current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    /// Kubeconfig YAML text (e.g. from a database or a secret store).
    Kubeconfig {
        /// The YAML text.
        #[serde(serialize_with = "serde_expose::serialize")]
        text: Secret<String>,
        /// Context to use instead of the current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    /// Kubeconfig YAML, base64-encoded (as vendors' consoles hand it out).
    KubeconfigBase64 {
        /// The base64 text.
        #[serde(serialize_with = "serde_expose::serialize")]
        data: Secret<String>,
        /// Context to use instead of the current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    /// An API server URL with a bearer token.
    Token {
        /// `https://host:port`.
        server: String,
        /// The cluster CA, PEM. Absent: the platform's trust store.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
        /// The bearer token (written out when the config is serialized, so
        /// it can be stored; keep serialized configs private).
        #[serde(serialize_with = "serde_expose::serialize")]
        token: Secret<String>,
    },
}

impl PartialEq for ClusterSource {
    fn eq(&self, other: &Self) -> bool {
        use ClusterSource as S;
        match (self, other) {
            (S::Default { context: a }, S::Default { context: b }) => a == b,
            (S::InCluster, S::InCluster) => true,
            (
                S::KubeconfigFile {
                    path: p1,
                    context: c1,
                },
                S::KubeconfigFile {
                    path: p2,
                    context: c2,
                },
            ) => p1 == p2 && c1 == c2,
            (
                S::Kubeconfig {
                    text: t1,
                    context: c1,
                },
                S::Kubeconfig {
                    text: t2,
                    context: c2,
                },
            ) => t1.expose() == t2.expose() && c1 == c2,
            (
                S::KubeconfigBase64 {
                    data: d1,
                    context: c1,
                },
                S::KubeconfigBase64 {
                    data: d2,
                    context: c2,
                },
            ) => d1.expose() == d2.expose() && c1 == c2,
            (
                S::Token {
                    server: s1,
                    ca_pem: a1,
                    token: t1,
                },
                S::Token {
                    server: s2,
                    ca_pem: a2,
                    token: t2,
                },
            ) => s1 == s2 && a1 == a2 && t1.expose() == t2.expose(),
            _ => false,
        }
    }
}

/// How to reach one cluster, with the client knobs. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Where the address and credentials come from.
    #[serde(flatten)]
    pub source: ClusterSource,
    /// Default namespace for namespaced calls (else the kubeconfig's or
    /// `default`). Must be a DNS-1123 label ([`Self::validate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Sustained requests per second of the client-side token bucket;
    /// `0` switches the limiter off. Otherwise at least
    /// [`Self::MIN_QPS`] ([`Self::validate`]).
    #[serde(default = "default_qps")]
    pub qps: f32,
    /// Requests that may go out at once before the QPS limit applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// TCP + TLS connect timeout, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Deadline for the response headers of one request, whole seconds
    /// (`0`: none). Watches and followed logs are exempt: they are
    /// long-running by design. [`Self::with_timeout`] rounds up, so a
    /// sub-second timeout never turns into "none".
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Retries of a request answered with 429 / 5xx or failing to connect,
    /// with exponential backoff honoring `Retry-After`. A 5xx or a failure
    /// after the request went out is retried only for idempotent requests
    /// (GET, HEAD, PUT, DELETE, server-side apply), never for a POST or a
    /// merge / JSON / strategic PATCH.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Skip verification of the server certificate. Off by default; a
    /// warning is logged whenever a client is built with it on (or with a
    /// kubeconfig's `insecure-skip-tls-verify: true`).
    ///
    /// A credential (bearer token, basic auth, exec plugin) configured for
    /// an `http://` server is logged as a warning too: it would be sent in
    /// clear text.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
}

fn default_qps() -> f32 {
    ClusterConfig::DEFAULT_QPS
}
fn default_burst() -> u32 {
    ClusterConfig::DEFAULT_BURST
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_timeout() -> u64 {
    60
}
fn default_retries() -> u32 {
    4
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig::from_source(ClusterSource::Default { context: None })
    }
}

impl ClusterConfig {
    /// Default sustained QPS of the client-side limiter.
    pub const DEFAULT_QPS: f32 = 500.0;
    /// Default burst of the client-side limiter.
    pub const DEFAULT_BURST: u32 = 1000;
    /// The smallest non-zero QPS [`Self::validate`] accepts (one request
    /// every 1000 s). Anything slower is almost certainly a unit mistake,
    /// and would make callers wait for ages; use `0` to switch the limiter
    /// off instead.
    pub const MIN_QPS: f32 = 0.001;

    /// A config with the default knobs for `source`.
    pub fn from_source(source: ClusterSource) -> Self {
        ClusterConfig {
            source,
            namespace: None,
            qps: default_qps(),
            burst: default_burst(),
            connect_timeout_secs: default_connect_timeout(),
            timeout_secs: default_timeout(),
            max_retries: default_retries(),
            insecure_skip_tls_verify: false,
        }
    }

    /// The default chain (in-cluster, `$KUBECONFIG`, `~/.kube/config`).
    pub fn default_chain() -> Self {
        Self::default()
    }

    /// The pod's service account.
    pub fn in_cluster() -> Self {
        Self::from_source(ClusterSource::InCluster)
    }

    /// A kubeconfig file (its current context unless [`Self::with_context`]).
    pub fn kubeconfig_file(path: impl Into<PathBuf>) -> Self {
        Self::from_source(ClusterSource::KubeconfigFile {
            path: path.into(),
            context: None,
        })
    }

    /// Kubeconfig YAML text.
    pub fn kubeconfig_text(text: impl Into<String>) -> Self {
        Self::from_source(ClusterSource::Kubeconfig {
            text: Secret::new(text.into()),
            context: None,
        })
    }

    /// Kubeconfig YAML, base64-encoded.
    pub fn kubeconfig_base64(data: impl Into<String>) -> Self {
        Self::from_source(ClusterSource::KubeconfigBase64 {
            data: Secret::new(data.into()),
            context: None,
        })
    }

    /// An API server URL, its CA (PEM; `None` for the platform trust store)
    /// and a bearer token.
    pub fn token(
        server: impl Into<String>,
        ca_pem: Option<String>,
        token: impl Into<String>,
    ) -> Self {
        Self::from_source(ClusterSource::Token {
            server: server.into(),
            ca_pem,
            token: Secret::new(token.into()),
        })
    }

    /// Selects a context of a kubeconfig source (ignored by the others).
    pub fn with_context(mut self, name: impl Into<String>) -> Self {
        let name = Some(name.into());
        match &mut self.source {
            ClusterSource::Default { context }
            | ClusterSource::KubeconfigFile { context, .. }
            | ClusterSource::Kubeconfig { context, .. }
            | ClusterSource::KubeconfigBase64 { context, .. } => *context = name,
            ClusterSource::InCluster | ClusterSource::Token { .. } => {}
        }
        self
    }

    /// Sets the default namespace.
    pub fn with_namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Sets the client-side rate limit (`qps == 0` switches it off).
    pub fn with_rate_limit(mut self, qps: f32, burst: u32) -> Self {
        self.qps = qps;
        self.burst = burst;
        self
    }

    /// Sets the per-request timeout (`Duration::ZERO`: none).
    ///
    /// The config keeps whole seconds ([`Self::timeout_secs`]), so the
    /// value is rounded *up*: any non-zero timeout below one second becomes
    /// 1 s (rounding down would turn it into `0`, "no deadline"), and
    /// 1.2 s becomes 2 s. Huge values (`Duration::MAX` for "no limit" in
    /// spirit) saturate and never overflow.
    ///
    /// ```
    /// use kubepkg_k8s_api::ClusterConfig;
    /// use std::time::Duration;
    ///
    /// let cfg = ClusterConfig::default().with_timeout(Duration::from_millis(200));
    /// assert_eq!(cfg.timeout_secs, 1);
    /// assert_eq!(ClusterConfig::default().with_timeout(Duration::ZERO).timeout_secs, 0);
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        let whole = timeout.as_secs();
        self.timeout_secs = if timeout.subsec_nanos() > 0 {
            whole.saturating_add(1)
        } else {
            whole
        };
        self
    }

    /// Sets the retry budget.
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Applies `KUBEPKG_K8S_*` environment overrides: `_CONTEXT`,
    /// `_NAMESPACE`, `_QPS`, `_BURST`, `_TIMEOUT_SECS`,
    /// `_CONNECT_TIMEOUT_SECS`, `_MAX_RETRIES`. A value that does not parse
    /// is an [`Error::Config`].
    pub fn with_env_overrides(self) -> Result<Self> {
        self.with_overrides(|k| std::env::var(k).ok())
    }

    fn with_overrides(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        fn parse<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
            v.trim()
                .parse()
                .map_err(|_| Error::Config(format!("{key}={v:?} is not a valid value")))
        }
        if let Some(v) = get("KUBEPKG_K8S_CONTEXT") {
            self = self.with_context(v);
        }
        if let Some(v) = get("KUBEPKG_K8S_NAMESPACE") {
            self.namespace = Some(v);
        }
        if let Some(v) = get("KUBEPKG_K8S_QPS") {
            self.qps = parse("KUBEPKG_K8S_QPS", &v)?;
        }
        if let Some(v) = get("KUBEPKG_K8S_BURST") {
            self.burst = parse("KUBEPKG_K8S_BURST", &v)?;
        }
        if let Some(v) = get("KUBEPKG_K8S_TIMEOUT_SECS") {
            self.timeout_secs = parse("KUBEPKG_K8S_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("KUBEPKG_K8S_CONNECT_TIMEOUT_SECS") {
            self.connect_timeout_secs = parse("KUBEPKG_K8S_CONNECT_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("KUBEPKG_K8S_MAX_RETRIES") {
            self.max_retries = parse("KUBEPKG_K8S_MAX_RETRIES", &v)?;
        }
        Ok(self)
    }

    /// Checks the knobs (and, for sources carrying text, that it parses)
    /// without contacting anything: `qps` is `0` or a finite number of at
    /// least [`Self::MIN_QPS`], `burst` is at least 1 when the limiter is
    /// on, and the default namespace, when set, is a DNS-1123 label.
    /// Failures are [`Error::Config`] (kind Invalid).
    pub fn validate(&self) -> Result<()> {
        if !self.qps.is_finite() || self.qps < 0.0 {
            return Err(Error::Config(format!("qps must be >= 0, got {}", self.qps)));
        }
        if self.qps > 0.0 && self.qps < Self::MIN_QPS {
            return Err(Error::Config(format!(
                "qps {} is below the minimum of {} (one request every {} s); \
                 use 0 to switch the rate limiter off",
                self.qps,
                Self::MIN_QPS,
                1.0 / Self::MIN_QPS
            )));
        }
        if let Some(ns) = &self.namespace {
            crate::resource::check_namespace(ns).map_err(|e| match e {
                Error::Invalid(m) => Error::Config(format!("default namespace: {m}")),
                other => other,
            })?;
        }
        if self.qps > 0.0 && self.burst == 0 {
            return Err(Error::Config("burst must be >= 1 when qps is set".into()));
        }
        match &self.source {
            ClusterSource::Kubeconfig { text, .. } => {
                parse_kubeconfig(text.expose())?;
            }
            ClusterSource::KubeconfigBase64 { data, .. } => {
                parse_kubeconfig(&decode_base64(data.expose())?)?;
            }
            ClusterSource::Token { server, token, .. } => {
                check_server_url(server)?;
                if token.expose().trim().is_empty() {
                    return Err(Error::Config("the bearer token is empty".into()));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A short, credential-free description for logs and spans.
    pub fn describe(&self) -> String {
        match &self.source {
            ClusterSource::Default { context } => format!("default chain{}", ctx_suffix(context)),
            ClusterSource::InCluster => "in-cluster service account".into(),
            ClusterSource::KubeconfigFile { path, context } => {
                format!("kubeconfig {}{}", path.display(), ctx_suffix(context))
            }
            ClusterSource::Kubeconfig { context, .. } => {
                format!("kubeconfig text{}", ctx_suffix(context))
            }
            ClusterSource::KubeconfigBase64 { context, .. } => {
                format!("kubeconfig base64{}", ctx_suffix(context))
            }
            ClusterSource::Token { server, .. } => format!("token for {server}"),
        }
    }

    /// Resolves the source into kube's client configuration (reading files,
    /// running exec plugins as kube supports them). Nothing is contacted.
    pub async fn to_kube_config(&self) -> Result<kube::Config> {
        self.validate()?;
        let mut cfg = match &self.source {
            ClusterSource::Default { context } => default_chain(context.clone()).await?,
            ClusterSource::InCluster => kube::Config::incluster()
                .map_err(|e| Error::Config(format!("in-cluster service account: {e}")))?,
            ClusterSource::KubeconfigFile { path, context } => {
                let kc = read_kubeconfig_file(path)?;
                from_kubeconfig(kc, context.clone()).await?
            }
            ClusterSource::Kubeconfig { text, context } => {
                from_kubeconfig(parse_kubeconfig(text.expose())?, context.clone()).await?
            }
            ClusterSource::KubeconfigBase64 { data, context } => {
                let text = decode_base64(data.expose())?;
                from_kubeconfig(parse_kubeconfig(&text)?, context.clone()).await?
            }
            ClusterSource::Token {
                server,
                ca_pem,
                token,
            } => token_config(server, ca_pem.as_deref(), token.expose().trim()).await?,
        };
        normalize_bearer_token(&mut cfg.auth_info)?;
        if let Some(ns) = &self.namespace {
            cfg.default_namespace = ns.clone();
        }
        cfg.connect_timeout = Some(Duration::from_secs(self.connect_timeout_secs.max(1)));
        // The request deadline is applied by kubepkg's own layer (which
        // exempts watches); kube's read timeout would cut long streams.
        cfg.read_timeout = None;
        cfg.default_retry = false;
        let server = display_server(&cfg.cluster_url);
        if self.insecure_skip_tls_verify {
            tracing::warn!(
                cluster = %server,
                "TLS verification of the API server is switched off by configuration"
            );
            cfg.accept_invalid_certs = true;
        } else if cfg.accept_invalid_certs {
            tracing::warn!(
                cluster = %server,
                "the kubeconfig switches TLS verification of the API server off"
            );
        }
        if cfg.cluster_url.scheme_str() == Some("http")
            && let Some(credential) = credential_kind(&cfg.auth_info)
        {
            tracing::warn!(
                cluster = %server,
                credential,
                "a credential is configured for a plain-http API server: it travels unencrypted \
                 and anyone on the path can read and reuse it; use https"
            );
        }
        Ok(cfg)
    }
}

/// `scheme://host[:port]` of a server URL: never the user-info part
/// (`https://user:password@host`) or a query, so it can be logged.
fn display_server(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// What kind of credential kube will send with each request, if any.
fn credential_kind(auth: &kube::config::AuthInfo) -> Option<&'static str> {
    if auth.auth_provider.is_some() {
        Some("auth provider token")
    } else if auth.username.is_some() && auth.password.is_some() {
        Some("basic auth")
    } else if auth.token.is_some() || auth.token_file.is_some() {
        Some("bearer token")
    } else if auth.exec.is_some() {
        Some("exec plugin token")
    } else {
        None
    }
}

fn ctx_suffix(c: &Option<String>) -> String {
    c.as_ref()
        .map(|c| format!(" (context {c})"))
        .unwrap_or_default()
}

fn check_server_url(server: &str) -> Result<http::Uri> {
    let uri: http::Uri = server
        .parse()
        .map_err(|e| Error::Config(format!("server URL {server:?}: {e}")))?;
    match uri.scheme_str() {
        Some("https") | Some("http") if uri.host().is_some() => Ok(uri),
        _ => Err(Error::Config(format!(
            "server URL {server:?} must be http(s)://host[:port]"
        ))),
    }
}

fn decode_base64(data: &str) -> Result<String> {
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(compact.as_bytes()))
        .map_err(|e| Error::Config(format!("kubeconfig base64 does not decode: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::Config("decoded kubeconfig is not UTF-8".into()))
}

/// Parses kubeconfig YAML, rejecting text that has no cluster at all.
pub(crate) fn parse_kubeconfig(text: &str) -> Result<Kubeconfig> {
    let kc = Kubeconfig::from_yaml(text)
        .map_err(|e| kubeconfig_error("kubeconfig", e, || Some(text.to_string())))?;
    if kc.clusters.is_empty() {
        return Err(Error::Config("kubeconfig has no clusters".into()));
    }
    Ok(kc)
}

/// The fields a kubeconfig defines: a parse error may name one of these
/// (found at the start of the failing line), never anything else there.
const KUBECONFIG_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "preferences",
    "colors",
    "clusters",
    "users",
    "contexts",
    "current-context",
    "extensions",
    "extension",
    "name",
    "cluster",
    "user",
    "context",
    "server",
    "tls-server-name",
    "insecure-skip-tls-verify",
    "certificate-authority",
    "certificate-authority-data",
    "proxy-url",
    "disable-compression",
    "namespace",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "token",
    "tokenFile",
    "as",
    "as-uid",
    "as-groups",
    "as-user-extra",
    "username",
    "password",
    "auth-provider",
    "config",
    "exec",
    "command",
    "args",
    "env",
    "value",
    "installHint",
    "provideClusterInfo",
    "interactiveMode",
];

/// The kubeconfig field whose entry starts line `line` (1-based) of `text`.
fn field_at(text: &str, line: u64) -> Option<&'static str> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let entry = text.lines().nth(index)?.trim_start();
    let entry = entry.strip_prefix("- ").unwrap_or(entry).trim_start();
    let key = entry.split_once(':')?.0.trim().trim_matches(['"', '\'']);
    KUBECONFIG_FIELDS.iter().copied().find(|f| *f == key)
}

/// A kubeconfig failure as an [`Error::Config`] that never quotes the
/// document. A YAML parse error of kube's parser (serde-saphyr) renders
/// the offending value and a snippet of the text around it — which may be
/// a token or a key pasted in the wrong place — so only its location is
/// kept, plus the kubeconfig field found there. `text` is asked for only
/// then. Every other kind of failure names paths, context or cluster
/// names, never values, and is kept as it is.
fn kubeconfig_error(
    what: &str,
    e: kube::config::KubeconfigError,
    text: impl FnOnce() -> Option<String>,
) -> Error {
    use kube::config::KubeconfigError as K;
    match e {
        K::Parse(parse) => {
            let Some(at) = parse.location() else {
                return Error::Config(format!(
                    "{what} is not valid kubeconfig YAML (the parser's message is withheld: it may quote a credential)"
                ));
            };
            let field = text()
                .and_then(|t| field_at(&t, at.line()))
                .map(|f| format!(", in field `{f}`"))
                .unwrap_or_default();
            Error::Config(format!(
                "{what} is not valid kubeconfig YAML: the error is at line {}, column {}{field} \
                 (the parser's message is withheld: it may quote a credential)",
                at.line(),
                at.column()
            ))
        }
        other => Error::Config(format!("{what}: {other}")),
    }
}

fn read_kubeconfig_file(path: &Path) -> Result<Kubeconfig> {
    if !path.exists() {
        return Err(Error::Config(format!(
            "kubeconfig {} does not exist",
            path.display()
        )));
    }
    let kc = Kubeconfig::read_from(path).map_err(|e| {
        kubeconfig_error(&format!("kubeconfig {}", path.display()), e, || {
            std::fs::read_to_string(path).ok()
        })
    })?;
    if kc.clusters.is_empty() {
        return Err(Error::Config(format!(
            "kubeconfig {} has no clusters",
            path.display()
        )));
    }
    Ok(kc)
}

async fn from_kubeconfig(kc: Kubeconfig, context: Option<String>) -> Result<kube::Config> {
    if let Some(ctx) = &context
        && !kc.contexts.iter().any(|c| &c.name == ctx)
    {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::Config(format!(
            "context {ctx:?} is not in the kubeconfig (it has: {})",
            known.join(", ")
        )));
    }
    let opts = KubeConfigOptions {
        context,
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| kubeconfig_error("kubeconfig", e, || None))
}

/// Whether `token` can be sent as `Authorization: Bearer <token>`.
fn sendable_bearer(token: &str) -> bool {
    http::HeaderValue::try_from(format!("Bearer {token}")).is_ok()
}

/// The bearer token kube will send, as client-go would: surrounding
/// whitespace trimmed, and checked to be sendable.
///
/// - A `tokenFile` (kube 5 sends its content verbatim, and a trailing
///   newline makes every request fail with "invalid bearer token"): see
///   the module docs — a file with nothing to trim stays kube's
///   periodically reloaded token file; one that needs trimming becomes a
///   fixed token, read now.
/// - An inline `token` (a YAML block scalar ends in a newline): trimmed.
///   kube would otherwise *panic* building the client (tower-http's
///   `AddAuthorizationLayer::bearer`) on a token that is not a valid
///   header value; such a token is an [`Error::Config`] instead.
fn normalize_bearer_token(auth: &mut kube::config::AuthInfo) -> Result<()> {
    // kube uses a token only when nothing of higher precedence is set: an
    // auth provider or basic auth (then an inline token, then the file).
    let basic = auth.username.is_some() && auth.password.is_some();
    if auth.auth_provider.is_some() || basic {
        return Ok(());
    }
    if auth.token.is_some() {
        return normalize_inline_token(auth);
    }
    let Some(path) = auth.token_file.as_deref() else {
        return Ok(());
    };
    let text = Secret::new(
        std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("token file {path}: {e}")))?,
    );
    let token = text.expose().trim();
    if token.is_empty() {
        return Err(Error::Config(format!("token file {path} is empty")));
    }
    if !sendable_bearer(token) {
        // Never echo the content: it is a credential.
        return Err(Error::Config(format!(
            "token file {path} holds characters that cannot be sent in an HTTP header"
        )));
    }
    if token.len() != text.expose().len() {
        tracing::debug!(
            token_file = path,
            "token file has surrounding whitespace; using its trimmed content, read once"
        );
        auth.token = Some(token.to_string().into());
        auth.token_file = None;
    }
    Ok(())
}

fn normalize_inline_token(auth: &mut kube::config::AuthInfo) -> Result<()> {
    // kube keeps the token in a `secrecy::SecretString`, a crate kubepkg
    // does not depend on; kube's own serializer writes it out. Only the
    // token is serialized, and the copy is zeroized on drop.
    use secrecy::ExposeSecret as _;
    let Some(token) = auth.token.as_ref().map(|t| t.expose_secret()) else {
        return Ok(());
    };
    let trimmed = token.trim();
    if !sendable_bearer(trimmed) {
        return Err(Error::Config(
            "the user's bearer token holds characters that cannot be sent in an HTTP header".into(),
        ));
    }
    if trimmed.len() != token.len() {
        auth.token = Some(trimmed.to_string().into());
    }
    Ok(())
}

/// `KUBERNETES_SERVICE_HOST` set and a token mounted.
fn in_cluster_available() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
}

/// The files of `$KUBECONFIG` that exist (client-go skips missing ones).
fn kubeconfig_env_paths() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(v) => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect(),
        None => Vec::new(),
    }
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
}

async fn default_chain(context: Option<String>) -> Result<kube::Config> {
    if in_cluster_available() && context.is_none() {
        return kube::Config::incluster()
            .map_err(|e| Error::Config(format!("in-cluster service account: {e}")));
    }
    let env_paths = kubeconfig_env_paths();
    if !env_paths.is_empty() {
        let mut merged = Kubeconfig::default();
        for p in &env_paths {
            let next = Kubeconfig::read_from(p).map_err(|e| {
                kubeconfig_error(&format!("kubeconfig {}", p.display()), e, || {
                    std::fs::read_to_string(p).ok()
                })
            })?;
            merged = merged
                .merge(next)
                .map_err(|e| kubeconfig_error("merging $KUBECONFIG", e, || None))?;
        }
        return from_kubeconfig(merged, context).await;
    }
    match home_kubeconfig() {
        Some(p) if p.exists() => from_kubeconfig(read_kubeconfig_file(&p)?, context).await,
        _ => Err(Error::Config(
            "no cluster configured: not running in a pod, $KUBECONFIG names no existing file \
             and ~/.kube/config does not exist"
                .into(),
        )),
    }
}

async fn token_config(server: &str, ca_pem: Option<&str>, token: &str) -> Result<kube::Config> {
    check_server_url(server)?;
    // Build a one-context kubeconfig in memory so that kube parses the CA
    // exactly as it does for files.
    let mut cluster = serde_json::json!({ "server": server });
    if let Some(pem) = ca_pem {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::Config("ca_pem is not a PEM certificate".into()));
        }
        cluster["certificate-authority-data"] = base64::engine::general_purpose::STANDARD
            .encode(pem.as_bytes())
            .into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "c", "cluster": cluster }],
        "users": [{ "name": "u", "user": { "token": token } }],
        "contexts": [{ "name": "c", "context": { "cluster": "c", "user": "u" } }],
        "current-context": "c",
    });
    let kc = Kubeconfig::from_yaml(&doc.to_string())
        .map_err(|e| kubeconfig_error("token config", e, || None))?;
    let mut cfg = from_kubeconfig(kc, None).await?;
    if ca_pem.is_some() && cfg.root_cert.as_ref().is_none_or(Vec::is_empty) {
        return Err(Error::Config("ca_pem holds no certificate".into()));
    }
    cfg.default_namespace = "default".into();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepkg_util::ErrorKind;

    const KC: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster:
    server: https://a.example:6443
    insecure-skip-tls-verify: false
- name: b
  cluster:
    server: https://b.example:6443
users:
- name: u
  user:
    token: abc
contexts:
- name: ctx-a
  context: {cluster: a, user: u, namespace: team-a}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
"#;

    #[tokio::test]
    async fn kubeconfig_text_uses_current_context_or_the_chosen_one() {
        let cfg = ClusterConfig::kubeconfig_text(KC)
            .to_kube_config()
            .await
            .unwrap();
        assert_eq!(cfg.cluster_url.host(), Some("a.example"));
        assert_eq!(cfg.default_namespace, "team-a");
        let cfg = ClusterConfig::kubeconfig_text(KC)
            .with_context("ctx-b")
            .to_kube_config()
            .await
            .unwrap();
        assert_eq!(cfg.cluster_url.host(), Some("b.example"));
        assert!(!cfg.default_retry);
    }

    #[tokio::test]
    async fn base64_source_decodes() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(KC);
        let cfg = ClusterConfig::kubeconfig_base64(b64)
            .with_context("ctx-b")
            .to_kube_config()
            .await
            .unwrap();
        assert_eq!(cfg.cluster_url.host(), Some("b.example"));
    }

    #[tokio::test]
    async fn unknown_context_is_a_config_error() {
        let err = ClusterConfig::kubeconfig_text(KC)
            .with_context("nope")
            .to_kube_config()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn malformed_inputs_are_rejected() {
        for cfg in [
            ClusterConfig::kubeconfig_text("clusters: [ {"),
            ClusterConfig::kubeconfig_text("apiVersion: v1\nkind: Config\n"),
            ClusterConfig::kubeconfig_base64("%%% not base64"),
            ClusterConfig::token("not a url", None, "t"),
            ClusterConfig::token("https://h:1", Some("garbage".into()), "t"),
            ClusterConfig::token("https://h:1", None, "  "),
            ClusterConfig::kubeconfig_file("/nonexistent/kubeconfig"),
            ClusterConfig::kubeconfig_text(KC).with_rate_limit(-1.0, 1),
            ClusterConfig::kubeconfig_text(KC).with_rate_limit(f32::NAN, 1),
            ClusterConfig::kubeconfig_text(KC).with_rate_limit(f32::MIN_POSITIVE, 1),
            ClusterConfig::kubeconfig_text(KC).with_rate_limit(0.0001, 1),
            ClusterConfig::kubeconfig_text(KC).with_namespace("Team_A"),
            ClusterConfig::kubeconfig_text(KC).with_namespace("a/b"),
            ClusterConfig::kubeconfig_text(KC).with_namespace(""),
        ] {
            let err = cfg.to_kube_config().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        }
    }

    #[tokio::test]
    async fn kubeconfig_parse_errors_give_the_place_never_the_value() {
        const SECRET: &str = "eyJhbGciOiJSUzI1NiJ9.Qk-s3cr3t-Tok3n";
        let user = |entry: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {{server: \"https://a:6443\"}}\n\
                 users:\n- name: u\n  user:\n{entry}\n\
                 contexts:\n- name: c\n  context: {{cluster: a, user: u}}\ncurrent-context: c\n"
            )
        };
        let cases = [
            // An unterminated quote.
            (user(&format!("    token: \"{SECRET}")), None),
            // A token where a boolean belongs.
            (
                format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://a:6443\n    insecure-skip-tls-verify: {SECRET}\n"
                ),
                Some("insecure-skip-tls-verify"),
            ),
            // A token pasted where the user mapping belongs.
            (
                format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {{server: \"https://a:6443\"}}\nusers:\n- name: u\n  user: {SECRET}\n"
                ),
                Some("user"),
            ),
            // A token pasted as a key of its own.
            (user(&format!("    token: x\n    {SECRET}: [")), None),
            // An unclosed flow sequence.
            (user(&format!("    token: [{SECRET}")), None),
            // A token where the list of clusters belongs.
            (format!("clusters: {SECRET}\n"), Some("clusters")),
        ];
        for (text, field) in cases {
            let mut errors = vec![
                ClusterConfig::kubeconfig_text(text.clone())
                    .to_kube_config()
                    .await
                    .unwrap_err(),
            ];
            errors.push(
                ClusterConfig::kubeconfig_text(text.clone())
                    .validate()
                    .unwrap_err(),
            );
            errors.push(
                ClusterConfig::kubeconfig_base64(
                    base64::engine::general_purpose::STANDARD.encode(&text),
                )
                .validate()
                .unwrap_err(),
            );
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("config");
            std::fs::write(&path, &text).expect("write");
            errors.push(
                ClusterConfig::kubeconfig_file(&path)
                    .to_kube_config()
                    .await
                    .unwrap_err(),
            );
            for err in errors {
                let (display, debug) = (err.to_string(), format!("{err:?}"));
                assert_eq!(err.kind(), ErrorKind::Invalid, "{display}");
                assert!(matches!(err, Error::Config(_)), "{debug}");
                for part in ["Qk-s3cr3t", "eyJhbGci", "Tok3n"] {
                    assert!(
                        !display.contains(part),
                        "Display quotes the value: {display}"
                    );
                    assert!(!debug.contains(part), "Debug quotes the value: {debug}");
                }
                assert!(display.contains("line "), "no location: {display}");
                if let Some(f) = field {
                    assert!(
                        display.contains(&format!("`{f}`")),
                        "no field {f}: {display}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_kubeconfig_field_names_are_picked_from_a_failing_line() {
        let text = "users:\n- name: u\n  user:\n    token: abc\n    s3cret: x\n  - \"client-key-data\": y\n";
        assert_eq!(field_at(text, 4), Some("token"));
        assert_eq!(field_at(text, 2), Some("name"));
        assert_eq!(field_at(text, 5), None, "not a kubeconfig field");
        assert_eq!(field_at(text, 6), Some("client-key-data"));
        assert_eq!(field_at(text, 0), None);
        assert_eq!(field_at(text, 99), None);
    }

    #[tokio::test]
    async fn rate_limits_at_and_above_the_minimum_are_accepted() {
        for qps in [0.0, ClusterConfig::MIN_QPS, 0.5, 1e9] {
            let cfg = ClusterConfig::kubeconfig_text(KC).with_rate_limit(qps, 1);
            assert!(cfg.validate().is_ok(), "{qps}");
        }
        let err = ClusterConfig::kubeconfig_text(KC)
            .with_rate_limit(1e-6, 1)
            .validate()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("minimum"), "{err}");
        let err = ClusterConfig::kubeconfig_text(KC)
            .with_namespace("ns?x=1")
            .validate()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("ns?x=1"), "{err}");
    }

    /// A kubeconfig whose user reads its token from `path`, plus `extra`
    /// user fields.
    fn token_file_kubeconfig(path: &Path, extra: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {{server: \"https://a.example:6443\"}}\n\
             users:\n- name: u\n  user: {{tokenFile: {path:?}{extra}}}\n\
             contexts:\n- name: c\n  context: {{cluster: a, user: u}}\ncurrent-context: c\n"
        )
    }

    /// The user entry kube will authenticate with, as JSON (kube's
    /// serializer writes the token out, which these tests need).
    async fn resolved_user(kubeconfig: &str) -> Result<serde_json::Value> {
        let cfg = ClusterConfig::kubeconfig_text(kubeconfig)
            .to_kube_config()
            .await?;
        Ok(serde_json::to_value(&cfg.auth_info).expect("AuthInfo serializes"))
    }

    #[tokio::test]
    async fn token_files_are_trimmed_and_clean_ones_stay_reloadable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, content: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, content).expect("write");
            p
        };
        // `echo tok > f`: trimmed into a fixed token.
        for (name, content) in [
            ("nl", "tok-1\n"),
            ("crlf", "tok-1\r\n"),
            ("ws", "  tok-1\t\n\n"),
        ] {
            let user = resolved_user(&token_file_kubeconfig(&file(name, content), ""))
                .await
                .expect("resolves");
            assert_eq!(user["token"], "tok-1", "{name}");
            assert!(
                user.get("tokenFile").is_none_or(|v| v.is_null()),
                "{name}: {user}"
            );
        }
        // Nothing to trim: kube keeps the file, and re-reads it as it rotates.
        let clean = file("clean", "tok-2");
        let user = resolved_user(&token_file_kubeconfig(&clean, ""))
            .await
            .expect("resolves");
        assert!(user.get("token").is_none_or(|v| v.is_null()), "{user}");
        assert_eq!(user["tokenFile"], clean.to_string_lossy().as_ref());
        // An inline token takes precedence (as in kube and client-go): the
        // file is not even read.
        let user = resolved_user(&token_file_kubeconfig(
            &dir.path().join("missing"),
            ", token: inline",
        ))
        .await
        .expect("resolves");
        assert_eq!(user["token"], "inline");
    }

    #[tokio::test]
    async fn unusable_token_files_are_config_errors_that_never_show_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in [
            ("empty", ""),
            ("blank", " \n\n"),
            ("ctl", "s3cr3tQ\u{1}x\n"),
            ("nl-inside", "s3cr3tQ\nx"),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, content).expect("write");
            let err = resolved_user(&token_file_kubeconfig(&p, ""))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{name}: {err}");
            assert!(matches!(err, Error::Config(_)), "{name}: {err:?}");
            assert!(!err.to_string().contains("s3cr3tQ"), "{name}: {err}");
        }
        let err = resolved_user(&token_file_kubeconfig(&dir.path().join("nope"), ""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn inline_tokens_are_trimmed_and_unsendable_ones_rejected_not_panicked_on() {
        let with_token = |token: &str| {
            KC.replace(
                "token: abc",
                &format!("token: {}", serde_json::to_string(token).expect("json")),
            )
        };
        let user = resolved_user(&with_token("abc\n")).await.expect("resolves");
        assert_eq!(user["token"], "abc");
        let user = resolved_user(&with_token("abc")).await.expect("resolves");
        assert_eq!(user["token"], "abc");
        // kube would panic building a client with this one.
        let err = resolved_user(&with_token("ab\nc-Zq9")).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!err.to_string().contains("Zq9"), "{err}");
        let err = ClusterConfig::token("https://h:6443", None, "ab\u{7f}c")
            .to_kube_config()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    }

    #[tokio::test]
    async fn a_token_source_is_trimmed_too() {
        let cfg = ClusterConfig::token("https://h:6443", None, "tok-3\n")
            .to_kube_config()
            .await
            .expect("resolves");
        let user = serde_json::to_value(&cfg.auth_info).expect("serializes");
        assert_eq!(user["token"], "tok-3");
    }

    #[test]
    fn timeouts_round_up_to_whole_seconds() {
        let secs = |d: Duration| ClusterConfig::default().with_timeout(d).timeout_secs;
        assert_eq!(secs(Duration::ZERO), 0, "zero means none");
        assert_eq!(secs(Duration::from_nanos(1)), 1);
        assert_eq!(secs(Duration::from_millis(500)), 1);
        assert_eq!(secs(Duration::from_secs(1)), 1);
        assert_eq!(secs(Duration::from_millis(1200)), 2);
        assert_eq!(secs(Duration::from_secs(30)), 30);
        assert_eq!(secs(Duration::MAX), u64::MAX, "saturates, no overflow");
        // Still plain seconds on the wire.
        let json =
            serde_json::to_value(ClusterConfig::default().with_timeout(Duration::from_millis(10)))
                .unwrap();
        assert_eq!(json["timeout_secs"], 1);
    }

    #[test]
    fn serde_round_trip_and_defaults() {
        let cfg = ClusterConfig::token("https://h:6443", None, "sekret").with_context("ignored");
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["source"], "token");
        assert_eq!(json["server"], "https://h:6443");
        let back: ClusterConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cfg);
        assert!(!format!("{cfg:?}").contains("sekret"));

        let yaml = "source: default\nqps: 0\n";
        let cfg: ClusterConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(cfg.source, ClusterSource::Default { context: None });
        assert_eq!(cfg.qps, 0.0);
        assert_eq!(cfg.max_retries, 4);
    }

    #[test]
    fn env_overrides_apply_and_reject_garbage() {
        let vars = |k: &str| match k {
            "KUBEPKG_K8S_QPS" => Some("7.5".to_string()),
            "KUBEPKG_K8S_CONTEXT" => Some("ctx-b".to_string()),
            _ => None,
        };
        let cfg = ClusterConfig::kubeconfig_text(KC)
            .with_overrides(vars)
            .unwrap();
        assert_eq!(cfg.qps, 7.5);
        assert!(
            matches!(cfg.source, ClusterSource::Kubeconfig { context: Some(ref c), .. } if c == "ctx-b")
        );
        let bad = |k: &str| (k == "KUBEPKG_K8S_BURST").then(|| "lots".to_string());
        assert!(ClusterConfig::default().with_overrides(bad).is_err());
    }
}
