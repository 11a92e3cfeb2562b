//! API tokens of the platform's REST service (kept only as a SHA-256 of the
//! secret) and the audit log of what was changed through it.
//!
//! The store does not interpret roles: a token's role is text the service
//! checks. It never sees a token's secret either, only its hash, so a
//! database dump grants nothing.

use super::rows::{self, MAX_TEXT, check_name, check_text, corrupt, opt_ts, ts};
use super::{Store, store_error};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// An API token as stored: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// Unique id (assigned by the store, a UUID v4); safe to show and log.
    pub id: String,
    /// A name for people (`"ci"`, `"alice"`).
    pub name: String,
    /// The role, as the service spells it (`viewer`, `operator`, `admin`).
    pub role: String,
    /// The clusters it may touch; `None`: every cluster.
    pub clusters: Option<Vec<String>>,
    /// Creation time.
    pub created_at: jiff::Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<jiff::Timestamp>,
    /// When it was last presented (updated at most once a minute).
    pub last_used_at: Option<jiff::Timestamp>,
}

impl ApiTokenRecord {
    /// Whether the token may touch `cluster`.
    pub fn may_touch(&self, cluster: &str) -> bool {
        self.clusters
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == cluster))
    }

    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: jiff::Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// A name for people.
    pub name: &'a str,
    /// The role.
    pub role: &'a str,
    /// The clusters it may touch (`None`: all).
    pub clusters: Option<&'a [String]>,
    /// Hex SHA-256 of the secret (64 lowercase hex digits).
    pub secret_hash: &'a str,
    /// Expiry, if any.
    pub expires_at: Option<jiff::Timestamp>,
}

/// One audited mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The token that asked (`None`: refused before a token was known).
    pub token_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The route template (`/clusters/{cluster}`).
    pub route: String,
    /// What it acted on (`prod/default/web`).
    pub target: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// `ok`, or the error's message.
    pub result: String,
}

