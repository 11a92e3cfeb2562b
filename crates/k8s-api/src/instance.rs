//! Workloads: Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
//! CronJobs — list / get / delete (from [`Resources`]), scale, restart (the
//! `kubectl rollout restart` annotation), rollout status and waiting for it,
//! Deployment rollback to a previous ReplicaSet revision, CronJob suspend /
//! resume, and the pods that belong to a workload by owner references.

use crate::resource::{ListOptions, Resources, check_name};
use crate::{Client, Error, Result};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt as _};
use std::collections::HashSet;
use std::time::Duration;

/// Annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Annotation holding a Deployment's / ReplicaSet's revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// Where a workload's pods hang in the ownership tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodOwnership {
    /// Pods are owned by the workload itself.
    Direct,
    /// Pods are owned by ReplicaSets the workload owns (Deployment).
    ViaReplicaSets,
    /// Pods are owned by Jobs the workload owns (CronJob).
    ViaJobs,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Deployment {}
    impl Sealed for super::StatefulSet {}
    impl Sealed for super::DaemonSet {}
    impl Sealed for super::ReplicaSet {}
    impl Sealed for super::Job {}
    impl Sealed for super::CronJob {}
}

/// A workload kind (implemented for the six built-in kinds only).
pub trait Workload: Resource + sealed::Sealed {
    /// How its pods are owned.
    const OWNERSHIP: PodOwnership;
    /// The selector of its pods, if it has one.
    fn pod_selector(&self) -> Option<&LabelSelector>;
}

/// Workloads with a `scale` subresource.
pub trait Scalable: Workload {}
/// Workloads with a pod template that `restart` can annotate.
pub trait Restartable: Workload {}
/// Workloads with a rollout to watch.
pub trait RollsOut: Workload {
    /// The rollout state of this object.
    fn rollout_status(&self) -> RolloutStatus;
}

impl Workload for Deployment {
    const OWNERSHIP: PodOwnership = PodOwnership::ViaReplicaSets;
    fn pod_selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
}
impl Workload for StatefulSet {
    const OWNERSHIP: PodOwnership = PodOwnership::Direct;
    fn pod_selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
}
impl Workload for DaemonSet {
    const OWNERSHIP: PodOwnership = PodOwnership::Direct;
    fn pod_selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
}
impl Workload for ReplicaSet {
    const OWNERSHIP: PodOwnership = PodOwnership::Direct;
    fn pod_selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
}
impl Workload for Job {
    const OWNERSHIP: PodOwnership = PodOwnership::Direct;
    fn pod_selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().and_then(|s| s.selector.as_ref())
    }
}
impl Workload for CronJob {
    const OWNERSHIP: PodOwnership = PodOwnership::ViaJobs;
    fn pod_selector(&self) -> Option<&LabelSelector> {
        None
    }
}
impl Scalable for Deployment {}
impl Scalable for StatefulSet {}
impl Scalable for ReplicaSet {}
impl Restartable for Deployment {}
impl Restartable for StatefulSet {}
impl Restartable for DaemonSet {}

/// Rollout state, the way `kubectl rollout status` judges it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutStatus {
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// Desired replicas (scheduled pods for a DaemonSet).
    pub desired: i32,
    /// Replicas running the newest template.
    pub updated: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Available replicas.
    pub available: i32,
    /// The rollout finished.
    pub complete: bool,
    /// The rollout failed (progress deadline exceeded).
    pub failed: bool,
    /// What it is waiting for, or why it failed.
    pub message: String,
}

