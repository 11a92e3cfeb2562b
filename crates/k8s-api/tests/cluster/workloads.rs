//! Workloads: rollout, scale, restart, rollback, pods by owner, CronJobs,
//! list / get / delete of every kind, and deletes that take the pods along.

use crate::common::{TestNs, admin, deployment, env, pod};
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kubepkg_k8s_api::Resources;
use kubepkg_k8s_api::instance::{RESTARTED_AT, REVISION, Workload};
use kubepkg_k8s_api::resource::{FIELD_MANAGER, Propagation};
use kubepkg_k8s_api::{Client, DeleteOptions, ListOptions};
use kubepkg_util::ErrorKind;
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

#[tokio::test]
async fn deployment_rollout_scale_restart_rollback_and_owned_pods() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-deploy").await;
    let deps = c.deployments(&ns.name);
    deps.create(&deployment("web", 2)).await.expect("create");
    let st = deps
        .wait_rollout("web", T)
        .await
        .expect("rollout completes");
    assert!(
        st.complete && st.available == 2 && st.updated == 2,
        "{st:?}"
    );

    // A look-alike pod with the same labels but no owner is not the Deployment's.
    let pods = c.pods(&ns.name);
    pods.create(&pod("lookalike", &[("app", "web")], None))
        .await
        .expect("lookalike");
    let owned = deps.pods_of("web").await.expect("pods_of");
    assert_eq!(
        owned.len(),
        2,
        "{:?}",
        owned.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
    );
    assert!(
        owned
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some("lookalike"))
    );

    deps.scale("web", 3).await.expect("scale");
    let st = deps.wait_rollout("web", T).await.expect("scaled rollout");
    assert_eq!(st.available, 3);
    assert_eq!(deps.pods_of("web").await.expect("pods").len(), 3);

    // Restart: a new template revision.
    let d = deps.restart("web").await.expect("restart");
    let ann = d
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .unwrap_or_default();
    assert!(ann.contains_key(RESTARTED_AT));
    deps.wait_rollout("web", T).await.expect("restart rollout");
    let revs = deps.revisions("web").await.expect("revisions");
    assert_eq!(revs.iter().map(|(r, _)| *r).collect::<Vec<_>>(), vec![1, 2]);

    // Roll back to revision 1: the restart annotation disappears from the template.
    let to = deps.rollback("web", None).await.expect("rollback");
    assert_eq!(to, 1);
    deps.wait_rollout("web", T).await.expect("rollback rollout");
    let d = deps.get("web").await.expect("get");
    let ann = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    assert!(!ann.contains_key(RESTARTED_AT), "{ann:?}");
    let rev: i64 = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or_default();
    assert_eq!(rev, 3, "rolling back re-labels revision 1 as 3");
    let err = deps.rollback("web", Some(42)).await.unwrap_err();
    assert_eq!(err.kind(), kubepkg_util::ErrorKind::NotFound, "{err}");
    let err = deps.scale("web", -1).await.unwrap_err();
    assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid);
}

#[tokio::test]
async fn statefulset_daemonset_job_and_cronjob() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-work").await;
    let sts: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "busybox"}],
                                       "terminationGracePeriodSeconds": 0}}}
    }))
    .expect("sts");
    let sets = c.stateful_sets(&ns.name);
    sets.apply(&sts, FIELD_MANAGER, false)
        .await
        .expect("apply sts");
    let st = sets.wait_rollout("db", T).await.expect("sts rollout");
    assert_eq!(st.ready, 2);
    assert_eq!(sets.pods_of("db").await.expect("pods").len(), 2);

    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "busybox"}],
                                       "nodeSelector": {"type": "kwok"},
                                       "terminationGracePeriodSeconds": 0}}}
    }))
    .expect("ds");
    let dss = c.daemon_sets(&ns.name);
    dss.create(&ds).await.expect("create ds");
    let st = dss.wait_rollout("agent", T).await.expect("ds rollout");
    assert!(st.desired >= 3, "{st:?}");
    assert_eq!(
        dss.pods_of("agent").await.expect("pods").len() as i32,
        st.desired
    );

    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"containers": [{"name": "j", "image": "busybox"}],
                                       "restartPolicy": "Never"}}}
    }))
    .expect("job");
    let jobs = c.jobs(&ns.name);
    jobs.create(&job).await.expect("create job");
    let n = jobs.wait_for("once", T, |_| Some(())).await.map(|_| ());
    n.expect("job exists");
    // The job controller creates its pod.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if !jobs.pods_of("once").await.expect("pods").is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job pod never appeared"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let cj: CronJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *",
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "containers": [{"name": "j", "image": "busybox"}], "restartPolicy": "Never"}}}}}
    }))
    .expect("cronjob");
    let cjs = c.cron_jobs(&ns.name);
    cjs.create(&cj).await.expect("create cj");
    let s = cjs.suspend("nightly").await.expect("suspend");
    assert_eq!(s.spec.and_then(|s| s.suspend), Some(true));
    let r = cjs.resume("nightly").await.expect("resume");
    assert_eq!(r.spec.and_then(|s| s.suspend), Some(false));
    assert!(
        cjs.pods_of("nightly")
            .await
            .expect("no jobs yet")
            .is_empty()
    );
}

