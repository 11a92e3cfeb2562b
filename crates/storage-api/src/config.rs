//! Config is data: one serde enum per capability, readable from the
//! application's TOML / YAML / JSON config, with environment overrides, and
//! [`connect`] / [`connect_queue`] turning it into a trait object.
//!
//! ```toml
//! [storage]
//! backend = "minio"
//! endpoint = "http://127.0.0.1:9000"
//! access_key = "admin"
//! secret_key = "change-me"
//!
//! [queue]
//! backend = "amqp"
//! url = "amqp://app:change-me@127.0.0.1:5672/%2f"
//! ```
//!
//! Environment overrides ([`StorageConfig::with_env`],
//! [`QueueConfig::with_env`]): `KUBEPKG_STORAGE_BACKEND` (memory, local, s3,
//! minio) switches backend; `KUBEPKG_LOCAL_ROOT`; `KUBEPKG_S3_ENDPOINT`,
//! `KUBEPKG_S3_REGION`, `KUBEPKG_S3_ACCESS_KEY`, `KUBEPKG_S3_SECRET_KEY`,
//! `KUBEPKG_S3_PATH_STYLE` (true/false) for both s3 and minio;
//! `KUBEPKG_QUEUE_BACKEND` (memory, amqp) and `KUBEPKG_AMQP_URL`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::mq::MessageQueue;
use crate::object::ObjectStorage;
use crate::secret::Secret;

pub use crate::object::MultipartConfig;

// Backend settings exist whatever features are on, so configs always parse.

/// Settings of the local backend.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The directory holding the buckets (created if missing).
    pub root: PathBuf,
}

/// Where the S3 backend gets its credentials (aws-config's providers; see
/// the [s3 backend](crate::object::s3) for each source in detail).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "source", rename_all = "lowercase", deny_unknown_fields)]
#[derive(Default)]
pub enum CredentialsConfig {
    /// Keys given in the config: they override every other source.
    Static {
        /// Access key id.
        access_key: String,
        /// Secret access key.
        secret_key: Secret,
        /// Session token of temporary credentials.
        #[serde(default)]
        session_token: Option<Secret>,
    },
    /// The standard AWS credential chain, as every AWS SDK reads it: the
    /// environment, the shared config / credentials files (static keys,
    /// assume-role, `credential_process`, SSO), web identity (EKS IRSA),
    /// the ECS container endpoint, EC2 instance metadata; temporary
    /// credentials are refreshed before they expire. A service on EKS or
    /// EC2 needs no keys in its config.
    #[default]
    Chain,
    /// Only `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    Env,
    /// Only one profile of `~/.aws/credentials` / `~/.aws/config`
    /// (`AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE` override the
    /// paths), with whatever that profile uses: static keys, assume-role,
    /// `credential_process`, SSO, web identity.
    Profile {
        /// Profile name; `AWS_PROFILE` or `default` when absent.
        #[serde(default)]
        name: Option<String>,
    },
}

