//! Nodes: cordon / uncordon, and drain through the eviction API honoring a
//! PodDisruptionBudget. Runs on a node of its own (kwok simulates it), tainted
//! so no other test's pods land there.

use crate::common::{TestNs, admin, admin_config};
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kubepkg_k8s_api::node::{DrainOptions, node_ready};
use kubepkg_k8s_api::{Event, WatchOptions};
use kubepkg_util::ErrorKind;
use std::time::Duration;

struct TestNode {
    name: String,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(c) = kubepkg_k8s_api::connect(&admin_config()).await {
                        let _ = c.nodes().delete(&name, &Default::default()).await;
                    }
                });
            }
        })
        .join();
    }
}

fn pinned_pod(name: &str, node: &str, labels: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [{"name": "app", "image": "busybox"}],
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "kubepkg.io/drain-test", "operator": "Exists"}],
            "terminationGracePeriodSeconds": 0
        }
    })
}

#[tokio::test]
async fn cordon_uncordon_and_drain_respecting_a_disruption_budget() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-drain").await;
    let node_name = kubepkg_testenv::unique_name("kp-node");
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node_name,
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux"}},
        "spec": {"taints": [{"key": "kubepkg.io/drain-test", "value": "yes", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
    }))
    .expect("node");
    let nodes = c.nodes();
    nodes.create(&node).await.expect("create node");
    let _guard = TestNode {
        name: node_name.clone(),
    };
    nodes
        .wait_for(&node_name, Duration::from_secs(60), |n| {
            node_ready(n).then_some(())
        })
        .await
        .expect("kwok makes the node Ready");

    let n = nodes.cordon(&node_name).await.expect("cordon");
    assert_eq!(n.spec.and_then(|s| s.unschedulable), Some(true));
    let n = nodes.uncordon(&node_name).await.expect("uncordon");
    assert_ne!(n.spec.and_then(|s| s.unschedulable), Some(true));

    // One replica guarded by a budget that allows no disruption.
    let dep: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guarded"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "guarded"}},
                 "template": pinned_pod("ignored", &node_name, serde_json::json!({"app": "guarded"}))}
    }))
    .expect("deployment");
    let deps = c.deployments(&ns.name);
    deps.create(&dep).await.expect("deployment");
    deps.wait_rollout("guarded", Duration::from_secs(90))
        .await
        .expect("rolled out");
    let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "guard"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}
    }))
    .expect("pdb");
    let pdbs = c.namespaced::<PodDisruptionBudget>(&ns.name);
    pdbs.create(&pdb).await.expect("pdb");
    // The disruption controller must have computed the budget.
    pdbs.wait_for("guard", Duration::from_secs(60), |p| {
        p.status
            .as_ref()
            .filter(|s| s.observed_generation.is_some())
            .map(|_| ())
    })
    .await
    .expect("pdb observed");

    // An unmanaged pod on the node makes the drain refuse up front.
    let bare: Pod = serde_json::from_value(pinned_pod(
        "bare",
        &node_name,
        serde_json::json!({"app": "bare"}),
    ))
    .expect("pod");
    c.pods(&ns.name).create(&bare).await.expect("bare pod");
    c.pods(&ns.name)
        .wait_ready("bare", Duration::from_secs(60))
        .await
        .expect("bare ready");
    let err = nodes
        .drain(&node_name, &DrainOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("bare"), "{err}");
    assert!(!err.cordoned, "{err:?}");
    assert!(err.report.evicted.is_empty(), "{err:?}");
    let bare_key = format!("{}/bare", ns.name);
    assert!(
        err.failed
            .iter()
            .any(|(k, why)| k == &bare_key && why.contains("controller")),
        "{err:?}"
    );
    let n = nodes.get(&node_name).await.expect("node");
    assert_ne!(
        n.spec.and_then(|s| s.unschedulable),
        Some(true),
        "refused drain must not cordon"
    );

    // With unmanaged pods allowed, the budget still blocks the guarded pod.
    let opts = DrainOptions {
        delete_unmanaged: true,
        timeout: Duration::from_secs(6),
        retry_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = nodes.drain(&node_name, &opts).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    // The API server answers a blocked eviction 429 with Retry-After: 10;
    // the drain's own loop handles it, so the drain ends on its timeout
    // (plus at most one retry interval), not tens of seconds later.
    assert!(
        took <= opts.timeout + opts.retry_interval + Duration::from_secs(1),
        "a blocked drain took {took:?} (timeout {:?})",
        opts.timeout
    );
    assert!(took >= Duration::from_secs(5), "gave up early: {took:?}");
    let guarded = deps.pods_of("guarded").await.expect("pods");
    assert_eq!(guarded.len(), 1, "the budget kept the pod");
    assert!(guarded[0].metadata.deletion_timestamp.is_none());
    let guarded_key = format!(
        "{}/{}",
        ns.name,
        guarded[0].metadata.name.clone().unwrap_or_default()
    );
    // What the failed drain did is kept: the bare pod was evicted, the
    // guarded one was not, and the node stays cordoned.
    assert_eq!(
        err.report.evicted,
        std::slice::from_ref(&bare_key),
        "{err:?}"
    );
    assert_eq!(
        err.failed.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        [&guarded_key],
        "{err:?}"
    );
    assert!(err.failed[0].1.contains("blocked"), "{err:?}");
    assert!(err.cordoned);
    let n = nodes.get(&node_name).await.expect("node");
    assert_eq!(
        n.spec.and_then(|s| s.unschedulable),
        Some(true),
        "a half-drained node stays cordoned"
    );
    assert!(
        c.pods(&ns.name)
            .get_opt("bare")
            .await
            .expect("get")
            .is_none(),
        "the evicted pod is gone"
    );

    // Lift the budget: the drain completes.
    pdbs.delete("guard", &Default::default())
        .await
        .expect("delete pdb");
    let report = nodes
        .drain(
            &node_name,
            &DrainOptions {
                timeout: Duration::from_secs(60),
                ..opts
            },
        )
        .await
        .expect("drain");
    assert!(
        report.evicted.iter().any(|p| p.ends_with(&format!(
            "/{}",
            guarded[0].metadata.name.clone().unwrap_or_default()
        ))),
        "{report:?}"
    );
    let left: Vec<Pod> = nodes
        .pods_on(&node_name)
        .await
        .expect("pods on node")
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && crate_pod_running(p))
        .collect();
    assert!(
        left.is_empty(),
        "{:?}",
        left.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
    );
    let n = nodes.get(&node_name).await.expect("node");
    assert_eq!(
        n.spec.and_then(|s| s.unschedulable),
        Some(true),
        "drained node stays cordoned"
    );
}

