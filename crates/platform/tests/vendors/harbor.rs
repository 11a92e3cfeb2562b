//! The Harbor adapter against fixtures written from Harbor's REST API v2.0
//! reference (`goharbor/harbor` `api/v2.0/swagger.yaml`: operations
//! listProjects, listQuotas, listArtifacts, CreateRobot; definitions
//! `Project` with `project_id`, `name`, `repo_count`, `creation_time`
//! and `metadata.public` as the string `"true"` / `"false"`, `Quota` with
//! `ref`, `hard` and `used`, `RobotCreated` with its one-time `secret`, and
//! `Errors`: `{"errors": [{"code", "message"}]}`), each served by the
//! simulator after it checked basic auth.

use crate::common;
use kubepkg_platform::provider::{RegistryProvider, Visibility};
use kubepkg_platform::store::Access;
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::SimOptions;

fn errors(code: &str, message: &str) -> String {
    format!(r#"{{"errors": [{{"code": "{code}", "message": "{message}"}}]}}"#)
}

#[tokio::test]
async fn projects_and_quotas_map_the_unified_fields() {
    let sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let harbor = common::harbor(&sim, None, None);
    // listProjects (with_detail) then listQuotas (reference=project),
    // joined on the project id.
    sim.respond_next(
        200,
        r#"[{"project_id": 1, "name": "library", "owner_id": 1, "owner_name": "admin",
             "creation_time": "2026-02-01T10:00:00.000Z", "update_time": "2026-02-01T10:00:00.000Z",
             "repo_count": 3, "metadata": {"public": "true", "auto_scan": "false"}, "registry_id": 0},
            {"project_id": 7, "name": "team", "repo_count": 0, "metadata": {"public": "false"}}]"#,
    );
    sim.respond_next(
        200,
        r#"[{"id": 1, "ref": {"id": 1, "name": "library", "owner_name": "admin"},
             "hard": {"storage": 10737418240}, "used": {"storage": 52428800},
             "creation_time": "2026-02-01T10:00:00.000Z"},
            {"id": 2, "ref": {"id": 7, "name": "team"}, "hard": {"storage": -1}, "used": {"storage": 0}}]"#,
    );
    let all = harbor.list_namespaces().await.expect("list");
    assert_eq!(all.len(), 2);
    let lib = &all[0];
    assert_eq!(lib.name, "library");
    assert_eq!(lib.visibility, Visibility::Public);
    assert_eq!(lib.repository_count, Some(3));
    assert_eq!(lib.quota_bytes, Some(10_737_418_240));
    assert_eq!(lib.used_bytes, Some(52_428_800));
    assert_eq!(lib.created.as_deref(), Some("2026-02-01T10:00:00.000Z"));
    assert_eq!(all[1].visibility, Visibility::Private);
    assert_eq!(all[1].repository_count, Some(0));
    // listArtifacts (with_tag): tags of every artifact, sorted, deduplicated.
    sim.respond_next(
        200,
        r#"[{"id": 11, "digest": "sha256:aaaa", "size": 100, "push_time": "2026-02-02T00:00:00.000Z",
             "tags": [{"id": 1, "name": "v2", "immutable": false}, {"id": 2, "name": "latest"}]},
            {"id": 12, "digest": "sha256:bbbb", "tags": [{"id": 3, "name": "v1"}]},
            {"id": 13, "digest": "sha256:cccc", "tags": null}]"#,
    );
    assert_eq!(
        harbor.list_tags("library/app").await.expect("tags"),
        ["latest", "v1", "v2"]
    );
}

#[tokio::test]
async fn a_robot_secret_is_handed_back_once() {
    let sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let harbor = common::harbor(&sim, None, None);
    // CreateRobot answers 201 with RobotCreated.
    sim.respond_next(
        201,
        r#"{"id": 42, "name": "robot$team+ci", "secret": "fixture-robot-secret-0000",
            "creation_time": "2026-02-03T00:00:00.000Z", "expires_at": -1}"#,
    );
    let grant = harbor
        .grant_access("team", "ci", Access::Push)
        .await
        .expect("grant");
    assert_eq!(grant.subject, "robot$team+ci");
    assert_eq!(grant.access, Access::Push);
    let secret = grant.secret.expect("the one-time secret");
    assert_eq!(secret.expose(), "fixture-robot-secret-0000");
    assert!(!format!("{secret:?}").contains("fixture-robot-secret"));
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let harbor = common::harbor(&sim, None, None);
    let throttled = errors("TOO_MANY_REQUESTS", "too many requests");
    sim.respond_next(429, throttled.clone());
    sim.respond_next(429, throttled);
    sim.respond_next(
        200,
        r#"[{"name": "library/app", "artifact_count": 2, "pull_count": 9}]"#,
    );
    let before = sim.requests();
    let repos = harbor
        .list_repositories(Some("library"))
        .await
        .expect("retried");
    assert_eq!(repos[0].name, "library/app");
    assert_eq!(repos[0].artifact_count, Some(2));
    assert_eq!(repos[0].pull_count, Some(9));
    assert_eq!(
        sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let harbor = common::harbor(&sim, None, None);
    for (status, code, kind) in [
        (401, "UNAUTHORIZED", ErrorKind::Unauthorized),
        (403, "FORBIDDEN", ErrorKind::Forbidden),
    ] {
        sim.respond_next(status, errors(code, "refused"));
        let before = sim.requests();
        let err = harbor.list_repositories(None).await.expect_err("refused");
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(sim.requests() - before, 1, "{code} is not retried");
        assert!(!err.to_string().contains(&sim.secret), "{err}");
    }
}

#[tokio::test]
async fn not_found_is_not_found() {
    let sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let harbor = common::harbor(&sim, None, None);
    sim.respond_next(404, errors("NOT_FOUND", "project ghost not found"));
    let err = harbor.list_tags("ghost/app").await.expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    sim.respond_next(404, errors("NOT_FOUND", "project ghost not found"));
    let err = harbor.delete_namespace("ghost").await.expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn answers_missing_fields_are_typed_errors_or_defaults() {
    let sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let harbor = common::harbor(&sim, None, None);
    // A project without project_id and name is not a project.
    sim.respond_next(200, r#"[{"repo_count": 1}]"#);
    let err = harbor.list_namespaces().await.expect_err("no name");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    // No metadata, no repo_count, no quota: private, unknown counts.
    sim.respond_next(200, r#"[{"project_id": 3, "name": "bare"}]"#);
    sim.respond_next(200, r#"[]"#);
    let all = harbor.list_namespaces().await.expect("sparse but valid");
    assert_eq!(all[0].visibility, Visibility::Private);
    assert_eq!(all[0].repository_count, None);
    assert_eq!(all[0].quota_bytes, None);
    // A robot answer without its secret.
    sim.respond_next(201, r#"{"id": 5, "name": "robot$team+ci"}"#);
    let err = harbor
        .grant_access("team", "ci", Access::Pull)
        .await
        .expect_err("no secret");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    // Not JSON at all.
    sim.respond_next(200, "<html>maintenance</html>");
    let err = harbor.list_repositories(None).await.expect_err("html");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
}