/// Settings of the S3 backend.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Custom endpoint, e.g. `http://127.0.0.1:9000`. When absent:
    /// `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL` (unless
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else AWS itself.
    pub endpoint: Option<String>,
    /// Region to sign with. When absent: `AWS_REGION`, then
    /// `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most
    /// S3-compatible servers.
    pub path_style: bool,
    /// Where credentials come from (default: the standard AWS chain).
    pub credentials: CredentialsConfig,
    /// Multipart upload knobs.
    pub multipart: MultipartConfig,
    /// Attempts per request including the first (default 3).
    pub max_attempts: u32,
    /// TCP connect timeout in seconds (default 10).
    pub connect_timeout_secs: u64,
    /// How long, in seconds, a request may wait for the server to start
    /// answering, and a download for the next piece of its body (default
    /// 60; 0: no limit). Uploads (puts and multipart parts) are bounded by
    /// `attempt_timeout_secs` instead, since sending their body takes time.
    pub read_timeout_secs: u64,
    /// How long one attempt of a request may take in all, in seconds
    /// (default 300; 0: no limit). A multipart part must upload within it:
    /// raise it for large parts over slow links.
    pub attempt_timeout_secs: u64,
    /// How long a request may take with all its retries, in seconds
    /// (default 0: no limit beyond `max_attempts` attempts of
    /// `attempt_timeout_secs`).
    pub operation_timeout_secs: u64,
    /// Compare returned ETags with the MD5 computed locally (default true).
    /// Turn off for servers whose ETags are not MD5s (e.g. SSE-KMS).
    pub verify_etag: bool,
    /// A PEM file of CA certificates to trust for an `https` endpoint,
    /// besides the system's roots (checked when connecting: a file that
    /// holds no usable certificate is `Invalid`).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate: no TLS verification at all, logged
    /// as a warning when connecting. Only for throw-away test servers;
    /// prefer [`ca_file`](Self::ca_file).
    pub danger_accept_invalid_certs: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: None,
            path_style: false,
            credentials: CredentialsConfig::default(),
            multipart: MultipartConfig::default(),
            max_attempts: 3,
            connect_timeout_secs: 10,
            read_timeout_secs: 60,
            attempt_timeout_secs: 300,
            operation_timeout_secs: 0,
            verify_etag: true,
            ca_file: None,
            danger_accept_invalid_certs: false,
        }
    }
}

/// Settings of the MinIO backend.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinioConfig {
    /// `http://host:9000` (or https; certificates are verified, see
    /// [`ca_file`](Self::ca_file)).
    pub endpoint: String,
    /// Access key (user name).
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// Region to sign with (default `us-east-1`).
    pub region: String,
    /// Multipart upload knobs.
    pub multipart: MultipartConfig,
    /// Attempts per request including the first (default 3).
    pub max_attempts: u32,
    /// TCP connect timeout in seconds (default 10).
    pub connect_timeout_secs: u64,
    /// As [`S3Config::read_timeout_secs`] (default 60; 0: no limit).
    pub read_timeout_secs: u64,
    /// As [`S3Config::attempt_timeout_secs`] (default 300; 0: no limit);
    /// also bounds one admin API request.
    pub attempt_timeout_secs: u64,
    /// As [`S3Config::operation_timeout_secs`] (default 0: no limit).
    pub operation_timeout_secs: u64,
    /// As [`S3Config::ca_file`]; also trusted by the admin API client.
    pub ca_file: Option<PathBuf>,
    /// As [`S3Config::danger_accept_invalid_certs`], for the admin API
    /// client too.
    pub danger_accept_invalid_certs: bool,
}

impl Default for MinioConfig {
    fn default() -> Self {
        let s3 = S3Config::default();
        MinioConfig {
            endpoint: "http://127.0.0.1:9000".into(),
            access_key: String::new(),
            secret_key: Secret::default(),
            region: "us-east-1".into(),
            multipart: MultipartConfig::default(),
            max_attempts: s3.max_attempts,
            connect_timeout_secs: s3.connect_timeout_secs,
            read_timeout_secs: s3.read_timeout_secs,
            attempt_timeout_secs: s3.attempt_timeout_secs,
            operation_timeout_secs: s3.operation_timeout_secs,
            ca_file: None,
            danger_accept_invalid_certs: false,
        }
    }
}

impl MinioConfig {
    /// The equivalent [`S3Config`].
    pub fn to_s3(&self) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            path_style: true,
            credentials: CredentialsConfig::Static {
                access_key: self.access_key.clone(),
                secret_key: self.secret_key.clone(),
                session_token: None,
            },
            multipart: self.multipart.clone(),
            max_attempts: self.max_attempts,
            connect_timeout_secs: self.connect_timeout_secs,
            read_timeout_secs: self.read_timeout_secs,
            attempt_timeout_secs: self.attempt_timeout_secs,
            operation_timeout_secs: self.operation_timeout_secs,
            ca_file: self.ca_file.clone(),
            danger_accept_invalid_certs: self.danger_accept_invalid_certs,
            ..S3Config::default()
        }
    }
}