/// Names of the objects, sorted.
fn names<K: kube::Resource>(objs: &[K]) -> Vec<String> {
    let mut v: Vec<String> = objs
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

/// Creates `a` and `b` labelled `kubepkg.io/suite=lgd` and `other` without
/// the label, then checks list by selector, get, delete (true, then false)
/// and NotFound after the delete.
async fn list_get_delete<K>(w: &Resources<K>, manifest: fn(&str) -> serde_json::Value)
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
    let kind = w.kind().to_string();
    for (name, labelled) in [("a", true), ("b", true), ("other", false)] {
        let mut v = manifest(name);
        if labelled {
            v["metadata"]["labels"] = serde_json::json!({"kubepkg.io/suite": "lgd"});
        }
        let obj: K = serde_json::from_value(v).unwrap_or_else(|e| panic!("{kind} json: {e}"));
        w.create(&obj)
            .await
            .unwrap_or_else(|e| panic!("create {kind} {name}: {e}"));
    }
    let sel = ListOptions::labels("kubepkg.io/suite=lgd");
    let listed = w.list(&sel).await.expect("list by selector");
    assert_eq!(names(&listed), ["a", "b"], "{kind} by selector");
    let all = w.list(&ListOptions::default()).await.expect("list all");
    assert_eq!(names(&all), ["a", "b", "other"], "{kind} unfiltered");

    let got = w.get("a").await.expect("get");
    assert_eq!(got.meta().name.as_deref(), Some("a"), "{kind}");
    assert_eq!(got.meta().namespace.as_deref(), w.namespace(), "{kind}");
    assert_eq!(
        got.meta()
            .labels
            .as_ref()
            .and_then(|l| l.get("kubepkg.io/suite"))
            .map(String::as_str),
        Some("lgd"),
        "{kind}"
    );
    let err = w.get("missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{kind}: {err}");

    assert!(
        w.delete("a", &DeleteOptions::default())
            .await
            .expect("delete"),
        "{kind}: the first delete finds the object"
    );
    w.wait_deleted("a", T).await.expect("gone");
    assert!(
        !w.delete("a", &DeleteOptions::default())
            .await
            .expect("delete again"),
        "{kind}: the second delete finds nothing"
    );
    let err = w.get("a").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "{kind} after delete: {err}"
    );
    let listed = w.list(&sel).await.expect("list after delete");
    assert_eq!(names(&listed), ["b"], "{kind} after delete");
}

fn deployment_manifest(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}
    })
}

fn statefulset_manifest(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {"replicas": 0, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}
    })
}

fn daemonset_manifest(name: &str) -> serde_json::Value {
    // A node selector no node matches: no pods.
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}],
                                       "nodeSelector": {"kubepkg.io/no-such-node": "true"}}}}
    })
}

fn replicaset_manifest(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}
    })
}

fn job_manifest(name: &str) -> serde_json::Value {
    // Suspended: no pods.
    serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"suspend": true,
                 "template": {"spec": {"containers": [{"name": "j", "image": "busybox"}],
                                       "restartPolicy": "Never"}}}
    })
}

fn cronjob_manifest(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": "0 3 * * *", "suspend": true,
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "containers": [{"name": "j", "image": "busybox"}], "restartPolicy": "Never"}}}}}
    })
}

#[tokio::test]
async fn deployments_list_get_delete() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-lgd-deploy").await;
    list_get_delete(&c.deployments(&ns.name), deployment_manifest).await;
}

#[tokio::test]
async fn statefulsets_list_get_delete() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-lgd-sts").await;
    list_get_delete(&c.stateful_sets(&ns.name), statefulset_manifest).await;
}

