//! Configuration as data: serde structs an application reads from its config
//! file (TOML, YAML, JSON…) and may override from environment variables.
//!
//! ```
//! use kubepkg_image_api::{Config, RegistryKind};
//!
//! let cfg: Config = serde_json::from_str(r#"{
//!     "registry": { "kind": "harbor", "url": "https://harbor.example.com",
//!                   "username": "robot$ci", "password": "s3cret" },
//!     "engine": { "host": "unix:///var/run/docker.sock" },
//!     "registries": { "mirror": { "url": "https://mirror.example.com" } }
//! }"#).unwrap();
//! let reg = cfg.registry.as_ref().unwrap();
//! assert_eq!(reg.kind, RegistryKind::Harbor);
//! // the password never shows up in Debug output
//! assert!(!format!("{reg:?}").contains("s3cret"));
//! assert_eq!(cfg.registries["mirror"].kind, RegistryKind::Distribution);
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::{Error, Result};
use kubepkg_util::secret::Secret;

/// Everything this crate can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The default registry ([`global::registry`](crate::global::registry)).
    pub registry: Option<RegistryConfig>,
    /// The default engine ([`global::engine`](crate::global::engine)).
    pub engine: Option<EngineConfig>,
    /// Named registries ([`global::named_registry`](crate::global::named_registry)).
    pub registries: BTreeMap<String, RegistryConfig>,
    /// Named engines ([`global::named_engine`](crate::global::named_engine)).
    pub engines: BTreeMap<String, EngineConfig>,
}

/// Which registry API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryKind {
    /// Any OCI Distribution / Docker Registry HTTP API v2 server.
    #[default]
    Distribution,
    /// Harbor (REST API v2.0, plus `/v2/` for manifests).
    Harbor,
}

impl RegistryKind {
    /// `distribution` or `harbor`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Distribution => "distribution",
            RegistryKind::Harbor => "harbor",
        }
    }
}

impl std::str::FromStr for RegistryKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "distribution" | "oci" | "registry" => Ok(RegistryKind::Distribution),
            "harbor" => Ok(RegistryKind::Harbor),
            other => Err(Error::Config(format!(
                "unknown registry kind {other:?} (expected distribution or harbor)"
            ))),
        }
    }
}

fn default_timeout() -> u64 {
    30
}

fn default_connect_timeout() -> u64 {
    10
}

fn default_read_timeout() -> u64 {
    60
}

fn default_concurrency() -> usize {
    8
}

fn default_max_retries() -> u32 {
    3
}

/// What an old config's `insecure` key is told (the key is refused).
const INSECURE_SPLIT: &str = "`insecure` was split in two: set `allow_http = true` to allow a plain \
http:// registry URL, and/or `danger_accept_invalid_certs = true` to skip TLS certificate checks";

/// One registry.
///
/// Deserializing refuses unknown keys, and refuses the `insecure` key of
/// earlier versions with a message naming its two replacements
/// ([`allow_http`](Self::allow_http) and
/// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs)), so an
/// old config file fails loudly instead of quietly changing meaning.
///
/// ```
/// use kubepkg_image_api::RegistryConfig;
///
/// let old = serde_json::from_str::<RegistryConfig>(r#"{"url": "http://r:5000", "insecure": true}"#);
/// assert!(old.unwrap_err().to_string().contains("allow_http"));
/// let cfg: RegistryConfig =
///     serde_json::from_str(r#"{"url": "http://r:5000", "allow_http": true}"#).unwrap();
/// assert!(cfg.allow_http && !cfg.danger_accept_invalid_certs);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RegistryConfigFile")]
pub struct RegistryConfig {
    /// The API to speak (default `distribution`).
    pub kind: RegistryKind,
    /// Base URL, e.g. `https://harbor.example.com`. A bare `host:port` means `https://host:port`.
    pub url: String,
    /// User name (Harbor user or robot account, registry user).
    pub username: Option<String>,
    /// Password or token; never printed.
    pub password: Option<Secret<String>>,
    /// Allows a plain `http://` URL (credentials then travel unencrypted to
    /// the registry). Off by default; when on, a warning is logged at connect
    /// time. It also lets a bearer-token realm on the registry's own host be
    /// plain http; a realm on any other host must be https.
    pub allow_http: bool,
    /// Skips TLS certificate verification (any certificate, any host name).
    /// Off by default; when on, a warning is logged at connect time. Prefer
    /// [`ca_file`](Self::ca_file) for a private CA.
    pub danger_accept_invalid_certs: bool,
    /// Extra CA certificate (PEM) to trust, for registries with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Total time in seconds one API call may take, body included (default
    /// 30). All timeouts are clamped to 1 second ..= 1 day. Blob downloads are not bounded by it (they may be large), only by
    /// [`connect_timeout_secs`](Self::connect_timeout_secs) and
    /// [`read_timeout_secs`](Self::read_timeout_secs).
    pub timeout_secs: u64,
    /// Time in seconds to establish a connection, TLS included (default 10).
    pub connect_timeout_secs: u64,
    /// Longest wait in seconds for the next bytes of any response, blob
    /// streams included (default 60): a stalled transfer fails after this,
    /// however large the body.
    pub read_timeout_secs: u64,
    /// How many requests a fan-out (e.g. listing artifacts) runs at once (default 8).
    pub concurrency: usize,
    /// How many times an idempotent call (GET, HEAD, DELETE) is retried after
    /// a 429 / 502 / 503 / 504 answer or a connection failure, with
    /// exponential backoff honouring `Retry-After` (default 3; 0 disables).
    /// Calls that change state (POST, PUT) are retried only when the
    /// connection could not be established, i.e. when nothing was sent.
    pub max_retries: u32,
}