const TOKEN_COLUMNS: &str = "id, name, role, clusters, created_at, expires_at, last_used_at";

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    role: String,
    clusters: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiTokenRecord {
    type Error = Error;
    fn try_from(r: TokenRow) -> Result<ApiTokenRecord> {
        let clusters = r
            .clusters
            .map(|text| {
                serde_json::from_str::<Vec<String>>(&text)
                    .map_err(|e| corrupt(format!("api_tokens.clusters: {e}")))
            })
            .transpose()?;
        Ok(ApiTokenRecord {
            created_at: ts("api_tokens.created_at", r.created_at)?,
            expires_at: opt_ts("api_tokens.expires_at", r.expires_at)?,
            last_used_at: opt_ts("api_tokens.last_used_at", r.last_used_at)?,
            id: r.id,
            name: r.name,
            role: r.role,
            clusters,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: i64,
    token_id: Option<String>,
    method: String,
    route: String,
    target: String,
    status: i64,
    result: String,
}

const AUDIT_COLUMNS: &str = "at, token_id, method, route, target, status, result";

fn token_not_found(id: &str) -> Error {
    Error::NotFound(format!("API token {id:?}"))
}

/// Longest audited result message, in bytes.
const MAX_RESULT: usize = 2048;

impl Store {
    /// Stores a new API token and returns its record.
    ///
    /// [`Error::Invalid`] for an empty or multi-line name or role, a cluster
    /// that is not a DNS-1123 label, or a hash that is not 64 hex digits.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "create_api_token", target = %t.name))]
    pub async fn create_api_token(&self, t: &NewApiToken<'_>) -> Result<ApiTokenRecord> {
        check_text("token name", t.name, MAX_TEXT, true)?;
        check_text("token role", t.role, MAX_TEXT, true)?;
        if t.secret_hash.len() != 64 || !t.secret_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(
                "token secret hash must be 64 hex digits (a SHA-256)".into(),
            ));
        }
        let clusters = match t.clusters {
            Some(list) => {
                for c in list {
                    check_name("token cluster", c)?;
                }
                Some(rows::to_json("token clusters", &list)?)
            }
            None => None,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let sql = format!(
            "INSERT INTO api_tokens (id, name, role, clusters, secret_hash, created_at, expires_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING {TOKEN_COLUMNS}"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, TokenRow>(&sql)
            .bind(id.as_str())
            .bind(t.name)
            .bind(t.role)
            .bind(clusters.as_deref())
            .bind(t.secret_hash.to_ascii_lowercase())
            .bind(rows::now_ms())
            .bind(t.expires_at.map(|e| e.as_millisecond()))
            .fetch_one(pool)
            .await)
        .map_err(|e| store_error("storing an API token", e))?;
        row.try_into()
    }

    /// The token whose secret hashes to `secret_hash`; [`Error::NotFound`]
    /// when none does. Marks it used (at most one write a minute).
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "api_token_by_hash", target = ""))]
    pub async fn api_token_by_hash(&self, secret_hash: &str) -> Result<ApiTokenRecord> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = $1");
        let row = with_pool!(self, pool => sqlx::query_as::<_, TokenRow>(&sql)
            .bind(secret_hash.to_ascii_lowercase())
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading an API token", e))?;
        let record: ApiTokenRecord = row
            .ok_or_else(|| Error::NotFound("API token".into()))?
            .try_into()?;
        let now = rows::now_ms();
        let stale = record
            .last_used_at
            .is_none_or(|t| now - t.as_millisecond() > 60_000);
        if stale {
            with_pool!(self, pool => sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(record.id.as_str())
                .execute(pool)
                .await
                .map(|_| ()))
            .map_err(|e| store_error("marking an API token used", e))?;
        }
        Ok(record)
    }

    /// The token `id`; [`Error::NotFound`] when there is none.
    pub async fn get_api_token(&self, id: &str) -> Result<ApiTokenRecord> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let row = with_pool!(self, pool => sqlx::query_as::<_, TokenRow>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading an API token", e))?;
        row.ok_or_else(|| token_not_found(id))?.try_into()
    }

    /// Every token, oldest first.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id");
        let rows = with_pool!(self, pool => sqlx::query_as::<_, TokenRow>(&sql)
            .fetch_all(pool)
            .await)
        .map_err(|e| store_error("listing API tokens", e))?;
        rows::convert(rows)
    }

    /// How many tokens exist.
    pub async fn count_api_tokens(&self) -> Result<u64> {
        let n = with_pool!(self, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(pool)
            .await)
        .map_err(|e| store_error("counting API tokens", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes the token `id`; [`Error::NotFound`] when there is none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "delete_api_token", target = %id))]
    pub async fn delete_api_token(&self, id: &str) -> Result<()> {
        let done = with_pool!(self, pool => sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("deleting an API token", e))?;
        if done == 0 {
            return Err(token_not_found(id));
        }
        Ok(())
    }

    /// Appends one entry to the audit log (a result longer than 2 KiB is
    /// cut).
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        let result = rows::clip_to(&e.result, MAX_RESULT);
        let sql =
            format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        with_pool!(self, pool => sqlx::query(&sql)
            .bind(e.at.as_millisecond())
            .bind(e.token_id.as_deref())
            .bind(e.method.as_str())
            .bind(e.route.as_str())
            .bind(e.target.as_str())
            .bind(i64::from(e.status))
            .bind(result.as_str())
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|err| store_error("writing the audit log", err))?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT $1");
        let rows = with_pool!(self, pool => sqlx::query_as::<_, AuditRow>(&sql)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)
        .map_err(|e| store_error("reading the audit log", e))?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: ts("audit_log.at", r.at)?,
                    token_id: r.token_id,
                    method: r.method,
                    route: r.route,
                    target: r.target,
                    status: u16::try_from(r.status)
                        .map_err(|_| corrupt(format!("audit_log.status: {}", r.status)))?,
                    result: r.result,
                })
            })
            .collect()
    }
}
