//! Health-probe leases: which platform instance probes which cluster.
//!
//! Several instances over one store share the background probing: each
//! cluster is probed by the one instance holding its lease, which renews
//! it well before it expires. An instance that dies stops renewing; once
//! its leases have expired, the next instance to claim them takes them
//! over. A lease goes with its cluster's row.

use super::rows::{self, MAX_TEXT, check_text};
use super::{Store, is_foreign_key_violation, store_error};
use crate::error::Result;
use std::time::Duration;

/// A cluster's probe lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeLease {
    /// The cluster.
    pub cluster: String,
    /// The instance holding it ([`crate::core::Platform::instance_id`]).
    pub holder: String,
    /// When it expires unless renewed.
    pub expires_at: jiff::Timestamp,
    /// When its holder last recorded a finished probe.
    pub probed_at: Option<jiff::Timestamp>,
}

#[derive(sqlx::FromRow)]
struct LeaseRow {
    cluster: String,
    holder: String,
    expires_at: i64,
    probed_at: Option<i64>,
}

impl TryFrom<LeaseRow> for ProbeLease {
    type Error = crate::Error;
    fn try_from(r: LeaseRow) -> Result<ProbeLease> {
        Ok(ProbeLease {
            expires_at: rows::ts("probe_leases.expires_at", r.expires_at)?,
            probed_at: r
                .probed_at
                .map(|ms| rows::ts("probe_leases.probed_at", ms))
                .transpose()?,
            cluster: r.cluster,
            holder: r.holder,
        })
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

impl Store {
    /// Claims or renews the probe lease of each cluster in `clusters` for
    /// `holder`, for `ttl`: a lease is taken when nobody holds it, when
    /// `holder` already does, or when its holder let it expire. Returns the
    /// clusters `holder` holds afterwards, in the order given. A cluster
    /// that no longer exists is left out.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "claim_probe_leases", target = %holder))]
    pub async fn claim_probe_leases(
        &self,
        holder: &str,
        clusters: &[String],
        ttl: Duration,
    ) -> Result<Vec<String>> {
        check_text("lease holder", holder, MAX_TEXT, true)?;
        let sql = "INSERT INTO probe_leases (cluster, holder, expires_at, probed_at) \
                   VALUES ($1, $2, $3, NULL) \
                   ON CONFLICT (cluster) DO UPDATE \
                     SET holder = excluded.holder, expires_at = excluded.expires_at, \
                         probed_at = CASE WHEN probe_leases.holder = excluded.holder \
                                          THEN probe_leases.probed_at ELSE NULL END \
                     WHERE probe_leases.holder = excluded.holder \
                        OR probe_leases.expires_at <= $4 \
                   RETURNING cluster";
        let mut held = Vec::new();
        for cluster in clusters {
            let now = rows::now_ms();
            let got = with_pool!(self, pool => sqlx::query_scalar::<_, String>(sql)
                .bind(cluster.as_str())
                .bind(holder)
                .bind(now.saturating_add(ttl_ms(ttl)))
                .bind(now)
                .fetch_optional(pool)
                .await);
            match got {
                Ok(Some(c)) => held.push(c),
                Ok(None) => {}
                // Deleted since it was listed: nothing to probe.
                Err(e) if is_foreign_key_violation(&e) => {}
                Err(e) => return Err(store_error("claiming probe leases", e)),
            }
        }
        Ok(held)
    }

    /// Records that `holder` finished probing `cluster` now (only while it
    /// holds the lease); other instances read it to trust the stored
    /// conditions over their own older view.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "record_probe", target = %cluster))]
    pub async fn record_probe(&self, cluster: &str, holder: &str) -> Result<()> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE probe_leases SET probed_at = $1 WHERE cluster = $2 AND holder = $3",
        )
        .bind(rows::now_ms())
        .bind(cluster)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| store_error("recording a probe", e))?;
        Ok(())
    }

    /// Gives up every lease `holder` has (an instance shutting down), so
    /// another instance takes them over at its next claim instead of after
    /// they expire. Returns how many there were.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "release_probe_leases", target = %holder))]
    pub async fn release_probe_leases(&self, holder: &str) -> Result<u64> {
        with_pool!(self, pool => sqlx::query("DELETE FROM probe_leases WHERE holder = $1")
            .bind(holder)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("releasing probe leases", e))
    }

    /// The probe lease of `cluster`, if anyone holds or held one.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "probe_lease", target = %cluster))]
    pub async fn probe_lease(&self, cluster: &str) -> Result<Option<ProbeLease>> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, LeaseRow>(
            "SELECT cluster, holder, expires_at, probed_at FROM probe_leases WHERE cluster = $1",
        )
        .bind(cluster)
        .fetch_optional(pool)
        .await)
        .map_err(|e| store_error("reading a probe lease", e))?;
        row.map(ProbeLease::try_from).transpose()
    }
}
