//! `/healthz`, `/readyz` and `/openapi.json`.

use crate::error::Result;
use crate::state::AppState;
use crate::views::Envelope;
use axum::extract::State;
use axum::response::IntoResponse;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "The server is alive", body = Envelope<String>)))]
pub async fn healthz() -> impl IntoResponse {
    super::ok("alive")
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "system", security(()),
    responses(
        (status = 200, description = "The store answers", body = Envelope<String>),
        (status = 503, description = "The store does not answer", body = crate::views::ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse> {
    state.platform.store().count_api_tokens().await?;
    Ok(super::ok("ready"))
}

/// The OpenAPI document of every route.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document())
}
