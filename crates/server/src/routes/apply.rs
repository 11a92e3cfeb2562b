//! `POST /clusters/{cluster}/apply`: a multi-document YAML or JSON bundle
//! applied with server-side apply (dry run, per-object results, prune by
//! bundle label), and `POST /clusters/{cluster}/apply/delete`, which
//! deletes what a bundle names.
//!
//! A bundle with a document that does not parse is refused whole (400,
//! naming the document and line) before anything is sent.

use crate::error::{Error, Problem, Result};
use crate::extract::{Query, body_bytes, media_type};
use crate::state::AppState;
use crate::views::{ApplyView, Envelope, ErrorBody, ObjectResultView};
use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use kubepkg_k8s_api::apply::ObjectResult;
use kubepkg_k8s_api::{ApplyOptions, ApplyReport, Outcome};
use kubepkg_platform::api::ResponseCode;
use serde::Deserialize;
use utoipa::IntoParams;

/// `?dry_run=&namespace=&bundle=&prune=&force=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
pub struct ApplyParams {
    /// Ask the API server what would change, change nothing.
    pub dry_run: bool,
    /// Namespace for documents that name none.
    pub namespace: Option<String>,
    /// Bundle name: every object gets the `kubepkg.io/bundle` label.
    pub bundle: Option<String>,
    /// Delete objects of the bundle that are no longer in it (needs `bundle`).
    pub prune: bool,
    /// Take over fields other managers own.
    pub force: bool,
}

const MEDIA: [&str; 5] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/json",
    "text/plain",
];

async fn read_bundle(state: &AppState, req: Request) -> Result<String> {
    match media_type(&req) {
        Some(m) if MEDIA.contains(&m.as_str()) => {}
        other => {
            return Err(Error::request(
                Problem::UnsupportedMediaType,
                format!(
                    "a bundle is YAML or JSON ({}); got {}",
                    MEDIA.join(", "),
                    other.unwrap_or_else(|| "no Content-Type".into())
                ),
            ));
        }
    }
    let bytes = body_bytes(req, state).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        Error::request(
            Problem::Malformed,
            format!(
                "the bundle is not UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::Invalid("the bundle is empty".into()));
    }
    for doc in kubepkg_k8s_api::bundle::parse(&text) {
        if let Err(e) = doc {
            return Err(Error::request(Problem::Malformed, e.to_string()));
        }
    }
    Ok(text)
}

fn options(p: ApplyParams) -> Result<ApplyOptions> {
    if p.prune && p.bundle.is_none() {
        return Err(Error::Invalid("prune needs a bundle name".into()));
    }
    Ok(ApplyOptions {
        dry_run: p.dry_run,
        namespace: p.namespace,
        bundle: p.bundle,
        prune: p.prune,
        force: p.force,
        ..Default::default()
    })
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Created => "created",
        Outcome::Configured => "configured",
        Outcome::Unchanged => "unchanged",
        Outcome::Deleted => "deleted",
        Outcome::Absent => "absent",
    }
}

fn result_view(r: &ObjectResult) -> ObjectResultView {
    let (out, error) = match &r.result {
        Ok(o) => (outcome(*o), None),
        Err(e) => (
            "failed",
            Some(ErrorBody {
                code: ResponseCode::for_kind(e.kind()).code,
                message: e.to_string(),
            }),
        ),
    };
    ObjectResultView {
        index: (r.index != usize::MAX).then_some(r.index),
        line: r.line,
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        outcome: out.into(),
        error,
        changes: r.changes.iter().map(|c| c.path.clone()).collect(),
    }
}

fn report_view(r: &ApplyReport, dry_run: bool) -> ApplyView {
    ApplyView {
        ok: r.is_ok(),
        dry_run,
        results: r.results.iter().map(result_view).collect(),
        pruned: r.pruned.iter().map(result_view).collect(),
        prune_skipped: r.prune_skipped.clone(),
    }
}

async fn run_bundle(
    state: &AppState,
    cluster: &str,
    p: ApplyParams,
    req: Request,
    delete: bool,
) -> Result<axum::Json<kubepkg_platform::api::ApiResponse<ApplyView>>> {
    let opts = options(p)?;
    let client = super::client(state, cluster).await?;
    let text = read_bundle(state, req).await?;
    let report = if delete {
        client.delete_bundle(&text, &opts).await
    } else {
        client.apply(&text, &opts).await
    };
    Ok(super::ok(report_view(&report, opts.dry_run)))
}

/// Applies a bundle. The answer is 200 with one result per object even
/// when some failed (`ok` says whether all succeeded).
#[utoipa::path(post, path = "/clusters/{cluster}/apply", tag = "apply",
    params(("cluster" = String, Path), ApplyParams),
    request_body(content = String, content_type = "application/yaml", description = "Multi-document YAML, a JSON object, array or List"),
    responses((status = 200, description = "Per-object results", body = Envelope<ApplyView>),
        (status = 400, description = "A document does not parse", body = ErrorBody),
        (status = 415, description = "Not YAML or JSON", body = ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    Query(p): Query<ApplyParams>,
    req: Request,
) -> Result<impl IntoResponse> {
    run_bundle(&state, &cluster, p, req, false).await
}

/// Deletes every object a bundle names (absent ones are `absent`).
#[utoipa::path(post, path = "/clusters/{cluster}/apply/delete", tag = "apply",
    params(("cluster" = String, Path), ApplyParams),
    request_body(content = String, content_type = "application/yaml", description = "The bundle whose objects to delete"),
    responses((status = 200, description = "Per-object results", body = Envelope<ApplyView>),
        (status = 400, description = "A document does not parse", body = ErrorBody),
        (status = 415, description = "Not YAML or JSON", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    Query(p): Query<ApplyParams>,
    req: Request,
) -> Result<impl IntoResponse> {
    run_bundle(&state, &cluster, p, req, true).await
}
