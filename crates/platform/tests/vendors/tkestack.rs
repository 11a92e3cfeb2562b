//! The TKEStack registry adapter against fixtures written from
//! `tkestack/tke` `api/registry/v1/types.go` (the `registry.tkestack.io/v1`
//! `Namespace` / `NamespaceList` and `Repository` / `RepositoryList`
//! resources: `spec.name`, `spec.visibility` `Public` / `Private`,
//! `status.repoCount`, `status.pullCount`, `status.tags[].name`) and the
//! Kubernetes API conventions' `Status` for errors (`reason`, `message`,
//! `code`), each served by the simulator after it checked the bearer token.

use crate::common;
use kubepkg_platform::Error;
use kubepkg_platform::provider::{RegistryProvider, Visibility};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::SimOptions;

fn status(code: u16, reason: &str, message: &str) -> String {
    format!(
        r#"{{"kind": "Status", "apiVersion": "v1", "metadata": {{}}, "status": "Failure",
            "message": "{message}", "reason": "{reason}", "code": {code}}}"#
    )
}

const NAMESPACES: &str = r#"{"apiVersion": "registry.tkestack.io/v1", "kind": "NamespaceList",
    "metadata": {"resourceVersion": "1200"},
    "items": [
      {"apiVersion": "registry.tkestack.io/v1", "kind": "Namespace",
       "metadata": {"name": "rns-7r2kq8xz", "creationTimestamp": "2026-03-01T08:00:00Z"},
       "spec": {"name": "library", "tenantID": "default", "displayName": "Library", "visibility": "Public"},
       "status": {"locked": false, "repoCount": 4}},
      {"apiVersion": "registry.tkestack.io/v1", "kind": "Namespace",
       "metadata": {"name": "rns-b5m1c0dd"},
       "spec": {"name": "team", "tenantID": "default", "visibility": "Private"},
       "status": {"repoCount": 0}}]}"#;

