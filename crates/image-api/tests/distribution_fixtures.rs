//! The distribution backend against fixtures of the parts the local registry
//! cannot show: catalog pagination over several pages (`n` + `Link`), and
//! the bearer-token challenge flow of Docker Hub / Harbor / ACR / TKE
//! (Docker's "Token Authentication Specification": a 401 with
//! `WWW-Authenticate: Bearer realm,service,scope`, a GET of the realm with
//! `service` and `scope`, a JSON `{token|access_token, expires_in}` answer).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::http::{Response, Server};
use kubepkg_image_api::{RegistryConfig, connect_registry};
use kubepkg_util::ErrorKind;
use serde_json::json;

fn errors(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"errors": [{"code": code, "message": message, "detail": null}]}),
    )
}

#[tokio::test]
async fn bearer_challenge_catalog_pages_and_token_cache() {
    let token_scopes = Arc::new(Mutex::new(Vec::<String>::new()));
    let ts = token_scopes.clone();
    let base = Arc::new(Mutex::new(String::new()));
    let b2 = base.clone();
    let names: Vec<String> = (0..5).map(|i| format!("team/app{i}")).collect();
    let server = Server::start(move |req| {
        let realm = format!("{}/token", b2.lock().unwrap());
        let challenge = |scope: &str| {
            errors(401, "UNAUTHORIZED", "authentication required").header(
                "WWW-Authenticate",
                format!("Bearer realm=\"{realm}\",service=\"fixture\",scope=\"{scope}\""),
            )
        };
        let auth = req.header("authorization").unwrap_or_default().to_string();
        match req.path() {
            "/token" => {
                // user "ci", password "pw"
                if auth != "Basic Y2k6cHc=" {
                    return errors(401, "UNAUTHORIZED", "bad credentials");
                }
                let scope = req.query("scope").unwrap_or_default();
                ts.lock().unwrap().push(scope.clone());
                // `access_token` (OAuth form) instead of `token`
                Response::json(
                    200,
                    json!({"access_token": format!("T:{scope}"), "expires_in": 300}),
                )
            }
            // any valid token opens the base endpoint
            "/v2/" if auth.starts_with("Bearer T:") => Response::json(200, json!({})),
            "/v2/" => challenge(""),
            "/v2/_catalog" => {
                if auth != "Bearer T:registry%3Acatalog%3A*" {
                    return challenge("registry:catalog:*");
                }
                // two per page, continuing after `last`
                let last = req.query("last").map(|l| l.replace("%2F", "/"));
                let start = match &last {
                    Some(l) => names.iter().position(|n| n == l).map_or(0, |p| p + 1),
                    None => 0,
                };
                let page: Vec<_> = names.iter().skip(start).take(2).cloned().collect();
                let mut resp = Response::json(200, json!({"repositories": page}));
                if start + 2 < names.len() {
                    resp = resp.header(
                        "Link",
                        format!("</v2/_catalog?last={}&n=2>; rel=\"next\"", page[1]),
                    );
                }
                resp
            }
            p if p.starts_with("/v2/team/") && p.ends_with("/tags/list") => {
                let repo = p.trim_start_matches("/v2/").trim_end_matches("/tags/list");
                let want = format!("Bearer T:repository%3A{}%3Apull", repo.replace('/', "%2F"));
                if auth != want {
                    return challenge(&format!("repository:{repo}:pull"));
                }
                if repo == "team/gone" {
                    return errors(404, "NAME_UNKNOWN", "repository name not known to registry");
                }
                Response::json(200, json!({"name": repo, "tags": ["b", "a"]}))
            }
            _ => errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    *base.lock().unwrap() = server.url.clone();
    let cfg = RegistryConfig::new(server.url.clone())
        .credentials("ci", "pw")
        .allow_http(true);
    let reg = connect_registry(&cfg).unwrap();

    let repos = reg.list_repositories(None).await.unwrap();
    assert_eq!(
        repos.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        [
            "team/app0",
            "team/app1",
            "team/app2",
            "team/app3",
            "team/app4"
        ]
    );
    let catalog_requests = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/v2/_catalog")
        .count();
    // three pages; the scheme was learnt from `/v2/`, so the token for the
    // catalog scope was fetched before the first page (no 401 round trip)
    assert_eq!(catalog_requests, 3);

    assert_eq!(reg.list_tags("team/app1").await.unwrap(), ["a", "b"]);
    assert_eq!(reg.list_tags("team/app1").await.unwrap(), ["a", "b"]);
    assert_eq!(reg.list_tags("team/app2").await.unwrap(), ["a", "b"]);
    let e = reg.list_tags("team/gone").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // one token per scope; the second listing of app1 reused its token
    let scopes = token_scopes.lock().unwrap().clone();
    assert_eq!(
        scopes,
        [
            "registry%3Acatalog%3A*",
            "repository%3Ateam%2Fapp1%3Apull",
            "repository%3Ateam%2Fapp2%3Apull",
            "repository%3Ateam%2Fgone%3Apull",
        ]
    );
    // the credential check goes to the token endpoint
    reg.check_credentials().await.unwrap();

    let bad = RegistryConfig::new(server.url.clone())
        .credentials("ci", "wrong")
        .allow_http(true);
    let bad = connect_registry(&bad).unwrap();
    assert_eq!(
        bad.check_credentials().await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        bad.list_tags("team/app1").await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
}

#[tokio::test]
async fn expired_or_revoked_tokens_are_refetched() {
    let fetched = Arc::new(AtomicUsize::new(0));
    let f2 = fetched.clone();
    let base = Arc::new(Mutex::new(String::new()));
    let b2 = base.clone();
    let server = Server::start(move |req| {
        let realm = format!("{}/token", b2.lock().unwrap());
        let challenge = errors(401, "UNAUTHORIZED", "token expired").header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{realm}\",service=\"fixture\",scope=\"repository:r:pull\""),
        );
        match req.path() {
            "/token" => {
                let n = f2.fetch_add(1, Ordering::SeqCst);
                Response::json(200, json!({"token": format!("gen{n}")}))
            }
            "/v2/" => challenge,
            "/v2/r/tags/list" => {
                // the server only accepts the second token: the first is "revoked"
                if req.header("authorization") == Some("Bearer gen1") {
                    Response::json(200, json!({"name": "r", "tags": ["x"]}))
                } else {
                    challenge
                }
            }
            _ => errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    *base.lock().unwrap() = server.url.clone();
    // anonymous pulls get tokens too
    let reg = connect_registry(&RegistryConfig::new(server.url.clone()).allow_http(true)).unwrap();
    assert_eq!(reg.list_tags("r").await.unwrap(), ["x"]);
    assert_eq!(fetched.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn plain_http_needs_allow_http() {
    let e = connect_registry(&RegistryConfig::new("http://127.0.0.1:9")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("allow_http"), "{e}");
}

/// An image index: the artifact's size sums its platform images (manifest +
/// config + layers), its time is the latest config `created`, and its
/// platforms come from the index. Anonymous registry (`/v2/` answers 200).
#[tokio::test]
async fn index_artifacts_sum_their_platform_images() {
    use kubepkg_image_api::ArtifactRef;
    use kubepkg_image_api::distribution::sha256_digest;

    let config =
        |created: &str| format!(r#"{{"architecture":"amd64","os":"linux","created":"{created}"}}"#);
    let (c1, c2) = (
        config("2024-01-01T00:00:00Z"),
        config("2024-03-01T00:00:00Z"),
    );
    let image = |cfg: &str, layer: u64| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": cfg.len(), "digest": sha256_digest(cfg.as_bytes())},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": layer, "digest": format!("sha256:{}", "c".repeat(64))}]})
        .to_string()
    };
    let (m1, m2) = (image(&c1, 1000), image(&c2, 2000));
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": m1.len(), "digest": sha256_digest(m1.as_bytes()),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": m2.len(), "digest": sha256_digest(m2.as_bytes()),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
        ]})
    .to_string();
    let index_digest = sha256_digest(index.as_bytes());
    let expected_size = (m1.len() + c1.len() + 1000 + m2.len() + c2.len() + 2000) as u64;
    let docs: Vec<(String, String, &'static str)> = vec![
        (
            index_digest.clone(),
            index.clone(),
            "application/vnd.oci.image.index.v1+json",
        ),
        (
            sha256_digest(m1.as_bytes()),
            m1,
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            sha256_digest(m2.as_bytes()),
            m2,
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (sha256_digest(c1.as_bytes()), c1, "application/octet-stream"),
        (sha256_digest(c2.as_bytes()), c2, "application/octet-stream"),
    ];
    let server = Server::start(move |req| {
        let path = req.path();
        if path == "/v2/" {
            return Response::json(200, json!({}));
        }
        if path == "/v2/multi/tags/list" {
            return Response::json(200, json!({"name": "multi", "tags": ["v1", "latest"]}));
        }
        let reference = path.rsplit('/').next().unwrap_or_default();
        let found = if reference == "v1" || reference == "latest" {
            docs.first()
        } else {
            docs.iter().find(|(d, _, _)| d == reference)
        };
        match found {
            Some((d, body, ct)) => {
                Response::bytes(200, ct, body.clone()).header("Docker-Content-Digest", d.clone())
            }
            None => errors(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        }
    })
    .await;
    let reg = connect_registry(&RegistryConfig::new(server.url.clone()).allow_http(true)).unwrap();
    let arts = reg.list_artifacts("multi").await.unwrap();
    assert_eq!(arts.len(), 1, "{arts:?}");
    let a = &arts[0];
    assert_eq!(a.digest, index_digest);
    assert_eq!(a.tags, ["latest", "v1"]);
    assert_eq!(a.size, expected_size);
    assert_eq!(a.pushed.as_deref(), Some("2024-03-01T00:00:00Z"));
    assert_eq!(a.platforms.len(), 2);
    assert_eq!(a.platforms[1].to_string(), "linux/arm64/v8");
    let m = reg
        .get_manifest("multi", &ArtifactRef::Tag("v1".into()))
        .await
        .unwrap();
    assert_eq!(m.as_index().unwrap().manifests.len(), 2);
    // an anonymous registry needs no credentials
    reg.check_credentials().await.unwrap();
}
