//! The distribution backend against registries that misbehave in ways the
//! real local registry never does. Each fixture imitates an answer the OCI
//! distribution spec / Docker's "Token Authentication Specification" allow
//! a server to give, taken to a hostile extreme: a token with an absurd
//! `expires_in`, a token realm on another host over plain http, a
//! `Link: rel="next"` to another host, a 503 / 429 with `Retry-After`, a
//! slow or stalled blob body, endless manifest and error bodies.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{BodyPlan, Response, Server};
use futures::TryStreamExt;
use kubepkg_image_api::distribution::{DistributionRegistry, sha256_digest};
use kubepkg_image_api::{ArtifactRef, Error, RegistryConfig, connect_registry};
use kubepkg_util::{ErrorKind, HasErrorKind};
use serde_json::json;

fn errors(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"errors": [{"code": code, "message": message, "detail": null}]}),
    )
}

/// `http://127.0.0.1:PORT` as `http://localhost:PORT`: the same server under
/// another host name, which is what "another host" means to the client.
fn as_localhost(url: &str) -> String {
    url.replace("127.0.0.1", "localhost")
}

fn config(url: &str) -> RegistryConfig {
    RegistryConfig::new(url)
        .credentials("ci", "pw")
        .allow_http(true)
}

/// A registry whose `/v2/` asks for a bearer token at `realm`.
async fn bearer_registry(realm: Arc<Mutex<String>>) -> Server {
    Server::start(move |req| {
        let challenge = errors(401, "UNAUTHORIZED", "authentication required").header(
            "WWW-Authenticate",
            format!(
                "Bearer realm=\"{}\",service=\"fixture\"",
                realm.lock().unwrap()
            ),
        );
        match req.path() {
            "/v2/" => challenge,
            "/v2/r/tags/list" if req.header("authorization") == Some("Bearer T") => {
                Response::json(200, json!({"name": "r", "tags": ["x"]}))
            }
            "/v2/r/tags/list" => challenge,
            _ => errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await
}

/// A token server (Docker token spec) answering `body` to every request.
async fn token_server(body: serde_json::Value) -> Server {
    Server::start(move |req| {
        if req.path() == "/token" {
            Response::json(200, body.clone())
        } else {
            errors(404, "NOT_FOUND", "no route")
        }
    })
    .await
}

#[tokio::test]
async fn a_huge_expires_in_does_not_panic() {
    // `expires_in` of u64::MAX seconds: adding that to `Instant::now()`
    // overflows; the client caps the lifetime instead.
    for expires_in in [json!(u64::MAX), json!(1e300), json!(-1), json!("soon")] {
        let tokens = token_server(json!({"token": "T", "expires_in": expires_in})).await;
        let realm = Arc::new(Mutex::new(format!("{}/token", tokens.url)));
        let registry = bearer_registry(realm).await;
        let reg = connect_registry(&config(&registry.url)).unwrap();
        assert_eq!(reg.list_tags("r").await.unwrap(), ["x"], "{expires_in}");
        // the token is cached, so a second listing asks for no new one
        assert_eq!(reg.list_tags("r").await.unwrap(), ["x"]);
        assert_eq!(tokens.requests().len(), 1, "{expires_in}");
    }
}

#[tokio::test]
async fn credentials_are_not_sent_to_a_plain_http_realm_on_another_host() {
    let tokens = token_server(json!({"token": "T"})).await;
    let realm = Arc::new(Mutex::new(format!("{}/token", as_localhost(&tokens.url))));
    let registry = bearer_registry(realm.clone()).await;

    let reg = connect_registry(&config(&registry.url)).unwrap();
    let e = reg.list_tags("r").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert!(e.to_string().contains("localhost"), "{e}");
    let e = reg.check_credentials().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    assert!(
        tokens.requests().is_empty(),
        "the realm on another host was asked: {:?}",
        tokens.requests()
    );

    // Without credentials nothing secret goes along, so the realm is used.
    let anonymous =
        connect_registry(&RegistryConfig::new(registry.url.clone()).allow_http(true)).unwrap();
    assert_eq!(anonymous.list_tags("r").await.unwrap(), ["x"]);
    let asked = tokens.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].header("authorization"), None);

    // The registry's own host over plain http (the registry is http too) is fine.
    *realm.lock().unwrap() = format!("{}/token", tokens.url);
    let own_host = bearer_registry(realm).await;
    let reg = connect_registry(&config(&own_host.url)).unwrap();
    assert_eq!(reg.list_tags("r").await.unwrap(), ["x"]);
    assert_eq!(
        tokens
            .requests()
            .last()
            .and_then(|r| r.header("authorization")),
        Some("Basic Y2k6cHc=")
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    // The "other host": it would happily serve a page, and see the credentials.
    let elsewhere =
        Server::start(|_| Response::json(200, json!({"repositories": ["stolen"]}))).await;
    let target = format!("{}/v2/_catalog?last=a", as_localhost(&elsewhere.url));
    let registry = Server::start(move |req| {
        if req.header("authorization") != Some("Basic Y2k6cHc=") {
            return errors(401, "UNAUTHORIZED", "auth")
                .header("WWW-Authenticate", "Basic realm=\"fixture\"");
        }
        match req.path() {
            "/v2/" => Response::json(200, json!({})),
            "/v2/_catalog" => Response::json(200, json!({"repositories": ["a"]}))
                .header("Link", format!("<{target}>; rel=\"next\"")),
            _ => errors(404, "NOT_FOUND", "no route"),
        }
    })
    .await;
    let reg = DistributionRegistry::new(&config(&registry.url)).unwrap();
    let e = reg.catalog().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert!(
        elsewhere.requests().is_empty(),
        "followed the Link to another host"
    );
}

#[tokio::test]
async fn unavailable_answers_are_retried_honouring_retry_after() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = Server::start(move |req| match req.path() {
        "/v2/" => Response::json(200, json!({})),
        "/v2/r/tags/list" => match c.fetch_add(1, Ordering::SeqCst) {
            0 => errors(503, "UNAVAILABLE", "restarting").header("Retry-After", "1"),
            1 => errors(429, "TOOMANYREQUESTS", "slow down"),
            _ => Response::json(200, json!({"name": "r", "tags": ["x"]})),
        },
        "/v2/busy/tags/list" => {
            errors(429, "TOOMANYREQUESTS", "come back tomorrow").header("Retry-After", "86400")
        }
        "/v2/broken/tags/list" => errors(500, "UNKNOWN", "bug"),
        _ => errors(404, "NOT_FOUND", "no route"),
    })
    .await;
    let anon = || RegistryConfig::new(server.url.clone()).allow_http(true);

    let reg = connect_registry(&anon()).unwrap();
    let started = Instant::now();
    assert_eq!(reg.list_tags("r").await.unwrap(), ["x"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for ({:?})",
        started.elapsed()
    );

    // A Retry-After beyond what the client waits ends the retries at once,
    // and the error carries the server's figure for the caller.
    let started = Instant::now();
    let e = reg.list_tags("busy").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(86400)));
    assert!(started.elapsed() < Duration::from_secs(5));

    // A 500 is retried too (the shared table's flag; its kind stays
    // Internal), and `max_retries = 0` turns retries off.
    let once_more = connect_registry(&anon().max_retries(1)).unwrap();
    once_more.list_tags("r").await.ok(); // the /v2/ probe
    let before = server.requests().len();
    let e = once_more.list_tags("broken").await.unwrap_err();
    assert_eq!((e.status(), e.kind()), (Some(500), ErrorKind::Internal));
    assert_eq!(server.requests().len(), before + 2);
    calls.store(0, Ordering::SeqCst);
    let no_retries = connect_registry(&anon().max_retries(0)).unwrap();
    assert_eq!(
        no_retries.list_tags("r").await.unwrap_err().status(),
        Some(503)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A bare status maps, and is retried, as the table every kubepkg HTTP
/// backend shares says; k8s-api and storage-api's S3 backend test the same
/// statuses.
#[tokio::test]
async fn bare_statuses_map_and_retry_by_the_shared_table() {
    let server = Server::start(|req| match req.path() {
        "/v2/" => Response::json(200, json!({})),
        p => match p
            .strip_prefix("/v2/s")
            .and_then(|p| p.strip_suffix("/tags/list"))
        {
            Some(code) => Response::bytes(code.parse().unwrap(), "text/plain", b"no".to_vec()),
            None => errors(404, "NOT_FOUND", "no route"),
        },
    })
    .await;
    let reg = connect_registry(
        &RegistryConfig::new(server.url.clone())
            .allow_http(true)
            .max_retries(1),
    )
    .unwrap();
    reg.list_tags("s404").await.unwrap_err(); // the /v2/ probe
    for (code, kind, retryable) in [
        (408, ErrorKind::Timeout, true),
        (410, ErrorKind::NotFound, false),
        (500, ErrorKind::Internal, true),
    ] {
        let shared = kubepkg_util::http_status::classify(code);
        assert_eq!((shared.kind, shared.retryable), (kind, retryable));
        let before = server.requests().len();
        let e = reg.list_tags(&format!("s{code}")).await.unwrap_err();
        assert_eq!((e.status(), e.kind()), (Some(code), kind), "{e}");
        let sent = server.requests().len() - before;
        assert_eq!(sent, if retryable { 2 } else { 1 }, "{code}");
    }
}

#[tokio::test]
async fn connection_failures_are_retried() {
    // Nothing listens on the port at first; the registry comes up while the
    // client is backing off.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    // generous retries: the backoff is jittered, and must outlast 150 ms
    let cfg = RegistryConfig::new(format!("http://{addr}"))
        .allow_http(true)
        .max_retries(8);
    let reg = connect_registry(&cfg).unwrap();
    let up = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        // one plain answer per connection: /v2/ then the tags
        for body in [json!({}), json!({"name": "r", "tags": ["x"]})] {
            let (mut sock, _) = l.accept().await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0; 4096];
            let _ = sock.read(&mut buf).await.unwrap();
            let b = body.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(b.as_bytes()).await.unwrap();
        }
    });
    let tags = reg.list_tags("r").await;
    up.await.unwrap();
    assert_eq!(tags.unwrap(), ["x"]);
}

