//! The cluster overview.

use crate::common::{TestNs, admin, env, pod};
use kubepkg_k8s_api::index::Metrics;
use kubepkg_util::quantity::Quantity;
use std::time::Duration;

#[tokio::test]
async fn overview_sums_requests_against_allocatable() {
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
