//! Cluster health as conditions, not one bit.
//!
//! [`Platform::check_health`] probes one cluster now and records:
//!
//! | condition | true when |
//! |---|---|
//! | `Reachable` | `GET /readyz` answers `ok` (`/healthz` where `/readyz` is not served) |
//! | `Version` | `GET /version` answers |
//! | `NodesReady` | there is at least one node and every node is Ready (an API server that answers while every node is NotReady is not healthy) |
//! | `CredentialValid` | the stored credential is accepted (`SelfSubjectReview`) |
//! | `CredentialExpiring` | the stored credential expires within the warning window (7 days) |
//!
//! The conditions are kept in the store (with the time each last changed);
//! every transition is logged once. A [`HealthProber`] probes every cluster
//! in the background: healthy ones every `health_interval`, ones that are
//! down with a doubling backoff up to `max_backoff`.
//!
//! Instances sharing a store share the probing: each cluster is probed by
//! the one instance holding its lease in the store (renewed every third of
//! `probe_lease`); when that instance dies its leases lapse and another
//! takes them over, probing those clusters at once.
//!
//! A cluster seen down — by the prober or by any call that failed with
//! Unavailable — answers Unavailable **at once** from
//! [`Platform::client`], instead of a fresh connect-and-retry on every
//! request, until a probe sees it back.

use super::{Platform, PlatformOptions};
use crate::store::{ClusterRecord, Condition, ConditionStatus, ConditionType};
use crate::{Error, Result};
use futures::StreamExt as _;
use kubepkg_k8s_api::Client;
use kubepkg_util::ErrorKind;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct DownState {
    since: jiff::Timestamp,
    reason: String,
    retry_at: Instant,
    backoff: Duration,
}

/// Which clusters are known to be down, and when to look again.
#[derive(Debug, Default)]
pub(crate) struct HealthBook {
    down: Mutex<HashMap<String, DownState>>,
}

impl HealthBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DownState>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fast answer for a cluster known to be down.
    pub(crate) fn gate(&self, name: &str) -> Option<Error> {
        let map = self.lock();
        let st = map.get(name)?;
        Some(Error::Unavailable(format!(
            "cluster {name:?} is down since {} ({}); the next probe is in {}s",
            st.since,
            st.reason,
            st.retry_at
                .saturating_duration_since(Instant::now())
                .as_secs()
        )))
    }

    pub(crate) fn mark_down(&self, name: &str, err: &Error, o: &PlatformOptions) {
        let mut map = self.lock();
        let first = (o.health_interval / 4).max(Duration::from_millis(200));
        match map.get_mut(name) {
            Some(st) => {
                st.backoff = (st.backoff * 2).min(o.max_backoff);
                st.retry_at = Instant::now() + st.backoff;
                st.reason = err.to_string();
            }
            None => {
                tracing::warn!(cluster = name, error = %err, "cluster is down");
                map.insert(
                    name.to_string(),
                    DownState {
                        since: jiff::Timestamp::now(),
                        reason: err.to_string(),
                        retry_at: Instant::now() + first,
                        backoff: first,
                    },
                );
            }
        }
    }

    pub(crate) fn mark_up(&self, name: &str) {
        if let Some(st) = self.lock().remove(name) {
            tracing::info!(cluster = name, down_since = %st.since, "cluster is back");
        }
    }

    pub(crate) fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    pub(crate) fn is_down(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// Whether a down cluster is due for its next probe (healthy ones are
    /// always due when the prober runs).
    fn due(&self, name: &str, now: Instant) -> bool {
        self.lock().get(name).is_none_or(|st| st.retry_at <= now)
    }
}

/// The health of one cluster, as [`Platform::check_health`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterHealth {
    /// The cluster.
    pub cluster: String,
    /// The conditions, one per [`ConditionType`].
    pub conditions: Vec<Condition>,
    /// The server version, when read.
    pub version: Option<String>,
    /// Ready nodes.
    pub nodes_ready: Option<u32>,
    /// All nodes.
    pub nodes_total: Option<u32>,
}

impl ClusterHealth {
    /// The status of one condition (`Unknown` when absent).
    pub fn status(&self, t: ConditionType) -> ConditionStatus {
        self.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map_or(ConditionStatus::Unknown, |c| c.status)
    }

