//! The `cnat` operator (`examples/cnat`) against the local control plane:
//! kube-apiserver, kube-controller-manager (Jobs, garbage collection),
//! kube-scheduler and kwok's nodes. Each test runs its own controller for
//! a namespace of its own. Needs `cargo xtask env up`.

#[path = "cluster/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../examples/cnat/operator.rs"]
#[allow(dead_code)]
mod operator;

use common::{TestNs, admin};
use futures::StreamExt as _;
use kubepkg_k8s_api::k8s_openapi::api::batch::v1::Job;
use kubepkg_k8s_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubepkg_k8s_api::k8s_openapi::jiff::{SignedDuration, Timestamp};
use kubepkg_k8s_api::kube::ResourceExt as _;
use kubepkg_k8s_api::runtime::RequeueBackoff;
use kubepkg_k8s_api::{Client, DeleteOptions, ListOptions};
use operator::{AT_LABEL, At, AtSpec, AtStatus, Ctx, DONE, PENDING};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);
const BASE: Duration = Duration::from_millis(200);

/// The CRD installed, a namespace, and a controller running for it.
struct Operator {
    client: Client,
    ns: TestNs,
    ctx: Arc<Ctx>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn operator(prefix: &str) -> Operator {
    let client = admin().await;
    operator::install_crd(&client)
        .await
        .expect("install the At CRD");
    let ns = TestNs::new(&client, prefix).await;
    let ctx = Ctx::new(
        client.clone(),
        RequeueBackoff::new(BASE, Duration::from_secs(10)),
    );
    let stream = operator::controller(Some(&ns.name), ctx.clone()).expect("controller");
    let task = tokio::spawn(stream.for_each(|()| async {}));
    Operator {
        client,
        ns,
        ctx,
        task,
    }
}

fn rfc3339(t: Timestamp) -> String {
    let v = serde_json::to_value(Time(t)).expect("a time serializes");
    v.as_str().expect("a string").to_string()
}

fn at(name: &str, schedule: Timestamp) -> At {
    At::new(
        name,
        AtSpec {
            schedule: rfc3339(schedule),
            command: vec!["echo".into(), name.into()],
        },
    )
}

impl Operator {
    fn ats(&self) -> kubepkg_k8s_api::Resources<At> {
        self.client.namespaced(&self.ns.name)
    }

    async fn wait_phase(&self, name: &str, phase: &str) -> AtStatus {
        self.ats()
            .wait_for(name, T, |at| {
                let status = at.status.clone().unwrap_or_default();
                (status.phase == phase).then_some(status)
            })
            .await
            .unwrap_or_else(|e| panic!("At {name} never reached {phase}: {e}"))
    }

    async fn job(&self, name: &str) -> Option<Job> {
        self.client
            .jobs(&self.ns.name)
            .get_opt(&format!("{name}-run"))
            .await
            .expect("get the At's Job")
    }
}

#[tokio::test]
async fn a_schedule_in_the_past_runs_at_once_and_its_pod_succeeds() {
    let op = operator("kp-cnat-past").await;
    let created = op
        .ats()
        .create(&at(
            "past",
            Timestamp::now() - SignedDuration::from_hours(1),
        ))
        .await
        .expect("create the At");
    let done = op.wait_phase("past", DONE).await;
    assert_eq!(done.result.as_deref(), Some("Succeeded"), "{done:?}");
    assert_eq!(done.job.as_deref(), Some("past-run"));
    // The Job belongs to the At, and its Pod ran to completion on kwok.
    let job = op.job("past").await.expect("the At's Job");
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("At", created.uid().unwrap_or_default().as_str())
    );
    let pods = op
        .client
        .pods(&op.ns.name)
        .list(&ListOptions::labels(format!("{AT_LABEL}=past")))
        .await
        .expect("list the At's pods");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(kubepkg_k8s_api::pod::phase(&pods[0]), "Succeeded");
    assert!(
        op.ctx.attempts_of("past").iter().all(|a| a.error.is_none()),
        "{:?}",
        op.ctx.attempts_of("past")
    );
}

