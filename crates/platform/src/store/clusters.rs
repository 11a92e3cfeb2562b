//! Clusters (with their credential) and the nodes known from vendors.

use kubepkg_util::names;
use kubepkg_util::secret::Secret;

use super::credentials::{CredentialWrite, upsert_credential};
use super::rows::{
    self, CLUSTER_COLUMNS, ClusterRow, MAX_TEXT, MAX_URL, NODE_COLUMNS, NodeRow, check_labels,
    check_name, check_opt_text, check_pem, check_text, to_json,
};
use super::{
    BeginWrite, Store, is_foreign_key_violation, is_unique_violation, records::*, store_error,
};
use crate::error::{Error, Result};

/// Longest display name, in bytes.
const MAX_DISPLAY_NAME: usize = 256;

fn cluster_not_found(name: &str) -> Error {
    Error::NotFound(format!("cluster {name:?}"))
}

/// Checks the fields every cluster write stores.
fn check_cluster_fields(
    display_name: &str,
    provider_cluster_id: Option<&str>,
    region: Option<&str>,
    api_server: &str,
    ca_pem: Option<&str>,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    check_text("display name", display_name, MAX_DISPLAY_NAME, false)?;
    check_opt_text("provider cluster id", provider_cluster_id, MAX_TEXT)?;
    check_opt_text("region", region, MAX_TEXT)?;
    check_text("API server", api_server, MAX_URL, false)?;
    check_pem("CA", ca_pem)?;
    check_labels("cluster", labels)
}

fn check_node_name(node_name: &str) -> Result<()> {
    names::validate_dns1123_subdomain(node_name)
        .map_err(|e| Error::Invalid(format!("node name: {e}")))
}

/// Evaluates to `Ok(Some(version))` for an existing cluster, `Ok(None)`
/// for a missing one (after a versioned write matched no row).
macro_rules! cluster_version {
    ($conn:expr, $name:expr) => {
        sqlx::query_scalar::<_, i64>("SELECT version FROM clusters WHERE name = $1")
            .bind($name)
            .fetch_optional($conn)
            .await
            .map_err(|e| store_error("reading a cluster's version", e))
    };
}

/// The error for a versioned write that matched no row.
fn stale_or_missing(name: &str, quoted: i64, current: Option<i64>) -> Error {
    match current {
        None => cluster_not_found(name),
        Some(now) => Error::Conflict(format!(
            "cluster {name:?} changed since it was read (version {quoted}, now {now}); read it again"
        )),
    }
}