    /// Reachable, version read, nodes ready and credential valid.
    pub fn is_healthy(&self) -> bool {
        [
            ConditionType::Reachable,
            ConditionType::Version,
            ConditionType::NodesReady,
            ConditionType::CredentialValid,
        ]
        .iter()
        .all(|t| self.status(*t) == ConditionStatus::True)
    }
}

struct Observation {
    type_: ConditionType,
    status: ConditionStatus,
    reason: &'static str,
    message: String,
}

fn obs(type_: ConditionType, ok: bool, reason: &'static str, message: String) -> Observation {
    Observation {
        type_,
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason,
        message,
    }
}

fn from_err(type_: ConditionType, e: &kubepkg_k8s_api::Error) -> Observation {
    let (status, reason) = match e.kind() {
        ErrorKind::Unauthorized => (ConditionStatus::False, "Unauthorized"),
        ErrorKind::Forbidden => (ConditionStatus::Unknown, "Forbidden"),
        ErrorKind::Timeout => (ConditionStatus::False, "Timeout"),
        ErrorKind::Unavailable => (ConditionStatus::False, "Unavailable"),
        _ => (ConditionStatus::Unknown, "Error"),
    };
    Observation {
        type_,
        status,
        reason,
        message: e.to_string(),
    }
}

async fn within<T>(
    t: Duration,
    what: &str,
    f: impl std::future::Future<Output = kubepkg_k8s_api::Result<T>>,
) -> kubepkg_k8s_api::Result<T> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r,
        Err(_) => Err(kubepkg_k8s_api::Error::Timeout(format!(
            "{what} did not answer within {t:?}"
        ))),
    }
}

async fn get_text(client: &Client, path: &str) -> kubepkg_k8s_api::Result<String> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?;
    Ok(client.kube().request_text(req).await?)
}