/// A registry serving one blob with the given body plan.
async fn blob_registry(blob: Vec<u8>, plan: BodyPlan) -> (Server, String) {
    let digest = sha256_digest(&blob);
    let path = format!("/v2/r/blobs/{digest}");
    let server = Server::start(move |req| {
        if req.path() == "/v2/" {
            Response::json(200, json!({}))
        } else if req.path() == path {
            Response::bytes(200, "application/octet-stream", blob.clone()).plan(plan)
        } else {
            errors(404, "BLOB_UNKNOWN", "blob unknown")
        }
    })
    .await;
    (server, digest)
}

#[tokio::test]
async fn a_slow_blob_outlasts_the_total_timeout() {
    // 12 × 100 KiB, one piece every 250 ms: ~3 s in all, far beyond the 1 s
    // API timeout, but never idle for long.
    let blob: Vec<u8> = (0..1_200_000u32).map(|i| (i % 251) as u8).collect();
    let (server, digest) = blob_registry(
        blob.clone(),
        BodyPlan::Drip {
            chunk: 100_000,
            every: Duration::from_millis(250),
        },
    )
    .await;
    let cfg = RegistryConfig::new(server.url.clone())
        .allow_http(true)
        .timeout_secs(1)
        .read_timeout_secs(2);
    let reg = DistributionRegistry::new(&cfg).unwrap();
    let started = Instant::now();
    let got: Vec<u8> = reg
        .blob_stream("r", &digest)
        .await
        .unwrap()
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(sha256_digest(&got), digest);
    // the in-memory read has no total timeout either
    assert_eq!(reg.get_blob("r", &digest).await.unwrap().len(), blob.len());
}

