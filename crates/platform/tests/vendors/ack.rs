//! The ACK adapter against fixtures written from Alibaba Cloud's Container
//! Service for Kubernetes API reference (ROA API 2015-12-15: the pages
//! "CreateCluster", "DescribeClusterDetail", "DescribeClustersV1",
//! "DescribeTaskInfo", "DescribeClusterNodes",
//! "DescribeClusterUserKubeconfig" and the common error codes; field names
//! as in `alibabacloud-go/cs-20151215` `client/client.go`), each served by
//! the simulator after it checked the request's ACS3 signature.

use crate::common::{self, wait};
use kubepkg_platform::Error;
use kubepkg_platform::provider::{ClusterProvider, ClusterSpec, PollResult, VendorState};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::SimOptions;
use std::sync::Arc;

/// A DescribeClusterDetail answer (the reference's example, trimmed):
/// `master_url` is a JSON document inside a string.
const DETAIL: &str = r#"{
    "cluster_id": "c82e6987e2961451182edacd74faf****", "name": "prod",
    "cluster_type": "ManagedKubernetes", "region_id": "cn-beijing",
    "state": "running", "current_version": "1.30.1-aliyun.1", "size": 5,
    "vpc_id": "vpc-2zecuu62b9zw7a7qn****", "created": "2026-01-08T10:01:32+08:00",
    "master_url": "{\"api_server_endpoint\":\"https://47.93.x.x:6443\",\"intranet_api_server_endpoint\":\"https://192.168.0.251:6443\"}"
}"#;

#[tokio::test]
async fn describe_cluster_detail_maps_the_unified_fields() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    sim.respond_next(200, DETAIL);
    let c = ack
        .describe_cluster("c82e6987e2961451182edacd74faf****")
        .await
        .expect("describe");
    assert_eq!(c.id, "c82e6987e2961451182edacd74faf****");
    assert_eq!(c.name, "prod");
    assert_eq!(c.state, VendorState::Running);
    assert_eq!(c.version.as_deref(), Some("1.30.1-aliyun.1"));
    assert_eq!(c.region.as_deref(), Some("cn-beijing"));
    assert_eq!(c.endpoint.as_deref(), Some("https://192.168.0.251:6443"));
}

#[tokio::test]
async fn clusters_v1_and_nodes_pages_map_the_unified_fields() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    // DescribeClustersV1: `clusters` and `page_info`; one page holds all.
    sim.respond_next(
        200,
        r#"{"clusters": [
            {"cluster_id": "c1", "name": "a", "state": "initial", "region_id": "cn-hangzhou"},
            {"cluster_id": "c2", "name": "b", "state": "deleting", "region_id": "cn-hangzhou"},
            {"cluster_id": "c3", "name": "c", "state": "delete_failed"}],
          "page_info": {"page_number": 1, "page_size": 100, "total_count": 3}}"#,
    );
    let all = ack.list_clusters().await.expect("list");
    let states: Vec<_> = all
        .iter()
        .map(|c| (c.id.as_str(), c.state.clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("c1", VendorState::Creating),
            ("c2", VendorState::Deleting),
            ("c3", VendorState::Failed)
        ]
    );
    // DescribeClusterNodes: a node still initialising has no node_name yet.
    sim.respond_next(
        200,
        r#"{"nodes": [
            {"instance_id": "i-2ze0lgm3y6iylcbt****", "node_name": "cn-beijing.192.168.0.10",
             "nodepool_id": "np1f6779297c4444a3a1cdd29be8e5****", "state": "running",
             "instance_type": "ecs.c6.large", "node_status": "Ready"},
            {"instance_id": "i-2ze0lgm3y6iylcbt0002", "node_name": "", "nodepool_id": "",
             "state": "initial"}],
          "page": {"page_number": 1, "page_size": 100, "total_count": 2}}"#,
    );
    let nodes = ack.list_nodes("c1").await.expect("nodes");
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].instance_id, "i-2ze0lgm3y6iylcbt****");
    assert_eq!(
        nodes[0].node_name.as_deref(),
        Some("cn-beijing.192.168.0.10")
    );
    assert_eq!(
        nodes[0].node_pool.as_deref(),
        Some("np1f6779297c4444a3a1cdd29be8e5****")
    );
    assert_eq!(nodes[1].node_name, None, "an empty node_name is no name");
    assert_eq!(nodes[1].node_pool, None);
}