/// Who the cluster says the client's credential is (`SelfSubjectReview`).
pub(crate) async fn whoami(client: &Client) -> kubepkg_k8s_api::Result<String> {
    let body = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
    });
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&body)
                .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?,
        )
        .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?;
    let v: serde_json::Value = client.kube().request(req).await?;
    Ok(v["status"]["userInfo"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Probes one cluster through `client` and returns what it saw.
async fn observe(
    client: &Client,
    record: &ClusterRecord,
    o: &PlatformOptions,
) -> (Vec<Observation>, Option<String>, Option<(u32, u32)>) {
    let t = o.probe_timeout;
    let mut out = Vec::new();
    let reach = match within(t, "/readyz", get_text(client, "/readyz")).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            within(t, "/healthz", get_text(client, "/healthz")).await
        }
        r => r,
    };
    let reachable = match &reach {
        Ok(body) => {
            out.push(obs(
                ConditionType::Reachable,
                body.trim() == "ok",
                "Probed",
                format!("readyz: {}", body.trim()),
            ));
            true
        }
        Err(e) if e.kind() == ErrorKind::Unauthorized => {
            out.push(obs(
                ConditionType::Reachable,
                true,
                "Probed",
                "the server answered (the credential was refused)".into(),
            ));
            true
        }
        Err(e) => {
            out.push(from_err(ConditionType::Reachable, e));
            false
        }
    };
    let mut version = None;
    let mut nodes = None;
    if reachable {
        match within(t, "/version", client.version()).await {
            Ok(info) => {
                out.push(obs(
                    ConditionType::Version,
                    true,
                    "Probed",
                    info.git_version.clone(),
                ));
                version = Some(info.git_version);
            }
            Err(e) => out.push(from_err(ConditionType::Version, &e)),
        }
        match within(t, "SelfSubjectReview", whoami(client)).await {
            Ok(user) => out.push(obs(
                ConditionType::CredentialValid,
                true,
                "Accepted",
                format!("authenticated as {user}"),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => out.push(obs(
                ConditionType::CredentialValid,
                version.is_some(),
                "Probed",
                "SelfSubjectReview is not served; judged by /version".into(),
            )),
            Err(e) => out.push(from_err(ConditionType::CredentialValid, &e)),
        }
        let list = kubepkg_k8s_api::ListOptions::default().page_size(500);
        match within(t, "nodes", client.nodes().list(&list)).await {
            Ok(list) => {
                let total = u32::try_from(list.len()).unwrap_or(u32::MAX);
                let ready = u32::try_from(
                    list.iter()
                        .filter(|n| kubepkg_k8s_api::node::node_ready(n))
                        .count(),
                )
                .unwrap_or(u32::MAX);
                out.push(obs(
                    ConditionType::NodesReady,
                    total > 0 && ready == total,
                    if total == 0 { "NoNodes" } else { "Counted" },
                    format!("{ready}/{total} nodes ready"),
                ));
                nodes = Some((ready, total));
            }
            Err(e) => out.push(from_err(ConditionType::NodesReady, &e)),
        }
    } else {
        out.extend(unknown_beyond_reach(
            "Unreachable",
            "the API server did not answer",
        ));
    }
    out.push(expiry_observation(record, o));
    (out, version, nodes)
}

/// Version, NodesReady and CredentialValid as Unknown, for a cluster that
/// could not be asked.
fn unknown_beyond_reach(reason: &'static str, message: &str) -> Vec<Observation> {
    [
        ConditionType::Version,
        ConditionType::NodesReady,
        ConditionType::CredentialValid,
    ]
    .into_iter()
    .map(|type_| Observation {
        type_,
        status: ConditionStatus::Unknown,
        reason,
        message: message.into(),
    })
    .collect()
}

fn expiry_observation(record: &ClusterRecord, o: &PlatformOptions) -> Observation {
    match record.credential_expires_at {
        None => obs(
            ConditionType::CredentialExpiring,
            false,
            "NoExpiry",
            "the stored credential does not expire".into(),
        ),
        Some(at) => {
            let left = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
            let window = i64::try_from(o.expiry_warning.as_millis()).unwrap_or(i64::MAX);
            if left <= 0 {
                obs(
                    ConditionType::CredentialExpiring,
                    true,
                    "Expired",
                    format!("the stored credential expired at {at}"),
                )
            } else {
                obs(
                    ConditionType::CredentialExpiring,
                    left <= window,
                    "Scheduled",
                    format!("the stored credential expires at {at}"),
                )
            }
        }
    }
}

/// Merges observations into the previous conditions: `last_transition`
/// moves only when a status changes; each change is logged once.
fn merge(cluster: &str, previous: &[Condition], seen: Vec<Observation>) -> Vec<Condition> {
    let now = jiff::Timestamp::now();
    let mut out: Vec<Condition> = seen
        .into_iter()
        .map(|o| {
            let prev = previous.iter().find(|c| c.type_ == o.type_);
            let changed = prev.is_none_or(|p| p.status != o.status);
            if changed && prev.is_some() {
                tracing::info!(
                    cluster,
                    condition = ?o.type_,
                    status = ?o.status,
                    reason = o.reason,
                    "cluster condition changed"
                );
            }
            Condition {
                type_: o.type_,
                status: o.status,
                reason: o.reason.to_string(),
                message: o.message,
                last_transition: match prev {
                    Some(p) if !changed => p.last_transition,
                    _ => now,
                },
            }
        })
        .collect();
    out.sort_by_key(|c| c.type_);
    out
}

impl Platform {
    /// Probes a cluster now, records its conditions in the store and
    /// returns them. A probe that finds the API server unreachable marks the
    /// cluster down; one that reaches it marks it up.
    pub async fn check_health(&self, name: &str) -> Result<ClusterHealth> {
        let record = self.inner.store.get_cluster(name).await?;
        let o = &self.inner.options;
        // Use the cached client, or — when the cache cannot give one (its
        // probe failed: down, or a refused credential) — a client of its
        // own, without the down gate: a probe is how a down cluster comes
        // back, and it tells an outage from a bad credential.
        let client = match self.inner.clusters.get(name).await {
            Ok(c) => Ok(c),
            Err(_) => {
                let config = self.cluster_config(&record).await?;
                if self.inner.clusters.config(name).is_none() {
                    let _ = self.inner.clusters.add(name, config.clone()).await;
                }
                Client::connect_named(name, &config).await
            }
        };
        let (seen, version, nodes) = match &client {
            Ok(c) => observe(c, &record, o).await,
            Err(e) => {
                let mut v = vec![from_err(ConditionType::Reachable, e)];
                v.extend(unknown_beyond_reach(
                    "NoClient",
                    "no client could be built from the stored credential",
                ));
                v.push(expiry_observation(&record, o));
                (v, None, None)
            }
        };
        let conditions = merge(name, &record.conditions, seen);
        let reachable = conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Reachable && c.status == ConditionStatus::True);
        if reachable {
            self.inner.health.mark_up(name);
        } else {
            let why = conditions
                .iter()
                .find(|c| c.type_ == ConditionType::Reachable)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            self.inner.clusters.mark_broken(name);
            self.inner
                .health
                .mark_down(name, &Error::Unavailable(why), o);
        }
        if conditions != record.conditions {
            self.save_conditions(&record, &conditions).await?;
        }
        Ok(ClusterHealth {
            cluster: name.to_string(),
            conditions,
            version,
            nodes_ready: nodes.map(|n| n.0),
            nodes_total: nodes.map(|n| n.1),
        })
    }

    /// Writes conditions, re-reading once if another writer moved the
    /// record's version meanwhile.
    async fn save_conditions(
        &self,
        record: &ClusterRecord,
        conditions: &[Condition],
    ) -> Result<()> {
        let mut current = record.clone();
        for _ in 0..3 {
            current.conditions = conditions.to_vec();
            match self.inner.store.update_cluster(&current).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    current = self.inner.store.get_cluster(&record.name).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "cluster {:?} kept changing while its health was recorded",
            record.name
        )))
    }

    /// Whether a cluster is currently known to be down.
    pub fn is_down(&self, name: &str) -> bool {
        self.inner.health.is_down(name)
    }

    /// Probes every cluster that is due (healthy ones always, down ones
    /// when their backoff has passed), `concurrency` at a time; returns the
    /// health of those probed. This probes regardless of the store's probe
    /// leases; the background prober ([`Self::start_health_prober`]) probes
    /// only the clusters whose lease this instance holds.
    pub async fn probe_due(&self) -> Result<Vec<ClusterHealth>> {
        let names = self.stored_names().await?;
        Ok(self.probe_these(names, false).await)
    }

    /// The names of every stored cluster.
    async fn stored_names(&self) -> Result<Vec<String>> {
        let records = self.inner.store.list_clusters().await?;
        Ok(records.into_iter().map(|c| c.name).collect())
    }

    /// Probes those of `names` that are due (all of them with `force`).
    async fn probe_these(&self, names: Vec<String>, force: bool) -> Vec<ClusterHealth> {
        let now = Instant::now();
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| force || self.inner.health.due(n, now))
            .collect();
        let results = futures::stream::iter(names)
            .map(|n| async move { (n.clone(), self.check_health(&n).await) })
            .buffer_unordered(self.inner.options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut out = Vec::new();
        for (name, r) in results {
            match r {
                Ok(h) => out.push(h),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(cluster = %name, error = %e, "health probe failed"),
            }
        }
        out
    }

    /// Starts the background prober (see the module docs). Every third of
    /// [`PlatformOptions::probe_lease`] it claims or renews, in the store,
    /// the probe lease of every cluster; it probes only the clusters it
    /// holds, so instances sharing a store do not probe a cluster twice,
    /// and a lease a dead instance stopped renewing is taken over (and
    /// that cluster probed at once) within one lease time plus a renewal.
    /// Clusters another instance probes and that this one saw fail are
    /// trusted back up once their holder records a probe that reached
    /// them. It stops when the returned handle is dropped or stopped.
    pub fn start_health_prober(&self) -> HealthProber {
        let this = self.clone();
        let every = self.inner.options.health_interval;
        let renew = (self.inner.options.probe_lease / 3).max(Duration::from_millis(100));
        let tick = (every / 4).clamp(Duration::from_millis(100), renew);
        let task = tokio::spawn(async move {
            let mut led: HashSet<String> = HashSet::new();
            let mut last_claim: Option<Instant> = None;
            let mut last_full = Instant::now() - every;
            loop {
                let now = Instant::now();
                let mut taken_over = Vec::new();
                if last_claim.is_none_or(|t| now.duration_since(t) >= renew) {
                    last_claim = Some(now);
                    match this.claim_probe_leases().await {
                        Ok(held) => {
                            taken_over = held.difference(&led).cloned().collect();
                            led = held;
                        }
                        Err(e) => {
                            // Without the store nothing can be recorded,
                            // and the leases lapse: leave probing to
                            // whoever can renew them.
                            tracing::warn!(error = %e, "health prober could not renew its leases");
                            led.clear();
                        }
                    }
                }
                if now.duration_since(last_full) >= every {
                    last_full = now;
                    this.probe_led(led.iter().cloned().collect(), false).await;
                } else {
                    let due_down = this.down_due(now);
                    let (mut mine, others): (Vec<_>, Vec<_>) =
                        due_down.into_iter().partition(|n| led.contains(n));
                    mine.extend(taken_over.iter().cloned());
                    mine.sort();
                    mine.dedup();
                    this.probe_led(mine, true).await;
                    this.trust_holders(others).await;
                }
                tokio::time::sleep(tick).await;
            }
        });
        HealthProber {
            task,
            platform: self.clone(),
        }
    }

    /// Claims or renews every stored cluster's probe lease; the ones held.
    async fn claim_probe_leases(&self) -> Result<HashSet<String>> {
        let names = self.stored_names().await?;
        let held = self
            .inner
            .store
            .claim_probe_leases(
                &self.inner.instance_id,
                &names,
                self.inner.options.probe_lease,
            )
            .await?;
        Ok(held.into_iter().collect())
    }

    /// Probes clusters this instance holds the lease of, recording each
    /// finished probe on the lease.
    async fn probe_led(&self, names: Vec<String>, force: bool) {
        if names.is_empty() {
            return;
        }
        for h in self.probe_these(names, force).await {
            tracing::debug!(
                cluster = %h.cluster,
                instance = %self.inner.instance_id,
                healthy = h.is_healthy(),
                "probed cluster health"
            );
            if let Err(e) = self
                .inner
                .store
                .record_probe(&h.cluster, &self.inner.instance_id)
                .await
            {
                tracing::debug!(cluster = %h.cluster, error = %e, "could not record a probe");
            }
        }
    }

    /// Down clusters whose backoff has passed.
    fn down_due(&self, now: Instant) -> Vec<String> {
        let map = self.inner.health.lock();
        map.iter()
            .filter(|(_, st)| st.retry_at <= now)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Clusters this instance saw fail but another instance probes: back up
    /// when their holder recorded, after this instance marked them down, a
    /// probe that found them reachable; otherwise looked at again after the
    /// next backoff. Nothing is probed from here.
    async fn trust_holders(&self, names: Vec<String>) {
        for name in names {
            let since = self.inner.health.lock().get(&name).map(|st| st.since);
            let Some(since) = since else { continue };
            let lease = match self.inner.store.probe_lease(&name).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(cluster = %name, error = %e, "could not read a probe lease");
                    None
                }
            };
            let fresh = lease
                .as_ref()
                .and_then(|l| l.probed_at)
                .is_some_and(|at| at > since);
            let reachable = fresh
                && match self.inner.store.get_cluster(&name).await {
                    Ok(r) => r.conditions.iter().any(|c| {
                        c.type_ == ConditionType::Reachable && c.status == ConditionStatus::True
                    }),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        self.forget(&name);
                        continue;
                    }
                    Err(_) => false,
                };
            if reachable {
                tracing::info!(
                    cluster = %name,
                    holder = lease.map(|l| l.holder).unwrap_or_default(),
                    "cluster is back, as the instance probing it recorded"
                );
                self.inner.clusters.mark_broken(&name);
                self.inner.health.mark_up(&name);
            } else {
                let why = Error::Unavailable("not yet seen back by the instance probing it".into());
                self.inner
                    .health
                    .mark_down(&name, &why, &self.inner.options);
            }
        }
    }
}

/// The background health prober; dropping it stops it (its leases then
/// lapse after their lease time), [`HealthProber::stop`] also hands them
/// back at once.
#[derive(Debug)]
pub struct HealthProber {
    task: tokio::task::JoinHandle<()>,
    platform: Platform,
}

impl HealthProber {
    /// Stops the prober and gives its leases back, so another instance
    /// takes them over at its next renewal.
    pub async fn stop(self) {
        self.task.abort();
        let id = self.platform.instance_id().to_string();
        match self.platform.store().release_probe_leases(&id).await {
            Ok(n) => tracing::debug!(instance = %id, leases = n, "gave the probe leases back"),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "could not give the probe leases back")
            }
        }
    }
}

impl Drop for HealthProber {
    fn drop(&mut self) {
        self.task.abort();
    }
}