#[tokio::test]
async fn a_stalled_blob_times_out() {
    let (server, digest) = blob_registry(vec![7; 10_000], BodyPlan::Stall { sent: 100 }).await;
    let cfg = RegistryConfig::new(server.url.clone())
        .allow_http(true)
        .timeout_secs(30)
        .read_timeout_secs(1);
    let reg = DistributionRegistry::new(&cfg).unwrap();
    let started = Instant::now();
    let result: Result<Vec<bytes::Bytes>, Error> = reg
        .blob_stream("r", &digest)
        .await
        .unwrap()
        .try_collect()
        .await;
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn oversized_and_endless_bodies_are_refused_not_buffered() {
    let big = vec![b' '; 5 << 20];
    let server = Server::start(move |req| match req.path() {
        "/v2/" => Response::json(200, json!({})),
        // announced with Content-Length
        "/v2/r/manifests/big" => Response::bytes(
            200,
            "application/vnd.oci.image.manifest.v1+json",
            big.clone(),
        ),
        // no length, never ends
        "/v2/r/manifests/endless" => Response::bytes(
            200,
            "application/vnd.oci.image.manifest.v1+json",
            b"{".repeat(8192),
        )
        .plan(BodyPlan::Endless),
        "/v2/r/tags/list" => {
            Response::bytes(200, "application/json", b"[".repeat(8192)).plan(BodyPlan::Endless)
        }
        // an error whose body never ends
        "/v2/e/tags/list" => {
            Response::bytes(500, "text/plain", b"oops ".repeat(8192)).plan(BodyPlan::Endless)
        }
        _ => errors(404, "NOT_FOUND", "no route"),
    })
    .await;
    let reg = connect_registry(&RegistryConfig::new(server.url.clone()).allow_http(true)).unwrap();
    let within = |secs| Duration::from_secs(secs);
    for tag in ["big", "endless"] {
        let e = tokio::time::timeout(
            within(20),
            reg.get_manifest("r", &ArtifactRef::Tag(tag.into())),
        )
        .await
        .expect("a huge manifest must not be read to its end")
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(
            matches!(e, Error::TooLarge { limit, .. } if limit == 4 << 20),
            "{e:?}"
        );
    }
    let e = tokio::time::timeout(within(30), reg.list_tags("r"))
        .await
        .expect("an endless JSON body must not be read to its end")
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    let e = tokio::time::timeout(within(20), reg.list_tags("e"))
        .await
        .expect("an endless error body must not be read to its end")
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert!(e.to_string().len() < 2000, "{}", e.to_string().len());
}

#[tokio::test]
async fn absurd_timeouts_and_retry_counts_do_not_panic() {
    let server = Server::start(|req| match req.path() {
        "/v2/" => Response::json(200, json!({})),
        _ => Response::json(200, json!({"name": "r", "tags": ["x"]})),
    })
    .await;
    let mut cfg = RegistryConfig::new(server.url.clone())
        .allow_http(true)
        .timeout_secs(u64::MAX)
        .read_timeout_secs(u64::MAX)
        .max_retries(u32::MAX);
    cfg.connect_timeout_secs = u64::MAX;
    cfg.concurrency = usize::MAX;
    let reg = connect_registry(&cfg).unwrap();
    assert_eq!(reg.list_tags("r").await.unwrap(), ["x"]);
}
