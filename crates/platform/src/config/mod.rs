//! [`PlatformConfig`]: one configuration file for every backend.
//!
//! The platform's whole configuration — its store, the keys that encrypt
//! credentials at rest, logging, the default Kubernetes cluster, and the
//! named registries, Docker engines, object stores, queues and vendor
//! accounts — is one serde struct, read from one TOML or YAML file and then
//! overridden from the environment. Each backend's section *is* that
//! backend crate's own config type ([`LogConfig`], [`ClusterConfig`],
//! [`RegistryConfig`], [`EngineConfig`], [`StorageConfig`],
//! [`QueueConfig`]), so a section reads exactly as that crate documents it.
//! `examples/kubepkg.toml` in the repository is the commented reference.
//!
//! ```
//! use kubepkg_platform::PlatformConfig;
//!
//! let config = PlatformConfig::from_toml_str(r#"
//!     data_dir = "/var/lib/kubepkg"
//!
//!     [encryption]
//!     active_key = "k1"
//!     keys = { k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }
//!
//!     [registries.default]
//!     url = "https://registry.example.com"
//!     username = "ci"
//!     password = "not-a-real-password"
//!
//!     [object_stores.default]
//!     backend = "minio"
//!     endpoint = "http://127.0.0.1:9000"
//!     access_key = "admin"
//!     secret_key = "not-a-real-secret"
//! "#)?;
//! assert_eq!(config.store_url().expose(), "sqlite:///var/lib/kubepkg/kubepkg.db");
//! // Secrets are redacted wherever the config is printed.
//! let printed = format!("{config:?}");
//! assert!(!printed.contains("not-a-real") && !printed.contains("MDEy"));
//! # Ok::<(), kubepkg_platform::Error>(())
//! ```
//!
//! ## Sources, in order of precedence
//!
//! 1. The defaults of every field (an empty file is a working configuration
//!    for a single machine: SQLite under `./kubepkg-data`, logs to stdout).
//! 2. The file: TOML (`.toml`) or YAML (`.yaml`, `.yml`), chosen by the
//!    extension. [`PlatformConfig::load_default`] reads `$KUBEPKG_CONFIG`,
//!    else `./kubepkg.toml` when it exists.
//! 3. Environment variables named `KUBEPKG_` + the dotted key in upper case
//!    with `__` for each dot: `KUBEPKG_STORE__URL`,
//!    `KUBEPKG_ENCRYPTION__KEYS__K1`, `KUBEPKG_REGISTRIES__DEFAULT__PASSWORD`,
//!    `KUBEPKG_HEALTH__INTERVAL_SECS`. The one top-level scalar is
//!    `KUBEPKG_DATA_DIR`. A variable with the prefix but without `__` is
//!    left to the crates that define it (`KUBEPKG_LOG`,
//!    `KUBEPKG_REGISTRY_URL`, `KUBEPKG_S3_*`, ...), so those never trip the
//!    unknown-key check. Names become lower case (`KUBEPKG_REGISTRIES__MIRROR__URL`
//!    sets `registries.mirror.url`), so a map entry whose name has capitals can
//!    only be set in the file. A value is read the way figment reads
//!    environment values: `true`/`false`, numbers, `[a, b]` arrays and
//!    `{k = v}` tables are typed, anything else is a string; where a setting
//!    needs a string (a password, a key id) a value that looks like a number
//!    or a boolean stays the string it was written as.
//! 4. `KUBEPKG_LOG`, `KUBEPKG_LOG_FORMAT` and `KUBEPKG_LOG_BACKEND`, the
//!    logging overrides [`LogConfig::apply_env`] documents, win over all of
//!    the above for the `log` section.
//!
//! ## Errors
//!
//! Every problem is an [`Error::Config`](crate::Error::Config) whose
//! `setting` is the dotted key (`store.urll`, `encryption.keys.k1`) and
//! whose message says where the value came from — the file's path or the
//! environment variable's name. An unknown key anywhere is an error (no
//! typo is silently ignored). Messages describe a bad value by its type
//! ("expected a string, found an integer"), never by the value itself, so a
//! misplaced secret does not end up in a log; a syntax error shows its line
//! and column but not the line's text.
//!
//! ## Secrets
//!
//! Passwords, tokens, secret keys, encryption keys and the store URL are
//! [`Secret`]s: `Debug` (and so `{:?}` in a log line) prints
//! `[redacted]`. The values are read with [`Secret::expose`] by the code
//! that connects. The parser keeps transient copies of the file's text
//! that are freed, not zeroised.

