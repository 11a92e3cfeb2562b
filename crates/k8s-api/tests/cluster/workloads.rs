//! Workloads: rollout, scale, restart, rollback, pods by owner, CronJobs.

use crate::common::{TestNs, admin, deployment, pod};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kubepkg_k8s_api::instance::{RESTARTED_AT, REVISION};
use kubepkg_k8s_api::resource::FIELD_MANAGER;
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
