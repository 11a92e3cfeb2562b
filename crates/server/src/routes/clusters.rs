//! Clusters (import, list, get, delete, summary, health, credential
//! rotation), their nodes (list joined with vendor ids, cordon, uncordon,
//! drain) and the multi-cluster search.

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::extract::{JsonBody, JsonOrEmpty, Query, page_request};
use crate::state::AppState;
use crate::views::{
    ClusterView, Envelope, ErrorBody, HealthView, ImportView, NodeItem, PageOf, ProbeLeaseView,
    SearchErrorView, SearchItemView, SearchView,
};
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use kubepkg_platform::api::ResponseCode;
use kubepkg_platform::core::{ImportRequest, ImportRole, ImportSource, SearchQuery};
use kubepkg_util::paging::paginate;
use kubepkg_util::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// `?page=&page_size=&selector=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1-based page (default 1).
    pub page: Option<u64>,
    /// Page size (default 20, at most the server's limit).
    pub page_size: Option<u64>,
    /// Label selector over the clusters' labels.
    pub selector: Option<String>,
}

/// Clusters this token may touch, paged.
#[utoipa::path(get, path = "/clusters", tag = "clusters", params(ListQuery),
    responses(
        (status = 200, description = "One page of clusters", body = Envelope<PageOf<ClusterView>>),
        (status = 422, description = "Bad selector or paging", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse> {
    let req = page_request(q.page, q.page_size, state.settings.max_page_size)?;
    let records = state.platform.clusters(q.selector.as_deref()).await?;
    let views: Vec<ClusterView> = records
        .iter()
        .filter(|r| caller.token.may_touch(&r.name))
        .map(ClusterView::from)
        .collect();
    Ok(super::ok(PageOf::from(paginate(views, &req))))
}

/// One cluster.
#[utoipa::path(get, path = "/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster name")),
    responses(
        (status = 200, description = "The cluster", body = Envelope<ClusterView>),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<impl IntoResponse> {
    let record = state.platform.cluster(&cluster).await?;
    Ok(super::ok(ClusterView::from(&record)))
}

/// The cluster overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryView {
    /// Server version.
    pub version: String,
    /// Server platform (`linux/amd64`).
    pub platform: String,
    /// Nodes.
    pub nodes: usize,
    /// Ready nodes.
    pub ready_nodes: usize,
    /// Namespaces.
    pub namespaces: Vec<String>,
    /// Pods by phase.
    pub pods_by_phase: BTreeMap<String, usize>,
}

/// The overview of a cluster, from its own API.
#[utoipa::path(get, path = "/clusters/{cluster}/summary", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster name")),
    responses(
        (status = 200, description = "The overview", body = Envelope<SummaryView>),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 503, description = "The cluster is down", body = ErrorBody),
    ))]
pub async fn summary(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<impl IntoResponse> {
    // Checked against the store first (another instance may have
    // deleted or changed it).
    super::client(&state, &cluster).await?;
    let o = state.platform.summary(&cluster).await?;
    Ok(super::ok(SummaryView {
        version: o.version,
        platform: o.platform,
        nodes: o.nodes.len(),
        ready_nodes: o.ready_nodes,
        namespaces: o.namespaces,
        pods_by_phase: o.pods_by_phase,
    }))
}

/// Checks the cluster's health now and records it.
#[utoipa::path(get, path = "/clusters/{cluster}/health", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster name")),
    responses(
        (status = 200, description = "The conditions", body = Envelope<HealthView>),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ))]
pub async fn health(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<impl IntoResponse> {
    // Checked against the store first (another instance may have
    // deleted or changed it).
    super::client(&state, &cluster).await?;
    let h = state.platform.check_health(&cluster).await?;
    let mut view = HealthView::from(&h);
    view.probed_by = state
        .platform
        .store()
        .probe_lease(&cluster)
        .await?
        .map(|l| ProbeLeaseView::from(&l));
    Ok(super::ok(view))
}

/// Nodes from the cluster's Node API, joined with the vendor's instance ids.
#[utoipa::path(get, path = "/clusters/{cluster}/nodes", tag = "nodes",
    params(("cluster" = String, Path, description = "Cluster name")),
    responses(
        (status = 200, description = "The nodes", body = Envelope<Vec<NodeItem>>),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ))]
