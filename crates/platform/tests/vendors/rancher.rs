//! The Rancher adapter against fixtures written from the Rancher v3 API
//! guide (resources `cluster`, `node`, `nodePool`, the
//! `generateKubeconfig` action, collections with `data` and
//! `pagination`; resources carry `state`, `transitioning` and
//! `transitioningMessage`) and from the error shape of its API framework,
//! `rancher/norman` (`httperror`: `{"type": "error", "status", "code",
//! "message"}`), each served by the simulator after it checked the bearer
//! key.

use crate::common::{self, wait};
use kubepkg_platform::Error;
use kubepkg_platform::provider::{ClusterProvider, ClusterSpec, VendorState};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::SimOptions;
use std::sync::Arc;

fn norman_error(status: u16, code: &str, message: &str) -> String {
    format!(r#"{{"type": "error", "status": {status}, "code": "{code}", "message": "{message}"}}"#)
}

#[tokio::test]
async fn clusters_and_nodes_map_the_unified_fields() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let rancher = common::rancher(&sim, None);
    sim.respond_next(
        200,
        r#"{"id": "c-m-4xk2r9vt", "type": "cluster", "name": "edge",
            "state": "active", "transitioning": "no", "transitioningMessage": "",
            "driver": "rke2", "version": {"gitVersion": "v1.30.4+rke2r1", "major": "1", "minor": "30"},
            "links": {"self": "https://rancher.example.com/v3/clusters/c-m-4xk2r9vt"},
            "actions": {"generateKubeconfig": "https://rancher.example.com/v3/clusters/c-m-4xk2r9vt?action=generateKubeconfig"}}"#,
    );
    let c = rancher
        .describe_cluster("c-m-4xk2r9vt")
        .await
        .expect("describe");
    assert_eq!(c.id, "c-m-4xk2r9vt");
    assert_eq!(c.name, "edge");
    assert_eq!(c.state, VendorState::Running);
    assert_eq!(c.version.as_deref(), Some("v1.30.4+rke2r1"));
    // A collection: `data`, no `pagination.next` on the last page.
    sim.respond_next(
        200,
        r#"{"type": "collection", "resourceType": "node", "pagination": {"limit": 1000, "total": 2},
            "data": [
              {"id": "c-m-4xk2r9vt:m-5b7f2", "type": "node", "nodeName": "edge-pool1-5b7f2",
               "nodePoolId": "c-m-4xk2r9vt:np-8d2kq", "state": "active", "clusterId": "c-m-4xk2r9vt"},
              {"id": "c-m-4xk2r9vt:m-9qv1x", "type": "node", "nodeName": "",
               "state": "provisioning", "clusterId": "c-m-4xk2r9vt"}]}"#,
    );
    let nodes = rancher.list_nodes("c-m-4xk2r9vt").await.expect("nodes");
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].instance_id, "c-m-4xk2r9vt:m-5b7f2");
    assert_eq!(nodes[0].node_name.as_deref(), Some("edge-pool1-5b7f2"));
    assert_eq!(nodes[0].node_pool.as_deref(), Some("c-m-4xk2r9vt:np-8d2kq"));
    assert_eq!(nodes[0].state, "active");
    assert_eq!(nodes[1].node_name, None, "not registered yet");
    // generateKubeconfig answers `{"type": "generateKubeconfigOutput", "config"}`.
    sim.respond_next(
        200,
        r#"{"type": "generateKubeconfigOutput", "baseType": "generateKubeconfigOutput",
            "config": "apiVersion: v1\nkind: Config\nclusters: []\n"}"#,
    );
    let kc = rancher
        .kubeconfig("c-m-4xk2r9vt")
        .await
        .expect("kubeconfig");
    assert!(kc.expose().starts_with("apiVersion: v1"));
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let rancher = common::rancher(&sim, None);
    let throttled = norman_error(429, "TooManyRequests", "rate limit exceeded");
    sim.respond_next(429, throttled.clone());
    sim.respond_next(429, throttled);
    sim.respond_next(200, r#"{"type": "collection", "data": []}"#);
    let before = sim.requests();
    let all = rancher.list_clusters().await.expect("retried");
    assert!(all.is_empty());
    assert_eq!(
        sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let rancher = common::rancher(&sim, None);
    for (status, code, kind) in [
        (401, "Unauthorized", ErrorKind::Unauthorized),
        (403, "PermissionDenied", ErrorKind::Forbidden),
    ] {
        sim.respond_next(status, norman_error(status, code, "must authenticate"));
        let before = sim.requests();
        let err = rancher.list_clusters().await.expect_err("refused");
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(sim.requests() - before, 1, "{code} is not retried");
        assert!(
            matches!(&err, Error::Provider { code: c, .. } if c == code),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn not_found_is_not_found() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let rancher = common::rancher(&sim, None);
    sim.respond_next(
        404,
        norman_error(
            404,
            "NotFound",
            r#"clusters.management.cattle.io \"c-gone\" not found"#,
        ),
    );
    let err = rancher.describe_cluster("c-gone").await.expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("c-gone"), "{err}");
    // A delete that is polled to the end ends once the cluster is not found.
    sim.respond_next(
        200,
        r#"{"id": "c-gone", "type": "cluster", "state": "removing"}"#,
    );
    let op = rancher
        .delete_cluster("c-gone")
        .await
        .expect("delete accepted");
    sim.respond_next(404, norman_error(404, "NotFound", "not found"));
    assert_eq!(
        rancher.poll(&op).await.expect("poll"),
        kubepkg_platform::provider::PollResult::Succeeded
    );
}

#[tokio::test]
async fn a_cluster_that_stays_provisioning_then_errors_is_recorded_failed() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let provider: Arc<dyn ClusterProvider> = Arc::new(common::rancher(&sim, None));
    let platform = common::platform().await;
    platform
        .providers()
        .insert_cluster("rancher-fixture", provider);
    sim.respond_next(
        201,
        r#"{"id": "c-fail1", "type": "cluster", "name": "rancher-fixture-fail", "state": "provisioning"}"#,
    );
    let provisioning = r#"{"id": "c-fail1", "type": "cluster", "state": "provisioning",
        "transitioning": "yes", "transitioningMessage": "Waiting for API to be available"}"#;
    sim.respond_next(200, provisioning);
    sim.respond_next(200, provisioning);
    sim.respond_next(
        200,
        r#"{"id": "c-fail1", "type": "cluster", "state": "error", "transitioning": "error",
            "transitioningMessage": "[Failed to reconcile etcd plane: etcd cluster is unhealthy]"}"#,
    );
    let op = platform
        .create_vendor_cluster(
            "rancher-fixture",
            &ClusterSpec {
                name: "rancher-fixture-fail".into(),
                ..ClusterSpec::default()
            },
        )
        .await
        .expect("accepted");
    assert_eq!(op.vendor.target, "c-fail1");
    let err = platform
        .wait_operation(&op, &wait())
        .await
        .expect_err("errored");
    match &err {
        Error::Provider { message, .. } => {
            assert!(message.contains("etcd cluster is unhealthy"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let rec = platform
        .store()
        .get_operation(&op.record.id)
        .await
        .expect("recorded");
    assert_eq!(rec.state, kubepkg_platform::store::OperationState::Failed);
}

#[tokio::test]
async fn answers_missing_fields_are_typed_errors() {
    let sim = kubepkg_vendor_sim::rancher::start(SimOptions::default()).await;
    let rancher = common::rancher(&sim, None);
    let malformed = |err: Error, what: &str| {
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.to_string().contains(what), "{what}: {err}");
    };
    sim.respond_next(200, r#"{"id": "c-1", "type": "cluster"}"#);
    malformed(
        rancher.describe_cluster("c-1").await.expect_err("no state"),
        "state",
    );
    sim.respond_next(200, r#"{"type": "collection"}"#);
    malformed(rancher.list_clusters().await.expect_err("no data"), "data");
    sim.respond_next(
        200,
        r#"{"type": "collection", "data": [{"nodeName": "n"}]}"#,
    );
    malformed(
        rancher.list_nodes("c-1").await.expect_err("no id"),
        "node id",
    );
    sim.respond_next(200, r#"{"type": "generateKubeconfigOutput"}"#);
    malformed(
        rancher.kubeconfig("c-1").await.expect_err("no config"),
        "config",
    );
    sim.respond_next(201, r#"{"type": "cluster", "name": "x"}"#);
    let spec = ClusterSpec {
        name: "x".into(),
        ..ClusterSpec::default()
    };
    malformed(
        rancher.create_cluster(&spec).await.expect_err("no id"),
        "id",
    );
    // No name, no version: defaults, not errors.
    sim.respond_next(
        200,
        r#"{"id": "c-2", "type": "cluster", "state": "pending"}"#,
    );
    let c = rancher.describe_cluster("c-2").await.expect("sparse");
    assert_eq!(c.name, "c-2");
    assert_eq!(c.version, None);
    assert_eq!(c.state, VendorState::Creating);
    // An error whose body is not norman's: mapped by its status.
    sim.respond_next(503, r#"{"message": "upstream unavailable"}"#);
    sim.respond_next(200, r#"{"type": "collection", "data": []}"#);
    rancher
        .list_clusters()
        .await
        .expect("a bare 503 is Unavailable, so retried");
}