mod load;
mod server;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubepkg_image_api::{EngineConfig, RegistryConfig};
use kubepkg_k8s_api::ClusterConfig;
use kubepkg_log_api::LogConfig;
use kubepkg_storage_api::{QueueConfig, StorageConfig};
use kubepkg_util::secret::Secret;
use serde::Deserialize;

use crate::Result;
use crate::store::StoreOptions;

pub use server::ServerSettings;
pub use validate::provider_kinds;

/// The prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "KUBEPKG_";

/// The environment variable naming the config file for
/// [`PlatformConfig::load_default`].
pub const ENV_CONFIG: &str = "KUBEPKG_CONFIG";

/// The file [`PlatformConfig::load_default`] reads when `$KUBEPKG_CONFIG`
/// is unset, relative to the working directory.
pub const DEFAULT_FILE: &str = "kubepkg.toml";

/// The name of the map entry that becomes a crate's process-wide default
/// (in `registries`, `engines`, `object_stores` and `queues`).
pub const DEFAULT_NAME: &str = "default";

/// The platform's whole configuration. See the [module docs](self).
///
/// `Debug` never shows a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PlatformConfig {
    /// Where the platform keeps its local files; the default SQLite
    /// database is `<data_dir>/kubepkg.db`. A relative path is relative to
    /// the process's working directory. Default `./kubepkg-data`.
    pub data_dir: PathBuf,
    /// The database of cluster, node and registry records.
    pub store: StoreSettings,
    /// The keys that encrypt stored credentials.
    pub encryption: EncryptionSettings,
    /// Logging, as [`kubepkg_log_api::LogConfig`] reads it (the `[log]`
    /// section holds its fields).
    pub log: LogConfig,
    /// The process-wide default Kubernetes cluster, as
    /// [`kubepkg_k8s_api::ClusterConfig`] reads it. Absent: k8s-api's
    /// default chain (in-cluster service account, `$KUBECONFIG`,
    /// `~/.kube/config`), built on first use.
    pub kubernetes: Option<ClusterConfig>,
    /// Image registries by name; `default` becomes
    /// `kubepkg_image_api::global::registry()`, and every entry (`default`
    /// included) is `global::named_registry(name)`.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// Docker engines by name, the same way (`default` is
    /// `kubepkg_image_api::global::engine()`).
    pub engines: BTreeMap<String, EngineConfig>,
    /// Object stores by name (tagged by `backend`: `memory`, `local`, `s3`,
    /// `minio`); `default` becomes `kubepkg_storage_api::global::get()`, and
    /// every entry is `global::named(name)`.
    pub object_stores: BTreeMap<String, StorageConfig>,
    /// Message queues by name (tagged by `backend`: `memory`, `amqp`);
    /// `default` becomes `kubepkg_storage_api::global::queue()`, and every
    /// entry is `global::named_queue(name)`.
    pub queues: BTreeMap<String, QueueConfig>,
    /// Vendor accounts by name: the credentials the vendor adapters use.
    pub providers: BTreeMap<String, ProviderSettings>,
    /// The background health checks of registered clusters.
    pub health: HealthSettings,
    /// Queries that fan out across clusters.
    pub search: SearchSettings,
    /// The REST service's own settings (read by `kubepkg-server`).
    pub server: ServerSettings,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            data_dir: PathBuf::from("./kubepkg-data"),
            store: StoreSettings::default(),
            encryption: EncryptionSettings::default(),
            log: LogConfig::default(),
            kubernetes: None,
            registries: BTreeMap::new(),
            engines: BTreeMap::new(),
            object_stores: BTreeMap::new(),
            queues: BTreeMap::new(),
            providers: BTreeMap::new(),
            health: HealthSettings::default(),
            search: SearchSettings::default(),
            server: ServerSettings::default(),
        }
    }
}