/// The file form of [`RegistryConfig`]: every key, plus the refused `insecure`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryConfigFile {
    #[serde(default)]
    kind: RegistryKind,
    url: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret<String>>,
    #[serde(default)]
    allow_http: bool,
    #[serde(default)]
    danger_accept_invalid_certs: bool,
    #[serde(default)]
    insecure: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_secs: u64,
    #[serde(default = "default_read_timeout")]
    read_timeout_secs: u64,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
}

impl TryFrom<RegistryConfigFile> for RegistryConfig {
    type Error = String;

    fn try_from(f: RegistryConfigFile) -> std::result::Result<Self, String> {
        if f.insecure.is_some() {
            return Err(INSECURE_SPLIT.to_string());
        }
        Ok(RegistryConfig {
            kind: f.kind,
            url: f.url,
            username: f.username,
            password: f.password,
            allow_http: f.allow_http,
            danger_accept_invalid_certs: f.danger_accept_invalid_certs,
            ca_file: f.ca_file,
            timeout_secs: f.timeout_secs,
            connect_timeout_secs: f.connect_timeout_secs,
            read_timeout_secs: f.read_timeout_secs,
            concurrency: f.concurrency,
            max_retries: f.max_retries,
        })
    }
}

impl RegistryConfig {
    /// A config for `url` with the default kind, no credentials, TLS verified.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            kind: RegistryKind::Distribution,
            url: url.into(),
            username: None,
            password: None,
            allow_http: false,
            danger_accept_invalid_certs: false,
            ca_file: None,
            timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            read_timeout_secs: default_read_timeout(),
            concurrency: default_concurrency(),
            max_retries: default_max_retries(),
        }
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: RegistryKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets user name and password.
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<Secret<String>>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Allows a plain `http://` URL (see [`allow_http`](Self::allow_http);
    /// logged as a warning when connecting).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Skips TLS certificate verification (see
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs);
    /// logged as a warning when connecting).
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// Both [`allow_http`](Self::allow_http) and
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs), as
    /// the single `insecure` switch of earlier versions did.
    #[deprecated(
        note = "`insecure` was split: use `allow_http` for a plain http registry and/or `danger_accept_invalid_certs` to skip certificate checks"
    )]
    pub fn insecure(self, insecure: bool) -> Self {
        self.allow_http(insecure)
            .danger_accept_invalid_certs(insecure)
    }

    /// Sets the total timeout of an API call ([`timeout_secs`](Self::timeout_secs)).
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = secs;
        self
    }

    /// Sets the idle timeout of a response body ([`read_timeout_secs`](Self::read_timeout_secs)).
    pub fn read_timeout_secs(mut self, secs: u64) -> Self {
        self.read_timeout_secs = secs;
        self
    }

    /// Sets how often idempotent calls are retried ([`max_retries`](Self::max_retries)).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Reads a registry config from `{prefix}_URL`, `{prefix}_KIND`,
    /// `{prefix}_USERNAME`, `{prefix}_PASSWORD`, `{prefix}_ALLOW_HTTP`,
    /// `{prefix}_DANGER_ACCEPT_INVALID_CERTS`; `None` when `{prefix}_URL` is
    /// unset. The usual prefix is `KUBEPKG_REGISTRY`. The old
    /// `{prefix}_INSECURE` is refused with an [`Error::Config`] naming its
    /// two replacements.
    pub fn from_env(prefix: &str) -> Result<Option<Self>> {
        let Ok(url) = std::env::var(format!("{prefix}_URL")) else {
            return Ok(None);
        };
        let mut cfg = RegistryConfig::new(url);
        cfg.apply_env(prefix)?;
        Ok(Some(cfg))
    }

    /// Overrides fields from the `{prefix}_*` environment variables that are set
    /// (see [`from_env`](Self::from_env)).
    pub fn apply_env(&mut self, prefix: &str) -> Result<()> {
        let var = |name: &str| std::env::var(format!("{prefix}_{name}")).ok();
        if var("INSECURE").is_some() {
            return Err(Error::Config(format!(
                "{prefix}_INSECURE is no longer read: {INSECURE_SPLIT} \
                 ({prefix}_ALLOW_HTTP, {prefix}_DANGER_ACCEPT_INVALID_CERTS)"
            )));
        }
        if let Some(v) = var("URL") {
            self.url = v;
        }
        if let Some(v) = var("KIND") {
            self.kind = v.parse()?;
        }
        if let Some(v) = var("USERNAME") {
            self.username = Some(v);
        }
        if let Some(v) = var("PASSWORD") {
            self.password = Some(Secret::new(v));
        }
        if let Some(v) = var("ALLOW_HTTP") {
            self.allow_http = parse_bool(&format!("{prefix}_ALLOW_HTTP"), &v)?;
        }
        if let Some(v) = var("DANGER_ACCEPT_INVALID_CERTS") {
            self.danger_accept_invalid_certs =
                parse_bool(&format!("{prefix}_DANGER_ACCEPT_INVALID_CERTS"), &v)?;
        }
        Ok(())
    }

    /// The base URL with a scheme and without a trailing slash; checks that
    /// plain HTTP is only used when [`allow_http`](Self::allow_http) is set.
    pub fn base_url(&self) -> Result<url::Url> {
        let raw = self.url.trim().trim_end_matches('/');
        if raw.is_empty() {
            return Err(Error::Config("registry url is empty".into()));
        }
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("https://{raw}")
        };
        let url = url::Url::parse(&with_scheme)
            .map_err(|e| Error::Config(format!("registry url {raw:?}: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(Error::Config(format!(
                    "registry url {raw:?} is plain http; set `allow_http = true` to allow it"
                )));
            }
            other => {
                return Err(Error::Config(format!(
                    "registry url {raw:?}: unsupported scheme {other:?}"
                )));
            }
        }
        if url.host_str().is_none() {
            return Err(Error::Config(format!("registry url {raw:?} has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config(
                "put registry credentials in username/password, not in the url".into(),
            ));
        }
        Ok(url)
    }

    /// `host[:port]` of the URL, as used in image references.
    pub fn host(&self) -> Result<String> {
        let url = self.base_url()?;
        let host = url.host_str().unwrap_or_default();
        Ok(match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        })
    }
}