/// Settings of the AMQP backend.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost` (`amqps://` for TLS, verified).
    pub url: Secret,
    /// Channels in confirm mode used for publishing (default 4).
    pub publish_channels: usize,
    /// How long an operation keeps retrying through reconnects before it
    /// fails with `Unavailable` (or `Timeout` when the broker stopped
    /// answering), in seconds (default 120).
    pub retry_timeout_secs: u64,
    /// First reconnect delay in milliseconds (default 100), doubled up to
    /// `reconnect_max_ms` (default 5000).
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay in milliseconds.
    pub reconnect_max_ms: u64,
    /// Connection name shown in the RabbitMQ management UI.
    pub connection_name: String,
    /// How long, in seconds, opening a connection (TCP, TLS and the AMQP
    /// handshake) may take before it counts as failed and is retried
    /// (default 10).
    pub connect_timeout_secs: u64,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: Secret::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            publish_channels: 4,
            retry_timeout_secs: 120,
            reconnect_initial_ms: 100,
            reconnect_max_ms: 5000,
            connection_name: "kubepkg".into(),
            connect_timeout_secs: 10,
        }
    }
}

impl AmqpConfig {
    /// A config for `url` with defaults otherwise.
    pub fn new(url: impl Into<Secret>) -> Self {
        AmqpConfig {
            url: url.into(),
            ..Default::default()
        }
    }
}

/// Which object store to use, and its settings. Tagged by `backend`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StorageConfig {
    /// In-process (feature `memory`).
    Memory,
    /// A directory on disk (feature `local`).
    Local(LocalConfig),
    /// Any S3-compatible endpoint (feature `s3`).
    S3(S3Config),
    /// MinIO (feature `minio`).
    Minio(MinioConfig),
}

impl Default for StorageConfig {
    /// The local backend in the default data directory.
    fn default() -> Self {
        StorageConfig::Local(LocalConfig {
            root: default_data_dir(),
        })
    }
}

/// `$KUBEPKG_DATA_DIR`, else `$XDG_DATA_HOME/kubepkg/storage`, else
/// `~/.local/share/kubepkg/storage`, else `<temp dir>/kubepkg-storage`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KUBEPKG_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("kubepkg").join("storage");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h)
            .join(".local")
            .join("share")
            .join("kubepkg")
            .join("storage");
    }
    std::env::temp_dir().join("kubepkg-storage")
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Invalid(format!("{name}={v:?} is not a boolean"))),
    }
}

impl StorageConfig {
    /// Parses TOML (feature `toml`).
    #[cfg(feature = "toml")]
    pub fn from_toml_str(s: &str) -> Result<Self> {
        toml::from_str(s).map_err(|e| Error::Invalid(format!("storage config: {e}")))
    }

    /// Parses YAML (feature `yaml`).
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(s: &str) -> Result<Self> {
        serde_yaml::from_str(s).map_err(|e| Error::Invalid(format!("storage config: {e}")))
    }

