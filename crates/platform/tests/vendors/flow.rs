//! The whole vendor flow end to end, against a vendor simulator whose
//! clusters are the local control plane (`cargo xtask env up`): create
//! through the provider, wait for the operation, fetch the kubeconfig,
//! import, list nodes through Kubernetes joined with the vendor's
//! instance ids, add nodes, remove one, delete.

use crate::common::{self, assert_absent, capture_logs, cleanup, unique, wait};
use kubepkg_platform::core::{ImportRequest, ImportSource, Platform};
use kubepkg_platform::provider::{AddNodes, ClusterProvider, ClusterSpec, NodePoolSpec};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::SimOptions;
use std::sync::Arc;
use std::time::Duration;

/// Waits until the platform's node list has `n` nodes joined with a
/// vendor instance id, all Ready.
async fn joined_nodes(
    platform: &Platform,
    cluster: &str,
    n: usize,
) -> Vec<kubepkg_platform::core::NodeView> {
    let start = std::time::Instant::now();
    loop {
        let records = platform
            .sync_vendor_nodes(cluster)
            .await
            .expect("sync vendor nodes");
        let nodes = platform
            .nodes(cluster)
            .await
            .expect("nodes through Kubernetes");
        let joined: Vec<_> = nodes
            .into_iter()
            .filter(|v| v.provider_instance_id.is_some())
            .collect();
        if records.len() == n && joined.len() == n && joined.iter().all(|v| v.ready) {
            return joined;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited 60 s for {n} joined, ready nodes; have {} records and {:?}",
            records.len(),
            joined
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run_flow(kind: &str, provider: Arc<dyn ClusterProvider>, secrets: &[&str]) {
    let (logs, _) = capture_logs();
    let platform = common::platform().await;
    let pname = format!("{kind}-sim");
    platform
        .providers()
        .insert_cluster(&pname, provider.clone());
    let name = unique("kpv");
    let spec = ClusterSpec {
        name: name.clone(),
        kubernetes_version: Some("1.30.0".into()),
        node_pools: vec![NodePoolSpec {
            name: "first".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: 1,
            ..NodePoolSpec::default()
        }],
        ..ClusterSpec::default()
    };
    // Create through the provider and wait for the operation.
    let op = platform
        .create_vendor_cluster(&pname, &spec)
        .await
        .expect("create");
    let done = platform
        .wait_operation(&op, &wait())
        .await
        .expect("created");
    assert_eq!(
        done.state,
        kubepkg_platform::store::OperationState::Succeeded
    );
    let vendor_id = op.vendor.target.clone();

    // Import with the provider's kubeconfig.
    let req = ImportRequest::new(
        &name,
        ImportSource::Provider {
            provider: pname.clone(),
            cluster_id: vendor_id.clone(),
        },
    );
    let report = platform.import_cluster(req).await.expect("import");
    assert_eq!(report.cluster.provider, pname);
    assert_eq!(
        report.cluster.provider_cluster_id.as_deref(),
        Some(vendor_id.as_str())
    );

    // Nodes through Kubernetes, joined with the vendor's instance ids.
    let first = joined_nodes(&platform, &name, 1).await;

    // Add two nodes in a new pool.
    let pool = NodePoolSpec {
        name: "more".into(),
        instance_type: "S5.MEDIUM4".into(),
        count: 2,
        labels: [("tier".to_string(), "batch".to_string())].into(),
        ..NodePoolSpec::default()
    };
    let add = platform
        .add_nodes(&name, &AddNodes::New { pool })
        .await
        .expect("add nodes");
    platform
        .wait_operation(&add, &wait())
        .await
        .expect("nodes added");
    let three = joined_nodes(&platform, &name, 3).await;
    assert!(
        three
            .iter()
            .filter(|n| n.labels.get("tier").map(String::as_str) == Some("batch"))
            .count()
            == 2
    );

    // Remove the first node.
    let gone = first[0].provider_instance_id.clone().expect("instance id");
    let rm = platform
        .remove_nodes(&name, std::slice::from_ref(&gone))
        .await
        .expect("remove");
    platform
        .wait_operation(&rm, &wait())
        .await
        .expect("removed");
    let two = joined_nodes(&platform, &name, 2).await;
    assert!(
        two.iter()
            .all(|n| n.provider_instance_id.as_deref() != Some(gone.as_str()))
    );

    // Delete: the vendor deletes, the platform forgets.
    platform.delete_cluster(&name).await.expect("delete");
    assert_eq!(
        platform.cluster(&name).await.expect_err("forgotten").kind(),
        ErrorKind::NotFound
    );
    let start = std::time::Instant::now();
    loop {
        match provider.describe_cluster(&vendor_id).await {
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            _ if start.elapsed() > Duration::from_secs(20) => panic!("vendor cluster not gone"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    cleanup(&name).await;
    let text = logs.text();
    for s in secrets {
        assert_absent("the logs", &text, s);
    }
}

#[tokio::test]
async fn tke_end_to_end() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let provider = Arc::new(common::tke(&sim, None));
    run_flow("tke", provider, &[&sim.secret, &sim.key_id]).await;
}

#[tokio::test]
async fn ack_end_to_end() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let provider = Arc::new(common::ack(&sim, None));
    run_flow("ack", provider, &[&sim.secret, &sim.key_id]).await;
}

#[tokio::test]
async fn rancher_end_to_end() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let provider = Arc::new(common::rancher(&sim, None));
    run_flow("rancher", provider, &[&sim.secret]).await;
}