#[tokio::test]
async fn daemonsets_list_get_delete() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-lgd-ds").await;
    list_get_delete(&c.daemon_sets(&ns.name), daemonset_manifest).await;
}

#[tokio::test]
async fn replicasets_list_get_delete() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-lgd-rs").await;
    list_get_delete(&c.replica_sets(&ns.name), replicaset_manifest).await;
}

#[tokio::test]
async fn jobs_list_get_delete() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-lgd-job").await;
    list_get_delete(&c.jobs(&ns.name), job_manifest).await;
}

#[tokio::test]
async fn cronjobs_list_get_delete() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-lgd-cj").await;
    list_get_delete(&c.cron_jobs(&ns.name), cronjob_manifest).await;
}

/// Polls `f` every 300 ms until it returns `Some`, panicking with `what`
/// and the last value seen after `timeout`.
async fn poll<T, D: std::fmt::Debug, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, D>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = f().await;
        match last {
            Ok(t) => return t,
            Err(d) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what} within {timeout:?}; last seen: {d:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Pods not being deleted.
fn live(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn revision_hash(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

fn template_restarted_at(
    t: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> Option<String> {
    t.and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT))
        .cloned()
}

fn on_kwok_node(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| n.starts_with("kwok-") || env().nodes.iter().any(|e| e == n))
}

#[tokio::test]
async fn statefulset_and_replicaset_scale() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-scale").await;
    let sts: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "busybox"}],
                                       "terminationGracePeriodSeconds": 0}}}
    }))
    .expect("sts");
    let sets = c.stateful_sets(&ns.name);
    sets.create(&sts).await.expect("create sts");
    assert_eq!(sets.wait_rollout("db", T).await.expect("rollout").ready, 1);

    sets.scale("db", 3).await.expect("scale up");
    let got = sets.get("db").await.expect("get");
    assert_eq!(got.spec.and_then(|s| s.replicas), Some(3));
    let st = sets.wait_rollout("db", T).await.expect("scaled rollout");
    assert_eq!((st.desired, st.ready), (3, 3), "{st:?}");
    let pods = live(sets.pods_of("db").await.expect("pods"));
    assert_eq!(names(&pods), ["db-0", "db-1", "db-2"]);

    // Scaling down removes the highest ordinals.
    sets.scale("db", 1).await.expect("scale down");
    let left = poll("the StatefulSet to shrink to one pod", T, || async {
        let pods = sets.pods_of("db").await.expect("pods");
        if pods.len() == 1 {
            Ok(pods)
        } else {
            Err(names(&pods))
        }
    })
    .await;
    assert_eq!(names(&left), ["db-0"]);
    let err = sets.scale("missing", 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}],
                                       "terminationGracePeriodSeconds": 0}}}
    }))
    .expect("rs");
    let sets = c.replica_sets(&ns.name);
    sets.create(&rs).await.expect("create rs");
    let ready = |want: i32| {
        move |r: &ReplicaSet| {
            let st = r.status.clone().unwrap_or_default();
            (st.ready_replicas.unwrap_or(0) == want && st.replicas == want).then_some(())
        }
    };
    sets.wait_for("web", T, ready(1)).await.expect("1 ready");
    sets.scale("web", 3).await.expect("scale rs up");
    sets.wait_for("web", T, ready(3)).await.expect("3 ready");
    let pods = live(sets.pods_of("web").await.expect("pods"));
    assert_eq!(pods.len(), 3, "{:?}", names(&pods));
    assert!(pods.iter().all(on_kwok_node), "{:?}", names(&pods));
    sets.scale("web", 0).await.expect("scale rs to 0");
    sets.wait_for("web", T, ready(0)).await.expect("0 replicas");
    poll("the ReplicaSet's pods to go", T, || async {
        let pods = sets.pods_of("web").await.expect("pods");
        if pods.is_empty() {
            Ok(())
        } else {
            Err(names(&pods))
        }
    })
    .await;
}

