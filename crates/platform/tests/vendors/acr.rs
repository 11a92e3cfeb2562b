//! The ACR adapter against fixtures written from Alibaba Cloud Container
//! Registry's API reference (RPC API 2018-12-01: the pages "ListInstance",
//! "ListNamespace", "ListRepository", "ListRepoTag", "CreateNamespace" and
//! the common error codes; field names as in `alibabacloud-go/cr-20181201`
//! `client/client.go`: `TotalCount` is a string, business errors come with
//! HTTP 200 and `IsSuccess: false`), each served by the simulator after it
//! checked the request's ACS3 signature.

use crate::common;
use kubepkg_platform::Error;
use kubepkg_platform::provider::acr::Acr;
use kubepkg_platform::provider::{RegistryProvider, Visibility};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::{SimHandle, SimOptions};

/// The instance the fixtures are about.
const INSTANCE: &str = "cri-kmsiwlxxdcva****";

/// An adapter told its instance, so every canned answer is one action.
fn acr(sim: &SimHandle) -> Acr {
    Acr::new(common::account(sim, None), Some(INSTANCE.into())).expect("acr adapter")
}

const NAMESPACES: &str = r#"{"Code": "success", "IsSuccess": true,
    "RequestId": "9E3E2B4C-0000-4000-8000-0000000000A1", "PageNo": 1, "PageSize": 100, "TotalCount": "2",
    "Namespaces": [
      {"InstanceId": "cri-kmsiwlxxdcva****", "NamespaceId": "crn-tiw8t3f8i5lt****", "NamespaceName": "team",
       "NamespaceStatus": "NORMAL", "AutoCreateRepo": true, "DefaultRepoType": "PUBLIC",
       "ResourceGroupId": "rg-acfmv36i4is****"},
      {"InstanceId": "cri-kmsiwlxxdcva****", "NamespaceId": "crn-00000000000****", "NamespaceName": "private",
       "NamespaceStatus": "NORMAL", "AutoCreateRepo": false, "DefaultRepoType": "PRIVATE"}]}"#;

const REPOSITORIES: &str = r#"{"Code": "success", "IsSuccess": true,
    "RequestId": "9E3E2B4C-0000-4000-8000-0000000000A2", "PageNo": 1, "PageSize": 100, "TotalCount": "2",
    "Repositories": [
      {"InstanceId": "cri-kmsiwlxxdcva****", "RepoId": "crr-uf082u9dg8do****", "RepoName": "app",
       "RepoNamespaceName": "team", "RepoStatus": "NORMAL", "RepoType": "PUBLIC",
       "Summary": "the app", "TagImmutability": false, "CreateTime": 1572839126000, "ModifiedTime": 1700000000000},
      {"InstanceId": "cri-kmsiwlxxdcva****", "RepoId": "crr-uf082u9dg8do0002", "RepoName": "worker",
       "RepoNamespaceName": "team", "RepoStatus": "NORMAL", "RepoType": "PUBLIC"}]}"#;

#[tokio::test]
async fn namespaces_repositories_and_tags_map_the_unified_fields() {
    let sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    let reg = acr(&sim);
    // ListNamespace, then one ListRepository counted by namespace.
    sim.respond_next(200, NAMESPACES);
    sim.respond_next(200, REPOSITORIES);
    let all = reg.list_namespaces().await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].name, "team");
    assert_eq!(all[0].visibility, Visibility::Public);
    assert_eq!(all[0].repository_count, Some(2));
    assert_eq!(all[1].visibility, Visibility::Private);
    assert_eq!(all[1].repository_count, Some(0));
    // Repositories: ModifiedTime is milliseconds since the epoch.
    sim.respond_next(200, REPOSITORIES);
    let repos = reg.list_repositories(Some("team")).await.expect("repos");
    assert_eq!(repos[0].name, "team/app");
    assert_eq!(repos[0].updated.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(repos[1].updated, None);
    // Tags: the repository by name, then ListRepoTag by its RepoId.
    sim.respond_next(200, REPOSITORIES);
    sim.respond_next(
        200,
        r#"{"Code": "success", "IsSuccess": true, "RequestId": "R-T", "PageNo": 1, "PageSize": 100,
            "TotalCount": "2", "Images": [
              {"Tag": "v2", "Digest": "a2fd5f4a8b0d6e2c7b9c1b4f4e7d0f7c2a1e6b3d9c8f7a6b5c4d3e2f1a0b9c8d",
               "ImageId": "3f1b5c6d****", "ImageSize": 2841230, "Status": "NORMAL",
               "ImageCreate": 1700000000000, "ImageUpdate": 1700000000000},
              {"Tag": "v1", "Digest": "b0", "Status": "NORMAL"}]}"#,
    );
    assert_eq!(reg.list_tags("team/app").await.expect("tags"), ["v1", "v2"]);
    // CreateNamespace answers only Code / IsSuccess / RequestId.
    sim.respond_next(
        200,
        r#"{"Code": "success", "IsSuccess": true, "RequestId": "BC648259-91A7-4502-BED3-EDF64361FA83"}"#,
    );
    let ns = reg
        .create_namespace("fresh", Visibility::Private)
        .await
        .expect("create");
    assert_eq!(ns.name, "fresh");
    assert_eq!(ns.visibility, Visibility::Private);
}