fn default_engine_timeout() -> u64 {
    600
}

/// The Docker engine to talk to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// `unix:///path/docker.sock`, a socket path, `tcp://host:port` or
    /// `https://host:port`. `None`: `$DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    #[serde(default)]
    pub host: Option<String>,
    /// Client certificates for TCP with TLS (needs cargo feature `docker-tls`).
    #[serde(default)]
    pub tls: Option<EngineTls>,
    /// Timeout in seconds until the engine starts answering a request (default
    /// 600: a build answers once the whole context is uploaded); clamped to
    /// 1 second ..= 1 day. Streamed answers (build output, pushes, logs) are
    /// not cut off by it.
    #[serde(default = "default_engine_timeout")]
    pub timeout_secs: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            host: None,
            tls: None,
            timeout_secs: default_engine_timeout(),
        }
    }
}

/// TLS files for a TCP engine, PEM encoded (`docker --tlsverify` layout).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineTls {
    /// CA certificate that signed the daemon's certificate.
    pub ca: PathBuf,
    /// Client certificate.
    pub cert: PathBuf,
    /// Client private key.
    pub key: PathBuf,
}

impl EngineTls {
    /// `ca.pem`, `cert.pem`, `key.pem` in `dir` (the `DOCKER_CERT_PATH` layout).
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        EngineTls {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// The default engine socket.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

impl EngineConfig {
    /// An engine at `host`.
    pub fn new(host: impl Into<String>) -> Self {
        EngineConfig {
            host: Some(host.into()),
            ..EngineConfig::default()
        }
    }

    /// The docker CLI's conventions: `DOCKER_HOST`, and when
    /// `DOCKER_TLS_VERIFY` is set, TLS files from `DOCKER_CERT_PATH`.
    pub fn from_env() -> Self {
        let mut cfg = EngineConfig::default();
        cfg.apply_env();
        cfg
    }

    /// Overrides `host` / `tls` from `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`.
    pub fn apply_env(&mut self) {
        if let Ok(h) = std::env::var("DOCKER_HOST")
            && !h.is_empty()
        {
            self.host = Some(h);
        }
        let verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
        if verify && let Ok(dir) = std::env::var("DOCKER_CERT_PATH") {
            self.tls = Some(EngineTls::from_dir(dir));
        }
    }

    /// The host to connect to, normalised: a bare path becomes `unix://path`.
    pub fn resolved_host(&self) -> String {
        let h = self.host.as_deref().unwrap_or(DEFAULT_DOCKER_HOST).trim();
        if h.starts_with('/') {
            format!("unix://{h}")
        } else {
            h.to_string()
        }
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(Error::Config(format!("{name}={other:?} is not a boolean"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_needs_allow_http() {
        let c = RegistryConfig::new("http://127.0.0.1:5000");
        let e = c.base_url().unwrap_err();
        assert!(e.to_string().contains("allow_http"), "{e}");
        // skipping certificate checks does not allow http
        assert!(
            c.clone()
                .danger_accept_invalid_certs(true)
                .base_url()
                .is_err()
        );
        let c = c.allow_http(true);
        assert!(!c.danger_accept_invalid_certs);
        assert_eq!(c.base_url().unwrap().as_str(), "http://127.0.0.1:5000/");
        assert_eq!(c.host().unwrap(), "127.0.0.1:5000");
    }

    #[test]
    fn the_old_insecure_key_fails_loudly() {
        for v in ["true", "false"] {
            let e = serde_json::from_str::<RegistryConfig>(&format!(
                r#"{{"url":"http://x","insecure":{v}}}"#
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("allow_http") && e.contains("danger_accept_invalid_certs"),
                "{e}"
            );
        }
        let c: RegistryConfig = serde_json::from_str(
            r#"{"url":"https://x","danger_accept_invalid_certs":true,"read_timeout_secs":5,"max_retries":0}"#,
        )
        .unwrap();
        assert!(c.danger_accept_invalid_certs && !c.allow_http);
        assert_eq!(
            (c.read_timeout_secs, c.max_retries, c.connect_timeout_secs),
            (5, 0, 10)
        );
    }

    #[test]
    #[allow(deprecated)]
    fn deprecated_insecure_sets_both() {
        let c = RegistryConfig::new("http://x").insecure(true);
        assert!(c.allow_http && c.danger_accept_invalid_certs);
    }

    #[test]
    fn bare_host_is_https() {
        let c = RegistryConfig::new("registry.example.com/");
        assert_eq!(c.base_url().unwrap().scheme(), "https");
        assert_eq!(c.host().unwrap(), "registry.example.com");
        assert!(RegistryConfig::new("ftp://x").base_url().is_err());
        assert!(RegistryConfig::new("").base_url().is_err());
        assert!(RegistryConfig::new("https://u:p@x").base_url().is_err());
    }

    #[test]
    fn debug_hides_password() {
        let c = RegistryConfig::new("https://x").credentials("u", "hunter2");
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("redacted"));
    }

    #[test]
    fn engine_host_normalisation() {
        assert_eq!(
            EngineConfig::new("/tmp/d.sock").resolved_host(),
            "unix:///tmp/d.sock"
        );
        assert_eq!(
            EngineConfig::new("tcp://h:2376").resolved_host(),
            "tcp://h:2376"
        );
        let tls = EngineTls::from_dir("/certs");
        assert_eq!(tls.key, PathBuf::from("/certs/key.pem"));
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            "Harbor".parse::<RegistryKind>().unwrap(),
            RegistryKind::Harbor
        );
        assert!("quay".parse::<RegistryKind>().is_err());
        let cfg: RegistryConfig = serde_json::from_str(r#"{"url":"x"}"#).unwrap();
        assert_eq!(cfg.timeout_secs, 30);
        assert!(serde_json::from_str::<RegistryConfig>(r#"{"url":"x","bogus":1}"#).is_err());
    }
}
