//! Queries: each goes straight to the cluster's Kubernetes API, through
//! the cached client; the store only adds what the cluster does not know
//! (which vendor instance a node is).

use super::Platform;
use crate::Result;
use kubepkg_k8s_api::index::Overview;
use serde::Serialize;
use std::collections::BTreeMap;

/// A node as the Node API reports it, joined with the store's vendor ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// Whether it is cordoned.
    pub unschedulable: bool,
    /// Roles from `node-role.kubernetes.io/*` labels.
    pub roles: Vec<String>,
    /// Kubelet version.
    pub kubelet_version: Option<String>,
    /// Internal IP.
    pub internal_ip: Option<String>,
    /// The vendor's instance id, when the store knows it.
    pub provider_instance_id: Option<String>,
    /// The vendor's node pool, when the store knows it.
    pub node_pool: Option<String>,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
}

impl Platform {
    /// A cluster's summary (k8s-api's overview: nodes, capacity, requests,
    /// workloads, metrics when served).
    pub async fn summary(&self, cluster: &str) -> Result<Overview> {
        self.with_client(cluster, |c| async move { c.overview().await })
            .await
    }

    /// Nodes from the Node API, joined with the vendor ids in the store.
    pub async fn nodes(&self, cluster: &str) -> Result<Vec<NodeView>> {
        let nodes = self
            .with_client(cluster, |c| async move {
                c.nodes()
                    .list(&kubepkg_k8s_api::ListOptions::default())
                    .await
            })
            .await?;
        let known: BTreeMap<String, crate::store::NodeRecord> = self
            .store()
            .list_nodes(cluster)
            .await?
            .into_iter()
            .map(|n| (n.node_name.clone(), n))
            .collect();
        let mut out: Vec<NodeView> = nodes
            .into_iter()
            .map(|n| {
                let name = n.metadata.name.clone().unwrap_or_default();
                let labels: BTreeMap<String, String> = n
                    .metadata
                    .labels
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let roles = labels
                    .keys()
                    .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                    .map(str::to_string)
                    .collect();
                let status = n.status.as_ref();
                let rec = known.get(&name);
                NodeView {
                    ready: kubepkg_k8s_api::node::node_ready(&n),
                    unschedulable: n
                        .spec
                        .as_ref()
                        .and_then(|s| s.unschedulable)
                        .unwrap_or(false),
                    roles,
                    kubelet_version: status
                        .and_then(|s| s.node_info.as_ref())
                        .map(|i| i.kubelet_version.clone()),
                    internal_ip: status
                        .and_then(|s| s.addresses.as_ref())
                        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                        .map(|a| a.address.clone()),
                    provider_instance_id: rec.map(|r| r.provider_instance_id.clone()),
                    node_pool: rec.and_then(|r| r.node_pool.clone()),
                    labels,
                    name,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
