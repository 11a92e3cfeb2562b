//! Workloads: Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
//! CronJobs — list, get, delete, scale, restart, rollout status, rollback,
//! suspend / resume.
//!
//! `{kind}` is the plural lower-case resource name (`deployments`, …); an
//! operation a kind does not have (scaling a DaemonSet, suspending a
//! Deployment) is a 422 that says which kinds have it.

use super::ListParams;
use crate::error::{Error, Result};
use crate::extract::{JsonBody, JsonOrEmpty, Query, page_request};
use crate::state::AppState;
use crate::views::{Envelope, ErrorBody, PageOf, RolloutView};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use kubepkg_k8s_api::DeleteOptions;
use kubepkg_util::paging::paginate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The workload kinds, as they appear in paths.
pub const KINDS: [&str; 6] = [
    "deployments",
    "statefulsets",
    "daemonsets",
    "replicasets",
    "jobs",
    "cronjobs",
];

fn unknown_kind(kind: &str) -> Error {
    Error::NotFound(format!(
        "workload kind {kind:?}; one of: {}",
        KINDS.join(", ")
    ))
}

fn lacks(op: &str, kind: &str, has: &[&str]) -> Error {
    Error::Invalid(format!("{kind} cannot {op}; only {} can", has.join(", ")))
}

/// Runs `$body` with `$res` bound to the typed handle of `$kind`.
macro_rules! for_kind {
    ($client:expr, $ns:expr, $kind:expr, $res:ident => $body:expr) => {
        match $kind {
            "deployments" => {
                let $res = $client.deployments($ns);
                $body
            }
            "statefulsets" => {
                let $res = $client.stateful_sets($ns);
                $body
            }
            "daemonsets" => {
                let $res = $client.daemon_sets($ns);
                $body
            }
            "replicasets" => {
                let $res = $client.replica_sets($ns);
                $body
            }
            "jobs" => {
                let $res = $client.jobs($ns);
                $body
            }
            "cronjobs" => {
                let $res = $client.cron_jobs($ns);
                $body
            }
            other => return Err(unknown_kind(other)),
        }
    };
}

/// The workloads of one kind in a namespace, paged.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path, description = "deployments, statefulsets, daemonsets, replicasets, jobs or cronjobs"),
        ListParams),
    responses((status = 200, description = "One page", body = Envelope<PageOf<Object>>),
        (status = 404, description = "Unknown cluster or kind", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path((cluster, ns, kind)): Path<(String, String, String)>,
    Query(q): Query<ListParams>,
) -> Result<impl IntoResponse> {
    let req = page_request(q.page, q.page_size, state.settings.max_page_size)?;
    let client = super::client(&state, &cluster).await?;
    let items =
        for_kind!(client, &ns, kind.as_str(), res => super::json(&res.list(&q.options()).await?));
    Ok(super::ok(PageOf::from(paginate(items, &req))))
}

/// One workload.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The object", body = Envelope<Object>),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path((cluster, ns, kind, name)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let value = for_kind!(client, &ns, kind.as_str(), res => {
        serde_json::to_value(res.get(&name).await?).unwrap_or_default()
    });
    Ok(super::ok(value))
}

/// Deletes a workload (background propagation, as `kubectl delete`).
#[utoipa::path(delete, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Deleted (true) or already gone (false)", body = Envelope<bool>),
        (status = 404, description = "Unknown cluster or kind", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path((cluster, ns, kind, name)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let gone = for_kind!(client, &ns, kind.as_str(), res => {
        res.delete(&name, &DeleteOptions::background()).await?
    });
    Ok(super::ok(gone))
}

/// The desired replica count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleBody {
    /// Replicas (0–10000).
    pub replicas: i32,
}

/// Sets the replica count of a Deployment, StatefulSet or ReplicaSet.
#[utoipa::path(post, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}/scale",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)), request_body = ScaleBody,
    responses((status = 200, description = "Scaled", body = Envelope<i32>),
        (status = 422, description = "Bad count, or a kind that does not scale", body = ErrorBody)))]
pub async fn scale(
    State(state): State<AppState>,
    Path((cluster, ns, kind, name)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<ScaleBody>,
) -> Result<impl IntoResponse> {
    if !(0..=10_000).contains(&body.replicas) {
        return Err(Error::Invalid(
            "replicas must be between 0 and 10000".into(),
        ));
    }
    let client = super::client(&state, &cluster).await?;
    let has = ["deployments", "statefulsets", "replicasets"];
    match kind.as_str() {
        "deployments" => client.deployments(&ns).scale(&name, body.replicas).await?,
        "statefulsets" => {
            client
                .stateful_sets(&ns)
                .scale(&name, body.replicas)
                .await?
        }
        "replicasets" => client.replica_sets(&ns).scale(&name, body.replicas).await?,
        k if KINDS.contains(&k) => return Err(lacks("scale", k, &has)),
        other => return Err(unknown_kind(other)),
    }
    Ok(super::ok(body.replicas))
}

/// Restarts the pods of a Deployment, StatefulSet or DaemonSet, as
/// `kubectl rollout restart` does.
#[utoipa::path(post, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}/restart",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Restarted", body = Envelope<String>),
        (status = 422, description = "A kind that does not restart", body = ErrorBody)))]