#[tokio::test]
async fn create_keeps_the_cluster_task_and_request_ids() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    // CreateCluster answers cluster_id, request_id and task_id.
    sim.respond_next(
        200,
        r#"{"cluster_id": "cb95aa626a47740afbf6aa099b650****",
            "request_id": "687C5BAA-D103-4993-884B-C35E4314A1E1",
            "task_id": "T-5a54309c80282e39ea00002f"}"#,
    );
    let op = ack
        .create_cluster(&ClusterSpec {
            name: "prod".into(),
            ..ClusterSpec::default()
        })
        .await
        .expect("create");
    assert_eq!(op.target, "cb95aa626a47740afbf6aa099b650****");
    assert_eq!(op.handle.as_deref(), Some("T-5a54309c80282e39ea00002f"));
    assert_eq!(
        op.request_id.as_deref(),
        Some("687C5BAA-D103-4993-884B-C35E4314A1E1")
    );
    assert!(!op.done);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    // Flow control, as the common error codes list it (HTTP 400).
    let throttled = r#"{"code": "Throttling.User", "message": "Request was denied due to user flow control.",
        "requestId": "A2E5B61A-0000-4000-8000-00000000000T", "status": 400}"#;
    sim.respond_next(400, throttled);
    sim.respond_next(400, throttled);
    sim.respond_next(
        200,
        r#"{"clusters": [], "page_info": {"page_number": 1, "page_size": 100, "total_count": 0}}"#,
    );
    let before = sim.requests();
    let all = ack
        .list_clusters()
        .await
        .expect("retried past the throttling");
    assert!(all.is_empty());
    assert_eq!(
        sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    for (status, code) in [
        (400, "SignatureDoesNotMatch"),
        // A 404, yet an auth failure, not a missing cluster.
        (404, "InvalidAccessKeyId.NotFound"),
    ] {
        sim.respond_next(
            status,
            format!(
                r#"{{"code": "{code}", "message": "refused", "requestId": "R-{code}", "status": {status}}}"#
            ),
        );
        let before = sim.requests();
        let err = ack.describe_cluster("c1").await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{code}: {err}");
        assert_eq!(sim.requests() - before, 1, "{code} is not retried");
        match err {
            Error::Provider {
                code: c,
                request_id,
                ..
            } => {
                assert_eq!(c, code);
                assert_eq!(request_id, Some(format!("R-{code}")));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn not_found_carries_the_vendor_code() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    sim.respond_next(
        404,
        r#"{"code": "ErrorClusterNotFound", "message": "cluster c-gone not found",
            "requestId": "B1C2D3E4-0000-4000-8000-000000000404", "status": 404}"#,
    );
    let err = ack.describe_cluster("c-gone").await.expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("ErrorClusterNotFound"), "{err}");
    // A task id that is unknown.
    sim.respond_next(
        404,
        r#"{"code": "ErrorTaskNotFound", "message": "task not found", "requestId": "R2"}"#,
    );
    let op = kubepkg_platform::provider::VendorOperation {
        kind: "add_nodes".into(),
        target: "c1".into(),
        handle: Some("T-gone".into()),
        request_id: None,
        done: false,
    };
    let err = ack.poll(&op).await.expect_err("no task");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_task_that_stays_running_then_fails_is_recorded_failed() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack: Arc<dyn ClusterProvider> = Arc::new(common::ack(&sim, None));
    let platform = common::platform().await;
    platform.providers().insert_cluster("ack-fixture", ack);
    sim.respond_next(
        200,
        r#"{"cluster_id": "cfail", "request_id": "REQ-CREATE", "task_id": "T-fail"}"#,
    );
    // DescribeTaskInfo: running twice, then `fail` with the task's error.
    let running = r#"{"cluster_id": "cfail", "task_id": "T-fail", "state": "running",
        "task_type": "cluster_create", "created": "2026-01-08T10:01:32+08:00"}"#;
    sim.respond_next(200, running);
    sim.respond_next(200, running);
    sim.respond_next(
        200,
        r#"{"cluster_id": "cfail", "task_id": "T-fail", "state": "fail", "task_type": "cluster_create",
            "error": {"code": "InvalidCIDR", "message": "the pod CIDR overlaps the VPC"}}"#,
    );
    let op = platform
        .create_vendor_cluster(
            "ack-fixture",
            &ClusterSpec {
                name: "ack-fixture-fail".into(),
                ..ClusterSpec::default()
            },
        )
        .await
        .expect("accepted");
    let err = platform
        .wait_operation(&op, &wait())
        .await
        .expect_err("the task failed");
    match &err {
        Error::Provider {
            code,
            message,
            request_id,
            ..
        } => {
            assert_eq!(code, "InvalidCIDR");
            assert!(message.contains("pod CIDR overlaps"), "{message}");
            assert_eq!(request_id.as_deref(), Some("REQ-CREATE"));
        }
        other => panic!("{other:?}"),
    }
    let rec = platform
        .store()
        .get_operation(&op.record.id)
        .await
        .expect("recorded");
    assert_eq!(rec.state, kubepkg_platform::store::OperationState::Failed);
    // A task answered `failed` without an error object still fails, with a
    // message of our own.
    sim.respond_next(200, r#"{"task_id": "T-2", "state": "failed"}"#);
    let mut op2 = op.vendor.clone();
    op2.handle = Some("T-2".into());
    match common::ack(&sim, None).poll(&op2).await.expect("poll") {
        PollResult::Failed { message, code } => {
            assert!(!message.is_empty());
            assert_eq!(code, None);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn answers_missing_fields_are_typed_errors() {
    let sim = kubepkg_vendor_sim::ack::start(SimOptions::default()).await;
    let ack = common::ack(&sim, None);
    let malformed = |err: Error, what: &str| {
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.to_string().contains(what), "{what}: {err}");
        assert!(
            matches!(&err, Error::Provider { code, .. } if code == "MalformedResponse"),
            "{err:?}"
        );
    };
    let spec = ClusterSpec {
        name: "x".into(),
        ..ClusterSpec::default()
    };
    sim.respond_next(200, r#"{"request_id": "R1", "task_id": "T-1"}"#);
    malformed(
        ack.create_cluster(&spec).await.expect_err("no id"),
        "cluster_id",
    );
    sim.respond_next(200, r#"{"cluster_id": "c1", "request_id": "R2"}"#);
    malformed(
        ack.create_cluster(&spec).await.expect_err("no task"),
        "task_id",
    );
    sim.respond_next(200, r#"{"cluster_id": "c1", "name": "x"}"#);
    malformed(
        ack.describe_cluster("c1").await.expect_err("no state"),
        "state",
    );
    sim.respond_next(200, r#"{"page_info": {"total_count": 1}}"#);
    malformed(ack.list_clusters().await.expect_err("no list"), "clusters");
    sim.respond_next(
        200,
        r#"{"nodes": [{"node_name": "n1"}], "page": {"total_count": 1}}"#,
    );
    malformed(
        ack.list_nodes("c1").await.expect_err("no instance"),
        "instance_id",
    );
    sim.respond_next(
        200,
        r#"{"config": "", "expiration": "2027-01-01T00:00:00Z"}"#,
    );
    malformed(ack.kubeconfig("c1").await.expect_err("empty"), "config");
    // Absent optional fields take defaults: no name is the id, no master_url
    // no endpoint, no region the account's.
    sim.respond_next(200, r#"{"cluster_id": "c9", "state": "waiting"}"#);
    let c = ack.describe_cluster("c9").await.expect("sparse but valid");
    assert_eq!(c.name, "c9");
    assert_eq!(c.endpoint, None);
    assert_eq!(c.region.as_deref(), Some(sim.region.as_str()));
    assert_eq!(c.state, VendorState::Other("waiting".into()));
    // An error page that is not JSON.
    sim.respond_next(502, "<html>bad gateway</html>");
    malformed(ack.describe_cluster("c1").await.expect_err("html"), "JSON");
}
