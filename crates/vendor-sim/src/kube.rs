//! The control plane behind every simulated cluster: the kubeconfig a
//! simulator hands out, and the kwok nodes it creates for added nodes.

use base64::Engine as _;
use kubepkg_k8s_api::k8s_openapi::api::core::v1::Node;
use kubepkg_k8s_api::{Client, ClusterConfig, DeleteOptions};
use std::collections::BTreeMap;

/// The taint every simulated node carries, so no other test's pods land
/// on it.
pub const TAINT_KEY: &str = "kubepkg.io/vendor-sim";

/// The label naming the simulator that created a node.
pub const LABEL: &str = "kubepkg.io/vendor-sim";

/// An API server, its CA and an admin token.
#[derive(Clone)]
pub struct KubeTarget {
    /// `https://host:port`.
    pub server: String,
    /// The CA, PEM.
    pub ca_pem: String,
    /// An admin bearer token.
    pub token: String,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubeTarget {
    /// The local environment's control plane (panics naming the server
    /// and `cargo xtask env up` when it is not running).
    pub fn local() -> KubeTarget {
        let k = kubepkg_testenv::kubernetes();
        KubeTarget {
            server: k.server.clone(),
            ca_pem: k.ca_pem.clone(),
            token: k.admin_token.clone(),
        }
    }

    /// An admin kubeconfig for it, with cluster, user and context `name`.
    pub fn kubeconfig(&self, name: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": format!("{name}-admin"), "user": {"token": self.token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": format!("{name}-admin")}}],
            "current-context": name,
        });
        // JSON is YAML.
        doc.to_string()
    }

    async fn client(&self) -> Client {
        let cfg = ClusterConfig::token(&self.server, Some(self.ca_pem.clone()), self.token.clone());
        match Client::connect_named("vendor-sim", &cfg).await {
            Ok(c) => c,
            Err(e) => panic!(
                "vendor simulator: the Kubernetes API server at {} is not usable ({e}); \
                 start the local environment with `cargo xtask env up`",
                self.server
            ),
        }
    }

    /// Creates a kwok node `name` with `labels` (kwok makes it Ready).
    pub async fn create_node(
        &self,
        name: &str,
        simulator: &str,
        labels: &BTreeMap<String, String>,
    ) {
        let mut all = labels.clone();
        all.insert("kubernetes.io/hostname".into(), name.into());
        all.insert("kubernetes.io/os".into(), "linux".into());
        all.insert("type".into(), "kwok".into());
        all.insert(LABEL.into(), simulator.into());
        let node: Node = match serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": all,
                         "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        })) {
            Ok(n) => n,
            Err(e) => panic!("vendor simulator: node {name:?}: {e}"),
        };
        if let Err(e) = self.client().await.nodes().create(&node).await {
            tracing::warn!(node = name, error = %e, "vendor simulator: creating the kwok node failed");
        }
    }

    /// Deletes node `name` (gone already is fine).
    pub async fn delete_node(&self, name: &str) {
        let _ = self
            .client()
            .await
            .nodes()
            .delete(name, &DeleteOptions::default())
            .await;
    }
}