impl RollsOut for Deployment {
    fn rollout_status(&self) -> RolloutStatus {
        let generation = self.metadata.generation.unwrap_or(0);
        let desired = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let st = self.status.clone().unwrap_or_default();
        let mut r = RolloutStatus {
            generation,
            observed_generation: st.observed_generation.unwrap_or(0),
            desired,
            updated: st.updated_replicas.unwrap_or(0),
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            ..Default::default()
        };
        let total = st.replicas.unwrap_or(0);
        let deadline = st.conditions.as_ref().and_then(|cs| {
            cs.iter().find(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        });
        if r.observed_generation < generation {
            r.message = "waiting for the controller to observe the new spec".into();
        } else if let Some(c) = deadline {
            r.failed = true;
            r.message = c
                .message
                .clone()
                .unwrap_or_else(|| "progress deadline exceeded".into());
        } else if r.updated < desired {
            r.message = format!("{} of {desired} replicas updated", r.updated);
        } else if total > r.updated {
            r.message = format!("{} old replicas pending termination", total - r.updated);
        } else if r.available < r.updated {
            r.message = format!(
                "{} of {} updated replicas available",
                r.available, r.updated
            );
        } else {
            r.complete = true;
            r.message = "rolled out".into();
        }
        r
    }
}

impl RollsOut for StatefulSet {
    fn rollout_status(&self) -> RolloutStatus {
        let generation = self.metadata.generation.unwrap_or(0);
        let spec = self.spec.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let st = self.status.clone().unwrap_or_default();
        let mut r = RolloutStatus {
            generation,
            observed_generation: st.observed_generation.unwrap_or(0),
            desired,
            updated: st.updated_replicas.unwrap_or(0),
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            ..Default::default()
        };
        let partition = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|ru| ru.partition)
            .unwrap_or(0);
        if r.observed_generation < generation {
            r.message = "waiting for the controller to observe the new spec".into();
        } else if r.ready < desired {
            r.message = format!("{} of {desired} pods ready", r.ready);
        } else if partition > 0 {
            if r.updated < desired - partition {
                r.message = format!(
                    "{} of {} partitioned pods updated",
                    r.updated,
                    desired - partition
                );
            } else {
                r.complete = true;
                r.message = "partitioned roll out complete".into();
            }
        } else if st.update_revision.is_some() && st.update_revision != st.current_revision {
            r.message = format!("{} of {desired} pods updated", r.updated);
        } else {
            r.complete = true;
            r.message = "rolled out".into();
        }
        r
    }
}

impl RollsOut for DaemonSet {
    fn rollout_status(&self) -> RolloutStatus {
        let generation = self.metadata.generation.unwrap_or(0);
        let st = self.status.clone().unwrap_or_default();
        let mut r = RolloutStatus {
            generation,
            observed_generation: st.observed_generation.unwrap_or(0),
            desired: st.desired_number_scheduled,
            updated: st.updated_number_scheduled.unwrap_or(0),
            ready: st.number_ready,
            available: st.number_available.unwrap_or(0),
            ..Default::default()
        };
        if r.observed_generation < generation {
            r.message = "waiting for the controller to observe the new spec".into();
        } else if r.updated < r.desired {
            r.message = format!("{} of {} pods updated", r.updated, r.desired);
        } else if r.available < r.desired {
            r.message = format!("{} of {} updated pods available", r.available, r.desired);
        } else {
            r.complete = true;
            r.message = "rolled out".into();
        }
        r
    }
}

/// A label selector as the `labelSelector` query string
/// (`a=b,c in (d,e),!f`).
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts = Vec::new();
    if let Some(ml) = &sel.match_labels {
        for (k, v) in ml {
            parts.push(format!("{k}={v}"));
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        match e.operator.as_str() {
            "In" => parts.push(format!("{} in ({vals})", e.key)),
            "NotIn" => parts.push(format!("{} notin ({vals})", e.key)),
            "Exists" => parts.push(e.key.clone()),
            "DoesNotExist" => parts.push(format!("!{}", e.key)),
            _ => {}
        }
    }
    parts.join(",")
}

fn owned_by<K: Resource>(o: &K, owners: &HashSet<String>) -> bool {
    o.owner_references().iter().any(|r| owners.contains(&r.uid))
}

impl Client {
    /// Deployments of `namespace`.
    pub fn deployments(&self, namespace: &str) -> Resources<Deployment> {
        self.namespaced(namespace)
    }
    /// StatefulSets of `namespace`.
    pub fn stateful_sets(&self, namespace: &str) -> Resources<StatefulSet> {
        self.namespaced(namespace)
    }
    /// DaemonSets of `namespace`.
    pub fn daemon_sets(&self, namespace: &str) -> Resources<DaemonSet> {
        self.namespaced(namespace)
    }
    /// ReplicaSets of `namespace`.
    pub fn replica_sets(&self, namespace: &str) -> Resources<ReplicaSet> {
        self.namespaced(namespace)
    }
    /// Jobs of `namespace`.
    pub fn jobs(&self, namespace: &str) -> Resources<Job> {
        self.namespaced(namespace)
    }
    /// CronJobs of `namespace`.
    pub fn cron_jobs(&self, namespace: &str) -> Resources<CronJob> {
        self.namespaced(namespace)
    }
}

