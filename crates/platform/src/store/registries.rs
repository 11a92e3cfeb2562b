//! Image registries, their login, and who may push or pull which namespace.

use kubepkg_util::secret::Secret;

use super::credentials::{CredentialWrite, upsert_credential};
use super::rows::{
    self, MAX_TEXT, MAX_URL, PERMISSION_COLUMNS, PermissionRow, REGISTRY_COLUMNS, RegistryRow,
    access_str, check_labels, check_name, check_text, to_json,
};
use super::{
    BeginWrite, Store, is_foreign_key_violation, is_unique_violation, records::*, store_error,
};
use crate::error::{Error, Result};

/// Longest namespace or subject, in bytes.
const MAX_SUBJECT: usize = 255;

fn registry_not_found(name: &str) -> Error {
    Error::NotFound(format!("registry {name:?}"))
}

fn check_grant_fields(registry: &str, namespace: &str, subject: &str) -> Result<()> {
    check_name("registry", registry)?;
    check_text("namespace", namespace, MAX_SUBJECT, true)?;
    check_text("subject", subject, MAX_SUBJECT, true)
}

/// Evaluates to whether the registry exists.
macro_rules! registry_exists {
    ($conn:expr, $name:expr) => {
        sqlx::query_scalar::<_, i64>("SELECT version FROM registries WHERE name = $1")
            .bind($name)
            .fetch_optional($conn)
            .await
            .map_err(|e| store_error("reading a registry", e))
    };
}

