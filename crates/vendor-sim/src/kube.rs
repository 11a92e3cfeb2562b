//! The control plane behind every simulated cluster: the kubeconfig a
//! simulator hands out, and the kwok nodes it creates for added nodes.
//!
//! Every kwok node carries [`LABEL`] (the simulator's name) and
//! [`OWNER_LABEL`] (the simulator instance that made it: this process's
//! boot id, pid and start time, plus the instance's id). A simulator
//! deletes its nodes when their cluster is deleted or they are removed,
//! and the rest when its [`SimHandle`](crate::SimHandle) is dropped.
//! Nodes a run left behind when it aborted are swept by [`sweep_stale`]
//! (run once per process before a simulator creates its first node):
//! only nodes [`LABEL`] marks, and only those whose owner is not a live
//! simulator (its process gone, or, in this process, its handle dropped).

use base64::Engine as _;
use kubepkg_k8s_api::k8s_openapi::api::core::v1::Node;
use kubepkg_k8s_api::{Client, ClusterConfig, DeleteOptions, ListOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

/// The taint every simulated node carries, so no other test's pods land
/// on it.
pub const TAINT_KEY: &str = "kubepkg.io/vendor-sim";

/// The label naming the simulator that created a node.
pub const LABEL: &str = "kubepkg.io/vendor-sim";

/// The label naming the simulator instance that owns a node:
/// `<boot id>-<pid>-<process start>-<instance>`.
pub const OWNER_LABEL: &str = "kubepkg.io/vendor-sim-owner";

/// The simulator instances of this process whose handles are alive.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// `/proc/<pid>/stat`'s start time (field 22), when the process exists.
fn start_time(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(str::to_string)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().replace('-', "").chars().take(8).collect())
        .unwrap_or_else(|_| "noboot".into())
}

/// This process as owners name it: `<boot id>-<pid>-<start time>`.
fn this_process() -> &'static str {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id().to_string();
        let start = start_time(&pid).unwrap_or_else(|| "0".into());
        format!("{}-{pid}-{start}", boot_id())
    })
}

/// Whether the owner label `owner` names a live simulator instance.
pub fn owner_alive(owner: &str) -> bool {
    let mut parts = owner.splitn(4, '-');
    let (Some(boot), Some(pid), Some(start), Some(_instance)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let process = format!("{boot}-{pid}-{start}");
    if process == this_process() {
        return live().contains(owner);
    }
    boot == boot_id() && start_time(pid).as_deref() == Some(start)
}

/// Deletes the kwok nodes [`LABEL`] marks whose owner is no live
/// simulator (left by an aborted run or a dropped handle); returns their
/// names. Nodes without the label are never touched.
pub async fn sweep_stale(target: &KubeTarget) -> Vec<String> {
    let client = target.client().await;
    let nodes = match client.nodes().list(&ListOptions::labels(LABEL)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "vendor simulator: listing simulated nodes failed");
            return Vec::new();
        }
    };
    let mut swept = Vec::new();
    for n in nodes {
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let owner = labels.get(OWNER_LABEL).map(String::as_str).unwrap_or("");
        let Some(name) = n.metadata.name.clone() else {
            continue;
        };
        if !owner_alive(owner) {
            let _ = client
                .nodes()
                .delete(&name, &DeleteOptions::default())
                .await;
            swept.push(name);
        }
    }
    if !swept.is_empty() {
        tracing::info!(nodes = ?swept, "vendor simulator: swept stale kwok nodes");
    }
    swept
}

/// One simulator instance as the owner of the kwok nodes it creates.
#[derive(Debug)]
pub struct Owner {
    simulator: &'static str,
    id: String,
    target: OnceLock<KubeTarget>,
    nodes: Mutex<BTreeSet<String>>,
}

impl Owner {
    /// A live owner for `simulator` (its name, e.g. `"tke"`).
    pub fn new(simulator: &'static str) -> Owner {
        let id = format!("{}-{}", this_process(), crate::server::rand_id(8));
        live().insert(id.clone());
        Owner {
            simulator,
            id,
            target: OnceLock::new(),
            nodes: Mutex::new(BTreeSet::new()),
        }
    }

    /// The owner label's value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The names of the nodes it created and has not deleted.
    pub fn nodes(&self) -> Vec<String> {
        crate::server::lock(&self.nodes).iter().cloned().collect()
    }

    /// Creates a kwok node `name` in `target` for this owner; sweeps stale
    /// nodes first, once per process.
    pub async fn create_node(
        &self,
        target: &KubeTarget,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) {
        static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        SWEPT
            .get_or_init(|| async {
                sweep_stale(target).await;
            })
            .await;
        let _ = self.target.set(target.clone());
        crate::server::lock(&self.nodes).insert(name.to_string());
        target
            .create_node(name, self.simulator, &self.id, labels)
            .await;
    }

    /// Deletes this owner's node `name` from `target`.
    pub async fn delete_node(&self, target: &KubeTarget, name: &str) {
        crate::server::lock(&self.nodes).remove(name);
        target.delete_node(name).await;
    }

    /// No longer live: deletes every node it still has (on a thread of its
    /// own, so this works from `Drop` inside or outside a runtime).
    pub fn release(&self) {
        live().remove(&self.id);
        let nodes: Vec<String> = std::mem::take(&mut *crate::server::lock(&self.nodes))
            .into_iter()
            .collect();
        let Some(target) = self.target.get().cloned() else {
            return;
        };
        if nodes.is_empty() {
            return;
        }
        let worker = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "vendor simulator: no runtime to delete nodes");
                    return;
                }
            };
            rt.block_on(async {
                for n in nodes {
                    target.delete_node(&n).await;
                }
            });
        });
        let _ = worker.join();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        live().remove(&self.id);
    }
}

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

    pub(crate) async fn client(&self) -> Client {
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

    /// Creates a kwok node `name` with `labels` (kwok makes it Ready),
    /// labelled with the simulator's name and its `owner` (see [`Owner`]).
    pub async fn create_node(
        &self,
        name: &str,
        simulator: &str,
        owner: &str,
        labels: &BTreeMap<String, String>,
    ) {
        let mut all = labels.clone();
        all.insert("kubernetes.io/hostname".into(), name.into());
        all.insert("kubernetes.io/os".into(), "linux".into());
        all.insert("type".into(), "kwok".into());
        all.insert(LABEL.into(), simulator.into());
        all.insert(OWNER_LABEL.into(), owner.into());
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