#[tokio::test]
async fn the_instance_is_found_or_asked_for() {
    let sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    // Two instances in the region: the adapter will not guess.
    let reg = common::acr(&sim, None);
    sim.respond_next(
        200,
        r#"{"Code": "success", "IsSuccess": true, "RequestId": "R-I", "PageNo": 1, "PageSize": 100,
            "TotalCount": "2", "Instances": [
              {"InstanceId": "cri-aaaa", "InstanceName": "prod", "InstanceStatus": "RUNNING",
               "InstanceSpecification": "Enterprise_Standard", "RegionId": "cn-hangzhou"},
              {"InstanceId": "cri-bbbb", "InstanceName": "test", "InstanceStatus": "RUNNING"}]}"#,
    );
    let err = reg.list_namespaces().await.expect_err("ambiguous");
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cri-aaaa") && text.contains("cri-bbbb") && text.contains("instance_id"),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    let reg = acr(&sim);
    let throttled = r#"{"RequestId": "R-THR", "HostId": "cr.cn-hangzhou.aliyuncs.com",
        "Code": "Throttling.User", "Message": "Request was denied due to user flow control."}"#;
    sim.respond_next(400, throttled);
    sim.respond_next(400, throttled);
    sim.respond_next(200, REPOSITORIES);
    let before = sim.requests();
    let repos = reg.list_repositories(None).await.expect("retried");
    assert_eq!(repos.len(), 2);
    assert_eq!(
        sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    let reg = acr(&sim);
    for (status, code) in [
        (400, "SignatureDoesNotMatch"),
        (404, "InvalidAccessKeyId.NotFound"),
    ] {
        sim.respond_next(
            status,
            format!(
                r#"{{"RequestId": "R-{code}", "HostId": "cr.cn-hangzhou.aliyuncs.com", "Code": "{code}", "Message": "refused"}}"#
            ),
        );
        let before = sim.requests();
        let err = reg.list_repositories(None).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{code}: {err}");
        assert_eq!(sim.requests() - before, 1, "{code} is not retried");
        match err {
            Error::Provider { request_id, .. } => {
                assert_eq!(request_id, Some(format!("R-{code}")))
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn business_errors_with_http_200_are_errors() {
    let sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    let reg = acr(&sim);
    sim.respond_next(
        200,
        r#"{"Code": "NAMESPACE_NOT_EXIST", "IsSuccess": false, "RequestId": "R-NF"}"#,
    );
    let err = reg
        .delete_namespace("ghost")
        .await
        .expect_err("no namespace");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    match &err {
        Error::Provider {
            code,
            message,
            request_id,
            ..
        } => {
            assert_eq!(code, "NAMESPACE_NOT_EXIST");
            assert!(!message.is_empty(), "a message even when ACR sends none");
            assert_eq!(request_id.as_deref(), Some("R-NF"));
        }
        other => panic!("{other:?}"),
    }
    // A repository that is not there (an empty list): NotFound.
    sim.respond_next(
        200,
        r#"{"Code": "success", "IsSuccess": true, "RequestId": "R", "TotalCount": "0", "Repositories": []}"#,
    );
    let err = reg.list_tags("team/nope").await.expect_err("no repo");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    sim.respond_next(
        200,
        r#"{"Code": "NAMESPACE_ALREADY_EXIST", "IsSuccess": false, "RequestId": "R-AE", "Message": "namespace exists"}"#,
    );
    let err = reg
        .create_namespace("team", Visibility::Public)
        .await
        .expect_err("exists");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
}

#[tokio::test]
async fn answers_missing_fields_are_typed_errors_or_defaults() {
    let sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    let reg = acr(&sim);
    sim.respond_next(
        200,
        r#"{"Code": "success", "IsSuccess": true, "RequestId": "R1"}"#,
    );
    let err = reg.list_repositories(None).await.expect_err("no list");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.to_string().contains("Repositories"), "{err}");
    sim.respond_next(
        200,
        r#"{"IsSuccess": true, "TotalCount": "1", "Repositories": [{"RepoName": "x"}]}"#,
    );
    let err = reg.list_repositories(None).await.expect_err("no namespace");
    assert!(err.to_string().contains("RepoNamespaceName"), "{err}");
    sim.respond_next(
        200,
        r#"{"IsSuccess": true, "TotalCount": "1", "Repositories": [{"RepoName": "app", "RepoNamespaceName": "team"}]}"#,
    );
    let err = reg.list_tags("team/app").await.expect_err("no RepoId");
    assert!(err.to_string().contains("RepoId"), "{err}");
    // No TotalCount and no DefaultRepoType: one page, private.
    sim.respond_next(
        200,
        r#"{"IsSuccess": true, "Namespaces": [{"NamespaceName": "bare"}]}"#,
    );
    sim.respond_next(200, r#"{"IsSuccess": true, "Repositories": []}"#);
    let all = reg.list_namespaces().await.expect("sparse but valid");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].visibility, Visibility::Private);
    assert_eq!(all[0].repository_count, Some(0));
    sim.respond_next(200, "not json");
    let err = reg.list_namespaces().await.expect_err("not json");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
}