impl Store {
    /// Stores a new cluster and its credential (owner
    /// `CredentialOwner::Cluster(name)`) in one transaction.
    ///
    /// The name must be a DNS-1123 label and the other fields one-line text
    /// (labels as in Kubernetes): otherwise [`Error::Invalid`] and nothing is
    /// stored. [`Error::AlreadyExists`] when the name is taken. An empty
    /// display name becomes the name. The record starts at version 1.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "create_cluster", target = %c.name))]
    pub async fn create_cluster(
        &self,
        c: &NewCluster,
        kind: CredentialKind,
        secret: &Secret<String>,
    ) -> Result<ClusterRecord> {
        check_name("cluster", &c.name)?;
        check_text("provider", &c.provider, MAX_TEXT, true)?;
        check_cluster_fields(
            &c.display_name,
            c.provider_cluster_id.as_deref(),
            c.region.as_deref(),
            &c.api_server,
            c.ca_pem.as_deref(),
            &c.labels,
        )?;
        let labels = to_json("labels", &c.labels)?;
        let now = rows::now_ms();
        let display_name = if c.display_name.is_empty() {
            c.name.as_str()
        } else {
            c.display_name.as_str()
        };
        let owner = CredentialOwner::Cluster(c.name.clone());
        let _gate = self.key_gate().read().await;
        let write = CredentialWrite::seal(&self.keyring(), &owner, kind, secret, now)?;
        let sql = format!(
            "INSERT INTO clusters ({CLUSTER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', $9, $10, $10, 1) \
             RETURNING {CLUSTER_COLUMNS}"
        );
        let row = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, ClusterRow>(&sql)
                .bind(c.name.as_str())
                .bind(display_name)
                .bind(c.provider.as_str())
                .bind(c.provider_cluster_id.as_deref())
                .bind(c.region.as_deref())
                .bind(c.api_server.as_str())
                .bind(c.ca_pem.as_deref())
                .bind(labels.as_str())
                .bind(c.credential_expires_at.map(|t| t.as_millisecond()))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::AlreadyExists(format!("cluster {:?}", c.name))
                    } else {
                        store_error("creating a cluster", e)
                    }
                })?;
            upsert_credential!(&mut *tx, &write)
                .map_err(|e| store_error("storing the cluster's credential", e))?;
            tx.commit()
                .await
                .map_err(|e| store_error("committing a new cluster", e))?;
            row
        });
        row.try_into()
    }

    /// The cluster `name`; [`Error::NotFound`] when there is none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "get_cluster", target = %name))]
    pub async fn get_cluster(&self, name: &str) -> Result<ClusterRecord> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = $1");
        let row = with_pool!(self, pool => sqlx::query_as::<_, ClusterRow>(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading a cluster", e))?;
        row.ok_or_else(|| cluster_not_found(name))?.try_into()
    }

    /// Every cluster, sorted by name.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "list_clusters", target = ""))]
    pub async fn list_clusters(&self) -> Result<Vec<ClusterRecord>> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY name");
        let rows = with_pool!(self, pool => sqlx::query_as::<_, ClusterRow>(&sql)
            .fetch_all(pool)
            .await)
        .map_err(|e| store_error("listing clusters", e))?;
        rows::convert(rows)
    }

    /// Writes the changeable fields of `c` (display name, provider cluster
    /// id, region, API server, CA, labels, conditions, credential expiry)
    /// if the stored version is still `c.version`; returns the record with
    /// the next version and a new `updated_at`.
    ///
    /// [`Error::Conflict`] when someone else updated the cluster since `c`
    /// was read (nothing is written), [`Error::NotFound`] when it is gone,
    /// [`Error::Invalid`] for fields that fail the checks of
    /// [`Store::create_cluster`].
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "update_cluster", target = %c.name))]
    pub async fn update_cluster(&self, c: &ClusterRecord) -> Result<ClusterRecord> {
        check_cluster_fields(
            &c.display_name,
            c.provider_cluster_id.as_deref(),
            c.region.as_deref(),
            &c.api_server,
            c.ca_pem.as_deref(),
            &c.labels,
        )?;
        let labels = to_json("labels", &c.labels)?;
        let conditions = to_json("conditions", &c.conditions)?;
        let display_name = if c.display_name.is_empty() {
            c.name.as_str()
        } else {
            c.display_name.as_str()
        };
        let sql = format!(
            "UPDATE clusters SET display_name = $1, provider_cluster_id = $2, region = $3, \
               api_server = $4, ca_pem = $5, labels = $6, conditions = $7, \
               credential_expires_at = $8, updated_at = $9, version = version + 1 \
             WHERE name = $10 AND version = $11 \
             RETURNING {CLUSTER_COLUMNS}"
        );
        let now = rows::now_ms();
        let row = with_pool!(self, pool => {
            let row = sqlx::query_as::<_, ClusterRow>(&sql)
                .bind(display_name)
                .bind(c.provider_cluster_id.as_deref())
                .bind(c.region.as_deref())
                .bind(c.api_server.as_str())
                .bind(c.ca_pem.as_deref())
                .bind(labels.as_str())
                .bind(conditions.as_str())
                .bind(c.credential_expires_at.map(|t| t.as_millisecond()))
                .bind(now)
                .bind(c.name.as_str())
                .bind(c.version)
                .fetch_optional(pool)
                .await
                .map_err(|e| store_error("updating a cluster", e))?;
            match row {
                Some(row) => row,
                None => {
                    let current = cluster_version!(pool, c.name.as_str())?;
                    return Err(stale_or_missing(&c.name, c.version, current));
                }
            }
        });
        row.try_into()
    }

    /// Deletes the cluster `name` with its nodes and its credential, in one
    /// transaction; [`Error::NotFound`] when there is none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "delete_cluster", target = %name))]
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        // Nodes and the credential reference the cluster's row with
        // ON DELETE CASCADE, so the one statement removes all three.
        let done = with_pool!(self, pool => sqlx::query("DELETE FROM clusters WHERE name = $1")
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("deleting a cluster", e))?;
        if done == 0 {
            return Err(cluster_not_found(name));
        }
        Ok(())
    }

    /// Replaces the credential of cluster `name` and updates its row in one
    /// transaction: the version must still be `expected_version`
    /// ([`Error::Conflict`] otherwise, and nothing changes); the version is
    /// bumped, `credential_expires_at` set to `expires_at`, and the API
    /// server and CA set when given (`ca_pem: Some(None)` clears the CA).
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "replace_cluster_credential", target = %name))]
    pub async fn replace_cluster_credential(
        &self,
        name: &str,
        expected_version: i64,
        kind: CredentialKind,
        secret: &Secret<String>,
        api_server: Option<&str>,
        ca_pem: Option<Option<&str>>,
        expires_at: Option<jiff::Timestamp>,
    ) -> Result<ClusterRecord> {
        check_name("cluster", name)?;
        if let Some(api_server) = api_server {
            check_text("API server", api_server, MAX_URL, false)?;
        }
        check_pem("CA", ca_pem.flatten())?;
        let now = rows::now_ms();
        let owner = CredentialOwner::Cluster(name.to_owned());
        let _gate = self.key_gate().read().await;
        let write = CredentialWrite::seal(&self.keyring(), &owner, kind, secret, now)?;
        let sql = format!(
            "UPDATE clusters SET api_server = COALESCE($1, api_server), \
               ca_pem = CASE WHEN $2 = 1 THEN $3 ELSE ca_pem END, \
               credential_expires_at = $4, updated_at = $5, version = version + 1 \
             WHERE name = $6 AND version = $7 \
             RETURNING {CLUSTER_COLUMNS}"
        );
        let set_ca: i64 = ca_pem.is_some().into();
        let row = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, ClusterRow>(&sql)
                .bind(api_server)
                .bind(set_ca)
                .bind(ca_pem.flatten())
                .bind(expires_at.map(|t| t.as_millisecond()))
                .bind(now)
                .bind(name)
                .bind(expected_version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| store_error("updating a cluster", e))?;
            let Some(row) = row else {
                let current = cluster_version!(&mut *tx, name)?;
                return Err(stale_or_missing(name, expected_version, current));
            };
            upsert_credential!(&mut *tx, &write)
                .map_err(|e| store_error("storing the cluster's credential", e))?;
            tx.commit()
                .await
                .map_err(|e| store_error("committing a credential replacement", e))?;
            row
        });
        row.try_into()
    }

    // ---- nodes ----

    /// Records (or updates) which vendor instance a node of `n.cluster` is.
    /// `created_at` is set by the store when the node is first recorded.
    ///
    /// [`Error::NotFound`] when the cluster does not exist;
    /// [`Error::AlreadyExists`] when the instance id is already recorded for
    /// another node of the cluster.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "upsert_node", target = %format!("{}/{}", n.cluster, n.node_name)))]
    pub async fn upsert_node(&self, n: &NodeRecord) -> Result<()> {
        check_name("cluster", &n.cluster)?;
        check_node_name(&n.node_name)?;
        check_text(
            "provider instance id",
            &n.provider_instance_id,
            MAX_TEXT,
            true,
        )?;
        check_opt_text("node pool", n.node_pool.as_deref(), MAX_TEXT)?;
        const SQL: &str = "INSERT INTO nodes \
             (cluster, node_name, provider_instance_id, node_pool, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (cluster, node_name) DO UPDATE SET \
               provider_instance_id = excluded.provider_instance_id, \
               node_pool = excluded.node_pool";
        let result = with_pool!(self, pool => sqlx::query(SQL)
            .bind(n.cluster.as_str())
            .bind(n.node_name.as_str())
            .bind(n.provider_instance_id.as_str())
            .bind(n.node_pool.as_deref())
            .bind(rows::now_ms())
            .execute(pool)
            .await
            .map(|_| ()));
        match result {
            Ok(()) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(cluster_not_found(&n.cluster)),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists(format!(
                "instance {:?} is already recorded for another node of cluster {:?}",
                n.provider_instance_id, n.cluster
            ))),
            Err(e) => Err(store_error("recording a node", e)),
        }
    }

    /// The nodes recorded for `cluster`, sorted by node name
    /// ([`Error::NotFound`] when the cluster does not exist).
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "list_nodes", target = %cluster))]
    pub async fn list_nodes(&self, cluster: &str) -> Result<Vec<NodeRecord>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE cluster = $1 ORDER BY node_name");
        let rows = with_pool!(self, pool => {
            let rows = sqlx::query_as::<_, NodeRow>(&sql)
                .bind(cluster)
                .fetch_all(pool)
                .await
                .map_err(|e| store_error("listing nodes", e))?;
            if rows.is_empty() && cluster_version!(pool, cluster)?.is_none() {
                return Err(cluster_not_found(cluster));
            }
            rows
        });
        rows::convert(rows)
    }

    /// The node of `cluster` that is vendor instance `instance_id`;
    /// [`Error::NotFound`] when none is recorded.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "node_by_instance", target = %format!("{cluster}/{instance_id}")))]
    pub async fn node_by_instance(&self, cluster: &str, instance_id: &str) -> Result<NodeRecord> {
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE cluster = $1 AND provider_instance_id = $2"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, NodeRow>(&sql)
            .bind(cluster)
            .bind(instance_id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading a node", e))?;
        row.ok_or_else(|| {
            Error::NotFound(format!(
                "no node of cluster {cluster:?} is instance {instance_id:?}"
            ))
        })?
        .try_into()
    }

    /// Forgets node `node_name` of `cluster`; [`Error::NotFound`] when it is
    /// not recorded.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "delete_node", target = %format!("{cluster}/{node_name}")))]
    pub async fn delete_node(&self, cluster: &str, node_name: &str) -> Result<()> {
        const SQL: &str = "DELETE FROM nodes WHERE cluster = $1 AND node_name = $2";
        let done = with_pool!(self, pool => sqlx::query(SQL)
            .bind(cluster)
            .bind(node_name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("deleting a node", e))?;
        if done == 0 {
            return Err(Error::NotFound(format!(
                "node {node_name:?} of cluster {cluster:?}"
            )));
        }
        Ok(())
    }
}