impl<K> Resources<K>
where
    K: Workload
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    fn require_ns(&self) -> Result<String> {
        self.namespace
            .clone()
            .ok_or_else(|| Error::invalid("this call needs a namespaced handle"))
    }

    /// The pods that belong to workload `name`, by owner references (a
    /// Deployment's through its ReplicaSets, a CronJob's through its Jobs);
    /// pods merely matching the labels are not included.
    pub async fn pods_of(&self, name: &str) -> Result<Vec<Pod>> {
        let ns = self.require_ns()?;
        let obj = self.get(name).await?;
        let uid = obj
            .uid()
            .ok_or_else(|| Error::internal(format!("{} has no uid", self.target(Some(name)))))?;
        let selector = obj
            .pod_selector()
            .map(selector_string)
            .filter(|s| !s.is_empty());
        let narrow = ListOptions {
            label_selector: selector.clone(),
            ..Default::default()
        };
        let direct: HashSet<String> = HashSet::from([uid]);
        let owners: HashSet<String> = match K::OWNERSHIP {
            PodOwnership::Direct => direct,
            PodOwnership::ViaReplicaSets => self
                .client
                .replica_sets(&ns)
                .list(&narrow)
                .await?
                .iter()
                .filter(|rs| owned_by(*rs, &direct))
                .filter_map(|rs| rs.uid())
                .collect(),
            PodOwnership::ViaJobs => self
                .client
                .jobs(&ns)
                .list(&ListOptions::default())
                .await?
                .iter()
                .filter(|j| owned_by(*j, &direct))
                .filter_map(|j| j.uid())
                .collect(),
        };
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let pods = self.client.pods(&ns).list(&narrow).await?;
        Ok(pods.into_iter().filter(|p| owned_by(p, &owners)).collect())
    }
}

impl<K> Resources<K>
where
    K: Scalable
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    /// Sets the replica count through the `scale` subresource.
    pub async fn scale(&self, name: &str, replicas: i32) -> Result<()> {
        check_name(name)?;
        if replicas < 0 {
            return Err(Error::invalid(format!(
                "replicas must not be negative, got {replicas}"
            )));
        }
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.client
            .run(
                "scale",
                &self.target(Some(name)),
                self.api
                    .patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await
            .map(|_| ())
    }
}

impl<K> Resources<K>
where
    K: Restartable
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    /// Restarts all pods (rolling), like `kubectl rollout restart`: stamps
    /// the pod template with the current time.
    pub async fn restart(&self, name: &str) -> Result<K> {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = serde_json::json!({
            "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: now } } } }
        });
        self.merge_patch(name, &patch).await
    }
}

impl<K> Resources<K>
where
    K: RollsOut
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    /// The current rollout status.
    pub async fn rollout_status(&self, name: &str) -> Result<RolloutStatus> {
        Ok(self.get(name).await?.rollout_status())
    }

    /// Waits until the rollout completes. A failed rollout (progress
    /// deadline exceeded) is an [`Error::Invalid`] carrying the
    /// controller's message; running out of time is an [`Error::Timeout`]
    /// saying what the rollout was waiting for.
    pub async fn wait_rollout(&self, name: &str, timeout: Duration) -> Result<RolloutStatus> {
        let mut last = RolloutStatus::default();
        let res = self
            .wait_for(name, timeout, |o| {
                last = o.rollout_status();
                (last.complete || last.failed).then(|| last.clone())
            })
            .await;
        match res {
            Ok(st) if st.failed => Err(Error::invalid(format!(
                "rollout of {} failed: {}",
                self.target(Some(name)),
                st.message
            ))),
            Ok(st) => Ok(st),
            Err(Error::Timeout(_)) => Err(Error::Timeout(format!(
                "rollout of {} not complete after {timeout:?}: {}",
                self.target(Some(name)),
                last.message
            ))),
            Err(e) => Err(e),
        }
    }
}

fn revision_of<K: Resource>(o: &K) -> Option<i64> {
    o.annotations().get(REVISION).and_then(|r| r.parse().ok())
}

