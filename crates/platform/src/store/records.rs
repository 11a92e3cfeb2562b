//! The records the platform store keeps: only what neither a vendor nor a
//! cluster's etcd keeps.
//!
//! Timestamps are [`jiff::Timestamp`] (stored as Unix milliseconds).
//! Secret material never appears in a record: credentials are read one at a
//! time through [`crate::store::Store::credential`], which returns a
//! redacting [`Secret`].

use kubepkg_util::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A cluster the platform manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Unique name (a DNS-1123 label); the key of every other record.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// Provider that created or imported it (`"imported"`, `"tke"`, …).
    pub provider: String,
    /// The provider's own id of the cluster, when it has one.
    pub provider_cluster_id: Option<String>,
    /// Region (vendor clusters).
    pub region: Option<String>,
    /// API server URL.
    pub api_server: String,
    /// Cluster CA, PEM (`None`: public roots).
    pub ca_pem: Option<String>,
    /// Labels, for multi-cluster selection.
    pub labels: BTreeMap<String, String>,
    /// Health conditions, as last recorded.
    pub conditions: Vec<Condition>,
    /// When the stored credential expires, when known.
    pub credential_expires_at: Option<jiff::Timestamp>,
    /// Creation time.
    pub created_at: jiff::Timestamp,
    /// Last change.
    pub updated_at: jiff::Timestamp,
    /// Optimistic-concurrency version: every update must quote the version
    /// it read; a stale one is a Conflict.
    pub version: i64,
}

/// One health condition of a cluster (`Reachable`, `NodesReady`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The condition's type.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// A one-word reason (`"Probed"`, `"Timeout"`).
    pub reason: String,
    /// A human-readable message.
    pub message: String,
    /// When `status` last changed.
    pub last_transition: jiff::Timestamp,
}

/// The condition types of a cluster's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ConditionType {
    /// The API server answers `/readyz` (or `/healthz`).
    Reachable,
    /// The server version could be read.
    Version,
    /// Every node is Ready (and there is at least one).
    NodesReady,
    /// The stored credential is accepted.
    CredentialValid,
    /// The stored credential expires within 7 days.
    CredentialExpiring,
}

/// `True`, `False` or `Unknown`, as in Kubernetes conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// It could not be determined.
    Unknown,
}

/// A new cluster, before it has timestamps and a version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewCluster {
    /// See [`ClusterRecord::name`].
    pub name: String,
    /// See [`ClusterRecord::display_name`] (empty: the name).
    pub display_name: String,
    /// See [`ClusterRecord::provider`].
    pub provider: String,
    /// See [`ClusterRecord::provider_cluster_id`].
    pub provider_cluster_id: Option<String>,
    /// See [`ClusterRecord::region`].
    pub region: Option<String>,
    /// See [`ClusterRecord::api_server`].
    pub api_server: String,
    /// See [`ClusterRecord::ca_pem`].
    pub ca_pem: Option<String>,
    /// See [`ClusterRecord::labels`].
    pub labels: BTreeMap<String, String>,
    /// See [`ClusterRecord::credential_expires_at`].
    pub credential_expires_at: Option<jiff::Timestamp>,
}

/// A node the platform knows from a vendor: the provider's instance id
/// beside the Kubernetes node name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The cluster's name.
    pub cluster: String,
    /// The Kubernetes node name.
    pub node_name: String,
    /// The vendor's instance id.
    pub provider_instance_id: String,
    /// The node pool, when the node belongs to one.
    pub node_pool: Option<String>,
    /// Creation time.
    pub created_at: jiff::Timestamp,
}

/// What a stored credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum CredentialOwner {
    /// A cluster's credential (token, client certificate or kubeconfig).
    Cluster(String),
    /// A vendor provider's access key.
    Provider(String),
    /// A registry login.
    Registry(String),
}

/// What kind of secret a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A bearer token.
    Token,
    /// A whole kubeconfig.
    Kubeconfig,
    /// A client certificate and key (PEM, certificate first).
    ClientCertificate,
    /// A vendor access key id + secret.
    AccessKey,
    /// A registry username + password.
    Login,
}

/// A credential's metadata: what lists return. No secret material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    /// What it belongs to.
    pub owner: CredentialOwner,
    /// What it holds.
    pub kind: CredentialKind,
    /// The id of the key it is encrypted with.
    pub key_id: String,
    /// Creation time.
    pub created_at: jiff::Timestamp,
    /// Last change.
    pub updated_at: jiff::Timestamp,
}

/// A credential with its decrypted secret (redacted in `Debug`).
#[derive(Debug, Clone)]
pub struct Credential {
    /// Metadata.
    pub info: CredentialInfo,
    /// The plaintext (a token, a kubeconfig, or a JSON object of the parts).
    pub secret: Secret<String>,
}

/// An image registry the platform manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// Unique name.
    pub name: String,
    /// Provider (`"harbor"`, `"distribution"`, `"tke"`, `"acr"`).
    pub provider: String,
    /// Endpoint URL.
    pub endpoint: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: jiff::Timestamp,
    /// Last change.
    pub updated_at: jiff::Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A new registry, before it has timestamps and a version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRegistry {
    /// See [`RegistryRecord::name`].
    pub name: String,
    /// See [`RegistryRecord::provider`].
    pub provider: String,
    /// See [`RegistryRecord::endpoint`].
    pub endpoint: String,
    /// See [`RegistryRecord::labels`].
    pub labels: BTreeMap<String, String>,
}

/// What a subject may do in a registry namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Pull only.
    Pull,
    /// Push and pull.
    Push,
}

/// A permission: `subject` may `access` `namespace` of `registry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRecord {
    /// The registry's name.
    pub registry: String,
    /// The namespace (project) within it.
    pub namespace: String,
    /// Who (a user, a robot account, a team).
    pub subject: String,
    /// What they may do.
    pub access: Access,
    /// Creation time.
    pub created_at: jiff::Timestamp,
}

/// The state of a long-running vendor operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Recorded, not yet confirmed started by the vendor.
    Pending,
    /// The vendor is working on it.
    Running,
    /// Done.
    Succeeded,
    /// Failed; see `last_error`.
    Failed,
}

impl OperationState {
    /// Whether the operation has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, OperationState::Succeeded | OperationState::Failed)
    }
}

/// A long-running vendor operation (create a cluster, add nodes, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// Unique id (assigned by the store).
    pub id: String,
    /// What it does (`"create_cluster"`, `"add_nodes"`, …).
    pub kind: String,
    /// The provider carrying it out.
    pub provider: String,
    /// What it acts on (a cluster name, a node pool).
    pub target: String,
    /// Where it stands.
    pub state: OperationState,
    /// The last error, when it failed or a poll failed.
    pub last_error: Option<String>,
    /// The vendor's request id, for support tickets.
    pub vendor_request_id: Option<String>,
    /// Creation time.
    pub created_at: jiff::Timestamp,
    /// Last change.
    pub updated_at: jiff::Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}
