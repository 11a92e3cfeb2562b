//! Nodes: cordon / uncordon, and drain through the eviction API honoring a
//! PodDisruptionBudget. Runs on a node of its own (kwok simulates it), tainted
//! so no other test's pods land there.

use crate::common::{TestNs, admin, admin_config};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kubepkg_k8s_api::node::{DrainOptions, node_ready};
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
