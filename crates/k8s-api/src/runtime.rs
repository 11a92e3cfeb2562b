//! Controllers (feature `runtime`): kube's controller runtime, re-exported,
//! plus what kubepkg adds around it.
//!
//! - The re-exports: [`Controller`] (the informer + work-queue loop of
//!   client-go's sample-controller: watches, a reflector [`Store`], one
//!   reconcile at a time per object, requeues), [`watcher`](mod@watcher), [`reflector`](mod@reflector),
//!   [`finalizer()`], the [`events`] [`Recorder`], [`predicates`] and
//!   [`WatchStreamExt`] — the same items as `kube::runtime`, so kube's
//!   documentation and examples apply unchanged.
//! - [`ClusterManager::controller`] / [`ClusterManager::controller_in`]
//!   build a controller for one cluster of a manager, on that cluster's
//!   cached client (kubepkg's rate limit, timeouts and retries included),
//!   and [`Resources::controller`] one for any handle.
//! - [`RequeueBackoff`]: the rate-limited requeue of failed reconciles
//!   (client-go's per-item exponential failure rate limiter), for an
//!   `error_policy`: each failure of the same object doubles its delay, a
//!   success resets it.
//! - [`Resources::reflect`]: kubepkg's resilient [`watch`](crate::watch)
//!   feeding a shared reflector [`Store`].
//!
//! ```no_run
//! use kubepkg_k8s_api::ClusterManager;
//! use kubepkg_k8s_api::k8s_openapi::api::core::v1::ConfigMap;
//! use kubepkg_k8s_api::runtime::{Action, RequeueBackoff, watcher};
//! use futures::StreamExt as _;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! struct Ctx { backoff: RequeueBackoff }
//!
//! async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, kubepkg_k8s_api::Error> {
//!     // ... make the world match `cm` ...
//!     ctx.backoff.forget(&*cm);
//!     Ok(Action::requeue(Duration::from_secs(300)))
//! }
//!
//! fn error_policy(cm: Arc<ConfigMap>, _: &kubepkg_k8s_api::Error, ctx: Arc<Ctx>) -> Action {
//!     ctx.backoff.on_error(&*cm)
//! }
//!
//! # async fn demo(manager: ClusterManager) -> kubepkg_k8s_api::Result<()> {
//! let (client, controller) = manager
//!     .controller_in::<ConfigMap>("prod", "shop", watcher::Config::default())
//!     .await?;
//! let ctx = Arc::new(Ctx { backoff: RequeueBackoff::default() });
//! controller
//!     .shutdown_on_signal()
//!     .run(reconcile, error_policy, ctx)
//!     .for_each(|_| async {})
//!     .await;
//! # drop(client);
//! # Ok(())
//! # }
//! ```

use crate::resource::check_namespace;
use crate::watch::{Update, WatchOptions};
use crate::{Client, ClusterManager, Resources, Result};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

pub use kube::runtime::controller::{self, Action, Config as ControllerConfig};
pub use kube::runtime::events::{self, Recorder, Reporter};
pub use kube::runtime::finalizer::{self, finalizer};
pub use kube::runtime::reflector::{self, ObjectRef, Store};
pub use kube::runtime::{
    Controller, Predicate, PredicateConfig, WatchStreamExt, predicates, scheduler, utils, wait,
    watcher,
};

impl<K> From<Update<K>> for watcher::Event<K> {
    fn from(u: Update<K>) -> Self {
        match u {
            Update::Init => watcher::Event::Init,
            Update::InitApply(o) => watcher::Event::InitApply(o),
            Update::InitDone => watcher::Event::InitDone,
            Update::Apply(o) => watcher::Event::Apply(o),
            Update::Delete(o) => watcher::Event::Delete(o),
        }
    }
}

impl<K> Resources<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// A kube [`Controller`] for this handle's kind, in its namespace (or
    /// all namespaces, or cluster-wide), on its client. Add `owns` /
    /// `watches` and call `run`.
    ///
    /// # Errors
    ///
    /// Invalid when the handle's namespace is not a DNS-1123 label.
    pub fn controller(&self, config: watcher::Config) -> Result<Controller<K>>
    where
        K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin,
    {
        self.check_scope()?;
        Ok(Controller::new(self.api.clone(), config))
    }

    /// kubepkg's resilient watch ([`Self::watch_updates`]) feeding a shared
    /// reflector [`Store`]: the store is filled as the returned stream is
    /// polled (poll it, e.g. in a task), swaps its contents at each
    /// `InitDone`, and is ready ([`Store::wait_until_ready`]) after the
    /// first list. Clone the store to share it.
    pub fn reflect(&self, opts: WatchOptions) -> (Store<K>, BoxStream<'static, Result<Update<K>>>)
    where
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        let (reader, mut writer) = reflector::store();
        let stream = self
            .watch_updates(opts)
            .map(move |update| {
                if let Ok(u) = &update {
                    writer.apply_watcher_event(&watcher::Event::from(u.clone()));
                }
                update
            })
            .boxed();
        (reader, stream)
    }
}

