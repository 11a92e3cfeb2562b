//! The vendor-adapter layer's traits: [`ClusterProvider`] (create, delete
//! and change clusters and nodes) and [`RegistryProvider`] (everything about
//! image registries), each returning the same unified types whatever the
//! vendor, and the [`Providers`] registry the platform looks them up in.
//!
//! Queries never go through a provider: they go to the cluster's own
//! Kubernetes API (see [`crate::core`]). A provider that lacks an
//! operation answers [`Error::Unsupported`],
//! never a silent no-op.
//!
//! Cluster providers: [`imported`] (clusters the platform did not create),
//! [`tke`], [`ack`], [`rancher`]. Registry providers: [`harbor`] (projects
//! and robot accounts), [`tkestack`] (the TKEStack registry API), [`acr`]
//! (Alibaba Cloud Container Registry), and [`image_api`] (any plain
//! `kubepkg-image-api` registry, e.g. OCI distribution). A new vendor is
//! one module implementing the traits plus one line in
//! [`registry::KINDS`] (or one [`Providers::insert_cluster`] /
//! [`Providers::insert_registry`] call at run time).

pub mod ack;
pub mod acr;
pub mod harbor;
pub mod http;
pub mod image_api;
pub mod imported;
pub mod rancher;
pub mod registry;
pub mod sign;
pub mod tke;
pub mod tkestack;

use crate::{Error, Result};
use async_trait::async_trait;
use kubepkg_util::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

pub use kubepkg_image_api::registry::{Namespace, Repository, Visibility};

/// A node pool to create with a cluster or later.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePoolSpec {
    /// Pool name.
    pub name: String,
    /// The vendor's instance type (`S5.MEDIUM4`, `ecs.g7.large`).
    pub instance_type: String,
    /// Desired number of nodes.
    pub count: u32,
    /// Zone, when it differs from the cluster's.
    #[serde(default)]
    pub zone: Option<String>,
    /// Node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What a cluster should look like, in the same words for every vendor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The platform's name of the cluster (a DNS-1123 label).
    pub name: String,
    /// Kubernetes version (`1.30.0`); `None`: the vendor's default.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// The VPC / network to create the cluster in.
    #[serde(default)]
    pub network_id: Option<String>,
    /// Pod CIDR.
    #[serde(default)]
    pub pod_cidr: Option<String>,
    /// Service CIDR.
    #[serde(default)]
    pub service_cidr: Option<String>,
    /// Node pools to create with the cluster.
    #[serde(default)]
    pub node_pools: Vec<NodePoolSpec>,
    /// Existing instances to join as nodes.
    #[serde(default)]
    pub existing_instances: Vec<String>,
}

/// A cluster's state as its vendor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorState {
    /// Being created.
    Creating,
    /// Up.
    Running,
    /// Being changed (upgrade, scaling).
    Updating,
    /// Being deleted.
    Deleting,
    /// Failed.
    Failed,
    /// A state this adapter does not know, verbatim.
    Other(String),
}

/// The vendor's view of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorCluster {
    /// The vendor's cluster id.
    pub id: String,
    /// The vendor's name of it.
    pub name: String,
    /// Its state.
    pub state: VendorState,
    /// Kubernetes version, when reported.
    pub version: Option<String>,
    /// API server endpoint, when reported.
    pub endpoint: Option<String>,
    /// Region, when reported.
    pub region: Option<String>,
}

/// Nodes to add to a cluster: new instances in a pool, or existing ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum AddNodes {
    /// New instances.
    New {
        /// The pool to add them to (created when missing, if the vendor can).
        pool: NodePoolSpec,
    },
    /// Existing instances, by the vendor's instance id.
    Existing {
        /// Instance ids.
        instance_ids: Vec<String>,
    },
}