pub async fn nodes(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<impl IntoResponse> {
    // Checked against the store first (another instance may have
    // deleted or changed it).
    super::client(&state, &cluster).await?;
    let nodes = state.platform.nodes(&cluster).await?;
    Ok(super::ok(
        nodes.into_iter().map(NodeItem::from).collect::<Vec<_>>(),
    ))
}

/// A node after cordon / uncordon.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeState {
    /// Node name.
    pub name: String,
    /// Cordoned.
    pub unschedulable: bool,
}

fn node_state(n: &k8s_openapi::api::core::v1::Node) -> NodeState {
    NodeState {
        name: n.metadata.name.clone().unwrap_or_default(),
        unschedulable: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
    }
}

async fn set_cordoned(
    state: &AppState,
    cluster: &str,
    node: &str,
    cordoned: bool,
) -> Result<axum::Json<kubepkg_platform::api::ApiResponse<NodeState>>> {
    let nodes = super::client(state, cluster).await?.nodes();
    let n = if cordoned {
        nodes.cordon(node).await?
    } else {
        nodes.uncordon(node).await?
    };
    Ok(super::ok(node_state(&n)))
}

/// Marks a node unschedulable.
#[utoipa::path(post, path = "/clusters/{cluster}/nodes/{node}/cordon", tag = "nodes",
    params(("cluster" = String, Path), ("node" = String, Path)),
    responses((status = 200, description = "Cordoned", body = Envelope<NodeState>),
        (status = 404, description = "No such cluster or node", body = ErrorBody)))]
pub async fn cordon(
    State(state): State<AppState>,
    Path((cluster, node)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    set_cordoned(&state, &cluster, &node, true).await
}

/// Marks a node schedulable again.
#[utoipa::path(post, path = "/clusters/{cluster}/nodes/{node}/uncordon", tag = "nodes",
    params(("cluster" = String, Path), ("node" = String, Path)),
    responses((status = 200, description = "Uncordoned", body = Envelope<NodeState>),
        (status = 404, description = "No such cluster or node", body = ErrorBody)))]
pub async fn uncordon(
    State(state): State<AppState>,
    Path((cluster, node)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    set_cordoned(&state, &cluster, &node, false).await
}

/// How to drain.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DrainBody {
    /// Seconds the whole drain may take (1–3600, default 120).
    pub timeout_secs: Option<u64>,
    /// Evict pods no controller owns.
    pub delete_unmanaged: bool,
    /// Evict pods with emptyDir data.
    pub delete_emptydir_data: bool,
}

/// What a drain did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrainView {
    /// Evicted pods (`namespace/name`).
    pub evicted: Vec<String>,
    /// Pods left alone, with why.
    pub skipped: Vec<SkippedPod>,
}

/// A pod a drain left alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedPod {
    /// `namespace/name`.
    pub pod: String,
    /// Why (a mirror pod, already terminating, managed by a DaemonSet).
    pub reason: String,
}

/// Cordons a node and evicts its pods, as `kubectl drain` does.
#[utoipa::path(post, path = "/clusters/{cluster}/nodes/{node}/drain", tag = "nodes",
    params(("cluster" = String, Path), ("node" = String, Path)), request_body = DrainBody,
    responses((status = 200, description = "Drained", body = Envelope<DrainView>),
        (status = 404, description = "No such cluster or node", body = ErrorBody)))]
