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

fn default_concurrency() -> usize {
    8
}

/// One registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The API to speak (default `distribution`).
    #[serde(default)]
    pub kind: RegistryKind,
    /// Base URL, e.g. `https://harbor.example.com`. A bare `host:port` means `https://host:port`.
    pub url: String,
    /// User name (Harbor user or robot account, registry user).
    #[serde(default)]
    pub username: Option<String>,
    /// Password or token; never printed.
    #[serde(default)]
    pub password: Option<Secret<String>>,
    /// Allows plain `http://` URLs and skips TLS certificate verification.
    /// Off by default; when on, a warning is logged at connect time.
    #[serde(default)]
    pub insecure: bool,
    /// Extra CA certificate (PEM) to trust, for registries with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How many requests a fan-out (e.g. listing artifacts) runs at once (default 8).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl RegistryConfig {
    /// A config for `url` with the default kind, no credentials, TLS verified.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            kind: RegistryKind::Distribution,
            url: url.into(),
            username: None,
            password: None,
            insecure: false,
            ca_file: None,
            timeout_secs: default_timeout(),
            concurrency: default_concurrency(),
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

    /// Allows plain HTTP / unverified TLS (logged as a warning when connecting).
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Reads a registry config from `{prefix}_URL`, `{prefix}_KIND`,
    /// `{prefix}_USERNAME`, `{prefix}_PASSWORD`, `{prefix}_INSECURE`;
    /// `None` when `{prefix}_URL` is unset. The usual prefix is `KUBEPKG_REGISTRY`.
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
        if let Some(v) = var("INSECURE") {
            self.insecure = parse_bool(&format!("{prefix}_INSECURE"), &v)?;
        }
        Ok(())
    }

    /// The base URL with a scheme and without a trailing slash; checks that
    /// plain HTTP is only used when `insecure` is set.
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
            "http" if self.insecure => {}
            "http" => {
                return Err(Error::Config(format!(
                    "registry url {raw:?} is plain http; set `insecure = true` to allow it"
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
    /// Request timeout in seconds (default 600: builds and pushes are long).
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
    fn http_needs_insecure() {
        let c = RegistryConfig::new("http://127.0.0.1:5000");
        assert!(c.base_url().is_err());
        let c = c.insecure(true);
        assert_eq!(c.base_url().unwrap().as_str(), "http://127.0.0.1:5000/");
        assert_eq!(c.host().unwrap(), "127.0.0.1:5000");
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
