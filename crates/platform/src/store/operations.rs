//! Long-running vendor operations: what was asked of which provider, and
//! where it stands.

use super::rows::{
    self, MAX_TEXT, OPERATION_COLUMNS, OperationRow, check_opt_text, check_text, clip_error,
    state_str,
};
use super::{Store, records::*, store_error};
use crate::error::{Error, Result};

fn operation_not_found(id: &str) -> Error {
    Error::NotFound(format!("operation {id:?}"))
}

impl Store {
    /// Records a new operation in state Pending with a fresh random id (a
    /// UUID v4). `kind`, `provider` and `target` must be non-empty one-line
    /// text ([`Error::Invalid`] otherwise).
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "create_operation", target = %target))]
    pub async fn create_operation(
        &self,
        kind: &str,
        provider: &str,
        target: &str,
        vendor_request_id: Option<&str>,
    ) -> Result<OperationRecord> {
        check_text("operation kind", kind, MAX_TEXT, true)?;
        check_text("provider", provider, MAX_TEXT, true)?;
        check_text("operation target", target, MAX_TEXT, true)?;
        check_opt_text("vendor request id", vendor_request_id, MAX_TEXT)?;
        let id = uuid::Uuid::new_v4().to_string();
        let sql = format!(
            "INSERT INTO operations ({OPERATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $7, 1) RETURNING {OPERATION_COLUMNS}"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, OperationRow>(&sql)
            .bind(id.as_str())
            .bind(kind)
            .bind(provider)
            .bind(target)
            .bind(state_str(OperationState::Pending))
            .bind(vendor_request_id)
            .bind(rows::now_ms())
            .fetch_one(pool)
            .await)
        .map_err(|e| store_error("recording an operation", e))?;
        row.try_into()
    }

    /// The operation `id`; [`Error::NotFound`] when there is none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "get_operation", target = %id))]
    pub async fn get_operation(&self, id: &str) -> Result<OperationRecord> {
        let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1");
        let row = with_pool!(self, pool => sqlx::query_as::<_, OperationRow>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading an operation", e))?;
        row.ok_or_else(|| operation_not_found(id))?.try_into()
    }

    /// Writes the state, last error and vendor request id of `op` if the
    /// stored version is still `op.version`; returns the record with the
    /// next version. An error message longer than 8 KiB is cut.
    ///
    /// [`Error::Conflict`] when someone else updated it since `op` was read,
    /// [`Error::NotFound`] when it is gone.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "update_operation", target = %op.id))]
    pub async fn update_operation(&self, op: &OperationRecord) -> Result<OperationRecord> {
        check_opt_text(
            "vendor request id",
            op.vendor_request_id.as_deref(),
            MAX_TEXT,
        )?;
        let last_error = op.last_error.as_deref().map(clip_error);
        let sql = format!(
            "UPDATE operations SET state = $1, last_error = $2, vendor_request_id = $3, \
               updated_at = $4, version = version + 1 \
             WHERE id = $5 AND version = $6 RETURNING {OPERATION_COLUMNS}"
        );
        let now = rows::now_ms();
        let row = with_pool!(self, pool => {
            let row = sqlx::query_as::<_, OperationRow>(&sql)
                .bind(state_str(op.state))
                .bind(last_error.as_deref())
                .bind(op.vendor_request_id.as_deref())
                .bind(now)
                .bind(op.id.as_str())
                .bind(op.version)
                .fetch_optional(pool)
                .await
                .map_err(|e| store_error("updating an operation", e))?;
            match row {
                Some(row) => row,
                None => {
                    let current = sqlx::query_scalar::<_, i64>(
                        "SELECT version FROM operations WHERE id = $1",
                    )
                    .bind(op.id.as_str())
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| store_error("reading an operation's version", e))?;
                    return Err(match current {
                        None => operation_not_found(&op.id),
                        Some(now) => Error::Conflict(format!(
                            "operation {:?} changed since it was read (version {}, now {now}); read it again",
                            op.id, op.version
                        )),
                    });
                }
            }
        });
        row.try_into()
    }

    /// The operations, newest first; with `active_only`, only those still
    /// Pending or Running.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "list_operations", target = ""))]
    pub async fn list_operations(&self, active_only: bool) -> Result<Vec<OperationRecord>> {
        let filter = if active_only {
            "WHERE state IN ('pending', 'running') "
        } else {
            ""
        };
        let sql = format!(
            "SELECT {OPERATION_COLUMNS} FROM operations {filter}ORDER BY created_at DESC, seq DESC"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, OperationRow>(&sql)
            .fetch_all(pool)
            .await)
        .map_err(|e| store_error("listing operations", e))?;
        rows::convert(rows)
    }
}
