//! [`init`]: one call that sets every crate's process-wide defaults and
//! named instances from a [`PlatformConfig`].
//!
//! Each backend crate keeps its connections in a `global` module: a
//! default set once, plus instances by name. `init` fills them all from
//! the one config, the way the source design's singleton table has it:
//!
//! | config | sets |
//! |---|---|
//! | `log` | [`kubepkg_log_api::init`]: the `tracing` dispatcher, the `log` logger and the global `slog` logger |
//! | `kubernetes` | [`kubepkg_k8s_api::global::init`]; absent, `global::client()` keeps building the default chain (in-cluster, `$KUBECONFIG`, `~/.kube/config`) on first use |
//! | `registries`, `engines` | [`kubepkg_image_api::global::init`]: entry `default` is `global::registry()` / `global::engine()`, every entry is `global::named_registry(name)` / `global::named_engine(name)` (built on first use) |
//! | `object_stores` | entry `default` is [`kubepkg_storage_api::global::get`] (via `global::init`); every entry, `default` included, is `global::named(name)` |
//! | `queues` | entry `default` is [`kubepkg_storage_api::global::queue`] (via `global::init_queue`); every entry is `global::named_queue(name)` |
//!
//! A section left empty sets nothing, so that crate's lazy default (built
//! from its environment variables on first use) still applies.
//!
//! ## Order, and what a failure leaves behind
//!
//! 1. The whole config is [validated](PlatformConfig::validate) and every
//!    client is built once as a dry run (no global is touched); with
//!    [`InitOptions::probe_kubernetes`] (the default) the configured
//!    default cluster is asked for its version. A failure here changes
//!    nothing, and `init` may be called again.
//! 2. Logging is installed (unless [`InitOptions::logging`] is off). If that
//!    fails — another subscriber or logger is installed already — nothing
//!    has changed either.
//! 3. The defaults and named instances are set, Kubernetes first. These
//!    steps fail only when a default was already set by someone else (a
//!    direct call of a crate's `global::init`, or a first use of a lazy
//!    default such as `kubepkg_storage_api::global::get()` before `init`).
//!    The parts set before the failure stay set (a default cannot be
//!    unset), the error is logged with what was set, and further calls of
//!    `init` fail: end the process.
//!
//! A second call of `init` after one that got past step 2 fails with
//! [`Error::AlreadyExists`] and changes nothing.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use kubepkg_log_api::LogGuard;

use crate::config::{DEFAULT_NAME, PlatformConfig};
use crate::{Error, Result};

/// Set by the first `init` that got past the point of no return.
static STARTED: AtomicBool = AtomicBool::new(false);

/// What [`init_with`] does besides setting the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitOptions {
    /// Install logging from the config's `log` section. On by default;
    /// turn it off when the application installs its own `tracing`
    /// subscriber or `log` logger.
    pub logging: bool,
    /// Ask the configured default cluster for its version before anything
    /// is set, so a wrong address or credential fails `init`. On by
    /// default.
    pub probe_kubernetes: bool,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            logging: true,
            probe_kubernetes: true,
        }
    }
}

impl InitOptions {
    /// Sets [`logging`](Self::logging).
    pub fn logging(mut self, on: bool) -> Self {
        self.logging = on;
        self
    }

    /// Sets [`probe_kubernetes`](Self::probe_kubernetes).
    pub fn probe_kubernetes(mut self, on: bool) -> Self {
        self.probe_kubernetes = on;
        self
    }
}

/// What [`init`] set up. Keep it alive until the end of `main`: it holds
/// the log writer's guard, and dropping it flushes and stops the writer.
#[must_use = "dropping it stops the log writer"]
#[non_exhaustive]
pub struct Initialized {
    log: Option<LogGuard>,
    /// The default Kubernetes cluster, when the config names one.
    pub kubernetes: Option<KubernetesReport>,
    /// The registry names now known to `kubepkg_image_api::global`.
    pub registries: Vec<String>,
    /// The engine names now known to `kubepkg_image_api::global`.
    pub engines: Vec<String>,
    /// The object store names registered in `kubepkg_storage_api::global`.
    pub object_stores: Vec<String>,
    /// The queue names registered in `kubepkg_storage_api::global`.
    pub queues: Vec<String>,
}

