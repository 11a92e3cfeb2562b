//! The cluster overview.

use crate::common::{TestNs, admin, admin_config, env, pod};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kubepkg_k8s_api::index::Metrics;
use kubepkg_util::quantity::Quantity;
use std::time::Duration;

/// Serialises this module's tests: one registers `metrics.k8s.io` (as an
/// unavailable APIService), which the others would see.
static METRICS_API: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The APIService the metrics-server would register.
const METRICS_APISERVICE: &str = "v1beta1.metrics.k8s.io";
/// Marks the APIService as this test's own (so a leftover can be removed).
const TEST_LABEL: (&str, &str) = ("kubepkg.io/test", "metrics-unavailable");

/// Deletes the test's APIService when dropped (also when the test panics):
/// left behind, it would break discovery for every other test and make
/// namespaces linger in Terminating.
struct MetricsApiService;

impl Drop for MetricsApiService {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(c) = kubepkg_k8s_api::connect(&admin_config()).await {
                        let _ = c
                            .cluster::<APIService>()
                            .delete(METRICS_APISERVICE, &Default::default())
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// Polls `node_metrics` until `want` holds (30 s at most).
async fn metrics_until(c: &kubepkg_k8s_api::Client, want: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (m, usage) = c.node_metrics().await.expect("node metrics");
        if want(&m) {
            assert!(usage.is_empty(), "{usage:?}");
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics still {m:?} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_unavailable_metrics_api_does_not_fail_the_overview() {
    let _serial = METRICS_API.lock().await;
    let c = admin().await;
    let apisvcs = c.cluster::<APIService>();
    // A leftover of an interrupted run goes first; a real one is a setup problem.
    if let Some(old) = apisvcs.get_opt(METRICS_APISERVICE).await.expect("get") {
        let ours = old
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(TEST_LABEL.0))
            .is_some_and(|v| v == TEST_LABEL.1);
        assert!(ours, "a real {METRICS_APISERVICE} is registered: {old:?}");
        apisvcs
            .delete(METRICS_APISERVICE, &Default::default())
            .await
            .expect("delete leftover");
        apisvcs
            .wait_deleted(METRICS_APISERVICE, Duration::from_secs(30))
            .await
            .expect("leftover gone");
    }
    let ns = TestNs::new(&c, "kp-metrics").await;
    // A Service without a selector has no endpoints: the aggregator cannot
    // reach it and answers 503 for the whole group.
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nowhere"},
        "spec": {"ports": [{"port": 443, "targetPort": 4443}]}
    }))
    .expect("service");
    c.services(&ns.name).create(&svc).await.expect("service");
    let api: APIService = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": METRICS_APISERVICE, "labels": {TEST_LABEL.0: TEST_LABEL.1}},
        "spec": {
            "group": "metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": ns.name, "name": "nowhere", "port": 443}
        }
    }))
    .expect("apiservice");
    let guard = MetricsApiService;
    apisvcs.create(&api).await.expect("register metrics.k8s.io");

    // The aggregator picks the APIService up within moments.
    let m = metrics_until(&c, |m| *m != Metrics::Absent).await;
    assert!(matches!(m, Metrics::Unavailable(_)), "{m:?}");

    let o = c
        .overview()
        .await
        .expect("the overview survives an unavailable metrics API");
    match &o.metrics {
        Metrics::Unavailable(why) => assert!(!why.is_empty()),
        other => panic!("metrics reported as {other:?}"),
    }
    assert!(!o.metrics.is_available());
    assert_eq!(o.version, env().version);
    let node = &env().nodes[0];
    let n = o
        .nodes
        .iter()
        .find(|n| &n.name == node)
        .expect("kwok node listed");
    assert!(n.ready);
    assert!(o.nodes.iter().all(|n| n.usage.is_none()));
    assert!(o.namespaces.contains(&ns.name));
    assert!(o.ready_nodes >= env().nodes.len());

    // Unregistered again: back to Absent (what the other tests expect).
    drop(guard);
    let m = metrics_until(&c, |m| *m == Metrics::Absent).await;
    assert_eq!(m, Metrics::Absent);
}

#[tokio::test]
async fn overview_sums_requests_against_allocatable() {
    let _serial = METRICS_API.lock().await;
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-index").await;
    let node = env().nodes[0].clone();
    let before = c.overview().await.expect("overview");
    let n0 = before
        .nodes
        .iter()
        .find(|n| n.name == node)
        .expect("kwok node listed");
    assert!(n0.ready);
    assert_eq!(n0.allocatable_cpu, "32".parse::<Quantity>().expect("q"));
    assert_eq!(
        n0.allocatable_memory,
        "256Gi".parse::<Quantity>().expect("q")
    );
    assert_eq!(before.version, env().version);
    assert!(before.ready_nodes >= env().nodes.len());
    assert!(before.namespaces.contains(&"default".to_string()));
    assert!(before.namespaces.contains(&ns.name));
    assert_eq!(before.metrics, Metrics::Absent, "no metrics-server here");
    assert!(n0.usage.is_none());

    // Two pinned pods of 250m / 64Mi each on node 0.
    for i in 0..2 {
        c.pods(&ns.name)
            .create(&pod(&format!("load{i}"), &[], Some(&node)))
            .await
            .expect("pod");
    }
    for i in 0..2 {
        c.pods(&ns.name)
            .wait_ready(&format!("load{i}"), Duration::from_secs(60))
            .await
            .expect("ready");
    }
    let after = c.overview().await.expect("overview");
    let n1 = after.nodes.iter().find(|n| n.name == node).expect("node");
    // Other tests may add pods concurrently: at least our 500m / 128Mi more.
    let dcpu = n1
        .requested_cpu
        .checked_sub(n0.requested_cpu)
        .expect("in range");
    let dmem = n1
        .requested_memory
        .checked_sub(n0.requested_memory)
        .expect("in range");
    assert!(
        dcpu >= "500m".parse::<Quantity>().expect("q"),
        "cpu grew by {dcpu}"
    );
    assert!(
        dmem >= "128Mi".parse::<Quantity>().expect("q"),
        "memory grew by {dmem}"
    );
    assert!(n1.pods >= n0.pods + 2);
    assert!(after.pods_by_phase.get("Running").copied().unwrap_or(0) >= 2);
    let total_alloc: Quantity = after.nodes.iter().map(|n| n.allocatable_cpu).sum();
    assert_eq!(after.totals.allocatable_cpu, total_alloc);
}