/// The platform store's database.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`
    /// (the URL is a secret: it usually carries a password). Absent:
    /// SQLite in `data_dir` (see [`PlatformConfig::store_url`]).
    pub url: Option<Secret<String>>,
    /// The most connections the pool opens. Default 8.
    pub max_connections: u32,
    /// How long to wait for a connection (connecting, or a free one from
    /// the pool), in seconds. Default 10.
    pub connect_timeout_secs: u64,
    /// PostgreSQL only: keep the tables in this schema (created when
    /// missing) instead of the user's default `search_path` (checked by
    /// the store when it opens).
    pub postgres_schema: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let defaults = StoreOptions::default();
        StoreSettings {
            url: None,
            max_connections: defaults.max_connections,
            connect_timeout_secs: defaults.connect_timeout.as_secs(),
            postgres_schema: None,
        }
    }
}

impl StoreSettings {
    /// [`connect_timeout_secs`](Self::connect_timeout_secs) as a `Duration`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The settings as the store's [`StoreOptions`], for
    /// [`Store::open_with`](crate::store::Store::open_with).
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            max_connections: self.max_connections,
            connect_timeout: self.connect_timeout(),
            postgres_schema: self.postgres_schema.clone(),
        }
    }
}

/// The keys that encrypt stored credentials (AES-256-GCM).
///
/// Every stored credential records the id of the key that encrypted it, so
/// keys can be rotated: add a new key, make it active, and keep the old one
/// until every credential has been re-encrypted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EncryptionSettings {
    /// The id of the key new credentials are encrypted with; one of
    /// [`keys`](Self::keys). Required as soon as any key is configured.
    pub active_key: String,
    /// Keys by id: each is 32 random bytes, base64-encoded (standard
    /// alphabet), e.g. from `openssl rand -base64 32`, or 64 hexadecimal
    /// digits (`openssl rand -hex 32`). Ids are 1 to 64 characters of
    /// `A-Z a-z 0-9 . _ -`.
    pub keys: BTreeMap<String, Secret<String>>,
}

/// One vendor account: where the vendor's API is and the credentials the
/// adapter signs with. Which fields a kind uses:
///
/// | kind | fields |
/// |---|---|
/// | `tke`, `ack`, `acr` | `region`, `access_key_id`, `access_key_secret` (`endpoint` to override the public one) |
/// | `rancher`, `tkestack` | `endpoint`, `token` |
/// | `harbor` | `endpoint`, `username`, `password` |
/// | `imported` | nothing (clusters imported from a kubeconfig) |
///
/// `Debug` shows neither secrets nor the values of `options`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// The vendor: one of [`provider_kinds()`].
    pub kind: String,
    /// The API's base URL, `https://...`.
    pub endpoint: Option<String>,
    /// The vendor region, e.g. `ap-guangzhou` or `cn-hangzhou`.
    pub region: Option<String>,
    /// Access key id (TKE `SecretId`, Alibaba Cloud `AccessKeyId`).
    pub access_key_id: Option<String>,
    /// Access key secret (TKE `SecretKey`, Alibaba Cloud `AccessKeySecret`).
    pub access_key_secret: Option<Secret<String>>,
    /// A bearer token (Rancher API key, TKEStack token).
    pub token: Option<Secret<String>>,
    /// User name (Harbor user or robot account).
    pub username: Option<String>,
    /// Password of `username`.
    pub password: Option<Secret<String>>,
    /// Vendor-specific extras the adapter documents (e.g. a project id).
    /// Not for credentials: use the secret fields above.
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Option values are shown by key only: nothing stops a user from
        // putting a credential there.
        let option_keys: Vec<&String> = self.options.keys().collect();
        f.debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field("token", &self.token)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("options", &option_keys)
            .finish()
    }
}

/// Background health checks of the registered clusters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthSettings {
    /// Seconds between two checks of a healthy cluster. Default 30.
    pub interval_secs: u64,
    /// Seconds one check may take. Default 5; at most `interval_secs`.
    pub timeout_secs: u64,
    /// The longest wait, in seconds, between checks of a failing cluster
    /// (the wait doubles from `interval_secs` up to this). Default 300.
    pub max_backoff_secs: u64,
    /// Seconds a probe lease lasts unless renewed (instances sharing a
    /// store probe each cluster from one of them; another takes a lease
    /// over this long after its holder died). Default 15; at least 3.
    pub lease_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            interval_secs: 30,
            timeout_secs: 5,
            max_backoff_secs: 300,
            lease_secs: 15,
        }
    }
}

