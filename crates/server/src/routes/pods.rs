//! Pods: list, get, delete, logs (`follow=true` streams), events newest
//! first; and a namespace's events.

use crate::error::{Error, Result};
use crate::extract::{Query, page_request};
use crate::state::AppState;
use crate::views::{Envelope, ErrorBody, EventView, PageOf};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kubepkg_k8s_api::events::{EventApi, sort_newest_first};
use kubepkg_k8s_api::pod::LogOptions;
use kubepkg_k8s_api::{DeleteOptions, ListOptions};
use kubepkg_util::paging::paginate;
use serde::Deserialize;
use utoipa::IntoParams;

/// `?page=&page_size=&labels=&fields=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PodListParams {
    /// 1-based page.
    pub page: Option<u64>,
    /// Page size.
    pub page_size: Option<u64>,
    /// Label selector.
    pub labels: Option<String>,
    /// Field selector (`status.phase=Running`).
    pub fields: Option<String>,
}

/// The pods of a namespace, paged.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/pods", tag = "pods",
    params(("cluster" = String, Path), ("namespace" = String, Path), PodListParams),
    responses((status = 200, description = "One page", body = Envelope<PageOf<Object>>),
        (status = 404, description = "Unknown cluster", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path((cluster, ns)): Path<(String, String)>,
    Query(q): Query<PodListParams>,
) -> Result<impl IntoResponse> {
    let req = page_request(q.page, q.page_size, state.settings.max_page_size)?;
    let client = super::client(&state, &cluster).await?;
    let opts = ListOptions {
        label_selector: q.labels,
        field_selector: q.fields,
        ..Default::default()
    };
    // Passed on as the API server's JSON: nothing here reads a pod's
    // fields, so none is decoded and re-encoded.
    let pods = client.pods(&ns).list_json(&opts).await?;
    Ok(super::ok(PageOf::from(paginate(pods, &req))))
}

/// One pod.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/pods/{name}", tag = "pods",
    params(("cluster" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The pod", body = Envelope<Object>),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path((cluster, ns, name)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    Ok(super::ok(client.pods(&ns).get(&name).await?))
}

/// Deletes a pod.
#[utoipa::path(delete, path = "/clusters/{cluster}/namespaces/{namespace}/pods/{name}", tag = "pods",
    params(("cluster" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Deleted (true) or already gone (false)", body = Envelope<bool>),
        (status = 404, description = "Unknown cluster", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path((cluster, ns, name)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    Ok(super::ok(
        client
            .pods(&ns)
            .delete(&name, &DeleteOptions::default())
            .await?,
    ))
}

/// The events of a pod, newest first.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/pods/{name}/events", tag = "pods",
    params(("cluster" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Newest first", body = Envelope<Vec<EventView>>),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Path((cluster, ns, name)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let mut events = client.pods(&ns).events(&name).await?;
    sort_newest_first(&mut events);
    Ok(super::ok(
        events.iter().map(EventView::from).collect::<Vec<_>>(),
    ))
}

/// The events of a namespace, newest first.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/events", tag = "pods",
    params(("cluster" = String, Path), ("namespace" = String, Path)),
    responses((status = 200, description = "Newest first", body = Envelope<Vec<EventView>>),
        (status = 404, description = "Unknown cluster", body = ErrorBody)))]
pub async fn namespace_events(
    State(state): State<AppState>,
    Path((cluster, ns)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let mut events = client.namespace_events(&ns, EventApi::CoreV1).await?;
    sort_newest_first(&mut events);
    Ok(super::ok(
        events.iter().map(EventView::from).collect::<Vec<_>>(),
    ))
}

/// `?container=&tail_lines=&since_seconds=&timestamps=&previous=&follow=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Container (default: the only one).
    pub container: Option<String>,
    /// Last lines only (0 or more).
    pub tail_lines: Option<i64>,
    /// Lines of the last seconds only (1 or more).
    pub since_seconds: Option<i64>,
    /// Prefix each line with its timestamp.
    #[serde(default)]
    pub timestamps: bool,
    /// The previous container's log.
    #[serde(default)]
    pub previous: bool,
    /// Keep the answer open and stream new lines (chunked).
    #[serde(default)]
    pub follow: bool,
}

/// A pod's log as `text/plain`, one line per line; with `follow=true` a
/// chunked stream that ends when the container stops.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/pods/{name}/logs", tag = "pods",
    params(("cluster" = String, Path), ("namespace" = String, Path), ("name" = String, Path), LogParams),
    responses((status = 200, description = "The log", content_type = "text/plain", body = String),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 422, description = "Bad tail_lines or since_seconds", body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path((cluster, ns, name)): Path<(String, String, String)>,
    Query(q): Query<LogParams>,
) -> Result<Response> {
    if q.tail_lines.is_some_and(|n| n < 0) {
        return Err(Error::Invalid("tail_lines must be 0 or more".into()));
    }
    if q.since_seconds.is_some_and(|n| n < 1) {
        return Err(Error::Invalid("since_seconds must be 1 or more".into()));
    }
    let client = super::client(&state, &cluster).await?;
    let opts = LogOptions {
        container: q.container,
        tail_lines: q.tail_lines,
        since_seconds: q.since_seconds,
        timestamps: q.timestamps,
        previous: q.previous,
        ..Default::default()
    };
    let pods = client.pods(&ns);
    let lines = if q.follow {
        pods.log_stream(&name, &opts).await?
    } else {
        pods.log_lines(&name, &opts).await?
    };
    let body = lines.map(|r| match r {
        Ok(mut line) => {
            line.push('\n');
            Ok::<_, std::io::Error>(bytes::Bytes::from(line))
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    });
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response())
}