impl Initialized {
    /// The guard of the installed log writer (`None` with
    /// [`InitOptions::logging`] off).
    pub fn log_guard(&self) -> Option<&LogGuard> {
        self.log.as_ref()
    }

    /// Takes the log guard out, to keep it somewhere else.
    pub fn take_log_guard(&mut self) -> Option<LogGuard> {
        self.log.take()
    }
}

impl fmt::Debug for Initialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initialized")
            .field("logging", &self.log.is_some())
            .field("kubernetes", &self.kubernetes)
            .field("registries", &self.registries)
            .field("engines", &self.engines)
            .field("object_stores", &self.object_stores)
            .field("queues", &self.queues)
            .finish()
    }
}

/// The default cluster [`init`] set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubernetesReport {
    /// The API server's URL.
    pub server: String,
    /// The server's version (`gitVersion`, e.g. `v1.35.4`) when it was
    /// probed.
    pub version: Option<String>,
}

/// Sets every crate's process-wide defaults and named instances from
/// `config`, with the default [`InitOptions`]. See the
/// [module docs](self) for what is set, in which order, and what a failure
/// leaves behind.
///
/// ```no_run
/// # async fn run() -> kubepkg_platform::Result<()> {
/// let config = kubepkg_platform::PlatformConfig::load_default()?;
/// let _init = kubepkg_platform::init(&config).await?;
/// let store = kubepkg_storage_api::global::get()?;
/// # drop(store); Ok(()) }
/// ```
///
/// # Errors
///
/// - [`Error::AlreadyExists`] when `init` already ran in this process;
/// - [`Error::Config`] for a config that does not
///   [validate](PlatformConfig::validate);
/// - [`Error::Log`], [`Error::Image`], [`Error::Storage`] from the backend
///   that failed (a client it cannot build, a backend whose cargo feature
///   is off, a default someone else set first);
/// - [`Error::Kubernetes`] (cluster `default`) when the default cluster
///   cannot be built or does not answer the probe.
pub async fn init(config: &PlatformConfig) -> Result<Initialized> {
    init_with(config, InitOptions::default()).await
}

/// [`init`] with explicit [`InitOptions`].
///
/// # Errors
///
/// As [`init`].
pub async fn init_with(config: &PlatformConfig, options: InitOptions) -> Result<Initialized> {
    if STARTED.swap(true, Ordering::AcqRel) {
        return Err(Error::AlreadyExists(
            "kubepkg_platform::init has already run in this process; \
             the process-wide defaults can be set only once"
                .to_owned(),
        ));
    }
    let kubernetes = match prepare(config, &options).await {
        Ok(k) => k,
        Err(e) => {
            STARTED.store(false, Ordering::Release);
            return Err(e);
        }
    };
    let log = if options.logging {
        match kubepkg_log_api::init(&config.log) {
            Ok(guard) => Some(guard),
            Err(e) => {
                STARTED.store(false, Ordering::Release);
                return Err(Error::Log(e));
            }
        }
    } else {
        None
    };
    let mut done: Vec<&'static str> = Vec::new();
    if log.is_some() {
        done.push("logging");
    }
    match install(config, &mut done).await {
        Ok(()) => {}
        Err(e) => {
            tracing::error!(
                error = %e,
                set = ?done,
                "kubepkg_platform::init stopped part-way: the parts listed are set, the rest is not; end the process"
            );
            return Err(e);
        }
    }
    let report = Initialized {
        log,
        kubernetes,
        registries: config.registries.keys().cloned().collect(),
        engines: config.engines.keys().cloned().collect(),
        object_stores: config.object_stores.keys().cloned().collect(),
        queues: config.queues.keys().cloned().collect(),
    };
    tracing::info!(
        kubernetes = report.kubernetes.as_ref().map(|k| k.server.as_str()),
        registries = ?report.registries,
        engines = ?report.engines,
        object_stores = ?report.object_stores,
        queues = ?report.queues,
        "kubepkg platform initialised"
    );
    Ok(report)
}

