//! The Harbor backend against HTTP fixtures written from Harbor's published
//! REST API v2.0 swagger (`api/v2.0/swagger.yaml` in goharbor/harbor):
//! paths, parameters, the `Errors` body (`{"errors":[{"code","message"}]}`)
//! and the list headers (`X-Total-Count`, `Link`). Each fixture names the
//! swagger `operationId` it stands for. Harbor itself cannot run here.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::http::{Request, Response, Server};
use kubepkg_image_api::harbor::{HarborRegistry, ProjectRole, RobotSpec};
use kubepkg_image_api::registry::media_types;
use kubepkg_image_api::{
    ArtifactRef, Error, ImageRegistry, NamespaceSpec, RegistryConfig, RegistryKind, Visibility,
    connect_registry,
};
use kubepkg_util::ErrorKind;
use serde_json::json;

const BASIC_ADMIN: &str = "Basic YWRtaW46SGFyYm9yMTIzNDU="; // admin:Harbor12345

fn harbor_errors(status: u16, code: &str, message: &str) -> Response {
    // swagger definition `Errors`
    Response::json(
        status,
        json!({"errors": [{"code": code, "message": message}]}),
    )
    .header("X-Request-Id", "req-1")
}

fn config(url: &str) -> RegistryConfig {
    RegistryConfig::new(url)
        .kind(RegistryKind::Harbor)
        .credentials("admin", "Harbor12345")
        .allow_http(true)
}

fn harbor(server: &Server) -> HarborRegistry {
    HarborRegistry::new(&config(&server.url)).unwrap()
}

fn project(id: i64, name: &str, public: bool) -> serde_json::Value {
    // swagger definition `Project` (metadata.public is a string)
    json!({
        "project_id": id, "name": name, "owner_id": 1, "owner_name": "admin",
        "creation_time": "2024-05-01T10:00:00.000Z", "update_time": "2024-05-01T10:00:00.000Z",
        "repo_count": id * 2, "deleted": false,
        "metadata": {"public": if public { "true" } else { "false" }}
    })
}

fn quota(id: i64, project_id: i64, hard: i64, used: i64) -> serde_json::Value {
    // swagger definition `Quota` (ref is the project)
    json!({"id": id, "ref": {"id": project_id, "name": format!("p{project_id}"), "owner_name": "admin"},
           "hard": {"storage": hard}, "used": {"storage": used}})
}

/// Serves `items` two per page whatever `page_size` asks, with `Link` and
/// `X-Total-Count` as Harbor sends them.
fn paged(req: &Request, path: &str, items: &[serde_json::Value]) -> Response {
    let page: usize = req.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per = 2;
    let start = (page - 1) * per;
    let slice: Vec<_> = items.iter().skip(start).take(per).cloned().collect();
    let mut resp =
        Response::json(200, json!(slice)).header("X-Total-Count", items.len().to_string());
    let mut links = vec![];
    if page > 1 {
        links.push(format!(
            "<{path}?page={}&page_size={per}>; rel=\"prev\"",
            page - 1
        ));
    }
    if start + per < items.len() {
        links.push(format!(
            "<{path}?page={}&page_size={per}>; rel=\"next\"",
            page + 1
        ));
    }
    if !links.is_empty() {
        resp = resp.header("Link", links.join(" , "));
    }
    resp
}