    /// Parses JSON.
    pub fn from_json_str(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|e| Error::Invalid(format!("storage config: {e}")))
    }

    /// Applies the `KUBEPKG_*` environment overrides.
    pub fn with_env(self) -> Result<Self> {
        self.with_env_from(|k| std::env::var(k).ok())
    }

    /// Applies overrides read through `var` (testable without touching the
    /// process environment).
    pub fn with_env_from(self, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut cfg = match var("KUBEPKG_STORAGE_BACKEND").as_deref() {
            None => self,
            Some("memory") => StorageConfig::Memory,
            Some("local") => match self {
                c @ StorageConfig::Local(_) => c,
                _ => StorageConfig::default(),
            },
            Some("s3") => match self {
                c @ StorageConfig::S3(_) => c,
                _ => StorageConfig::S3(S3Config::default()),
            },
            Some("minio") => match self {
                c @ StorageConfig::Minio(_) => c,
                _ => StorageConfig::Minio(MinioConfig::default()),
            },
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "KUBEPKG_STORAGE_BACKEND={other:?}: expected memory, local, s3 or minio"
                )));
            }
        };
        match &mut cfg {
            StorageConfig::Memory => {}
            StorageConfig::Local(l) => {
                if let Some(r) = var("KUBEPKG_LOCAL_ROOT") {
                    l.root = PathBuf::from(r);
                }
            }
            StorageConfig::S3(s) => {
                if let Some(v) = var("KUBEPKG_S3_ENDPOINT") {
                    s.endpoint = Some(v);
                }
                if let Some(v) = var("KUBEPKG_S3_REGION") {
                    s.region = Some(v);
                }
                if let Some(v) = var("KUBEPKG_S3_PATH_STYLE") {
                    s.path_style = parse_bool("KUBEPKG_S3_PATH_STYLE", &v)?;
                }
                let ak = var("KUBEPKG_S3_ACCESS_KEY");
                let sk = var("KUBEPKG_S3_SECRET_KEY");
                if ak.is_some() || sk.is_some() {
                    let (old_ak, old_sk) = match &s.credentials {
                        CredentialsConfig::Static {
                            access_key,
                            secret_key,
                            ..
                        } => (access_key.clone(), secret_key.clone()),
                        _ => (String::new(), Secret::default()),
                    };
                    s.credentials = CredentialsConfig::Static {
                        access_key: ak.unwrap_or(old_ak),
                        secret_key: sk.map(Secret::from).unwrap_or(old_sk),
                        session_token: None,
                    };
                }
            }
            StorageConfig::Minio(m) => {
                if let Some(v) = var("KUBEPKG_S3_ENDPOINT") {
                    m.endpoint = v;
                }
                if let Some(v) = var("KUBEPKG_S3_REGION") {
                    m.region = v;
                }
                if let Some(v) = var("KUBEPKG_S3_ACCESS_KEY") {
                    m.access_key = v;
                }
                if let Some(v) = var("KUBEPKG_S3_SECRET_KEY") {
                    m.secret_key = Secret::from(v);
                }
            }
        }
        Ok(cfg)
    }
}

/// Which message queue to use, and its settings. Tagged by `backend`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum QueueConfig {
    /// In-process (feature `memory`); the default.
    #[default]
    Memory,
    /// AMQP 0-9-1 / RabbitMQ (feature `amqp`).
    Amqp(AmqpConfig),
}

impl QueueConfig {
    /// Parses TOML (feature `toml`).
    #[cfg(feature = "toml")]
    pub fn from_toml_str(s: &str) -> Result<Self> {
        toml::from_str(s).map_err(|e| Error::Invalid(format!("queue config: {e}")))
    }

    /// Parses YAML (feature `yaml`).
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(s: &str) -> Result<Self> {
        serde_yaml::from_str(s).map_err(|e| Error::Invalid(format!("queue config: {e}")))
    }

    /// Parses JSON.
    pub fn from_json_str(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|e| Error::Invalid(format!("queue config: {e}")))
    }

    /// Applies the `KUBEPKG_*` environment overrides.
    pub fn with_env(self) -> Result<Self> {
        self.with_env_from(|k| std::env::var(k).ok())
    }

    /// Applies overrides read through `var`.
    pub fn with_env_from(self, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut cfg = match var("KUBEPKG_QUEUE_BACKEND").as_deref() {
            None => self,
            Some("memory") => QueueConfig::Memory,
            Some("amqp") => match self {
                c @ QueueConfig::Amqp(_) => c,
                _ => QueueConfig::Amqp(AmqpConfig::default()),
            },
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "KUBEPKG_QUEUE_BACKEND={other:?}: expected memory or amqp"
                )));
            }
        };
        if let (QueueConfig::Amqp(a), Some(url)) = (&mut cfg, var("KUBEPKG_AMQP_URL")) {
            a.url = Secret::from(url);
        }
        Ok(cfg)
    }
}

fn not_built(feature: &str) -> Error {
    Error::Unsupported(format!(
        "the {feature} backend is not compiled in; enable the `{feature}` cargo feature of kubepkg-storage-api"
    ))
}