/// A long-running vendor operation as the vendor acknowledged it. The
/// platform records it in the store and tracks it with
/// [`ClusterProvider::poll`] until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorOperation {
    /// What it does (`"create_cluster"`, `"add_nodes"`, …).
    pub kind: String,
    /// The vendor's id of what it acts on (a cluster id).
    pub target: String,
    /// The vendor's handle to poll (a task id), when it gave one.
    pub handle: Option<String>,
    /// The vendor's request id.
    pub request_id: Option<String>,
    /// Whether it already finished (synchronous vendors, or nothing to do).
    pub done: bool,
}

impl VendorOperation {
    /// An operation that finished as it was acknowledged.
    pub fn completed(kind: &str, target: &str) -> Self {
        VendorOperation {
            kind: kind.into(),
            target: target.into(),
            handle: None,
            request_id: None,
            done: true,
        }
    }
}

/// Where a polled operation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PollResult {
    /// Still running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed, with the vendor's message.
    Failed {
        /// The vendor's message.
        message: String,
        /// The vendor's error code, when it gave one.
        #[serde(default)]
        code: Option<String>,
    },
}

/// A node as the vendor knows it: its instance id beside the Kubernetes
/// node name, so the platform can join the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorNode {
    /// The vendor's instance id.
    pub instance_id: String,
    /// The Kubernetes node name, once the instance has joined.
    pub node_name: Option<String>,
    /// The node pool, when it belongs to one.
    pub node_pool: Option<String>,
    /// The vendor's state of the instance, verbatim (`running`, …).
    pub state: String,
}

/// Creates, deletes and changes clusters and nodes through one vendor.
///
/// Object-safe, used as `Arc<dyn ClusterProvider>`.
#[async_trait]
pub trait ClusterProvider: Send + Sync + fmt::Debug {
    /// The provider kind (`"imported"`, `"tke"`, `"ack"`, `"rancher"`).
    fn kind(&self) -> &str;

    /// Starts creating a cluster.
    async fn create_cluster(&self, spec: &ClusterSpec) -> Result<VendorOperation>;

    /// The vendor's view of one cluster. NotFound when it has none.
    async fn describe_cluster(&self, id: &str) -> Result<VendorCluster>;

    /// Starts deleting a cluster.
    async fn delete_cluster(&self, id: &str) -> Result<VendorOperation>;

    /// Adds nodes.
    async fn add_nodes(&self, id: &str, nodes: &AddNodes) -> Result<VendorOperation>;

    /// Removes nodes by instance id.
    async fn remove_nodes(&self, id: &str, instance_ids: &[String]) -> Result<VendorOperation>;

    /// Sets a node pool's desired size.
    async fn scale_node_pool(&self, id: &str, pool: &str, desired: u32) -> Result<VendorOperation>;

    /// An admin kubeconfig, for importing the cluster.
    async fn kubeconfig(&self, id: &str) -> Result<Secret<String>>;

    /// Every cluster the vendor has (to reconcile with the store).
    async fn list_clusters(&self) -> Result<Vec<VendorCluster>>;

    /// Where an operation stands.
    async fn poll(&self, op: &VendorOperation) -> Result<PollResult>;

    /// The cluster's nodes as the vendor lists them (instance ids and the
    /// node names they joined as). Unsupported unless the vendor has them.
    async fn list_nodes(&self, id: &str) -> Result<Vec<VendorNode>> {
        Err(Error::Unsupported(format!(
            "{}: listing the vendor instances of {id:?}",
            self.kind()
        )))
    }
}

/// Who may do what in a registry namespace, as the vendor grants it
/// (a robot account, a service account).
#[derive(Debug, Clone)]
pub struct AccessGrant {
    /// The namespace.
    pub namespace: String,
    /// The subject (robot) name as the vendor spells it.
    pub subject: String,
    /// Push and pull, or pull only.
    pub access: crate::store::Access,
    /// The credential the vendor issued for it, when it issued one (shown
    /// once; redacted in `Debug`).
    pub secret: Option<Secret<String>>,
}

