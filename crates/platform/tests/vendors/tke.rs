//! The TKE adapter against fixtures written from the Tencent Cloud API 3.0
//! reference (TKE 2018-05-25; field names as in
//! `TencentCloud/tencentcloud-sdk-go` `tencentcloud/tke/v20180525/models.go`),
//! served by the simulator after it checked each request's signature.

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