/// Builds the object store a config describes. Remote backends connect
/// lazily: a wrong endpoint or credentials show on the first request.
pub fn connect(config: &StorageConfig) -> Result<Arc<dyn ObjectStorage>> {
    match config {
        #[cfg(feature = "memory")]
        StorageConfig::Memory => Ok(Arc::new(crate::object::memory::MemoryStorage::new())),
        #[cfg(feature = "local")]
        StorageConfig::Local(c) => Ok(Arc::new(crate::object::local::LocalStorage::new(
            c.root.clone(),
        )?)),
        #[cfg(feature = "s3")]
        StorageConfig::S3(c) => Ok(Arc::new(crate::object::s3::S3Storage::new(c)?)),
        #[cfg(feature = "minio")]
        StorageConfig::Minio(c) => Ok(Arc::new(crate::object::minio::MinioStorage::new(c)?)),
        #[allow(unreachable_patterns)]
        StorageConfig::Memory => Err(not_built("memory")),
        #[allow(unreachable_patterns)]
        StorageConfig::Local(_) => Err(not_built("local")),
        #[allow(unreachable_patterns)]
        StorageConfig::S3(_) => Err(not_built("s3")),
        #[allow(unreachable_patterns)]
        StorageConfig::Minio(_) => Err(not_built("minio")),
    }
}

/// Builds the message queue a config describes (AMQP connects on first use).
pub fn connect_queue(config: &QueueConfig) -> Result<Arc<dyn MessageQueue>> {
    match config {
        #[cfg(feature = "memory")]
        QueueConfig::Memory => Ok(Arc::new(crate::mq::memory::MemoryQueue::new())),
        #[cfg(feature = "amqp")]
        QueueConfig::Amqp(c) => Ok(Arc::new(crate::mq::amqp::AmqpQueue::new(c)?)),
        #[allow(unreachable_patterns)]
        QueueConfig::Memory => Err(not_built("memory")),
        #[allow(unreachable_patterns)]
        QueueConfig::Amqp(_) => Err(not_built("amqp")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_configs_parse() {
        let c = StorageConfig::from_json_str(
            r#"{"backend":"minio","endpoint":"http://h:9000","access_key":"a","secret_key":"s3cr3t"}"#,
        )
        .unwrap();
        match &c {
            StorageConfig::Minio(m) => {
                assert_eq!(m.endpoint, "http://h:9000");
                assert_eq!(m.secret_key.expose(), "s3cr3t");
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(StorageConfig::from_json_str(r#"{"backend":"ftp"}"#).is_err());
    }

    #[test]
    fn env_overrides() {
        let env = |k: &str| match k {
            "KUBEPKG_STORAGE_BACKEND" => Some("s3".to_owned()),
            "KUBEPKG_S3_ENDPOINT" => Some("http://e:1".to_owned()),
            "KUBEPKG_S3_PATH_STYLE" => Some("true".to_owned()),
            "KUBEPKG_S3_ACCESS_KEY" => Some("ak".to_owned()),
            "KUBEPKG_S3_SECRET_KEY" => Some("sk".to_owned()),
            _ => None,
        };
        let c = StorageConfig::Memory.with_env_from(env).unwrap();
        let StorageConfig::S3(s) = c else {
            panic!("not s3")
        };
        assert_eq!(s.endpoint.as_deref(), Some("http://e:1"));
        assert!(s.path_style);
        assert!(matches!(s.credentials, CredentialsConfig::Static { .. }));
        let bad = |k: &str| (k == "KUBEPKG_STORAGE_BACKEND").then(|| "ftp".to_owned());
        assert_eq!(
            StorageConfig::Memory.with_env_from(bad).unwrap_err().kind(),
            kubepkg_util::ErrorKind::Invalid
        );
        let q = QueueConfig::Memory
            .with_env_from(|k| match k {
                "KUBEPKG_QUEUE_BACKEND" => Some("amqp".into()),
                "KUBEPKG_AMQP_URL" => Some("amqp://u:pw@h/%2f".into()),
                _ => None,
            })
            .unwrap();
        let QueueConfig::Amqp(a) = q else {
            panic!("not amqp")
        };
        assert_eq!(a.url.expose(), "amqp://u:pw@h/%2f");
        assert!(!format!("{a:?}").contains("pw@"));
    }
}
