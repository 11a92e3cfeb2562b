//! The auth matrix: every route, with no token, a bad one, each role and a
//! cluster-scoped one. Targets do not exist, so an allowed call changes
//! nothing (it answers 404 / 4xx from the handler), while a refused one must
//! be 401 or 403 from the auth layer.

use crate::common::{Server, assert_error, send};
use reqwest::{Method, StatusCode};

/// `(method, path, least role)`; `{c}` is a cluster nobody imported.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/openapi.json", "viewer"),
    ("GET", "/clusters", "viewer"),
    ("GET", "/clusters/c1", "viewer"),
    ("GET", "/clusters/c1/summary", "viewer"),
    ("GET", "/clusters/c1/health", "viewer"),
    ("GET", "/clusters/c1/nodes", "viewer"),
    ("GET", "/clusters/c1/namespaces", "viewer"),
    ("GET", "/clusters/c1/persistentvolumes", "viewer"),
    ("GET", "/clusters/c1/watch?kind=Pod", "viewer"),
    (
        "GET",
        "/clusters/c1/namespaces/default/workloads/deployments",
        "viewer",
    ),
    (
        "GET",
        "/clusters/c1/namespaces/default/workloads/deployments/x",
        "viewer",
    ),
    (
        "GET",
        "/clusters/c1/namespaces/default/workloads/deployments/x/rollout",
        "viewer",
    ),
    ("GET", "/clusters/c1/namespaces/default/pods", "viewer"),
    ("GET", "/clusters/c1/namespaces/default/pods/x", "viewer"),
    (
        "GET",
        "/clusters/c1/namespaces/default/pods/x/events",
        "viewer",
    ),
    ("GET", "/clusters/c1/namespaces/default/events", "viewer"),
    (
        "GET",
        "/clusters/c1/namespaces/default/resources/services",
        "viewer",
    ),
    (
        "GET",
        "/clusters/c1/namespaces/default/resources/secrets/x",
        "viewer",
    ),
    ("GET", "/search?kind=Pod", "viewer"),
    ("GET", "/registries", "viewer"),
    ("GET", "/registries/nope/namespaces", "viewer"),
    ("GET", "/registries/nope/repositories", "viewer"),
    ("GET", "/registries/nope/tags?repository=a/b", "viewer"),
    ("GET", "/registries/nope/artifacts?repository=a/b", "viewer"),
    ("GET", "/object-stores", "viewer"),
    ("GET", "/object-stores/nope/buckets", "viewer"),
    ("GET", "/object-stores/nope/buckets/b/objects", "viewer"),
    ("GET", "/object-stores/nope/buckets/b/objects/k", "viewer"),
    (
        "DELETE",
        "/clusters/c1/namespaces/default/workloads/deployments/x",
        "operator",
    ),
    (
        "POST",
        "/clusters/c1/namespaces/default/workloads/deployments/x/scale",
        "operator",
    ),
    (
        "POST",
        "/clusters/c1/namespaces/default/workloads/deployments/x/restart",
        "operator",
    ),
    (
        "POST",
        "/clusters/c1/namespaces/default/workloads/deployments/x/rollback",
        "operator",
    ),
    (
        "POST",
        "/clusters/c1/namespaces/default/workloads/cronjobs/x/suspend",
        "operator",
    ),
    (
        "POST",
        "/clusters/c1/namespaces/default/workloads/cronjobs/x/resume",
        "operator",
    ),
    (
        "DELETE",
        "/clusters/c1/namespaces/default/pods/x",
        "operator",
    ),
    (
        "GET",
        "/clusters/c1/namespaces/default/pods/x/logs",
        "operator",
    ),
    ("POST", "/clusters/c1/nodes/n/cordon", "operator"),
    ("POST", "/clusters/c1/nodes/n/uncordon", "operator"),
    ("POST", "/clusters/c1/nodes/n/drain", "operator"),
    ("POST", "/clusters/c1/apply", "operator"),
    ("POST", "/clusters/c1/apply/delete", "operator"),
    ("POST", "/object-stores/nope/buckets", "operator"),
    ("PUT", "/object-stores/nope/buckets/b/objects/k", "operator"),
    (
        "DELETE",
        "/object-stores/nope/buckets/b/objects/k",
        "operator",
    ),
    ("POST", "/message-queues/nope/queues", "operator"),
    ("POST", "/message-queues/nope/publish", "operator"),
    ("POST", "/message-queues/nope/queues/q/receive", "operator"),
    ("POST", "/clusters", "admin"),
    ("DELETE", "/clusters/c1", "admin"),
    ("POST", "/clusters/c1/rotate-credentials", "admin"),
    ("GET", "/tokens", "admin"),
    ("POST", "/tokens", "admin"),
    (
        "DELETE",
        "/tokens/00000000-0000-0000-0000-000000000000",
        "admin",
    ),
    ("GET", "/audit", "admin"),
    ("POST", "/registries/nope/namespaces", "admin"),
    ("DELETE", "/registries/nope/namespaces/ns", "admin"),
];

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 1,
        "operator" => 2,
        "admin" => 3,
        other => panic!("role {other}"),
    }
}