#[tokio::test]
async fn projects_are_namespaces_with_quota_and_public_flag() {
    let projects = vec![
        project(1, "library", true),
        project(2, "team-a", false),
        project(3, "team-b", false),
    ];
    let created = Arc::new(Mutex::new(None::<serde_json::Value>));
    let c2 = created.clone();
    let server = Server::start(move |req| {
        if req.header("authorization") != Some(BASIC_ADMIN) {
            return harbor_errors(401, "UNAUTHORIZED", "unauthorized");
        }
        match (req.method.as_str(), req.path()) {
            // operationId: listProjects
            ("GET", "/api/v2.0/projects") => paged(req, "/api/v2.0/projects", &projects),
            // operationId: listQuotas
            ("GET", "/api/v2.0/quotas") => {
                let all = vec![
                    quota(11, 1, -1, 100),
                    quota(12, 2, 1 << 30, 2048),
                    quota(13, 3, 10, 0),
                ];
                match req.query("reference_id") {
                    Some(id) => {
                        let one: Vec<_> = all
                            .into_iter()
                            .filter(|q| {
                                q["ref"]["id"].as_i64().map(|i| i.to_string()) == Some(id.clone())
                            })
                            .collect();
                        Response::json(200, json!(one)).header("X-Total-Count", "1")
                    }
                    None => paged(req, "/api/v2.0/quotas", &all),
                }
            }
            // operationId: createProject
            ("POST", "/api/v2.0/projects") => {
                let body = req.json();
                if body["project_name"] == "library" {
                    return harbor_errors(
                        409,
                        "CONFLICT",
                        "The project named library already exists",
                    );
                }
                *c2.lock().unwrap() = Some(body);
                Response::empty(201).header("Location", "/api/v2.0/projects/4")
            }
            // operationId: getProject (X-Is-Resource-Name: true)
            ("GET", "/api/v2.0/projects/newproj") => {
                assert_eq!(req.header("x-is-resource-name"), Some("true"));
                Response::json(200, project(2, "newproj", true))
            }
            ("GET", "/api/v2.0/projects/ghost") => {
                harbor_errors(404, "NOT_FOUND", "project ghost not found")
            }
            // operationId: deleteProject
            ("DELETE", "/api/v2.0/projects/team-a") => harbor_errors(
                412,
                "PRECONDITION",
                "the project contains repositories, can not be deleted",
            ),
            ("DELETE", "/api/v2.0/projects/team-b") => Response::empty(200),
            _ => harbor_errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    let h = harbor(&server);

    let all = h.list_namespaces().await.unwrap();
    assert_eq!(
        all.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["library", "team-a", "team-b"]
    );
    assert_eq!(all[0].visibility, Visibility::Public);
    assert_eq!(all[1].visibility, Visibility::Private);
    assert_eq!(all[0].quota_bytes, Some(-1));
    assert_eq!(all[1].quota_bytes, Some(1 << 30));
    assert_eq!(all[1].used_bytes, Some(2048));
    assert_eq!(all[2].repository_count, Some(6));
    // both lists were followed over their pages
    let pages: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/api/v2.0/projects")
        .map(|r| r.query("page"))
        .collect();
    assert_eq!(pages, [Some("1".into()), Some("2".into())]);

    let ns = h
        .create_namespace(
            &NamespaceSpec::new("newproj")
                .visibility(Visibility::Public)
                .quota_bytes(1 << 30),
        )
        .await
        .unwrap();
    assert_eq!(ns.name, "newproj");
    assert_eq!(ns.visibility, Visibility::Public);
    assert_eq!(ns.quota_bytes, Some(1 << 30));
    let body = created.lock().unwrap().clone().unwrap();
    assert_eq!(body["project_name"], "newproj");
    assert_eq!(body["public"], true);
    assert_eq!(body["metadata"]["public"], "true");
    assert_eq!(body["storage_limit"], 1 << 30);

    let e = h
        .create_namespace(&NamespaceSpec::new("library"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("already exists"), "{e}");

    let e = h.get_namespace("ghost").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = h.delete_namespace("team-a").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(
        matches!(&e, Error::Registry { status: 412, code: Some(c), .. } if c == "PRECONDITION")
    );
    h.delete_namespace("team-b").await.unwrap();
    // invalid names never reach the server
    let before = server.requests().len();
    assert_eq!(
        h.create_namespace(&NamespaceSpec::new("Bad Name"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn repositories_and_artifacts() {
    let server = Server::start(|req| {
        match (req.method.as_str(), req.path()) {
            // operationId: listRepositories
            ("GET", "/api/v2.0/projects/lib/repositories") => paged(
                req,
                "/api/v2.0/projects/lib/repositories",
                &[
                    json!({"id": 1, "project_id": 1, "name": "lib/app", "artifact_count": 2, "pull_count": 7,
                           "creation_time": "2024-05-01T10:00:00Z", "update_time": "2024-05-02T10:00:00Z"}),
                    json!({"id": 2, "project_id": 1, "name": "lib/tools/cli", "artifact_count": 1, "pull_count": 0}),
                ],
            ),
            // operationId: listAllRepositories
            ("GET", "/api/v2.0/repositories") => Response::json(
                200,
                json!([{"id": 3, "name": "other/x", "artifact_count": 0, "pull_count": 0}]),
            )
            .header("X-Total-Count", "1"),
            // operationId: listArtifacts — "a/b" encoded twice
            ("GET", "/api/v2.0/projects/lib/repositories/tools%252Fcli/artifacts") => {
                assert_eq!(req.query("with_tag").as_deref(), Some("true"));
                Response::json(200, json!([
                    {"id": 9, "type": "IMAGE", "media_type": "application/vnd.oci.image.index.v1+json",
                     "manifest_media_type": "application/vnd.oci.image.index.v1+json",
                     "digest": format!("sha256:{}", "1".repeat(64)), "size": 4096,
                     "push_time": "2024-05-03T08:00:00.000Z", "pull_time": "0001-01-01T00:00:00.000Z",
                     "references": [
                        {"child_digest": format!("sha256:{}", "2".repeat(64)), "platform": {"os": "linux", "architecture": "amd64"}},
                        {"child_digest": format!("sha256:{}", "3".repeat(64)), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
                     ],
                     "tags": [{"id": 1, "name": "v2", "push_time": "2024-05-03T08:00:00.000Z", "immutable": false},
                              {"id": 2, "name": "latest", "push_time": "2024-05-03T08:00:00.000Z", "immutable": false}]},
                    {"id": 10, "digest": format!("sha256:{}", "4".repeat(64)), "size": 100,
                     "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
                     "push_time": "2024-04-01T08:00:00.000Z", "tags": null}
                ])).header("X-Total-Count", "2")
            }
            ("GET", "/api/v2.0/projects/lib/repositories/nope/artifacts") => {
                harbor_errors(404, "NOT_FOUND", "repository lib/nope not found")
            }
            // operationId: getArtifact
            ("GET", p) if p.starts_with("/api/v2.0/projects/lib/repositories/app/artifacts/") => {
                Response::json(200, json!({"digest": format!("sha256:{}", "5".repeat(64)), "size": 10,
                    "manifest_media_type": "application/vnd.docker.distribution.manifest.v2+json",
                    "push_time": "2024-05-05T00:00:00Z", "tags": [{"name": "v1"}]}))
            }
            // operationId: deleteArtifact
            ("DELETE", "/api/v2.0/projects/lib/repositories/app/artifacts/v1") => Response::empty(200),
            // operationId: deleteTag
            ("DELETE", "/api/v2.0/projects/lib/repositories/app/artifacts/old/tags/old") => {
                Response::empty(200)
            }
            // operationId: deleteRepository
            ("DELETE", "/api/v2.0/projects/lib/repositories/tools%252Fcli") => Response::empty(200),
            _ => harbor_errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    let h: Arc<dyn ImageRegistry> = connect_registry(&config(&server.url)).unwrap();
    assert_eq!(h.kind(), RegistryKind::Harbor);

    let repos = h.list_repositories(Some("lib")).await.unwrap();
    assert_eq!(repos.len(), 2);
    assert_eq!(repos[0].name, "lib/app");
    assert_eq!(repos[0].artifact_count, Some(2));
    assert_eq!(repos[0].pull_count, Some(7));
    assert_eq!(repos[1].namespace(), Some("lib/tools"));
    let all = h.list_repositories(None).await.unwrap();
    assert_eq!(all[0].name, "other/x");

    let arts = h.list_artifacts("lib/tools/cli").await.unwrap();
    assert_eq!(arts.len(), 2);
    assert_eq!(arts[0].media_type, media_types::OCI_INDEX);
    assert_eq!(arts[0].tags, ["latest", "v2"]);
    assert_eq!(arts[0].size, 4096);
    assert_eq!(arts[0].pushed.as_deref(), Some("2024-05-03T08:00:00.000Z"));
    assert_eq!(arts[0].platforms.len(), 2);
    assert_eq!(arts[0].platforms[1].to_string(), "linux/arm64/v8");
    assert!(arts[1].tags.is_empty());
    assert_eq!(
        h.list_tags("lib/tools/cli").await.unwrap(),
        ["latest", "v2"]
    );

    let a = h
        .get_artifact("lib/app", &ArtifactRef::Tag("v1".into()))
        .await
        .unwrap();
    assert_eq!(a.tags, ["v1"]);
    assert_eq!(a.repository, "lib/app");

    let e = h.list_artifacts("lib/nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string().contains("repository lib/nope not found"),
        "{e}"
    );

    h.delete_artifact("lib/app", &ArtifactRef::Tag("v1".into()))
        .await
        .unwrap();
    h.delete_tag("lib/app", "old").await.unwrap();
    h.delete_repository("lib/tools/cli").await.unwrap();
    // a Harbor repository always lives in a project
    assert_eq!(
        h.list_artifacts("noproject").await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

#[tokio::test]
async fn robots_members_gc_and_system_info() {
    let bodies = Arc::new(Mutex::new(Vec::<(String, serde_json::Value)>::new()));
    let b2 = bodies.clone();
    let server = Server::start(move |req| {
        if !req.body.is_empty() {
            b2.lock().unwrap().push((req.path().to_string(), req.json()));
        }
        match (req.method.as_str(), req.path()) {
            // operationId: getSystemInfo
            ("GET", "/api/v2.0/systeminfo") => Response::json(200, json!({
                "harbor_version": "v2.11.1-6b7ecba1", "auth_mode": "db_auth",
                "external_url": "https://harbor.example.com", "registry_url": "harbor.example.com",
                "project_creation_restriction": "everyone", "read_only": false,
                "registry_storage_provider_name": "filesystem", "has_ca_root": false
            })),
            ("GET", "/api/v2.0/projects/ci") => Response::json(200, project(7, "ci", false)),
            // operationId: CreateRobot
            ("POST", "/api/v2.0/robots") => Response::json(201, json!({
                "id": 42, "name": "robot$ci+builder", "secret": "s3cr3t-robot-token",
                "creation_time": "2024-05-01T00:00:00Z", "expires_at": 1735689600
            })).header("Location", "/api/v2.0/robots/42"),
            // operationId: ListRobot
            ("GET", "/api/v2.0/robots") => {
                assert_eq!(req.query("q").as_deref(), Some("Level%3Dproject%2CProjectID%3D7"));
                Response::json(200, json!([{"id": 42, "name": "robot$ci+builder", "level": "project",
                    "disable": false, "expires_at": 1735689600, "editable": true}]))
                    .header("X-Total-Count", "1")
            }
            // operationId: DeleteRobot
            ("DELETE", "/api/v2.0/robots/42") => Response::empty(200),
            ("DELETE", "/api/v2.0/robots/43") => harbor_errors(404, "NOT_FOUND", "robot 43 not found"),
            // operationId: listProjectMembers
            ("GET", "/api/v2.0/projects/ci/members") => Response::json(200, json!([
                {"id": 1, "project_id": 7, "entity_name": "admin", "role_name": "projectAdmin", "role_id": 1, "entity_id": 1, "entity_type": "u"},
                {"id": 5, "project_id": 7, "entity_name": "dev", "role_name": "developer", "role_id": 2, "entity_id": 3, "entity_type": "u"}
            ])).header("X-Total-Count", "2"),
            // operationId: createProjectMember
            ("POST", "/api/v2.0/projects/ci/members") => {
                Response::empty(201).header("Location", "/api/v2.0/projects/7/members/9")
            }
            // operationId: deleteProjectMember
            ("DELETE", "/api/v2.0/projects/ci/members/9") => Response::empty(200),
            // operationId: createGCSchedule
            ("POST", "/api/v2.0/system/gc/schedule") => Response::empty(201),
            // operationId: getCurrentUserInfo — robots get 412
            ("GET", "/api/v2.0/users/current") => harbor_errors(
                412,
                "PRECONDITION",
                "this API is not available to robot accounts",
            ),
            _ => harbor_errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    let h = harbor(&server);

    let info = h.system_info().await.unwrap();
    assert_eq!(info.harbor_version.as_deref(), Some("v2.11.1-6b7ecba1"));
    let ri = h.info().await.unwrap();
    assert_eq!(ri.backend, "harbor");
    assert_eq!(ri.extra["auth_mode"], "db_auth");

    let robot = h
        .create_robot(&RobotSpec::ci("builder", "ci", 30))
        .await
        .unwrap();
    assert_eq!(robot.id, 42);
    assert_eq!(robot.name, "robot$ci+builder");
    assert_eq!(robot.secret.expose(), "s3cr3t-robot-token");
    assert!(!format!("{robot:?}").contains("s3cr3t"), "{robot:?}");
    let (_, body) = bodies.lock().unwrap()[0].clone();
    assert_eq!(body["level"], "project");
    assert_eq!(body["duration"], 30);
    assert_eq!(body["permissions"][0]["kind"], "project");
    assert_eq!(body["permissions"][0]["namespace"], "ci");
    assert_eq!(body["permissions"][0]["access"][1]["action"], "push");

    let robots = h.list_robots("ci").await.unwrap();
    assert_eq!(robots[0].level.as_deref(), Some("project"));
    h.delete_robot(42).await.unwrap();
    assert_eq!(
        h.delete_robot(43).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let members = h.list_members("ci").await.unwrap();
    assert_eq!(members[1].role, Some(ProjectRole::Developer));
    let id = h
        .add_member("ci", "carol", ProjectRole::Maintainer)
        .await
        .unwrap();
    assert_eq!(id, Some(9));
    let (path, body) = bodies.lock().unwrap()[1].clone();
    assert_eq!(path, "/api/v2.0/projects/ci/members");
    assert_eq!(
        body,
        json!({"role_id": 4, "member_user": {"username": "carol"}})
    );
    h.remove_member("ci", 9).await.unwrap();

    h.trigger_gc(true).await.unwrap();
    let (_, body) = bodies.lock().unwrap()[2].clone();
    assert_eq!(body["schedule"]["type"], "Manual");
    assert_eq!(body["parameters"]["delete_untagged"], true);

    // a robot's credentials are accepted even though users/current says 412
    h.check_credentials().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_give_unauthorized_with_harbors_message() {
    let server = Server::start(|req| {
        if req.header("authorization") == Some(BASIC_ADMIN) {
            Response::json(
                200,
                json!({"user_id": 1, "username": "admin", "sysadmin_flag": true}),
            )
        } else {
            harbor_errors(401, "UNAUTHORIZED", "invalid credentials")
        }
    })
    .await;
    harbor(&server).check_credentials().await.unwrap();
    let bad = RegistryConfig::new(server.url.clone())
        .kind(RegistryKind::Harbor)
        .credentials("admin", "nope")
        .allow_http(true);
    let h = connect_registry(&bad).unwrap();
    let e = h.check_credentials().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    match &e {
        Error::Registry {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(code.as_deref(), Some("UNAUTHORIZED"));
            assert_eq!(message, "invalid credentials");
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{h:?}").contains("nope"));
}

/// Harbor serves manifests at `/v2/` behind its token service
/// (`WWW-Authenticate: Bearer realm=".../service/token",service="harbor-registry"`);
/// the backend falls back to the distribution client for them.
#[tokio::test]
async fn manifests_come_from_v2_with_a_bearer_token() {
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": format!("sha256:{}", "a".repeat(64))},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 30, "digest": format!("sha256:{}", "b".repeat(64))}]
    })
    .to_string();
    let digest = kubepkg_image_api::distribution::sha256_digest(manifest.as_bytes());
    let token_calls = Arc::new(AtomicUsize::new(0));
    let tc = token_calls.clone();
    let url = Arc::new(Mutex::new(String::new()));
    let u2 = url.clone();
    let (m2, d2) = (manifest.clone(), digest.clone());
    let server = Server::start(move |req| {
        let realm = format!("{}/service/token", u2.lock().unwrap());
        let challenge = |scope: Option<&str>| {
            let mut c = format!("Bearer realm=\"{realm}\",service=\"harbor-registry\"");
            if let Some(s) = scope {
                c.push_str(&format!(",scope=\"{s}\""));
            }
            harbor_errors(401, "UNAUTHORIZED", "unauthorized to access repository")
                .header("Www-Authenticate", c)
        };
        match req.path() {
            "/service/token" => {
                tc.fetch_add(1, Ordering::SeqCst);
                if req.header("authorization") != Some(BASIC_ADMIN) {
                    return harbor_errors(401, "UNAUTHORIZED", "bad credentials");
                }
                assert_eq!(req.query("service").as_deref(), Some("harbor-registry"));
                let scope = req.query("scope").unwrap_or_default();
                Response::json(
                    200,
                    json!({"token": format!("tok|{scope}"), "expires_in": 1800,
                                           "issued_at": "2024-05-01T00:00:00Z"}),
                )
            }
            "/v2/" => match req.header("authorization") {
                Some(a) if a.starts_with("Bearer tok|") => Response::json(200, json!({})),
                _ => challenge(None),
            },
            "/v2/lib/app/manifests/v1" | "/v2/lib/app/manifests/bad" => {
                let want = "Bearer tok|repository%3Alib%2Fapp%3Apull";
                if req.header("authorization") != Some(want) {
                    return challenge(Some("repository:lib/app:pull"));
                }
                let header_digest = if req.path().ends_with("bad") {
                    format!("sha256:{}", "0".repeat(64))
                } else {
                    d2.clone()
                };
                Response::bytes(
                    200,
                    "application/vnd.oci.image.manifest.v1+json",
                    m2.clone(),
                )
                .header("Docker-Content-Digest", header_digest)
            }
            _ => harbor_errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    *url.lock().unwrap() = server.url.clone();
    let h = harbor(&server);

    let m = h
        .get_manifest("lib/app", &ArtifactRef::Tag("v1".into()))
        .await
        .unwrap();
    assert_eq!(m.digest, digest);
    assert_eq!(m.as_image().unwrap().total_size(), 32);
    assert_eq!(
        h.resolve("lib/app", &ArtifactRef::Tag("v1".into()))
            .await
            .unwrap(),
        digest
    );
    // one token for the scope, reused by the second call
    assert_eq!(token_calls.load(Ordering::SeqCst), 1);

    // a body that does not match its announced digest is refused
    let e = h
        .get_manifest("lib/app", &ArtifactRef::Tag("bad".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
}

/// Caller text never becomes URL syntax: every admin method refuses a
/// project name Harbor itself would refuse (`..`, `%2e%2e`, `a/b`, `?x`…)
/// before sending anything, instead of walking to another endpoint.
#[tokio::test]
async fn project_names_cannot_walk_to_other_endpoints() {
    // Any request reaching this server is a failure of the test.
    let server = Server::start(|_| Response::json(200, json!([]))).await;
    let h = harbor(&server);
    for bad in [
        "..",
        "%2e%2e",
        "a/b",
        "?x",
        "a/../../users",
        "x#frag",
        "",
        "A",
    ] {
        let mut results: Vec<(&str, kubepkg_image_api::Result<()>)> = vec![
            ("set_project_quota", h.set_project_quota(bad, 1).await),
            ("list_robots", h.list_robots(bad).await.map(|_| ())),
            ("list_members", h.list_members(bad).await.map(|_| ())),
            (
                "add_member",
                h.add_member(bad, "alice", ProjectRole::Developer)
                    .await
                    .map(|_| ()),
            ),
            ("remove_member", h.remove_member(bad, 3).await),
            ("get_namespace", h.get_namespace(bad).await.map(|_| ())),
            ("delete_namespace", h.delete_namespace(bad).await),
            (
                "list_repositories",
                h.list_repositories(Some(bad)).await.map(|_| ()),
            ),
            (
                "create_namespace",
                h.create_namespace(&NamespaceSpec::new(bad))
                    .await
                    .map(|_| ()),
            ),
            (
                "create_robot",
                h.create_robot(&RobotSpec::ci("builder", bad, 30))
                    .await
                    .map(|_| ()),
            ),
            (
                "create_robot name",
                h.create_robot(&RobotSpec::ci(bad, "ci", 30))
                    .await
                    .map(|_| ()),
            ),
        ];
        if !bad.is_empty() && !bad.contains('/') {
            let repo = format!("{bad}/app");
            results.push(("list_artifacts", h.list_artifacts(&repo).await.map(|_| ())));
        }
        for (op, r) in results {
            let e = r.expect_err(op);
            assert_eq!(e.kind(), ErrorKind::Invalid, "{op}({bad:?}): {e}");
        }
    }
    assert!(
        server.requests().is_empty(),
        "requests were sent: {:?}",
        server
            .requests()
            .iter()
            .map(|r| r.target.clone())
            .collect::<Vec<_>>()
    );
}

/// A `Link: rel="next"` (swagger: the list headers) pointing at another
/// host is refused, not followed with the admin's Basic credentials.
#[tokio::test]
async fn list_links_to_another_host_are_refused() {
    let elsewhere = Server::start(|_| Response::json(200, json!([]))).await;
    let next = format!(
        "{}/api/v2.0/projects?page=2&page_size=1",
        elsewhere.url.replace("127.0.0.1", "localhost")
    );
    let server = Server::start(move |req| match req.path() {
        // operationId: listProjects
        "/api/v2.0/projects" => Response::json(200, json!([project(1, "library", true)]))
            .header("X-Total-Count", "2")
            .header("Link", format!("<{next}>; rel=\"next\"")),
        _ => harbor_errors(404, "NOT_FOUND", "no route"),
    })
    .await;
    let e = harbor(&server).list_namespaces().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert!(elsewhere.requests().is_empty());
}

/// GETs are retried through a 503 (Harbor behind a restarting core), a POST
/// that reached the server is not: it might have been applied.
#[tokio::test]
async fn reads_are_retried_writes_are_not() {
    let gets = Arc::new(AtomicUsize::new(0));
    let g = gets.clone();
    let server = Server::start(move |req| match (req.method.as_str(), req.path()) {
        // operationId: getSystemInfo
        ("GET", "/api/v2.0/systeminfo") => {
            if g.fetch_add(1, Ordering::SeqCst) < 2 {
                harbor_errors(503, "SERVICE_UNAVAILABLE", "core restarting")
                    .header("Retry-After", "0")
            } else {
                Response::json(200, json!({"harbor_version": "v2.11.1"}))
            }
        }
        // operationId: createProject
        ("POST", "/api/v2.0/projects") => {
            harbor_errors(503, "SERVICE_UNAVAILABLE", "core restarting")
        }
        _ => harbor_errors(404, "NOT_FOUND", "no route"),
    })
    .await;
    let h = harbor(&server);
    let info = h.system_info().await.unwrap();
    assert_eq!(info.harbor_version.as_deref(), Some("v2.11.1"));
    assert_eq!(gets.load(Ordering::SeqCst), 3);

    let e = h
        .create_namespace(&NamespaceSpec::new("team-c"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "a POST that reached Harbor was sent again");
}