#[tokio::test]
async fn statefulset_and_daemonset_restart() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-restart").await;
    let sts: StatefulSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "busybox"}],
                                       "terminationGracePeriodSeconds": 0}}}
    }))
    .expect("sts");
    let sets = c.stateful_sets(&ns.name);
    sets.create(&sts).await.expect("create sts");
    sets.wait_rollout("db", T).await.expect("rollout");
    let before = sets.get("db").await.expect("get");
    assert_eq!(
        template_restarted_at(before.spec.as_ref().map(|s| &s.template)),
        None
    );
    let rev0 = before
        .status
        .and_then(|s| s.update_revision)
        .expect("update revision");

    let restarted = sets.restart("db").await.expect("restart");
    let first = template_restarted_at(restarted.spec.as_ref().map(|s| &s.template))
        .expect("restartedAt on the template");
    let t1: k8s_openapi::jiff::Timestamp = first.parse().expect("an RFC 3339 time");
    let st = sets.wait_rollout("db", T).await.expect("restart rollout");
    assert!(st.complete && st.ready == 2, "{st:?}");
    let after = sets.get("db").await.expect("get");
    let status = after.status.clone().unwrap_or_default();
    let rev1 = status.update_revision.clone().expect("update revision");
    assert_ne!(rev1, rev0, "the restart makes a new revision");
    assert_eq!(status.current_revision.as_deref(), Some(rev1.as_str()));
    let pods = poll("the StatefulSet's pods on the new revision", T, || async {
        let pods = live(sets.pods_of("db").await.expect("pods"));
        if pods.len() == 2 && pods.iter().all(|p| revision_hash(p) == rev1) {
            Ok(pods)
        } else {
            Err(pods
                .iter()
                .map(|p| (p.metadata.name.clone(), revision_hash(p)))
                .collect::<Vec<_>>())
        }
    })
    .await;
    assert_eq!(names(&pods), ["db-0", "db-1"]);
    // A second restart stamps a later time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = sets.restart("db").await.expect("restart again");
    let second =
        template_restarted_at(again.spec.as_ref().map(|s| &s.template)).expect("restartedAt");
    assert_ne!(second, first);
    assert!(
        second
            .parse::<k8s_openapi::jiff::Timestamp>()
            .expect("time")
            > t1
    );
    sets.wait_rollout("db", T)
        .await
        .expect("second restart rollout");

    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "busybox"}],
                                       "nodeSelector": {"type": "kwok"},
                                       "terminationGracePeriodSeconds": 0}}}
    }))
    .expect("ds");
    let dss = c.daemon_sets(&ns.name);
    dss.create(&ds).await.expect("create ds");
    let st = dss.wait_rollout("agent", T).await.expect("ds rollout");
    let desired = st.desired;
    assert!(desired >= 1, "{st:?}");
    let old: BTreeSet<String> = live(dss.pods_of("agent").await.expect("pods"))
        .iter()
        .map(revision_hash)
        .collect();
    assert_eq!(old.len(), 1, "one revision before the restart: {old:?}");

    let restarted = dss.restart("agent").await.expect("restart ds");
    assert!(
        template_restarted_at(restarted.spec.as_ref().map(|s| &s.template)).is_some(),
        "restartedAt on the DaemonSet template"
    );
    let st = dss
        .wait_rollout("agent", T)
        .await
        .expect("ds restart rollout");
    assert!(st.complete && st.updated == desired, "{st:?}");
    let pods = poll("the DaemonSet's pods replaced", T, || async {
        let pods = live(dss.pods_of("agent").await.expect("pods"));
        if pods.len() as i32 == desired && pods.iter().all(|p| !old.contains(&revision_hash(p))) {
            Ok(pods)
        } else {
            Err(pods
                .iter()
                .map(|p| (p.metadata.name.clone(), revision_hash(p)))
                .collect::<Vec<_>>())
        }
    })
    .await;
    assert!(pods.iter().all(on_kwok_node));
}

/// The pods whose `batch.kubernetes.io/job-name` label is `job`.
async fn job_pods(c: &Client, ns: &str, job: &str) -> Vec<Pod> {
    c.pods(ns)
        .list(&ListOptions::labels(format!(
            "batch.kubernetes.io/job-name={job}"
        )))
        .await
        .expect("list job pods")
}

fn job(name: &str, owner: Option<&CronJob>) -> Job {
    let mut v = serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"parallelism": 2, "completions": 2,
                 "template": {"spec": {"containers": [{"name": "j", "image": "busybox"}],
                                       "nodeSelector": {"type": "kwok"},
                                       "restartPolicy": "Never",
                                       "terminationGracePeriodSeconds": 0}}}
    });
    if let Some(cj) = owner {
        // As `kubectl create job --from=cronjob/...` makes it.
        v["metadata"]["ownerReferences"] = serde_json::json!([{
            "apiVersion": "batch/v1", "kind": "CronJob",
            "name": cj.metadata.name, "uid": cj.metadata.uid,
            "controller": true, "blockOwnerDeletion": true
        }]);
    }
    serde_json::from_value(v).expect("job json")
}