fn crate_pod_running(p: &Pod) -> bool {
    kubepkg_k8s_api::pod::phase(p) == "Running"
}

/// A kwok node of its own, tainted so no other test's pods land there;
/// deleted when the guard drops.
async fn own_node(c: &kubepkg_k8s_api::Client, prefix: &str) -> TestNode {
    let node_name = kubepkg_testenv::unique_name(prefix);
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node_name,
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux"}},
        "spec": {"taints": [{"key": "kubepkg.io/drain-test", "value": "yes", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
    }))
    .expect("node");
    c.nodes().create(&node).await.expect("create node");
    let guard = TestNode { name: node_name };
    c.nodes()
        .wait_for(&guard.name, Duration::from_secs(60), |n| {
            node_ready(n).then_some(())
        })
        .await
        .expect("kwok makes the node Ready");
    guard
}

#[tokio::test]
async fn a_drain_gives_evicted_pods_the_grace_period_it_was_asked_for() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-grace").await;
    let node = own_node(&c, "kp-grace-node").await;
    let pods = c.pods(&ns.name);
    // The pod's own grace period is 30 s; the drain asks for 7.
    let mut spec = pinned_pod("slow", &node.name, serde_json::json!({"app": "slow"}));
    spec["spec"]["terminationGracePeriodSeconds"] = 30.into();
    let pod: Pod = serde_json::from_value(spec).expect("pod");
    pods.create(&pod).await.expect("create pod");
    pods.wait_ready("slow", Duration::from_secs(60))
        .await
        .expect("ready");

    // Watch the pod: the eviction's graceful delete shows up as an update
    // carrying deletionTimestamp and deletionGracePeriodSeconds (kwok then
    // deletes it for good).
    let mut w = pods.watch(WatchOptions::labels("app=slow"));
    let first = tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("initial event in time")
        .expect("stream open")
        .expect("initial event");
    assert!(matches!(first, Event::Added(_)), "{first:?}");

    let report = c
        .nodes()
        .drain(
            &node.name,
            &DrainOptions {
                grace_period_secs: Some(7),
                delete_unmanaged: true,
                timeout: Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
        .expect("drain");
    assert_eq!(report.evicted, [format!("{}/slow", ns.name)], "{report:?}");

    let grace = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = w.next().await {
            let ev = ev.expect("watch event");
            let meta = &ev.object().metadata;
            if meta.deletion_timestamp.is_some() {
                return meta.deletion_grace_period_seconds;
            }
        }
        panic!("the watch ended before the pod was marked for deletion");
    })
    .await
    .expect("the pod is marked for deletion in time");
    // kube 5's own `evict` sent the options under `delete_options`, which
    // the API server ignores: the pod's 30 s would show here.
    assert_eq!(
        grace,
        Some(7),
        "the eviction's grace period was not honoured"
    );
    assert!(
        pods.get_opt("slow").await.expect("get").is_none(),
        "evicted pod is gone"
    );
}
