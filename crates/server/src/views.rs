//! The JSON shapes the server reads and writes, with their OpenAPI
//! schemas. Library types are turned into these at the edge, so the wire
//! format is documented in one place and a library change cannot slip into
//! the API unnoticed.

use kubepkg_platform::core::{ClusterHealth, ImportReport, NodeView};
use kubepkg_platform::store::{ApiTokenRecord, ClusterRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The envelope of every answer: `code` 0 and `data` on success, the error
/// kind's code and its message otherwise.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// `0` on success.
    pub code: u32,
    /// `ok`, or what went wrong.
    pub message: String,
    /// The payload (absent on errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The code of the error's kind (HTTP status × 100 + index).
    pub code: u32,
    /// What went wrong.
    pub message: String,
}

/// One page of a list (the source design's page type).
#[derive(Debug, Serialize, ToSchema)]
pub struct PageOf<T> {
    /// The 1-based number of this page.
    pub cur_page: u64,
    /// The requested page size.
    pub cur_page_size: u64,
    /// Items over all pages.
    pub total: u64,
    /// Number of pages.
    pub total_page: u64,
    /// The items of this page.
    pub data: Vec<T>,
}

impl<T> From<kubepkg_platform::api::Page<T>> for PageOf<T> {
    fn from(p: kubepkg_platform::api::Page<T>) -> Self {
        PageOf {
            cur_page: p.cur_page,
            cur_page_size: p.cur_page_size,
            total: p.total,
            total_page: p.total_page,
            data: p.data,
        }
    }
}

/// A health condition.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionView {
    /// `Reachable`, `Version`, `NodesReady`, `CredentialValid`,
    /// `CredentialExpiring`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// What was seen.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition: String,
}

/// A cluster the platform manages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// Unique name.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// The provider that created or imported it.
    pub provider: String,
    /// The provider's id of it.
    pub provider_cluster_id: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// API server URL.
    pub api_server: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Health conditions as last recorded.
    pub conditions: Vec<ConditionView>,
    /// When the stored credential expires (RFC 3339).
    pub credential_expires_at: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Version, for optimistic concurrency.
    pub version: i64,
}

fn conditions(list: &[kubepkg_platform::store::Condition]) -> Vec<ConditionView> {
    list.iter()
        .map(|c| {
            let v = serde_json::to_value(c).unwrap_or_default();
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            ConditionView {
                type_: field("type"),
                status: field("status"),
                reason: field("reason"),
                message: field("message"),
                last_transition: field("last_transition"),
            }
        })
        .collect()
}

impl From<&ClusterRecord> for ClusterView {
    fn from(c: &ClusterRecord) -> Self {
        ClusterView {
            name: c.name.clone(),
            display_name: c.display_name.clone(),
            provider: c.provider.clone(),
            provider_cluster_id: c.provider_cluster_id.clone(),
            region: c.region.clone(),
            api_server: c.api_server.clone(),
            labels: c.labels.clone(),
            conditions: conditions(&c.conditions),
            credential_expires_at: c.credential_expires_at.map(|t| t.to_string()),
            created_at: c.created_at.to_string(),
            version: c.version,
        }
    }
}

/// What an import or a credential rotation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    /// The cluster as stored.
    pub cluster: ClusterView,
    /// The server's Kubernetes version.
    pub version: String,
    /// The service account whose token is stored (`namespace/name`).
    pub service_account: Option<String>,
    /// What the stored credential may do (verb on resource → allowed).
    #[schema(value_type = Object)]
    pub access: serde_json::Value,
    /// When the stored credential expires.
    pub expires_at: Option<String>,
    /// It expires within the warning window.
    pub expiring_soon: bool,
}

impl From<&ImportReport> for ImportView {
    fn from(r: &ImportReport) -> Self {
        ImportView {
            cluster: ClusterView::from(&r.cluster),
            version: r.version.clone(),
            service_account: r.service_account.clone(),
            access: serde_json::to_value(&r.access).unwrap_or_default(),
            expires_at: r.expires_at.map(|t| t.to_string()),
            expiring_soon: r.expiring_soon,
        }
    }
}

/// A cluster's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// The cluster.
    pub cluster: String,
    /// Every condition is as it should be.
    pub healthy: bool,
    /// The conditions, one per type.
    pub conditions: Vec<ConditionView>,
    /// The server version, when read.
    pub version: Option<String>,
    /// Ready nodes.
    pub nodes_ready: Option<u32>,
    /// All nodes.
    pub nodes_total: Option<u32>,
    /// Which server instance probes this cluster in the background (its
    /// lease in the store), when one does.
    pub probed_by: Option<ProbeLeaseView>,
}

/// A cluster's health-probe lease: the one instance probing it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeLeaseView {
    /// The instance holding the lease.
    pub instance: String,
    /// When the lease lapses unless renewed (RFC 3339).
    pub expires_at: String,
    /// When that instance last finished a probe (RFC 3339).
    pub probed_at: Option<String>,
}

impl From<&kubepkg_platform::store::ProbeLease> for ProbeLeaseView {
    fn from(l: &kubepkg_platform::store::ProbeLease) -> Self {
        ProbeLeaseView {
            instance: l.holder.clone(),
            expires_at: l.expires_at.to_string(),
            probed_at: l.probed_at.map(|t| t.to_string()),
        }
    }
}

