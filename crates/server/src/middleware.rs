//! Middleware around every request: a request id (`X-Request-Id`, taken
//! from the client when it sent a sane one) and a span carrying it, so
//! every log line of the request names it; the per-request time limit; and
//! the audit log of mutations.

use crate::auth::Caller;
use crate::error::{Error, ErrorMessage};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method};
use kubepkg_platform::store::AuditEntry;
use tracing::Instrument;

/// The header that carries the request id.
pub const REQUEST_ID: &str = "x-request-id";

fn client_request_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| v.to_owned())
}

/// Request id, span and one log line per request.
pub async fn request_span(req: Request, next: Next) -> Response {
    let id = client_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route,
    );
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

/// Answers 504 when a handler takes longer than the configured limit to
/// produce its response head (a stream already started is not cut).
pub async fn time_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.settings.request_timeout();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Error::Timeout(limit.as_secs()).into_response(),
    }
}

fn is_mutation(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Records every mutation in the store's audit log: token, route, target,
/// status and result.
pub async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !is_mutation(req.method()) {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let target = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| target.clone());
    let token_id = req.extensions().get::<Caller>().map(|c| c.token.id.clone());
    let response = next.run(req).await;
    let result = response
        .extensions()
        .get::<ErrorMessage>()
        .map(|m| m.0.clone())
        .unwrap_or_else(|| "ok".into());
    let entry = AuditEntry {
        at: jiff::Timestamp::now(),
        token_id,
        method,
        route,
        target,
        status: response.status().as_u16(),
        result,
    };
    if let Err(e) = state.platform.store().record_audit(&entry).await {
        tracing::warn!(error = %e, "the audit log could not be written");
    }
    response
}