impl Resources<Deployment> {
    /// The revisions of a Deployment (from its ReplicaSets), ascending.
    pub async fn revisions(&self, name: &str) -> Result<Vec<(i64, ReplicaSet)>> {
        let ns = self.require_ns()?;
        let d = self.get(name).await?;
        let uid = d.uid().unwrap_or_default();
        let owners = HashSet::from([uid]);
        let narrow = ListOptions {
            label_selector: d
                .pod_selector()
                .map(selector_string)
                .filter(|s| !s.is_empty()),
            ..Default::default()
        };
        let mut out: Vec<(i64, ReplicaSet)> = self
            .client
            .replica_sets(&ns)
            .list(&narrow)
            .await?
            .into_iter()
            .filter(|rs| owned_by(rs, &owners))
            .filter_map(|rs| revision_of(&rs).map(|r| (r, rs)))
            .collect();
        out.sort_by_key(|(r, _)| *r);
        Ok(out)
    }

    /// Rolls a Deployment back to `to_revision` (`None`: the revision
    /// before the current one) by restoring that ReplicaSet's pod template.
    /// Returns the revision rolled back to. The update is guarded by the
    /// Deployment's resourceVersion (Conflict if it changed meanwhile).
    pub async fn rollback(&self, name: &str, to_revision: Option<i64>) -> Result<i64> {
        let mut d = self.get(name).await?;
        let current = revision_of(&d).unwrap_or(0);
        let revisions = self.revisions(name).await?;
        let target = match to_revision {
            Some(r) => r,
            None => revisions
                .iter()
                .rev()
                .map(|(r, _)| *r)
                .find(|r| *r < current)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "{} has no revision before {current} to roll back to",
                        self.target(Some(name))
                    ))
                })?,
        };
        if target == current {
            return Err(Error::invalid(format!(
                "{} is already at revision {current}",
                self.target(Some(name))
            )));
        }
        let (_, rs) = revisions
            .iter()
            .find(|(r, _)| *r == target)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "revision {target} of {} does not exist",
                    self.target(Some(name))
                ))
            })?;
        let mut template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .ok_or_else(|| Error::internal("the ReplicaSet has no pod template"))?;
        if let Some(meta) = template.metadata.as_mut()
            && let Some(labels) = meta.labels.as_mut()
        {
            labels.remove("pod-template-hash");
        }
        let spec = d
            .spec
            .as_mut()
            .ok_or_else(|| Error::internal("the Deployment has no spec"))?;
        spec.template = template;
        self.replace(&d).await?;
        Ok(target)
    }
}

impl Resources<CronJob> {
    /// Suspends a CronJob (no new Jobs start).
    pub async fn suspend(&self, name: &str) -> Result<CronJob> {
        self.merge_patch(name, &serde_json::json!({ "spec": { "suspend": true } }))
            .await
    }

    /// Resumes a suspended CronJob.
    pub async fn resume(&self, name: &str) -> Result<CronJob> {
        self.merge_patch(name, &serde_json::json!({ "spec": { "suspend": false } }))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_render() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "x", "operator": "Exists"},
                {"key": "y", "operator": "DoesNotExist"},
                {"key": "z", "operator": "NotIn", "values": ["c"]}
            ]
        }))
        .unwrap();
        assert_eq!(
            selector_string(&sel),
            "app=web,tier in (a,b),x,!y,z notin (c)"
        );
    }

    #[test]
    fn deployment_rollout_states() {
        let mk = |generation: i64, obs: i64, upd: i32, total: i32, avail: i32| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "d", "generation": generation},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"observedGeneration": obs, "updatedReplicas": upd, "replicas": total,
                           "availableReplicas": avail, "readyReplicas": avail}
            }))
            .unwrap()
        };
        assert!(!mk(2, 1, 2, 2, 2).rollout_status().complete);
        assert!(!mk(2, 2, 1, 2, 1).rollout_status().complete);
        assert!(!mk(2, 2, 2, 3, 2).rollout_status().complete);
        assert!(!mk(2, 2, 2, 2, 1).rollout_status().complete);
        let done = mk(2, 2, 2, 2, 2).rollout_status();
        assert!(done.complete && !done.failed, "{done:?}");
    }

    #[test]
    fn progress_deadline_is_failure() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": "timed out"}]}
        }))
        .unwrap();
        let st = d.rollout_status();
        assert!(st.failed && st.message == "timed out");
    }
}
