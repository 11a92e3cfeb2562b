//! [`ClusterManager`]: a named registry of clusters. Each client is built
//! once and probed once; `get` is a cache hit; a client is rebuilt only when
//! its config changes or it is found broken; [`ClusterManager::fan_out`]
//! runs one call on many clusters concurrently with a bound.

use crate::{Client, ClusterConfig, Error, Result};
use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::version::Info;
use kubepkg_util::ErrorKind;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

struct Slot {
    config: ClusterConfig,
    client: Mutex<Option<(Client, Info)>>,
    rebuild: tokio::sync::Mutex<()>,
}

impl Slot {
    fn cached(&self) -> Option<Client> {
        match self.client.lock() {
            Ok(g) => g.as_ref().map(|(c, _)| c.clone()),
            Err(p) => p.into_inner().as_ref().map(|(c, _)| c.clone()),
        }
    }

    fn set(&self, v: Option<(Client, Info)>) {
        match self.client.lock() {
            Ok(mut g) => *g = v,
            Err(p) => *p.into_inner() = v,
        }
    }
}

/// A named registry of cluster clients. See the module docs.
pub struct ClusterManager {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    probe_timeout: Duration,
    builds: AtomicU64,
}

impl Default for ClusterManager {
    fn default() -> Self {
        ClusterManager::new()
    }
}

impl std::fmt::Debug for ClusterManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterManager")
            .field("clusters", &self.names())
            .finish()
    }
}

/// What `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new cluster was registered.
    New,
    /// The cluster existed with another config; its client was rebuilt.
    Replaced,
    /// The cluster existed with the same config; nothing was rebuilt.
    Unchanged,
}

impl ClusterManager {
    /// An empty registry (probe timeout 10 s).
    pub fn new() -> Self {
        ClusterManager {
            slots: RwLock::new(HashMap::new()),
            probe_timeout: Duration::from_secs(10),
            builds: AtomicU64::new(0),
        }
    }

    /// Sets how long a `/version` probe may take.
    pub fn with_probe_timeout(mut self, t: Duration) -> Self {
        self.probe_timeout = t;
        self
    }

    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        let map = match self.slots.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.get(name).cloned()
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let map = match self.slots.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut v: Vec<String> = map.keys().cloned().collect();
        v.sort();
        v
    }

    /// How many clients were built so far (cache effectiveness).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The config a cluster is registered with.
    pub fn config(&self, name: &str) -> Option<ClusterConfig> {
        self.slot(name).map(|s| s.config.clone())
    }

    async fn build_and_probe(&self, name: &str, config: &ClusterConfig) -> Result<(Client, Info)> {
        self.builds.fetch_add(1, Ordering::Relaxed);
        let client = Client::connect_named(name, config).await?;
        let info = probe(&client, self.probe_timeout).await?;
        tracing::info!(cluster = name, version = %info.git_version, "cluster connected");
        Ok((client, info))
    }

    /// Registers `name` (or replaces its config), builds its client and
    /// probes `GET /version`. Re-adding the same config is a no-op. When the
    /// probe fails the config stays registered (a later [`Self::get`] tries
    /// again) and the error — Unavailable, Unauthorized… — is returned.
    pub async fn add(&self, name: &str, config: ClusterConfig) -> Result<Added> {
        if name.is_empty() {
            return Err(Error::invalid("a cluster name must not be empty"));
        }
        config.validate()?;
        if let Some(slot) = self.slot(name)
            && slot.config == config
            && slot.cached().is_some()
        {
            return Ok(Added::Unchanged);
        }
        let existed = self.slot(name).is_some();
        let slot = Arc::new(Slot {
            config: config.clone(),
            client: Mutex::new(None),
            rebuild: tokio::sync::Mutex::new(()),
        });
        {
            let mut map = match self.slots.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            map.insert(name.to_string(), slot.clone());
        }
        let _guard = slot.rebuild.lock().await;
        let built = self.build_and_probe(name, &config).await?;
        slot.set(Some(built));
        Ok(if existed { Added::Replaced } else { Added::New })
    }

    /// Removes a cluster; `false` when it was not registered.
    pub fn remove(&self, name: &str) -> bool {
        let mut map = match self.slots.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.remove(name).is_some()
    }

    /// The client of `name`: a cache hit, unless the client was never
    /// built successfully or was marked broken, then it is rebuilt and
    /// probed. NotFound for an unregistered name.
    pub async fn get(&self, name: &str) -> Result<Client> {
        let slot = self
            .slot(name)
            .ok_or_else(|| Error::NotFound(format!("cluster {name:?} is not registered")))?;
        if let Some(c) = slot.cached() {
            return Ok(c);
        }
        let _guard = slot.rebuild.lock().await;
        if let Some(c) = slot.cached() {
            return Ok(c);
        }
        let built = self.build_and_probe(name, &slot.config).await?;
        let client = built.0.clone();
        slot.set(Some(built));
        Ok(client)
    }

    /// The server version seen by the last successful probe.
    pub fn version(&self, name: &str) -> Option<Info> {
        let slot = self.slot(name)?;
        let g = match slot.client.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.as_ref().map(|(_, i)| i.clone())
    }

    /// Marks a cluster's client broken: the next [`Self::get`] rebuilds it.
    pub fn mark_broken(&self, name: &str) {
        if let Some(slot) = self.slot(name) {
            tracing::warn!(
                cluster = name,
                "cluster client marked broken; it will be rebuilt"
            );
            slot.set(None);
        }
    }

    /// Probes a cluster now; a failing probe marks it broken.
    pub async fn check(&self, name: &str) -> Result<Info> {
        let client = self.get(name).await?;
        match probe(&client, self.probe_timeout).await {
            Ok(i) => Ok(i),
            Err(e) => {
                self.mark_broken(name);
                Err(e)
            }
        }
    }

    /// Runs `f` on every registered cluster, at most `concurrency` at a
    /// time, and returns each cluster's result by name. A cluster that
    /// cannot be reached yields its error; the others are unaffected.
    /// A call failing with Unavailable marks that client broken.
    pub async fn fan_out<T, F, Fut>(&self, concurrency: usize, f: F) -> BTreeMap<String, Result<T>>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let names = self.names();
        self.fan_out_to(&names, concurrency, f).await
    }

    /// [`Self::fan_out`] restricted to `names`.
    pub async fn fan_out_to<T, F, Fut>(
        &self,
        names: &[String],
        concurrency: usize,
        f: F,
    ) -> BTreeMap<String, Result<T>>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let f = &f;
        futures::stream::iter(names.iter().cloned())
            .map(|name| async move {
                let res = match self.get(&name).await {
                    Ok(client) => f(client).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &res
                    && e.kind() == ErrorKind::Unavailable
                {
                    self.mark_broken(&name);
                }
                (name, res)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await
    }
}

async fn probe(client: &Client, timeout: Duration) -> Result<Info> {
    match tokio::time::timeout(timeout, client.version()).await {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => Err(match e.kind() {
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Internal => {
                Error::Unavailable(format!(
                    "cluster {} at {} did not answer GET /version: {e}",
                    client.name(),
                    client.server()
                ))
            }
            _ => e,
        }),
        Err(_) => Err(Error::Unavailable(format!(
            "cluster {} at {} did not answer GET /version within {timeout:?}",
            client.name(),
            client.server()
        ))),
    }
}