#[tokio::test]
async fn namespaces_and_repositories_map_the_unified_fields() {
    let sim = kubepkg_vendor_sim::tkestack::start(SimOptions::default()).await;
    let reg = common::tkestack(&sim, None);
    sim.respond_next(200, NAMESPACES);
    let all = reg.list_namespaces().await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].name, "library",
        "spec.name, not the generated metadata.name"
    );
    assert_eq!(all[0].visibility, Visibility::Public);
    assert_eq!(all[0].repository_count, Some(4));
    assert_eq!(all[0].created.as_deref(), Some("2026-03-01T08:00:00Z"));
    assert_eq!(all[1].visibility, Visibility::Private);
    assert_eq!(all[1].repository_count, Some(0));
    // Repositories of one namespace: the namespace is looked up by
    // spec.name, then its repositories listed under its metadata.name.
    sim.respond_next(200, NAMESPACES);
    sim.respond_next(
        200,
        r#"{"apiVersion": "registry.tkestack.io/v1", "kind": "RepositoryList", "metadata": {},
            "items": [{"apiVersion": "registry.tkestack.io/v1", "kind": "Repository",
              "metadata": {"name": "rrp-9x8w", "namespace": "rns-7r2kq8xz", "creationTimestamp": "2026-03-02T09:30:00Z"},
              "spec": {"name": "nginx", "namespaceName": "library", "tenantID": "default", "visibility": "Public"},
              "status": {"pullCount": 17, "tags": [
                {"name": "1.27", "digest": "sha256:aa", "timeCreated": "2026-03-02T09:30:00Z"},
                {"name": "1.25", "digest": "sha256:bb"}]}}]}"#,
    );
    let repos = reg.list_repositories(Some("library")).await.expect("repos");
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0].name, "library/nginx");
    assert_eq!(repos[0].pull_count, Some(17));
    assert_eq!(repos[0].artifact_count, Some(2));
    // Tags come sorted, from status.tags.
    sim.respond_next(200, NAMESPACES);
    sim.respond_next(
        200,
        r#"{"kind": "RepositoryList", "items": [{"spec": {"name": "nginx", "namespaceName": "library"},
            "status": {"tags": [{"name": "1.27"}, {"name": "1.25"}]}}]}"#,
    );
    assert_eq!(
        reg.list_tags("library/nginx").await.expect("tags"),
        ["1.25", "1.27"]
    );
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let sim = kubepkg_vendor_sim::tkestack::start(SimOptions::default()).await;
    let reg = common::tkestack(&sim, None);
    let throttled = status(429, "TooManyRequests", "please try again later");
    sim.respond_next(429, throttled.clone());
    sim.respond_next(429, throttled);
    sim.respond_next(200, NAMESPACES);
    let before = sim.requests();
    let all = reg.list_namespaces().await.expect("retried");
    assert_eq!(all.len(), 2);
    assert_eq!(
        sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let sim = kubepkg_vendor_sim::tkestack::start(SimOptions::default()).await;
    let reg = common::tkestack(&sim, None);
    for (code, reason, kind) in [
        (401, "Unauthorized", ErrorKind::Unauthorized),
        (403, "Forbidden", ErrorKind::Forbidden),
    ] {
        sim.respond_next(code, status(code, reason, "refused"));
        let before = sim.requests();
        let err = reg.list_namespaces().await.expect_err("refused");
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(sim.requests() - before, 1, "{reason} is not retried");
        assert!(
            matches!(&err, Error::Provider { code: c, .. } if c == reason),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn not_found_is_not_found() {
    let sim = kubepkg_vendor_sim::tkestack::start(SimOptions::default()).await;
    let reg = common::tkestack(&sim, None);
    // No namespace with that spec.name: NotFound without a delete sent.
    sim.respond_next(
        200,
        r#"{"kind": "NamespaceList", "apiVersion": "registry.tkestack.io/v1", "items": []}"#,
    );
    let before = sim.requests();
    let err = reg.delete_namespace("ghost").await.expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(sim.requests() - before, 1);
    // The server's own NotFound Status on the delete.
    sim.respond_next(200, NAMESPACES);
    sim.respond_next(
        404,
        status(
            404,
            "NotFound",
            r#"namespaces.registry.tkestack.io \"rns-b5m1c0dd\" not found"#,
        ),
    );
    let err = reg.delete_namespace("team").await.expect_err("raced away");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // A repository that is not there.
    sim.respond_next(200, NAMESPACES);
    sim.respond_next(200, r#"{"kind": "RepositoryList", "items": []}"#);
    let err = reg.list_tags("library/nope").await.expect_err("no repo");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn answers_missing_fields_are_typed_errors_or_defaults() {
    let sim = kubepkg_vendor_sim::tkestack::start(SimOptions::default()).await;
    let reg = common::tkestack(&sim, None);
    sim.respond_next(200, r#"{"kind": "NamespaceList", "metadata": {}}"#);
    let err = reg.list_namespaces().await.expect_err("no items");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.to_string().contains("items"), "{err}");
    sim.respond_next(
        200,
        r#"{"kind": "NamespaceList", "items": [{"metadata": {"name": "rns-1"}}]}"#,
    );
    let err = reg.list_namespaces().await.expect_err("no spec.name");
    assert!(err.to_string().contains("spec.name"), "{err}");
    // No status and no visibility: no count, private.
    sim.respond_next(
        200,
        r#"{"kind": "NamespaceList", "items": [{"metadata": {"name": "rns-1"}, "spec": {"name": "bare"}}]}"#,
    );
    let all = reg.list_namespaces().await.expect("sparse but valid");
    assert_eq!(all[0].visibility, Visibility::Private);
    assert_eq!(all[0].repository_count, None);
    assert_eq!(all[0].created, None);
    // A repository without spec.namespaceName.
    sim.respond_next(
        200,
        r#"{"kind": "RepositoryList", "items": [{"spec": {"name": "x"}}]}"#,
    );
    let err = reg
        .list_repositories(None)
        .await
        .expect_err("no namespaceName");
    assert!(err.to_string().contains("spec.namespaceName"), "{err}");
    // A repository without tags lists no tags.
    sim.respond_next(200, NAMESPACES);
    sim.respond_next(
        200,
        r#"{"kind": "RepositoryList", "items": [{"spec": {"name": "empty", "namespaceName": "library"}}]}"#,
    );
    assert!(
        reg.list_tags("library/empty")
            .await
            .expect("no tags")
            .is_empty()
    );
    // An error page that is not a Status maps by its HTTP status.
    sim.respond_next(404, "404 page not found");
    let err = reg.list_namespaces().await.expect_err("plain text");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