pub async fn restart(
    State(state): State<AppState>,
    Path((cluster, ns, kind, name)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let has = ["deployments", "statefulsets", "daemonsets"];
    match kind.as_str() {
        "deployments" => drop(client.deployments(&ns).restart(&name).await?),
        "statefulsets" => drop(client.stateful_sets(&ns).restart(&name).await?),
        "daemonsets" => drop(client.daemon_sets(&ns).restart(&name).await?),
        k if KINDS.contains(&k) => return Err(lacks("restart", k, &has)),
        other => return Err(unknown_kind(other)),
    }
    Ok(super::ok(name))
}

/// Where a rollout stands.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}/rollout",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Rollout status", body = Envelope<RolloutView>),
        (status = 422, description = "A kind without rollouts", body = ErrorBody)))]
pub async fn rollout(
    State(state): State<AppState>,
    Path((cluster, ns, kind, name)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let has = ["deployments", "statefulsets", "daemonsets"];
    let status = match kind.as_str() {
        "deployments" => client.deployments(&ns).rollout_status(&name).await?,
        "statefulsets" => client.stateful_sets(&ns).rollout_status(&name).await?,
        "daemonsets" => client.daemon_sets(&ns).rollout_status(&name).await?,
        k if KINDS.contains(&k) => return Err(lacks("roll out", k, &has)),
        other => return Err(unknown_kind(other)),
    };
    Ok(super::ok(RolloutView::from(status)))
}

/// Which revision to go back to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackBody {
    /// Revision (absent: the previous one).
    pub revision: Option<i64>,
}

/// The revision a rollback went to.
#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackView {
    /// The revision now live.
    pub revision: i64,
}

/// Rolls a Deployment back, as `kubectl rollout undo` does.
#[utoipa::path(post, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}/rollback",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)), request_body = RollbackBody,
    responses((status = 200, description = "Rolled back", body = Envelope<RollbackView>),
        (status = 422, description = "Not a Deployment, or no such revision", body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    Path((cluster, ns, kind, name)): Path<(String, String, String, String)>,
    JsonOrEmpty(body): JsonOrEmpty<RollbackBody>,
) -> Result<impl IntoResponse> {
    if kind != "deployments" {
        return Err(if KINDS.contains(&kind.as_str()) {
            lacks("roll back", &kind, &["deployments"])
        } else {
            unknown_kind(&kind)
        });
    }
    let client = super::client(&state, &cluster).await?;
    let revision = client
        .deployments(&ns)
        .rollback(&name, body.revision)
        .await?;
    Ok(super::ok(RollbackView { revision }))
}

async fn set_suspended(
    state: &AppState,
    (cluster, ns, kind, name): (String, String, String, String),
    suspend: bool,
) -> Result<axum::Json<kubepkg_platform::api::ApiResponse<bool>>> {
    if kind != "cronjobs" {
        let op = if suspend {
            "be suspended"
        } else {
            "be resumed"
        };
        return Err(if KINDS.contains(&kind.as_str()) {
            lacks(op, &kind, &["cronjobs"])
        } else {
            unknown_kind(&kind)
        });
    }
    let client = super::client(state, &cluster).await?;
    let jobs = client.cron_jobs(&ns);
    let cj = if suspend {
        jobs.suspend(&name).await?
    } else {
        jobs.resume(&name).await?
    };
    Ok(super::ok(cj.spec.and_then(|s| s.suspend).unwrap_or(false)))
}

/// Suspends a CronJob.
#[utoipa::path(post, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}/suspend",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Now suspended", body = Envelope<bool>),
        (status = 422, description = "Not a CronJob", body = ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    Path(p): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    set_suspended(&state, p, true).await
}

/// Resumes a CronJob.
#[utoipa::path(post, path = "/clusters/{cluster}/namespaces/{namespace}/workloads/{kind}/{name}/resume",
    tag = "workloads", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Now suspended (false)", body = Envelope<bool>),
        (status = 422, description = "Not a CronJob", body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Path(p): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    set_suspended(&state, p, false).await
}