pub async fn drain(
    State(state): State<AppState>,
    Path((cluster, node)): Path<(String, String)>,
    JsonOrEmpty(body): JsonOrEmpty<DrainBody>,
) -> Result<impl IntoResponse> {
    let timeout = body.timeout_secs.unwrap_or(120);
    if !(1..=3600).contains(&timeout) {
        return Err(Error::Invalid(
            "timeout_secs must be between 1 and 3600".into(),
        ));
    }
    let opts = kubepkg_k8s_api::node::DrainOptions {
        timeout: Duration::from_secs(timeout),
        delete_unmanaged: body.delete_unmanaged,
        delete_emptydir_data: body.delete_emptydir_data,
        ..Default::default()
    };
    let client = super::client(&state, &cluster).await?;
    let report = client
        .nodes()
        .drain(&node, &opts)
        .await
        .map_err(|e| Error::from(e.into_error()))?;
    Ok(super::ok(DrainView {
        evicted: report.evicted,
        skipped: report
            .skipped
            .into_iter()
            .map(|(pod, reason)| SkippedPod { pod, reason })
            .collect(),
    }))
}

/// Where an imported cluster's admin credential comes from. A kubeconfig
/// file on the server is not offered over HTTP.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImportSourceBody {
    /// A kubeconfig's text.
    Kubeconfig {
        /// The kubeconfig (YAML).
        text: String,
        /// Context (default: the current one).
        #[serde(default)]
        context: Option<String>,
    },
    /// A base64-encoded kubeconfig.
    KubeconfigBase64 {
        /// The kubeconfig, base64.
        data: String,
        /// Context.
        #[serde(default)]
        context: Option<String>,
    },
    /// A server URL, its CA and a bearer token.
    Token {
        /// `https://…`.
        server: String,
        /// CA bundle (PEM); absent: public roots.
        #[serde(default)]
        ca_pem: Option<String>,
        /// Bearer token.
        token: String,
    },
    /// A cluster a provider created: its kubeconfig comes from the vendor.
    Provider {
        /// Provider name in the config.
        provider: String,
        /// The vendor's cluster id.
        cluster_id: String,
    },
}

impl ImportSourceBody {
    fn into_source(self) -> ImportSource {
        match self {
            ImportSourceBody::Kubeconfig { text, context } => ImportSource::Kubeconfig {
                text: Secret::new(text),
                context,
            },
            ImportSourceBody::KubeconfigBase64 { data, context } => {
                ImportSource::KubeconfigBase64 {
                    data: Secret::new(data),
                    context,
                }
            }
            ImportSourceBody::Token {
                server,
                ca_pem,
                token,
            } => ImportSource::Token {
                server,
                ca_pem,
                token: Secret::new(token),
            },
            ImportSourceBody::Provider {
                provider,
                cluster_id,
            } => ImportSource::Provider {
                provider,
                cluster_id,
            },
        }
    }
}

/// The role the stored service account gets.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportRoleBody {
    /// `view`.
    View,
    /// `edit` (default).
    #[default]
    Edit,
    /// `cluster-admin`.
    ClusterAdmin,
    /// Store the given credential as it is.
    AsGiven,
}

impl From<ImportRoleBody> for ImportRole {
    fn from(r: ImportRoleBody) -> Self {
        match r {
            ImportRoleBody::View => ImportRole::View,
            ImportRoleBody::Edit => ImportRole::Edit,
            ImportRoleBody::ClusterAdmin => ImportRole::ClusterAdmin,
            ImportRoleBody::AsGiven => ImportRole::AsGiven,
        }
    }
}

/// A cluster to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The platform's name for it (a DNS-1123 label).
    pub name: String,
    /// Human-readable name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Labels for multi-cluster selection.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The stored account's role.
    #[serde(default)]
    pub role: ImportRoleBody,
    /// Where the admin credential comes from.
    pub source: ImportSourceBody,
}

/// Imports a cluster: a least-privilege service account is created in it
/// and only that account's token is stored.
#[utoipa::path(post, path = "/clusters", tag = "clusters", request_body = ImportBody,
    responses(
        (status = 200, description = "Imported", body = Envelope<ImportView>),
        (status = 401, description = "The given credential was refused", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Bad name, kubeconfig or source", body = ErrorBody),
        (status = 503, description = "The cluster does not answer", body = ErrorBody),
    ))]
pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<impl IntoResponse> {
    caller.check_cluster(&body.name)?;
    let mut req = ImportRequest::new(body.name, body.source.into_source()).role(body.role.into());
    for (k, v) in body.labels {
        req = req.label(k, v);
    }
    if let Some(d) = body.display_name {
        req = req.display_name(d);
    }
    let report = state.platform.import_cluster(req).await?;
    Ok(super::ok(ImportView::from(&report)))
}

/// Removes a cluster from the platform (its service account is left).
#[utoipa::path(delete, path = "/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster name")),
    responses(
        (status = 200, description = "Removed", body = Envelope<String>),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<impl IntoResponse> {
    state.platform.delete_cluster(&cluster).await?;
    Ok(super::ok(cluster))
}

/// A fresh credential for a cluster.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// An admin credential to create the new token with.
    pub source: ImportSourceBody,
    /// The role of the new token.
    #[serde(default)]
    pub role: ImportRoleBody,
}

/// Rotates a cluster's stored credential: the new token is checked and in
/// use before the old ones are deleted.
#[utoipa::path(post, path = "/clusters/{cluster}/rotate-credentials", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster name")), request_body = RotateBody,
    responses(
        (status = 200, description = "Rotated", body = Envelope<ImportView>),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    JsonBody(body): JsonBody<RotateBody>,
) -> Result<impl IntoResponse> {
    let report = state
        .platform
        .rotate_credentials(&cluster, body.source.into_source(), body.role.into())
        .await?;
    Ok(super::ok(ImportView::from(&report)))
}

/// `GET /search` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Kind (`Pod`, `Deployment`, …).
    pub kind: String,
    /// `apiVersion` (default `v1`).
    pub api_version: Option<String>,
    /// Namespace (default: all).
    pub namespace: Option<String>,
    /// Label selector on the objects.
    pub labels: Option<String>,
    /// Label selector on the clusters.
    pub clusters: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<u32>,
    /// The previous page's `continue`.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// Searches one kind across clusters, merged in `namespace/name` order.
/// A token limited to some clusters cannot search (it would learn of the
/// others).
#[utoipa::path(get, path = "/search", tag = "search", params(SearchParams),
    responses(
        (status = 200, description = "One page", body = Envelope<SearchView>),
        (status = 403, description = "A cluster-scoped token", body = ErrorBody),
        (status = 422, description = "Bad kind, selector or token", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(p): Query<SearchParams>,
) -> Result<impl IntoResponse> {
    if caller.is_scoped() {
        return Err(Error::Forbidden(
            "search spans every cluster; this token is limited to some".into(),
        ));
    }
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::Invalid("limit must be between 1 and 500".into()));
    }
    let mut q = SearchQuery::new(p.api_version.unwrap_or_else(|| "v1".into()), p.kind).limit(limit);
    if let Some(ns) = p.namespace {
        q = q.namespace(ns);
    }
    if let Some(l) = p.labels {
        q = q.labels(l);
    }
    if let Some(c) = p.clusters {
        q = q.cluster_selector(c);
    }
    if let Some(t) = p.continue_token {
        q = q.after(t);
    }
    let page = state.platform.search(&q).await?;
    Ok(super::ok(SearchView {
        items: page
            .items
            .into_iter()
            .map(|i| SearchItemView {
                cluster: i.cluster,
                object: serde_json::to_value(&i.object).unwrap_or_default(),
            })
            .collect(),
        errors: page
            .errors
            .into_iter()
            .map(|e| SearchErrorView {
                cluster: e.cluster,
                error: ErrorBody {
                    code: ResponseCode::for_kind(e.kind).code,
                    message: e.message,
                },
            })
            .collect(),
        continue_token: page.continue_token,
    }))
}