impl ClusterManager {
    /// A controller for `K` across all namespaces (or cluster-wide) of
    /// cluster `cluster`, on its cached client, which is returned beside it
    /// for the reconciler's context.
    ///
    /// # Errors
    ///
    /// NotFound for an unregistered cluster; the build or probe error of a
    /// client that had to be rebuilt (see [`ClusterManager::get`]).
    pub async fn controller<K>(
        &self,
        cluster: &str,
        config: watcher::Config,
    ) -> Result<(Client, Controller<K>)>
    where
        K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin,
    {
        let client = self.get(cluster).await?;
        let controller = client.all::<K>().controller(config)?;
        Ok((client, controller))
    }

    /// [`Self::controller`] for a namespaced `K` in `namespace` only.
    ///
    /// # Errors
    ///
    /// Invalid for a namespace that is not a DNS-1123 label (nothing is
    /// contacted), else as [`Self::controller`].
    pub async fn controller_in<K>(
        &self,
        cluster: &str,
        namespace: &str,
        config: watcher::Config,
    ) -> Result<(Client, Controller<K>)>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug
            + Send
            + Sync
            + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin,
    {
        check_namespace(namespace)?;
        let client = self.get(cluster).await?;
        let controller = client.namespaced::<K>(namespace).controller(config)?;
        Ok((client, controller))
    }
}

/// The rate-limited requeue of failed reconciles: per object, the first
/// failure requeues after `base`, each further one after twice the last,
/// up to `max` (client-go's `ItemExponentialFailureRateLimiter`); a
/// success ([`Self::forget`]) starts the object over. Objects are told
/// apart by namespace and name. Defaults: 5 ms doubling to 1000 s, as
/// client-go's default controller rate limiter.
#[derive(Debug)]
pub struct RequeueBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for RequeueBackoff {
    fn default() -> Self {
        RequeueBackoff::new(Duration::from_millis(5), Duration::from_secs(1000))
    }
}

impl RequeueBackoff {
    /// Delays from `base` doubling to `max` (`max` below `base` is taken
    /// as `base`).
    pub fn new(base: Duration, max: Duration) -> Self {
        RequeueBackoff {
            base,
            max: max.max(base),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key<K: Resource>(obj: &K) -> String {
        let meta = obj.meta();
        format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        )
    }

    fn with_map<R>(&self, f: impl FnOnce(&mut HashMap<String, u32>) -> R) -> R {
        match self.failures.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// The delay of failure number `n` (0-based) of one object.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Counts a failure of `obj` and returns its delay.
    pub fn next_delay<K: Resource>(&self, obj: &K) -> Duration {
        let n = self.with_map(|m| {
            let n = m.entry(Self::key(obj)).or_insert(0);
            let this = *n;
            *n = n.saturating_add(1);
            this
        });
        self.delay(n)
    }

    /// For an `error_policy`: counts a failure of `obj` and requeues it
    /// after its delay.
    pub fn on_error<K: Resource>(&self, obj: &K) -> Action {
        Action::requeue(self.next_delay(obj))
    }

    /// How many failures of `obj` are counted.
    pub fn failures<K: Resource>(&self, obj: &K) -> u32 {
        self.with_map(|m| m.get(&Self::key(obj)).copied().unwrap_or(0))
    }

    /// Forgets the failures of `obj` (call it when a reconcile succeeds).
    pub fn forget<K: Resource>(&self, obj: &K) {
        self.with_map(|m| m.remove(&Self::key(obj)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(ns: &str, name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.namespace = Some(ns.into());
        c.metadata.name = Some(name.into());
        c
    }

    #[test]
    fn failures_double_per_object_up_to_the_cap_and_a_success_resets() {
        let b = RequeueBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let a = cm("ns", "a");
        let waits: Vec<_> = (0..6).map(|_| b.next_delay(&a)).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        // Another object has its own count.
        assert_eq!(b.next_delay(&cm("ns", "b")), Duration::from_millis(100));
        assert_eq!(b.next_delay(&cm("other", "a")), Duration::from_millis(100));
        assert_eq!(b.failures(&a), 6);
        b.forget(&a);
        assert_eq!(b.failures(&a), 0);
        assert_eq!(b.on_error(&a), Action::requeue(Duration::from_millis(100)));
    }

    #[test]
    fn huge_failure_counts_saturate() {
        let b = RequeueBackoff::default();
        assert_eq!(b.delay(0), Duration::from_millis(5));
        assert_eq!(b.delay(40), Duration::from_secs(1000));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1000));
        let odd = RequeueBackoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(odd.delay(3), Duration::from_secs(2));
    }

    #[test]
    fn updates_become_watcher_events() {
        let e: watcher::Event<ConfigMap> = Update::InitApply(cm("ns", "a")).into();
        assert!(matches!(e, watcher::Event::InitApply(_)));
        let e: watcher::Event<ConfigMap> = Update::InitDone.into();
        assert!(matches!(e, watcher::Event::InitDone));
        let e: watcher::Event<ConfigMap> = Update::Delete(cm("ns", "a")).into();
        assert!(matches!(e, watcher::Event::Delete(_)));
    }
}
