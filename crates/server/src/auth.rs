//! API tokens and roles.
//!
//! A token is `kpk_` followed by 43 characters of base64url randomness (256
//! bits). It is shown once, when created; the store keeps only its SHA-256.
//! Each token has a [`Role`] and optionally a list of clusters it may touch.
//!
//! Routes are grouped by the least role they need; a route layer checks the
//! role and, for routes under `/clusters/{cluster}`, the cluster, so the
//! rule is the same on every route (401 without or with a bad token, 403
//! for a missing role or cluster).

use crate::error::{Error, Problem, Result};
use crate::state::AppState;
use axum::extract::{RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use kubepkg_platform::store::{ApiTokenRecord, NewApiToken};
use kubepkg_util::secret::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// What a token may do. Each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, plus scale, restart, rollback, suspend / resume, apply, delete
    /// workloads and pods, logs, node cordon / drain, object and queue
    /// writes.
    Operator,
    /// Everything: clusters, credentials, tokens, registries.
    Admin,
}

impl Role {
    /// The role's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The token a request came with, once checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's record.
    pub token: ApiTokenRecord,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// Forbidden unless the token may touch `cluster`.
    pub fn check_cluster(&self, cluster: &str) -> Result<()> {
        if self.token.may_touch(cluster) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "token {:?} may not touch cluster {cluster:?}",
                self.token.name
            )))
        }
    }

    /// Whether the token is limited to some clusters.
    pub fn is_scoped(&self) -> bool {
        self.token.clusters.is_some()
    }
}

/// The prefix of every token.
pub const TOKEN_PREFIX: &str = "kpk_";

/// A new random token.
pub fn mint() -> Secret<String> {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Secret::new(format!("{TOKEN_PREFIX}{text}"))
}

/// The hex SHA-256 the store keeps of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token in the store; returns its record and the secret, which
/// is never shown again.
pub async fn create(
    state: &AppState,
    name: &str,
    role: Role,
    clusters: Option<&[String]>,
    expires_at: Option<jiff::Timestamp>,
    secret: Option<Secret<String>>,
) -> Result<(ApiTokenRecord, Secret<String>)> {
    let secret = match secret {
        Some(s) => {
            check_shape(s.expose())?;
            s
        }
        None => mint(),
    };
    let digest = hash(secret.expose());
    let record = state
        .platform
        .store()
        .create_api_token(&NewApiToken {
            name,
            role: role.as_str(),
            clusters,
            secret_hash: &digest,
            expires_at,
        })
        .await?;
    Ok((record, secret))
}

/// A token given in configuration must be as strong as a minted one.
fn check_shape(token: &str) -> Result<()> {
    if token.len() < 32 || token.len() > 512 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(
            "a configured token must be 32 to 512 printable ASCII characters".into(),
        ));
    }
    Ok(())
}

/// Checked tokens, kept for a short while so a busy client does not cost a
/// store read per request. A deleted token stops working within the TTL.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (ApiTokenRecord, Instant)>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCache")
    }
}

const CACHE_TTL: Duration = Duration::from_secs(2);
const CACHE_MAX: usize = 4096;

impl TokenCache {
    fn get(&self, digest: &str) -> Option<ApiTokenRecord> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(digest)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(r, _)| r.clone())
    }

    fn put(&self, digest: String, record: ApiTokenRecord) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(digest, (record, Instant::now()));
    }

    /// Forgets every cached token (after a token was deleted here).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::request(Problem::Unauthenticated, message)
}

/// Resolves the bearer token of a request.
async fn authenticate(state: &AppState, headers: &http::HeaderMap) -> Result<Caller> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("this route needs `Authorization: Bearer <token>`"))?;
    let text = header
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not ASCII"))?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
    let digest = hash(token);
    let record = match state.tokens.get(&digest) {
        Some(r) => r,
        None => {
            let r = match state.platform.store().api_token_by_hash(&digest).await {
                Ok(r) => r,
                Err(e) if e.kind() == kubepkg_util::ErrorKind::NotFound => {
                    return Err(unauthenticated("unknown or revoked token"));
                }
                Err(e) => return Err(e.into()),
            };
            state.tokens.put(digest, r.clone());
            r
        }
    };
    if record.is_expired(jiff::Timestamp::now()) {
        return Err(unauthenticated("the token has expired"));
    }
    let role = Role::parse(&record.role)
        .ok_or_else(|| unauthenticated("the token's role is not one this server knows"))?;
    Ok(Caller {
        token: record,
        role,
    })
}

/// Middleware: every request but the public ones must carry a valid token;
/// the [`Caller`] goes into the request's extensions.
pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match authenticate(&state, req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

fn check_role(role: Role, params: &RawPathParams, req: &Request) -> Result<()> {
    let caller = req
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| unauthenticated("this route needs a token"))?;
    if caller.role < role {
        return Err(Error::Forbidden(format!(
            "this route needs the {role} role; token {:?} is {}",
            caller.token.name, caller.role
        )));
    }
    for (key, value) in params {
        if key == "cluster" {
            kubepkg_util::names::validate_dns1123_label(value)
                .map_err(|e| Error::Invalid(format!("cluster name: {e}")))?;
            caller.check_cluster(value)?;
        }
    }
    Ok(())
}

/// Route layer: the caller needs at least `role`, and, on routes with a
/// `{cluster}` segment, that cluster.
pub async fn require_role(role: Role, params: RawPathParams, req: Request, next: Next) -> Response {
    let verdict = check_role(role, &params, &req);
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}
