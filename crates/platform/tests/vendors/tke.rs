//! The TKE adapter against fixtures written from the Tencent Cloud API 3.0
//! reference (TKE 2018-05-25; field names as in
//! `TencentCloud/tencentcloud-sdk-go` `tencentcloud/tke/v20180525/models.go`),
//! and the API 3.0 common error codes (`RequestLimitExceeded`,
//! `AuthFailure.*`, `ResourceNotFound`), served by the simulator after it
//! checked each request's signature.

use crate::common;
use kubepkg_platform::Error;
use kubepkg_platform::provider::{ClusterProvider, ClusterSpec, VendorState};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::SimOptions;

#[tokio::test]
async fn describe_clusters_fixture_maps_the_unified_fields() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let tke = common::tke(&sim, None);
    // DescribeClusters answer, shape of the API reference's example.
    sim.respond_next(200, r#"{"Response": {"TotalCount": 1, "Clusters": [{
        "ClusterId": "cls-7ph3twqe", "ClusterName": "prod", "ClusterDescription": "",
        "ClusterVersion": "1.30.0", "ClusterOs": "tlinux2.4x86_64", "ClusterType": "MANAGED_CLUSTER",
        "ClusterNetworkSettings": {"ClusterCIDR": "172.16.0.0/16", "VpcId": "vpc-1"},
        "ClusterNodeNum": 3, "ProjectId": 0, "ClusterStatus": "Running"}],
        "RequestId": "eac6b301-a322-493a-8e36-83b295459397"}}"#);
    let c = tke
        .describe_cluster("cls-7ph3twqe")
        .await
        .expect("describe");
    assert_eq!(c.name, "prod");
    assert_eq!(c.state, VendorState::Running);
    assert_eq!(c.version.as_deref(), Some("1.30.0"));
}

#[tokio::test]
async fn an_error_answer_carries_code_message_and_request_id() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let tke = common::tke(&sim, None);
    sim.respond_next(
        200,
        r#"{"Response": {"Error": {"Code": "ResourceInUse.ClusterExist",
        "Message": "cluster name in use"}, "RequestId": "b4c5d6e7-0000-4000-8000-000000000001"}}"#,
    );
    let err = tke
        .create_cluster(&ClusterSpec {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("in use");
    match err {
        Error::Provider {
            kind,
            code,
            request_id,
            ..
        } => {
            assert_eq!(kind, ErrorKind::Conflict);
            assert_eq!(code, "ResourceInUse.ClusterExist");
            assert_eq!(
                request_id.as_deref(),
                Some("b4c5d6e7-0000-4000-8000-000000000001")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_response_missing_fields_is_malformed_not_a_panic() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let tke = common::tke(&sim, None);
    // CreateCluster answered without ClusterId.
    sim.respond_next(200, r#"{"Response": {"RequestId": "r-1"}}"#);
    let err = tke
        .create_cluster(&ClusterSpec {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("no id");
    assert!(err.to_string().contains("ClusterId"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Internal);
    // A cluster without ClusterStatus.
    sim.respond_next(200, r#"{"Response": {"TotalCount": 1, "Clusters": [{"ClusterId": "cls-1"}], "RequestId": "r-2"}}"#);
    let err = tke.describe_cluster("cls-1").await.expect_err("no status");
    assert!(err.to_string().contains("ClusterStatus"), "{err}");
    // Not JSON at all.
    sim.respond_next(502, "<html>bad gateway</html>");
    let err = tke.list_clusters().await.expect_err("not json");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let tke = common::tke(&sim, None);
    // The common error code of API 3.0 for a request rate over the limit.
    let throttled = r#"{"Response": {"Error": {"Code": "RequestLimitExceeded",
        "Message": "Your current request times equals to `21` in a second, which exceeds the frequency limit `20` for a second."},
        "RequestId": "c0ffee00-0000-4000-8000-00000000000t"}}"#;
    sim.respond_next(200, throttled);
    sim.respond_next(200, throttled);
    sim.respond_next(
        200,
        r#"{"Response": {"TotalCount": 0, "Clusters": [], "RequestId": "r-ok"}}"#,
    );
    let before = sim.requests();
    assert!(tke.list_clusters().await.expect("retried").is_empty());
    assert_eq!(
        sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let tke = common::tke(&sim, None);
    for (code, kind) in [
        ("AuthFailure.SignatureFailure", ErrorKind::Unauthorized),
        ("AuthFailure.SecretIdNotFound", ErrorKind::Unauthorized),
        ("AuthFailure.UnauthorizedOperation", ErrorKind::Forbidden),
    ] {
        sim.respond_next(
            200,
            format!(
                r#"{{"Response": {{"Error": {{"Code": "{code}", "Message": "refused"}}, "RequestId": "r-{code}"}}}}"#
            ),
        );
        let before = sim.requests();
        let err = tke.list_clusters().await.expect_err("refused");
        assert_eq!(err.kind(), kind, "{code}: {err}");
        assert_eq!(sim.requests() - before, 1, "{code} is not retried");
        assert!(
            matches!(&err, Error::Provider { request_id: Some(r), .. } if *r == format!("r-{code}")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn not_found_is_not_found() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let tke = common::tke(&sim, None);
    // DescribeClusters filtered by id answers an empty list.
    sim.respond_next(
        200,
        r#"{"Response": {"TotalCount": 0, "Clusters": [], "RequestId": "r-1"}}"#,
    );
    let err = tke.describe_cluster("cls-gone").await.expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // A call naming it answers ResourceNotFound.
    sim.respond_next(
        200,
        r#"{"Response": {"Error": {"Code": "ResourceNotFound.ClusterNotFound", "Message": "cluster not found"},
            "RequestId": "r-2"}}"#,
    );
    let err = tke.kubeconfig("cls-gone").await.expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_cluster_that_stays_creating_then_turns_abnormal_is_recorded_failed() {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    let provider: std::sync::Arc<dyn ClusterProvider> =
        std::sync::Arc::new(common::tke(&sim, None));
    let platform = common::platform().await;
    platform.providers().insert_cluster("tke-fixture", provider);
    sim.respond_next(
        200,
        r#"{"Response": {"ClusterId": "cls-abn1", "RequestId": "r-create"}}"#,
    );
    let creating = r#"{"Response": {"TotalCount": 1, "Clusters": [{"ClusterId": "cls-abn1",
        "ClusterName": "tke-fixture-fail", "ClusterStatus": "Creating"}], "RequestId": "r-p"}}"#;
    sim.respond_next(200, creating);
    sim.respond_next(200, creating);
    sim.respond_next(
        200,
        r#"{"Response": {"TotalCount": 1, "Clusters": [{"ClusterId": "cls-abn1",
            "ClusterName": "tke-fixture-fail", "ClusterStatus": "Abnormal"}], "RequestId": "r-f"}}"#,
    );
    let op = platform
        .create_vendor_cluster(
            "tke-fixture",
            &ClusterSpec {
                name: "tke-fixture-fail".into(),
                ..Default::default()
            },
        )
        .await
        .expect("accepted");
    let err = platform
        .wait_operation(&op, &common::wait())
        .await
        .expect_err("abnormal");
    match &err {
        Error::Provider {
            message,
            request_id,
            ..
        } => {
            assert!(message.contains("Abnormal"), "{message}");
            assert_eq!(request_id.as_deref(), Some("r-create"));
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
