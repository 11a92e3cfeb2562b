//! `GET /clusters/{cluster}/watch`: changes of one kind as Server-Sent
//! Events (`added`, `modified`, `deleted`, each with the object as JSON;
//! `error` with an envelope, then the stream ends). The watch resumes
//! across API-server disconnects by itself; a comment every 15 s keeps
//! proxies from closing an idle stream.

use crate::error::Result;
use crate::extract::Query;
use crate::state::AppState;
use crate::views::ErrorBody;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::StreamExt;
use kubepkg_k8s_api::{Event, WatchOptions};
use kubepkg_platform::api::{ApiResponse, ResponseCode};
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

/// `?kind=&api_version=&namespace=&labels=&changes_only=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// Kind (`Pod`, `Deployment`, any served kind).
    pub kind: String,
    /// `apiVersion` (default `v1`).
    pub api_version: Option<String>,
    /// Namespace (default: all).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: Option<String>,
    /// Skip the `added` events of what exists when the watch starts.
    #[serde(default)]
    pub changes_only: bool,
}

/// Watches one kind as Server-Sent Events.
#[utoipa::path(get, path = "/clusters/{cluster}/watch", tag = "watch",
    params(("cluster" = String, Path), WatchParams),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 404, description = "Unknown cluster or kind", body = ErrorBody)))]
pub async fn watch(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    Query(p): Query<WatchParams>,
) -> Result<impl IntoResponse> {
    let client = super::client(&state, &cluster).await?;
    let api_version = p.api_version.unwrap_or_else(|| "v1".into());
    let res = client
        .dynamic(&api_version, &p.kind, p.namespace.as_deref())
        .await?;
    let mut opts = match p.labels {
        Some(l) => WatchOptions::labels(l),
        None => WatchOptions::default(),
    };
    if p.changes_only {
        opts = opts.changes_only();
    }
    let stream = res.watch(opts).scan(false, |failed, item| {
        if *failed {
            return futures::future::ready(None);
        }
        let event = match item {
            Ok(ev) => {
                let name = match &ev {
                    Event::Added(_) => "added",
                    Event::Modified(_) => "modified",
                    Event::Deleted(_) => "deleted",
                };
                SseEvent::default()
                    .event(name)
                    .json_data(ev.object())
                    .unwrap_or_else(|_| SseEvent::default().event(name))
            }
            Err(e) => {
                *failed = true;
                let body = ApiResponse::<()> {
                    code: ResponseCode::for_kind(e.kind()).code,
                    message: e.to_string(),
                    data: None,
                };
                SseEvent::default()
                    .event("error")
                    .json_data(body)
                    .unwrap_or_else(|_| SseEvent::default().event("error"))
            }
        };
        futures::future::ready(Some(Ok::<_, std::convert::Infallible>(event)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