#[tokio::test]
async fn a_schedule_5s_ahead_stays_pending_until_then() {
    let op = operator("kp-cnat-later").await;
    // A whole second, as the API server's timestamps are.
    let schedule = Timestamp::from_second(Timestamp::now().as_second() + 5).expect("a time");
    op.ats()
        .create(&at("later", schedule))
        .await
        .expect("create the At");
    op.wait_phase("later", PENDING).await;
    // Pending and no Job, while the schedule is still ahead.
    let job = op.job("later").await;
    assert!(
        Timestamp::now() < schedule,
        "the check came after the schedule: the test machine is too slow for it"
    );
    assert!(job.is_none(), "a Job before the schedule: {job:?}");
    let done = op.wait_phase("later", DONE).await;
    assert_eq!(done.result.as_deref(), Some("Succeeded"));
    // The Job was created at or after the schedule, never before.
    let job = op.job("later").await.expect("the At's Job");
    let created = job.metadata.creation_timestamp.expect("a creation time").0;
    assert!(
        created >= schedule,
        "Job created {created}, scheduled {schedule}"
    );
}

#[tokio::test]
async fn a_failing_reconcile_is_retried_with_growing_delays() {
    let op = operator("kp-cnat-fail").await;
    // Someone else's Job (suspended: it runs nothing) holds the name the
    // At's Job needs, so every reconcile fails until it goes.
    let foreign: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "fail-run"},
        "spec": {"suspend": true, "template": {"spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "restartPolicy": "Never"}}}
    }))
    .expect("job json");
    let jobs = op.client.jobs(&op.ns.name);
    jobs.create(&foreign).await.expect("create the foreign Job");
    op.ats()
        .create(&at(
            "fail",
            Timestamp::now() - SignedDuration::from_secs(60),
        ))
        .await
        .expect("create the At");

    // Five failures: their gaps are the backoff's delays, doubling.
    let deadline = tokio::time::Instant::now() + T;
    let failures = loop {
        let failures: Vec<_> = op
            .ctx
            .attempts_of("fail")
            .into_iter()
            .filter(|a| a.error.is_some())
            .collect();
        if failures.len() >= 5 {
            break failures;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 5 failed reconciles in {T:?}: {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = failures[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("not owned by At fail"), "{error}");
    let gaps: Vec<Duration> = failures.windows(2).map(|w| w[1].at - w[0].at).collect();
    let slack = Duration::from_millis(30);
    for (i, gap) in gaps.iter().enumerate() {
        let delay = BASE * (1 << i);
        assert!(
            *gap + slack >= delay,
            "gap {i} {gap:?} shorter than {delay:?}: {gaps:?}"
        );
        assert!(
            *gap < delay + Duration::from_secs(2),
            "gap {i} {gap:?} way over {delay:?}: {gaps:?}"
        );
    }
    assert!(
        gaps.windows(2).all(|g| g[1] > g[0]),
        "delays do not grow: {gaps:?}"
    );
    let status = op
        .ats()
        .get("fail")
        .await
        .expect("get the At")
        .status
        .unwrap_or_default();
    assert_eq!(status.phase, PENDING, "{status:?}");

    // The name freed, the next retry succeeds and the backoff starts over.
    jobs.delete("fail-run", &DeleteOptions::default())
        .await
        .expect("delete the foreign Job");
    jobs.wait_deleted("fail-run", T)
        .await
        .expect("foreign Job gone");
    op.wait_phase("fail", DONE).await;
    let at = op.ats().get("fail").await.expect("get the At");
    assert_eq!(op.ctx.backoff.failures(&at), 0);
}

#[tokio::test]
async fn deleting_an_at_deletes_its_job_and_pod() {
    let op = operator("kp-cnat-del").await;
    op.ats()
        .create(&at("gone", Timestamp::now() - SignedDuration::from_secs(1)))
        .await
        .expect("create the At");
    op.wait_phase("gone", DONE).await;
    let at = op.ats().get("gone").await.expect("get the At");
    assert!(
        at.finalizers().iter().any(|f| f == operator::FINALIZER),
        "{:?}",
        at.finalizers()
    );
    let pods = op
        .client
        .pods(&op.ns.name)
        .list(&ListOptions::labels(format!("{AT_LABEL}=gone")))
        .await
        .expect("list the At's pods");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = pods[0].name_any();

    op.ats()
        .delete("gone", &DeleteOptions::default())
        .await
        .expect("delete the At");
    // The finalizer deleted the Job before letting the At go…
    op.ats().wait_deleted("gone", T).await.expect("At gone");
    op.client
        .jobs(&op.ns.name)
        .wait_deleted("gone-run", T)
        .await
        .expect("the At's Job deleted");
    // …and the Pod went with its Job.
    op.client
        .pods(&op.ns.name)
        .wait_deleted(&pod, T)
        .await
        .expect("the At's Pod deleted");
    let attempts = op.ctx.attempts_of("gone");
    assert!(attempts.iter().all(|a| a.error.is_none()), "{attempts:?}");
}