impl From<&ClusterHealth> for HealthView {
    fn from(h: &ClusterHealth) -> Self {
        HealthView {
            cluster: h.cluster.clone(),
            healthy: h.is_healthy(),
            conditions: conditions(&h.conditions),
            version: h.version.clone(),
            nodes_ready: h.nodes_ready,
            nodes_total: h.nodes_total,
            probed_by: None,
        }
    }
}

/// A node, joined with the vendor's instance id.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeItem {
    /// Node name.
    pub name: String,
    /// Ready condition.
    pub ready: bool,
    /// Cordoned.
    pub unschedulable: bool,
    /// Roles from `node-role.kubernetes.io/*` labels.
    pub roles: Vec<String>,
    /// Kubelet version.
    pub kubelet_version: Option<String>,
    /// Internal IP.
    pub internal_ip: Option<String>,
    /// The vendor's instance id, when the store knows it.
    pub provider_instance_id: Option<String>,
    /// The vendor's node pool.
    pub node_pool: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl From<NodeView> for NodeItem {
    fn from(n: NodeView) -> Self {
        NodeItem {
            name: n.name,
            ready: n.ready,
            unschedulable: n.unschedulable,
            roles: n.roles,
            kubelet_version: n.kubelet_version,
            internal_ip: n.internal_ip,
            provider_instance_id: n.provider_instance_id,
            node_pool: n.node_pool,
            labels: n.labels,
        }
    }
}

/// An API token (its secret is never shown after creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: crate::auth::Role,
    /// Clusters it may touch (absent: all).
    pub clusters: Option<Vec<String>>,
    /// Creation time.
    pub created_at: String,
    /// Expiry.
    pub expires_at: Option<String>,
    /// Last use (to the minute).
    pub last_used_at: Option<String>,
}

impl From<&ApiTokenRecord> for TokenView {
    fn from(t: &ApiTokenRecord) -> Self {
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            role: crate::auth::Role::parse(&t.role).unwrap_or(crate::auth::Role::Viewer),
            clusters: t.clusters.clone(),
            created_at: t.created_at.to_string(),
            expires_at: t.expires_at.map(|x| x.to_string()),
            last_used_at: t.last_used_at.map(|x| x.to_string()),
        }
    }
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewTokenView {
    /// The token.
    pub token: TokenView,
    /// The bearer secret. Store it now; the server keeps only a hash.
    pub secret: String,
}

/// A Kubernetes event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// `Kind/name` of the object.
    pub object: String,
    /// How often it happened.
    pub count: i32,
    /// When it last happened (RFC 3339).
    pub last_seen: Option<String>,
}

impl From<&kubepkg_k8s_api::events::EventRecord> for EventView {
    fn from(e: &kubepkg_k8s_api::events::EventRecord) -> Self {
        EventView {
            type_: e.type_.clone(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            object: format!("{}/{}", e.object_kind, e.object_name),
            count: e.count,
            last_seen: e.when().map(|t| t.to_string()),
        }
    }
}

/// A rollout's state, as `kubectl rollout status` judges it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutView {
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// Desired replicas.
    pub desired: i32,
    /// Replicas on the newest template.
    pub updated: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Available replicas.
    pub available: i32,
    /// Finished.
    pub complete: bool,
    /// Failed (progress deadline exceeded).
    pub failed: bool,
}

impl From<kubepkg_k8s_api::instance::RolloutStatus> for RolloutView {
    fn from(s: kubepkg_k8s_api::instance::RolloutStatus) -> Self {
        RolloutView {
            generation: s.generation,
            observed_generation: s.observed_generation,
            desired: s.desired,
            updated: s.updated,
            ready: s.ready,
            available: s.available,
            complete: s.complete,
            failed: s.failed,
        }
    }
}

/// The result of one object of an applied bundle.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectResultView {
    /// Index of its document.
    pub index: Option<usize>,
    /// Line its document starts on.
    pub line: usize,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// `created`, `configured`, `unchanged`, `deleted`, `absent` or `failed`.
    pub outcome: String,
    /// The error, when it failed.
    pub error: Option<ErrorBody>,
    /// Changed (dry run: would change) field paths; Secret values never.
    pub changes: Vec<String>,
}

/// What `POST /apply` or a bundle delete did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyView {
    /// Every object succeeded.
    pub ok: bool,
    /// It was a dry run.
    pub dry_run: bool,
    /// One result per object, in bundle order.
    pub results: Vec<ObjectResultView>,
    /// Objects deleted by prune.
    pub pruned: Vec<ObjectResultView>,
    /// Why prune was skipped, when asked but not done.
    pub prune_skipped: Option<String>,
}

/// One object found by a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchItemView {
    /// The cluster it is in.
    pub cluster: String,
    /// The object.
    #[schema(value_type = Object)]
    pub object: serde_json::Value,
}

/// A cluster a search could not ask.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchErrorView {
    /// The cluster.
    pub cluster: String,
    /// The error.
    pub error: ErrorBody,
}

/// One page of a multi-cluster search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchView {
    /// Objects, in `namespace/name` order across clusters.
    pub items: Vec<SearchItemView>,
    /// Clusters that failed.
    pub errors: Vec<SearchErrorView>,
    /// Pass as `continue` for the next page; absent on the last.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}
