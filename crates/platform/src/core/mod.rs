//! The core layer: [`Platform`], the multi-cluster service a Rust program
//! embeds.
//!
//! A `Platform` holds the [`Store`], one `kubepkg-k8s-api`
//! [`ClusterManager`] filled from the store when it opens and on every
//! change (a client is built once per cluster and credential, never per
//! request), the [`Providers`] registry, and each cluster's health.
//!
//! - [`import`]: bring a cluster in (kubeconfig file / text / base64, API
//!   server + CA + token, or a provider's kubeconfig) with a dedicated,
//!   least-privilege service account; rotate its credentials.
//! - [`credential`]: what a stored credential may do and when it
//!   expires.
//! - [`health`]: conditions per cluster, a background prober with backoff,
//!   and the fast "known down" answer.
//! - [`operation`]: long-running vendor operations, recorded and tracked
//!   until they end; vendor instance ids recorded beside node names.
//! - [`query`]: summaries, nodes joined with the vendor ids the store
//!   keeps, and a client for every core resource.
//! - [`search`]: one list across many clusters, paged with a continue
//!   token that stays valid across them.
//!
//! Every query goes straight to the cluster's Kubernetes API; the store
//! keeps only what neither the vendor nor the cluster keeps.

pub mod credential;
pub mod health;
pub mod import;
pub mod operation;
pub mod query;
pub mod search;

use crate::provider::Providers;
use crate::store::{ClusterRecord, Credential, CredentialOwner, Store};
use crate::{Error, Result};
use futures::StreamExt as _;
use kubepkg_k8s_api::{Client, ClusterConfig, ClusterManager, ClusterSource};
use kubepkg_util::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

pub use health::{ClusterHealth, HealthProber};
pub use import::{ImportReport, ImportRequest, ImportRole, ImportSource};
pub use operation::{TrackedOperation, WaitOptions};
pub use query::NodeView;
pub use search::{SearchItem, SearchPage, SearchQuery};

/// Knobs of a [`Platform`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformOptions {
    /// How long a probe (`/version`, `/readyz`) may take.
    pub probe_timeout: Duration,
    /// How often the background prober checks a healthy cluster.
    pub health_interval: Duration,
    /// The longest wait between probes of a cluster that is down (the
    /// wait doubles from `health_interval / 4` up to this).
    pub max_backoff: Duration,
    /// How many clusters a search or a fan-out asks at once.
    pub concurrency: usize,
    /// A credential expiring within this window is flagged
    /// (`CredentialExpiring`).
    pub expiry_warning: Duration,
    /// Request timeout of the per-cluster clients.
    pub request_timeout: Duration,
    /// Retries of the per-cluster clients (429, 5xx, refused connections).
    pub max_retries: u32,
    /// How long a cluster's health-probe lease lasts unless renewed: when
    /// several instances share a store, one probes each cluster, and
    /// another takes over this long after the first stopped renewing
    /// (renewals come every third of it).
    pub probe_lease: Duration,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        PlatformOptions {
            probe_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(30),
            max_backoff: Duration::from_secs(300),
            concurrency: 16,
            expiry_warning: Duration::from_secs(7 * 24 * 3600),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            probe_lease: Duration::from_secs(15),
        }
    }
}

struct Inner {
    store: Store,
    clusters: ClusterManager,
    providers: Providers,
    health: health::HealthBook,
    options: PlatformOptions,
    /// This instance's name in the store's probe leases.
    instance_id: String,
    /// The record version each cached client was built from, so
    /// [`Platform::fresh_client`] sees another process's changes.
    versions: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// The platform: store + per-cluster clients + providers + health. Cheap to
/// clone (one shared state).
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("store", &self.inner.store)
            .field("clusters", &self.inner.clusters.names())
            .field("providers", &self.inner.providers)
            .finish()
    }
}