impl HealthSettings {
    /// [`interval_secs`](Self::interval_secs) as a `Duration`.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }

    /// [`timeout_secs`](Self::timeout_secs) as a `Duration`.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// [`max_backoff_secs`](Self::max_backoff_secs) as a `Duration`.
    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs(self.max_backoff_secs)
    }
}

/// Queries that fan out across clusters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SearchSettings {
    /// How many clusters are queried at once. Default 16.
    pub concurrency: usize,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings { concurrency: 16 }
    }
}

impl PlatformConfig {
    /// Reads `path` (TOML for `.toml`, YAML for `.yaml` / `.yml`), applies
    /// the process's `KUBEPKG_` environment overrides and
    /// [validates](Self::validate) the result.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) naming the file when it
    /// cannot be read or has another extension, and naming the setting and
    /// its source for anything unknown, malformed or inconsistent.
    pub fn load(path: impl AsRef<Path>) -> Result<PlatformConfig> {
        Self::from_sources(Some(path.as_ref()), load::process_env())
    }

    /// [`load`](Self::load)s `$KUBEPKG_CONFIG` when it is set and not
    /// empty, else `./kubepkg.toml` when that file exists, else only the
    /// defaults and the environment overrides.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load); a `$KUBEPKG_CONFIG` naming a missing file
    /// is an error.
    pub fn load_default() -> Result<PlatformConfig> {
        let env = load::process_env();
        let named = env
            .iter()
            .find(|(k, v)| k == ENV_CONFIG && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v));
        match named {
            Some(path) => Self::from_sources(Some(&path), env),
            None if Path::new(DEFAULT_FILE).is_file() => {
                Self::from_sources(Some(Path::new(DEFAULT_FILE)), env)
            }
            None => Self::from_sources(None, env),
        }
    }

    /// Parses a TOML document, without environment overrides, and
    /// validates it.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_toml_str(text: &str) -> Result<PlatformConfig> {
        load::extract(
            Some(load::FileInput::text(text, load::Format::Toml)),
            Vec::new(),
        )
    }

    /// Parses a YAML document, without environment overrides, and
    /// validates it.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_yaml_str(text: &str) -> Result<PlatformConfig> {
        load::extract(
            Some(load::FileInput::text(text, load::Format::Yaml)),
            Vec::new(),
        )
    }

    /// The general loader: an optional file, then overrides from `env` (any
    /// `(name, value)` pairs; only `KUBEPKG_` names are looked at), then
    /// [validation](Self::validate). [`load`](Self::load) is this with the
    /// process environment; tests pass their own pairs instead of changing
    /// the process's.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_sources<I, K, V>(file: Option<&Path>, env: I) -> Result<PlatformConfig>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let file = file.map(load::FileInput::path).transpose()?;
        let env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        load::extract(file, env)
    }

    /// The store's URL: [`StoreSettings::url`] when set, else
    /// `sqlite://<data_dir>/kubepkg.db`.
    pub fn store_url(&self) -> Secret<String> {
        match &self.store.url {
            Some(url) => url.clone(),
            None => Secret::new(format!(
                "sqlite://{}",
                self.data_dir.join("kubepkg.db").display()
            )),
        }
    }

    /// Cross-field checks that serde cannot make: the active encryption key
    /// is one of the keys and each key is base64 of 32 bytes; the store URL
    /// is SQLite or PostgreSQL; every map entry has a usable name; each
    /// backend section passes its crate's own checks (log filter, cluster
    /// knobs, registry URLs); provider kinds are known; the health and
    /// search knobs are in range. Loading runs it; call it again after
    /// changing a config in code.
    ///
    /// # Errors
    ///
    /// The first problem, as [`Error::Config`](crate::Error::Config) naming
    /// the dotted setting; no message contains a secret.
    pub fn validate(&self) -> Result<()> {
        validate::validate(self)
    }
}