/// The Unsupported answer of a registry that has no per-namespace robot
/// accounts to grant or revoke; `instead` says what the vendor uses.
pub fn no_robot_accounts(kind: &str, namespace: &str, subject: &str, instead: &str) -> Error {
    Error::Unsupported(format!(
        "{kind}: access of {subject:?} to {namespace:?}: this registry has no \
         per-namespace robot accounts; {instead}"
    ))
}

/// Everything about one image registry, through one vendor.
///
/// Object-safe, used as `Arc<dyn RegistryProvider>`.
#[async_trait]
pub trait RegistryProvider: Send + Sync + fmt::Debug {
    /// The provider kind (`"harbor"`, `"distribution"`, `"tkestack"`, `"acr"`).
    fn kind(&self) -> &str;

    /// Creates a namespace with a visibility.
    async fn create_namespace(&self, name: &str, visibility: Visibility) -> Result<Namespace>;

    /// Lists namespaces, with repository counts where the vendor has them.
    async fn list_namespaces(&self) -> Result<Vec<Namespace>>;

    /// Deletes a namespace.
    async fn delete_namespace(&self, name: &str) -> Result<()>;

    /// Lists repositories, of one namespace or all.
    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>>;

    /// Lists a repository's tags.
    async fn list_tags(&self, repository: &str) -> Result<Vec<String>>;

    /// Grants `subject` access to `namespace` (creating the vendor's robot
    /// or service account).
    async fn grant_access(
        &self,
        namespace: &str,
        subject: &str,
        access: crate::store::Access,
    ) -> Result<AccessGrant>;

    /// Revokes what [`Self::grant_access`] granted.
    async fn revoke_access(&self, namespace: &str, subject: &str) -> Result<()>;
}

/// The providers a [`crate::core::Platform`] can use, by name.
///
/// Starts with the `imported` cluster provider; vendor adapters and
/// registries are added with one call each.
#[derive(Default)]
pub struct Providers {
    clusters: RwLock<BTreeMap<String, Arc<dyn ClusterProvider>>>,
    registries: RwLock<BTreeMap<String, Arc<dyn RegistryProvider>>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("clusters", &self.cluster_names())
            .field("registries", &self.registry_names())
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Providers {
    /// The registry with the `imported` cluster provider under its kind's name.
    pub fn new() -> Self {
        let p = Providers::default();
        p.insert_cluster(imported::KIND, Arc::new(imported::Imported));
        p
    }

    /// Adds (or replaces) a cluster provider under `name`.
    pub fn insert_cluster(&self, name: &str, provider: Arc<dyn ClusterProvider>) {
        write(&self.clusters).insert(name.to_string(), provider);
    }

    /// Adds (or replaces) a registry provider under `name`.
    pub fn insert_registry(&self, name: &str, provider: Arc<dyn RegistryProvider>) {
        write(&self.registries).insert(name.to_string(), provider);
    }

    /// The cluster provider `name`; NotFound naming the known ones.
    pub fn cluster(&self, name: &str) -> Result<Arc<dyn ClusterProvider>> {
        read(&self.clusters).get(name).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "cluster provider {name:?} (known: {})",
                self.cluster_names().join(", ")
            ))
        })
    }

    /// The registry provider `name`; NotFound naming the known ones.
    pub fn registry(&self, name: &str) -> Result<Arc<dyn RegistryProvider>> {
        read(&self.registries).get(name).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "registry provider {name:?} (known: {})",
                self.registry_names().join(", ")
            ))
        })
    }

    /// Names of the cluster providers, sorted.
    pub fn cluster_names(&self) -> Vec<String> {
        read(&self.clusters).keys().cloned().collect()
    }

    /// Names of the registry providers, sorted.
    pub fn registry_names(&self) -> Vec<String> {
        read(&self.registries).keys().cloned().collect()
    }

    /// Removes a registry provider.
    pub fn remove_registry(&self, name: &str) -> Option<Arc<dyn RegistryProvider>> {
        write(&self.registries).remove(name)
    }
}