/// Waits until Job `name` has 2 pods placed on kwok nodes (Running, or
/// already Succeeded) and returns their names.
async fn wait_job_pods(c: &Client, ns: &str, name: &str) -> Vec<String> {
    poll("the Job's 2 pods to run on kwok nodes", T, || async {
        let pods = job_pods(c, ns, name).await;
        let placed = pods.len() == 2
            && pods.iter().all(|p| {
                on_kwok_node(p) && matches!(kubepkg_k8s_api::pod::phase(p), "Running" | "Succeeded")
            });
        if placed {
            Ok(names(&pods))
        } else {
            Err(pods
                .iter()
                .map(|p| {
                    (
                        p.metadata.name.clone(),
                        kubepkg_k8s_api::pod::phase(p).to_string(),
                    )
                })
                .collect::<Vec<_>>())
        }
    })
    .await
}

async fn wait_no_job_pods(c: &Client, ns: &str, name: &str) {
    poll("the deleted Job's pods to be deleted too", T, || async {
        let pods = job_pods(c, ns, name).await;
        if pods.is_empty() {
            Ok(())
        } else {
            // Orphaned pods have lost their owner reference.
            Err(pods
                .iter()
                .map(|p| (p.metadata.name.clone(), p.metadata.owner_references.clone()))
                .collect::<Vec<_>>())
        }
    })
    .await;
}

#[tokio::test]
async fn deleting_a_job_or_cronjob_with_default_options_removes_their_pods() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-jobdel").await;
    let jobs = c.jobs(&ns.name);

    // A plain Job: the server's default for batch/v1 would orphan its pods.
    jobs.create(&job("run", None)).await.expect("create job");
    let pods = wait_job_pods(&c, &ns.name, "run").await;
    assert_eq!(pods.len(), 2);
    assert!(
        jobs.delete("run", &DeleteOptions::default())
            .await
            .expect("delete job")
    );
    jobs.wait_deleted("run", T).await.expect("job gone");
    wait_no_job_pods(&c, &ns.name, "run").await;

    // An explicit Orphan is respected: the pods stay, without an owner.
    jobs.create(&job("keep", None)).await.expect("create job");
    wait_job_pods(&c, &ns.name, "keep").await;
    let orphan = DeleteOptions {
        propagation: Propagation::Orphan,
        ..Default::default()
    };
    assert!(jobs.delete("keep", &orphan).await.expect("orphan delete"));
    jobs.wait_deleted("keep", T).await.expect("job gone");
    let kept = poll("the orphaned pods to lose their owner", T, || async {
        let pods = job_pods(&c, &ns.name, "keep").await;
        if pods.len() == 2
            && pods.iter().all(|p| {
                p.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            })
        {
            Ok(pods)
        } else {
            Err(pods
                .iter()
                .map(|p| (p.metadata.name.clone(), p.metadata.owner_references.clone()))
                .collect::<Vec<_>>())
        }
    })
    .await;
    assert_eq!(kept.len(), 2);

    // A CronJob takes its Jobs, and their pods, along.
    let cjs = c.cron_jobs(&ns.name);
    let cj: CronJob = serde_json::from_value(cronjob_manifest("nightly")).expect("cronjob");
    let cj = cjs.create(&cj).await.expect("create cronjob");
    jobs.create(&job("nightly-manual", Some(&cj)))
        .await
        .expect("create owned job");
    wait_job_pods(&c, &ns.name, "nightly-manual").await;
    assert_eq!(
        names(&cjs.pods_of("nightly").await.expect("pods of cronjob")).len(),
        2
    );
    assert!(
        cjs.delete("nightly", &DeleteOptions::default())
            .await
            .expect("delete cronjob")
    );
    cjs.wait_deleted("nightly", T).await.expect("cronjob gone");
    jobs.wait_deleted("nightly-manual", T)
        .await
        .expect("the CronJob's Job is deleted with it");
    wait_no_job_pods(&c, &ns.name, "nightly-manual").await;
}

#[tokio::test]
async fn a_dry_run_delete_changes_nothing() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-wlh").await;
    let deps = c.deployments(&ns.name);
    deps.create(&deployment("web", 0)).await.expect("create");
    let dry = DeleteOptions {
        dry_run: true,
        ..Default::default()
    };
    assert!(deps.delete("web", &dry).await.expect("dry run"));
    assert!(deps.get_opt("web").await.expect("get").is_some());
    assert_eq!(
        names(&deps.list(&ListOptions::default()).await.expect("list")),
        ["web"]
    );
}