/// Step 1: validation, a dry run of every client, the Kubernetes probe,
/// and the checks that no default is already taken. Touches no global.
async fn prepare(
    config: &PlatformConfig,
    options: &InitOptions,
) -> Result<Option<KubernetesReport>> {
    config.validate()?;
    if config.kubernetes.is_some() && kubepkg_k8s_api::global::try_client().is_some() {
        return Err(Error::AlreadyExists(
            "the default Kubernetes cluster is already set (kubepkg_k8s_api::global::init \
             or a first use of global::client() ran before kubepkg_platform::init)"
                .to_owned(),
        ));
    }
    let image_configured = !config.registries.is_empty() || !config.engines.is_empty();
    if image_configured && kubepkg_image_api::global::config().is_some() {
        return Err(Error::AlreadyExists(
            "kubepkg_image_api::global::init already ran before kubepkg_platform::init".to_owned(),
        ));
    }
    for registry in config.registries.values() {
        kubepkg_image_api::registry::connect(registry)?;
    }
    for engine in config.engines.values() {
        kubepkg_image_api::engine::connect(engine)?;
    }
    for store in config.object_stores.values() {
        kubepkg_storage_api::connect(store)?;
    }
    for queue in config.queues.values() {
        kubepkg_storage_api::connect_queue(queue)?;
    }
    let Some(cluster) = &config.kubernetes else {
        return Ok(None);
    };
    let client = kubepkg_k8s_api::Client::connect_named(DEFAULT_NAME, cluster)
        .await
        .map_err(|e| Error::kubernetes(DEFAULT_NAME, e))?;
    let version = if options.probe_kubernetes {
        let info = client
            .version()
            .await
            .map_err(|e| Error::kubernetes(DEFAULT_NAME, e))?;
        Some(info.git_version)
    } else {
        None
    };
    Ok(Some(KubernetesReport {
        server: client.server().to_owned(),
        version,
    }))
}

/// Step 3: sets the defaults and registers the named instances, noting in
/// `done` each part that is set.
async fn install(config: &PlatformConfig, done: &mut Vec<&'static str>) -> Result<()> {
    if let Some(cluster) = &config.kubernetes {
        kubepkg_k8s_api::global::init(cluster)
            .await
            .map_err(|e| Error::kubernetes(DEFAULT_NAME, e))?;
        done.push("kubernetes");
    }
    if !config.registries.is_empty() || !config.engines.is_empty() {
        let image = kubepkg_image_api::Config {
            registry: config.registries.get(DEFAULT_NAME).cloned(),
            engine: config.engines.get(DEFAULT_NAME).cloned(),
            registries: config.registries.clone(),
            engines: config.engines.clone(),
        };
        kubepkg_image_api::global::init(image)?;
        done.push("registries and engines");
    }
    use kubepkg_storage_api::global as storage;
    if let Some(default) = config.object_stores.get(DEFAULT_NAME) {
        let store = storage::init(default)?;
        storage::register_instance(DEFAULT_NAME, store)?;
        done.push("default object store");
    }
    for (name, store) in &config.object_stores {
        if name != DEFAULT_NAME {
            storage::register(name, store)?;
        }
    }
    if config.object_stores.len() > usize::from(config.object_stores.contains_key(DEFAULT_NAME)) {
        done.push("named object stores");
    }
    if let Some(default) = config.queues.get(DEFAULT_NAME) {
        storage::init_queue(default)?;
        done.push("default queue");
    }
    for (name, queue) in &config.queues {
        // storage-api registers queues only from a config, so the named
        // `default` is a second client of the same broker.
        storage::register_queue(name, queue)?;
    }
    if !config.queues.is_empty() {
        done.push("named queues");
    }
    Ok(())
}