impl Store {
    /// Stores a new registry, and its login (owner
    /// `CredentialOwner::Registry(name)`, kind Login) when given, in one
    /// transaction.
    ///
    /// The name must be a DNS-1123 label, the provider and endpoint
    /// non-empty one-line text, labels as in Kubernetes: otherwise
    /// [`Error::Invalid`] and nothing is stored. [`Error::AlreadyExists`]
    /// when the name is taken. The record starts at version 1.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "create_registry", target = %r.name))]
    pub async fn create_registry(
        &self,
        r: &NewRegistry,
        login: Option<&Secret<String>>,
    ) -> Result<RegistryRecord> {
        check_name("registry", &r.name)?;
        check_text("provider", &r.provider, MAX_TEXT, true)?;
        check_text("endpoint", &r.endpoint, MAX_URL, true)?;
        check_labels("registry", &r.labels)?;
        let labels = to_json("labels", &r.labels)?;
        let now = rows::now_ms();
        let owner = CredentialOwner::Registry(r.name.clone());
        let _gate = self.key_gate().read().await;
        let write = login
            .map(|secret| {
                CredentialWrite::seal(&self.keyring(), &owner, CredentialKind::Login, secret, now)
            })
            .transpose()?;
        let sql = format!(
            "INSERT INTO registries ({REGISTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5, 1) \
             RETURNING {REGISTRY_COLUMNS}"
        );
        let row = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, RegistryRow>(&sql)
                .bind(r.name.as_str())
                .bind(r.provider.as_str())
                .bind(r.endpoint.as_str())
                .bind(labels.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::AlreadyExists(format!("registry {:?}", r.name))
                    } else {
                        store_error("creating a registry", e)
                    }
                })?;
            if let Some(write) = &write {
                upsert_credential!(&mut *tx, write)
                    .map_err(|e| store_error("storing the registry's login", e))?;
            }
            tx.commit()
                .await
                .map_err(|e| store_error("committing a new registry", e))?;
            row
        });
        row.try_into()
    }

    /// The registry `name`; [`Error::NotFound`] when there is none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "get_registry", target = %name))]
    pub async fn get_registry(&self, name: &str) -> Result<RegistryRecord> {
        let sql = format!("SELECT {REGISTRY_COLUMNS} FROM registries WHERE name = $1");
        let row = with_pool!(self, pool => sqlx::query_as::<_, RegistryRow>(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading a registry", e))?;
        row.ok_or_else(|| registry_not_found(name))?.try_into()
    }

    /// Every registry, sorted by name.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "list_registries", target = ""))]
    pub async fn list_registries(&self) -> Result<Vec<RegistryRecord>> {
        let sql = format!("SELECT {REGISTRY_COLUMNS} FROM registries ORDER BY name");
        let rows = with_pool!(self, pool => sqlx::query_as::<_, RegistryRow>(&sql)
            .fetch_all(pool)
            .await)
        .map_err(|e| store_error("listing registries", e))?;
        rows::convert(rows)
    }

    /// Writes the endpoint and labels of `r` if the stored version is still
    /// `r.version` (the name and provider do not change); returns the
    /// record with the next version.
    ///
    /// [`Error::Conflict`] when someone else updated it since `r` was read,
    /// [`Error::NotFound`] when it is gone, [`Error::Invalid`] for bad
    /// fields.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "update_registry", target = %r.name))]
    pub async fn update_registry(&self, r: &RegistryRecord) -> Result<RegistryRecord> {
        check_text("endpoint", &r.endpoint, MAX_URL, true)?;
        check_labels("registry", &r.labels)?;
        let labels = to_json("labels", &r.labels)?;
        let sql = format!(
            "UPDATE registries SET endpoint = $1, labels = $2, updated_at = $3, \
               version = version + 1 \
             WHERE name = $4 AND version = $5 RETURNING {REGISTRY_COLUMNS}"
        );
        let now = rows::now_ms();
        let row = with_pool!(self, pool => {
            let row = sqlx::query_as::<_, RegistryRow>(&sql)
                .bind(r.endpoint.as_str())
                .bind(labels.as_str())
                .bind(now)
                .bind(r.name.as_str())
                .bind(r.version)
                .fetch_optional(pool)
                .await
                .map_err(|e| store_error("updating a registry", e))?;
            match row {
                Some(row) => row,
                None => {
                    return Err(match registry_exists!(pool, r.name.as_str())? {
                        None => registry_not_found(&r.name),
                        Some(now) => Error::Conflict(format!(
                            "registry {:?} changed since it was read (version {}, now {now}); read it again",
                            r.name, r.version
                        )),
                    });
                }
            }
        });
        row.try_into()
    }

    /// Deletes the registry `name` with its permissions and its login (one
    /// statement: they reference it with `ON DELETE CASCADE`);
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "delete_registry", target = %name))]
    pub async fn delete_registry(&self, name: &str) -> Result<()> {
        let done = with_pool!(self, pool => sqlx::query("DELETE FROM registries WHERE name = $1")
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("deleting a registry", e))?;
        if done == 0 {
            return Err(registry_not_found(name));
        }
        Ok(())
    }

    /// Lets `subject` have `access` to `namespace` of `registry`, replacing
    /// what it had there. [`Error::NotFound`] when the registry does not
    /// exist; namespace and subject must be non-empty one-line text.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "grant", target = %format!("{registry}/{namespace}")))]
    pub async fn grant(
        &self,
        registry: &str,
        namespace: &str,
        subject: &str,
        access: Access,
    ) -> Result<PermissionRecord> {
        check_grant_fields(registry, namespace, subject)?;
        let sql = format!(
            "INSERT INTO registry_permissions ({PERMISSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (registry, namespace, subject) DO UPDATE SET access = excluded.access \
             RETURNING {PERMISSION_COLUMNS}"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, PermissionRow>(&sql)
            .bind(registry)
            .bind(namespace)
            .bind(subject)
            .bind(access_str(access))
            .bind(rows::now_ms())
            .fetch_one(pool)
            .await);
        match row {
            Ok(row) => row.try_into(),
            Err(e) if is_foreign_key_violation(&e) => Err(registry_not_found(registry)),
            Err(e) => Err(store_error("granting a permission", e)),
        }
    }

    /// Takes back what `subject` had on `namespace` of `registry`;
    /// [`Error::NotFound`] when it had nothing there.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "revoke", target = %format!("{registry}/{namespace}")))]
    pub async fn revoke(&self, registry: &str, namespace: &str, subject: &str) -> Result<()> {
        const SQL: &str = "DELETE FROM registry_permissions \
             WHERE registry = $1 AND namespace = $2 AND subject = $3";
        let done = with_pool!(self, pool => sqlx::query(SQL)
            .bind(registry)
            .bind(namespace)
            .bind(subject)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("revoking a permission", e))?;
        if done == 0 {
            return Err(Error::NotFound(format!(
                "permission of {subject:?} on {registry}/{namespace}"
            )));
        }
        Ok(())
    }

    /// Every permission on `registry`, sorted by namespace then subject;
    /// [`Error::NotFound`] when the registry does not exist.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "permissions", target = %registry))]
    pub async fn permissions(&self, registry: &str) -> Result<Vec<PermissionRecord>> {
        let sql = format!(
            "SELECT {PERMISSION_COLUMNS} FROM registry_permissions WHERE registry = $1 \
             ORDER BY namespace, subject"
        );
        let rows = with_pool!(self, pool => {
            let rows = sqlx::query_as::<_, PermissionRow>(&sql)
                .bind(registry)
                .fetch_all(pool)
                .await
                .map_err(|e| store_error("listing permissions", e))?;
            if rows.is_empty() && registry_exists!(pool, registry)?.is_none() {
                return Err(registry_not_found(registry));
            }
            rows
        });
        rows::convert(rows)
    }

    /// Whether `subject` may `want` on `namespace` of `registry` (Push
    /// implies Pull). [`Error::NotFound`] when the registry does not exist.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "may", target = %format!("{registry}/{namespace}")))]
    pub async fn may(
        &self,
        registry: &str,
        namespace: &str,
        subject: &str,
        want: Access,
    ) -> Result<bool> {
        const SQL: &str = "SELECT r.name, p.access FROM registries r \
             LEFT JOIN registry_permissions p \
               ON p.registry = r.name AND p.namespace = $2 AND p.subject = $3 \
             WHERE r.name = $1";
        let row = with_pool!(self, pool => sqlx::query_as::<_, (String, Option<String>)>(SQL)
            .bind(registry)
            .bind(namespace)
            .bind(subject)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("checking a permission", e))?;
        let Some((_, access)) = row else {
            return Err(registry_not_found(registry));
        };
        let Some(access) = access else {
            return Ok(false);
        };
        Ok(match (rows::access_from_str(&access)?, want) {
            (Access::Push, _) => true,
            (Access::Pull, Access::Pull) => true,
            (Access::Pull, Access::Push) => false,
        })
    }
}
