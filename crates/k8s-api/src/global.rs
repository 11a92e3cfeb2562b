//! The process-wide default cluster and the named registry beside it.
//!
//! [`init`] sets the default once; [`client`] returns it, building it lazily
//! from the default chain (in-cluster, `$KUBECONFIG`, `~/.kube/config`, with
//! `KUBEPKG_K8S_*` overrides) when nobody called `init`. [`clusters`] is a
//! process-wide [`ClusterManager`] for named clusters.

use crate::{Client, ClusterConfig, ClusterManager, Error, Result};
use std::sync::OnceLock;
use tokio::sync::OnceCell;

static DEFAULT: OnceCell<Client> = OnceCell::const_new();
static CLUSTERS: OnceLock<ClusterManager> = OnceLock::new();

/// Sets the process-wide default cluster. Nothing is contacted. Fails with
/// [`Error::Invalid`] when the default is already set (by `init` or by a
/// lazy [`client`] call).
pub async fn init(config: &ClusterConfig) -> Result<Client> {
    let client = Client::connect_named("default", config).await?;
    DEFAULT
        .set(client.clone())
        .map_err(|_| Error::invalid("the default Kubernetes cluster is already initialized"))?;
    Ok(client)
}

/// The default cluster's client, built from the default chain on first use
/// when [`init`] was not called.
pub async fn client() -> Result<Client> {
    DEFAULT
        .get_or_try_init(|| async {
            let cfg = ClusterConfig::default_chain().with_env_overrides()?;
            Client::connect_named("default", &cfg).await
        })
        .await
        .cloned()
}

/// The default client if it has been built.
pub fn try_client() -> Option<Client> {
    DEFAULT.get().cloned()
}

/// The process-wide registry of named clusters.
pub fn clusters() -> &'static ClusterManager {
    CLUSTERS.get_or_init(ClusterManager::new)
}