#[tokio::test]
async fn every_route_checks_token_role_and_cluster() {
    let s = Server::start();
    let viewer = s.token("matrix-viewer", "viewer", None).await;
    let operator = s.token("matrix-operator", "operator", None).await;
    let admin = s.admin.clone();
    // An admin limited to another cluster: the cluster check alone refuses.
    let scoped = s.token("matrix-scoped", "admin", Some(vec!["other"])).await;
    let (_, before) = s.admin(Method::GET, "/clusters", None).await;
    let mut checked = 0;
    for (method, path, least) in ROUTES {
        let m: Method = method.parse().unwrap();
        // No token, and a token nobody issued: 401 with a challenge.
        for token in [None, Some("kpk_not-a-token-anyone-issued-000000000000")] {
            let resp = s.req(m.clone(), path, token).send().await.unwrap();
            assert_eq!(
                resp.headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap()),
                Some("Bearer"),
                "{method} {path}"
            );
            let (status, v) = send(s.req(m.clone(), path, token)).await;
            assert_error(status, &v, 401, &format!("{method} {path} token {token:?}"));
        }
        for (role, token) in [
            ("viewer", &viewer),
            ("operator", &operator),
            ("admin", &admin),
        ] {
            let (status, v) = send(
                s.req(m.clone(), path, Some(token))
                    .header("content-type", "application/json"),
            )
            .await;
            if rank(role) < rank(least) {
                assert_error(status, &v, 403, &format!("{method} {path} as {role}"));
                assert!(v["message"].as_str().unwrap().contains(least), "{v}");
            } else {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {path} as {role} must pass auth: {status} {v}"
                );
                assert!(
                    !status.is_server_error(),
                    "{method} {path} as {role}: {status} {v}"
                );
            }
            checked += 1;
        }
        let (status, v) = send(
            s.req(m.clone(), path, Some(&scoped))
                .header("content-type", "application/json"),
        )
        .await;
        if path.starts_with("/clusters/c1") || *path == "/search?kind=Pod" {
            assert_error(
                status,
                &v,
                403,
                &format!("{method} {path} scoped to another cluster"),
            );
        } else {
            assert!(
                status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                "{method} {path} scoped: {status} {v}"
            );
        }
    }
    assert_eq!(checked, ROUTES.len() * 3);
    // Nothing was created or removed by the allowed calls.
    let (_, after) = s.admin(Method::GET, "/clusters", None).await;
    assert_eq!(before["data"]["total"], after["data"]["total"]);
    // Every route of the OpenAPI document is in the matrix.
    let (_, doc) = s.admin(Method::GET, "/openapi.json", None).await;
    let paths = doc["paths"].as_object().expect("paths");
    for (p, item) in paths {
        for m in item.as_object().unwrap().keys() {
            if p == "/healthz" || p == "/readyz" {
                continue;
            }
            let covered = ROUTES.iter().any(|(rm, rp, _)| {
                rm.eq_ignore_ascii_case(m) && same_template(p, rp.split('?').next().unwrap())
            });
            assert!(covered, "{m} {p} is not in the auth matrix");
        }
    }
}

/// `/clusters/{cluster}/x` matches `/clusters/c1/x`.
fn same_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let s = Server::start();
    // Public routes need no token.
    for path in ["/healthz", "/readyz"] {
        let (status, v) = s.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["code"], 0);
    }
    let (status, v) = s
        .admin(
            Method::POST,
            "/tokens",
            Some(serde_json::json!({"name": "ci", "role": "viewer", "ttl_secs": 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let secret = v["data"]["secret"].as_str().unwrap().to_owned();
    let id = v["data"]["token"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("kpk_") && secret.len() > 40, "{secret}");
    assert!(v["data"]["token"]["expires_at"].is_string());
    // The list never shows a secret.
    let (_, list) = s.admin(Method::GET, "/tokens", None).await;
    let text = list.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&s.admin),
        "{text}"
    );
    assert!(text.contains("\"ci\""));
    let (status, _) = s.call(Method::GET, "/clusters", Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK);
    // Revoked: refused within the cache's two seconds.
    let (status, v) = s
        .admin(Method::DELETE, &format!("/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, v) = s.call(Method::GET, "/clusters", Some(&secret), None).await;
    assert_error(status, &v, 401, "a revoked token");
    // The mutations are audited with the admin's token id.
    let (_, audit) = s.admin(Method::GET, "/audit?limit=10", None).await;
    let entries = audit["data"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["route"] == "/tokens/{id}" && e["method"] == "DELETE" && e["status"] == 200),
        "{audit}"
    );
    assert!(entries.iter().all(|e| e["token_id"].is_string()), "{audit}");
    // Neither secret is in the output or the log.
    let out = s.all_output();
    assert!(!out.contains(&secret), "a token secret was written out");
    assert!(!out.contains(&s.admin), "the admin token was written out");
}