/// A name for this process among the instances sharing a store.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= 64)
        .unwrap_or_else(|| "host".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

impl Platform {
    /// Opens the platform from its configuration: the store (migrations
    /// run), the encryption keys, and every stored cluster registered with
    /// the client cache (probed concurrently; a cluster that does not answer
    /// is recorded as down, it does not fail the open).
    pub async fn open(config: &crate::PlatformConfig) -> Result<Platform> {
        config.validate()?;
        let keyring = crate::crypto::Keyring::from_settings(
            &config.encryption.active_key,
            &config.encryption.keys,
            "encryption.keys",
        )?;
        let url = config.store_url();
        let store = Store::open_with(url.expose(), keyring, config.store.options()).await?;
        let options = PlatformOptions {
            probe_timeout: Duration::from_secs(config.health.timeout_secs.max(1)),
            health_interval: Duration::from_secs(config.health.interval_secs.max(1)),
            max_backoff: Duration::from_secs(config.health.max_backoff_secs.max(1)),
            concurrency: config.search.concurrency.max(1),
            probe_lease: Duration::from_secs(config.health.lease_secs.max(3)),
            ..PlatformOptions::default()
        };
        let providers = Providers::from_config(&config.providers)?;
        Platform::with_providers(store, options, providers).await
    }

    /// A platform over an open store, with the built-in `imported`
    /// provider only (add vendors through [`Self::providers`]).
    pub async fn with_store(store: Store, options: PlatformOptions) -> Result<Platform> {
        Platform::with_providers(store, options, Providers::new()).await
    }

    /// A platform over an open store with the given providers (e.g.
    /// [`Providers::from_config`]).
    pub async fn with_providers(
        store: Store,
        options: PlatformOptions,
        providers: Providers,
    ) -> Result<Platform> {
        let platform = Platform {
            inner: Arc::new(Inner {
                store,
                clusters: ClusterManager::new().with_probe_timeout(options.probe_timeout),
                providers,
                health: health::HealthBook::default(),
                versions: std::sync::Mutex::default(),
                instance_id: instance_id(),
                options,
            }),
        };
        platform.sync_clusters().await?;
        Ok(platform)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The per-cluster client cache.
    pub fn cluster_manager(&self) -> &ClusterManager {
        &self.inner.clusters
    }

    /// The provider registry.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// The options this platform runs with.
    pub fn options(&self) -> &PlatformOptions {
        &self.inner.options
    }

    /// This instance's id (`<host>-<pid>-<random>`), as it appears in the
    /// store's probe leases and in its log lines.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Brings the client cache in line with the store: every stored
    /// cluster registered (a changed credential rebuilds its client), every
    /// cluster no longer stored removed. Runs on open; call it when another
    /// process changed the store.
    pub async fn sync_clusters(&self) -> Result<()> {
        let records = self.inner.store.list_clusters().await?;
        let wanted: std::collections::BTreeSet<String> =
            records.iter().map(|r| r.name.clone()).collect();
        for name in self.inner.clusters.names() {
            if !wanted.contains(&name) {
                self.forget(&name);
            }
        }
        let this = self.clone();
        futures::stream::iter(records)
            .map(|record| {
                let this = this.clone();
                async move {
                    if let Err(e) = this.register(&record).await {
                        tracing::warn!(cluster = %record.name, error = %e, "stored cluster not usable");
                    }
                }
            })
            .buffer_unordered(self.inner.options.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
        Ok(())
    }

    /// Builds the client config of a stored cluster from its credential.
    pub(crate) async fn cluster_config(&self, record: &ClusterRecord) -> Result<ClusterConfig> {
        let cred = self
            .inner
            .store
            .credential(&CredentialOwner::Cluster(record.name.clone()))
            .await?;
        self.config_from_credential(record, &cred)
    }

    fn config_from_credential(
        &self,
        record: &ClusterRecord,
        cred: &Credential,
    ) -> Result<ClusterConfig> {
        let source: ClusterSource = serde_json::from_str(cred.secret.expose()).map_err(|_| {
            Error::Invalid(format!(
                "the stored credential of cluster {:?} is not a cluster source",
                record.name
            ))
        })?;
        Ok(self.client_config(source))
    }

    pub(crate) fn client_config(&self, source: ClusterSource) -> ClusterConfig {
        let o = &self.inner.options;
        ClusterConfig::from_source(source)
            .with_timeout(o.request_timeout)
            .with_max_retries(o.max_retries)
    }

    /// Registers one stored cluster with the client cache and records its
    /// first health observation.
    async fn register(&self, record: &ClusterRecord) -> Result<()> {
        let config = self.cluster_config(record).await?;
        self.versions().insert(record.name.clone(), record.version);
        match self.inner.clusters.add(&record.name, config).await {
            Ok(_) => {
                self.inner.health.mark_up(&record.name);
                Ok(())
            }
            Err(e) => {
                let err = Error::kubernetes(&record.name, e);
                if err.kind() == ErrorKind::Unavailable || err.kind() == ErrorKind::Timeout {
                    self.inner
                        .health
                        .mark_down(&record.name, &err, &self.inner.options);
                }
                Err(err)
            }
        }
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.inner
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Drops a cluster from the client cache and the health book.
    fn forget(&self, name: &str) {
        self.inner.clusters.remove(name);
        self.inner.health.forget(name);
        self.versions().remove(name);
    }

    /// [`Self::client`], first checked against the store: a cluster another
    /// process deleted is NotFound (and dropped from the cache) at once,
    /// and one it changed — a rotated credential, a new server URL — is
    /// rebuilt from the stored record before it is used. Costs one indexed
    /// read per call; what a service with several instances over one
    /// PostgreSQL store calls per request.
    pub async fn fresh_client(&self, name: &str) -> Result<Client> {
        let record = match self.inner.store.get_cluster(name).await {
            Ok(r) => r,
            Err(e) => {
                if e.kind() == ErrorKind::NotFound {
                    self.forget(name);
                }
                return Err(e);
            }
        };
        let known = self.versions().get(name).copied();
        if known != Some(record.version) && self.inner.clusters.config(name).is_some() {
            // A changed record: the same config is a no-op in the cache, a
            // changed one replaces the client.
            self.register(&record).await?;
        }
        self.client(name).await
    }

    /// A client built for this one call and never cached: the store read,
    /// the credential decrypted, a new client (TLS set-up, a new
    /// connection) and a `GET /version` probe — what the source design did
    /// on every request. Use [`Self::fresh_client`]; this is the baseline
    /// the server's benchmark compares it with (`[server]
    /// rebuild_clients_per_request`), and a way to rule the cache out when
    /// debugging.
    pub async fn uncached_client(&self, name: &str) -> Result<Client> {
        let record = self.inner.store.get_cluster(name).await?;
        let config = self.cluster_config(&record).await?;
        let client = Client::connect_named(name, &config)
            .await
            .map_err(|e| Error::kubernetes(name, e))?;
        client
            .version()
            .await
            .map_err(|e| Error::kubernetes(name, e))?;
        Ok(client)
    }

    /// One cluster's record.
    pub async fn cluster(&self, name: &str) -> Result<ClusterRecord> {
        self.inner.store.get_cluster(name).await
    }

    /// Every cluster, or those whose labels match `selector`
    /// (`env=prod,tier!=edge`).
    pub async fn clusters(&self, selector: Option<&str>) -> Result<Vec<ClusterRecord>> {
        let all = self.inner.store.list_clusters().await?;
        match selector.filter(|s| !s.trim().is_empty()) {
            None => Ok(all),
            Some(s) => {
                let sel = kubepkg_util::selector::Selector::parse(s)
                    .map_err(|e| Error::Invalid(format!("cluster selector: {e}")))?;
                Ok(all.into_iter().filter(|c| sel.matches(&c.labels)).collect())
            }
        }
    }

    /// The Kubernetes client of a cluster, from the cache. A cluster known
    /// to be down answers Unavailable at once (until the prober or
    /// [`Self::check_health`] sees it back); a call that finds it down marks
    /// it so.
    pub async fn client(&self, name: &str) -> Result<Client> {
        if let Some(err) = self.inner.health.gate(name) {
            return Err(err);
        }
        match self.inner.clusters.get(name).await {
            Ok(c) => Ok(c),
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    && self.inner.clusters.config(name).is_none() =>
            {
                // Not in the cache: maybe another process added it.
                let record = self.inner.store.get_cluster(name).await?;
                self.register(&record).await?;
                self.inner
                    .clusters
                    .get(name)
                    .await
                    .map_err(|e| Error::kubernetes(name, e))
            }
            Err(e) => {
                let err = Error::kubernetes(name, e);
                self.observe(name, &err);
                Err(err)
            }
        }
    }

    /// Records the outcome of a call to a cluster: Unavailable / Timeout
    /// mark it down.
    pub(crate) fn observe(&self, name: &str, err: &Error) {
        if matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) {
            self.inner.clusters.mark_broken(name);
            self.inner.health.mark_down(name, err, &self.inner.options);
        }
    }

    /// Runs `f` with a cluster's client, recording a failure that shows the
    /// cluster down.
    pub async fn with_client<T, F, Fut>(&self, name: &str, f: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = kubepkg_k8s_api::Result<T>>,
    {
        let client = self.client(name).await?;
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let err = Error::kubernetes(name, e);
                self.observe(name, &err);
                Err(err)
            }
        }
    }

    /// Deletes a cluster through its provider (for an imported cluster:
    /// unregisters it) and forgets it: its record, nodes and credential
    /// are removed and its client dropped.
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        let record = self.inner.store.get_cluster(name).await?;
        let provider = self.inner.providers.cluster(&record.provider)?;
        let target = record
            .provider_cluster_id
            .clone()
            .unwrap_or_else(|| record.name.clone());
        let op = provider.delete_cluster(&target).await?;
        if !op.done {
            let rec = self
                .inner
                .store
                .create_operation(&op.kind, &record.provider, name, op.request_id.as_deref())
                .await?;
            tracing::info!(cluster = name, operation = %rec.id, "vendor delete started");
        }
        self.inner.store.delete_cluster(name).await?;
        self.forget(name);
        tracing::info!(cluster = name, provider = %record.provider, "cluster removed");
        Ok(())
    }
}
