//! API tokens (admin) and the audit log.

use crate::auth::{self, Role};
use crate::error::{Error, Result};
use crate::extract::{JsonBody, Query};
use crate::state::AppState;
use crate::views::{Envelope, NewTokenView, TokenView};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use kubepkg_platform::store::AuditEntry;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name for people (1–253 characters, one line).
    pub name: String,
    /// The role.
    pub role: Role,
    /// The clusters it may touch; absent: all.
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    /// Lifetime in seconds; absent: no expiry.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Every token (never a secret).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, description = "The tokens", body = Envelope<Vec<TokenView>>)))]
pub async fn list(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let tokens = state.platform.store().list_api_tokens().await?;
    Ok(super::ok(
        tokens.iter().map(TokenView::from).collect::<Vec<_>>(),
    ))
}

/// Creates a token; its secret is in this answer and nowhere else.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses(
        (status = 200, description = "The new token and its secret", body = Envelope<NewTokenView>),
        (status = 422, description = "Invalid name, role or cluster", body = crate::views::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<impl IntoResponse> {
    let expires_at = match body.ttl_secs {
        None => None,
        Some(secs) => {
            let secs = i64::try_from(secs)
                .ok()
                .filter(|s| *s > 0 && *s <= 10 * 365 * 24 * 3600)
                .ok_or_else(|| Error::Invalid("ttl_secs must be between 1 and ten years".into()))?;
            Some(
                jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_secs(secs))
                    .map_err(|e| Error::Invalid(format!("ttl_secs: {e}")))?,
            )
        }
    };
    let (record, secret) = auth::create(
        &state,
        &body.name,
        body.role,
        body.clusters.as_deref(),
        expires_at,
        None,
    )
    .await?;
    Ok(super::ok(NewTokenView {
        token: TokenView::from(&record),
        secret: secret.expose().clone(),
    }))
}

/// Deletes a token; it stops working within two seconds on every instance.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 200, description = "Deleted", body = Envelope<String>),
        (status = 404, description = "No such token", body = crate::views::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    state.platform.store().delete_api_token(&id).await?;
    state.tokens.clear();
    Ok(super::ok(id))
}

/// `?limit=` of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Newest entries to return (1–1000, default 100).
    pub limit: Option<u32>,
}

/// One audited mutation.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AuditView {
    /// When (RFC 3339).
    pub at: String,
    /// The token's id.
    pub token_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// Path acted on.
    pub target: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// `ok` or the error.
    pub result: String,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            at: e.at.to_string(),
            token_id: e.token_id,
            method: e.method,
            route: e.route,
            target: e.target,
            status: e.status,
            result: e.result,
        }
    }
}

/// The newest audited mutations.
#[utoipa::path(get, path = "/audit", tag = "tokens", params(AuditQuery),
    responses((status = 200, description = "Newest first", body = Envelope<Vec<AuditView>>)))]
pub async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<impl IntoResponse> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::Invalid("limit must be between 1 and 1000".into()));
    }
    let entries = state.platform.store().audit_log(limit).await?;
    Ok(super::ok(
        entries.into_iter().map(AuditView::from).collect::<Vec<_>>(),
    ))
}
