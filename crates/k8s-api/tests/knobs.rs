//! The client knobs against a scripted local HTTP server (no cluster
//! needed): retries of 429 / 503 honoring Retry-After, no retry of a
//! non-idempotent request after a 5xx, the retry budget, the request
//! deadline, the rate limiter, refused connections, and the tracing span
//! around every call.

use kubepkg_k8s_api::{ClusterConfig, connect};
use kubepkg_util::ErrorKind;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const VERSION: &str = r#"{"major":"1","minor":"35","gitVersion":"v1.35.4","gitCommit":"x","gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.25","compiler":"gc","platform":"linux/amd64"}"#;

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Never answer (to exercise the deadline).
    hang: bool,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
        hang: false,
    }
}

fn status_body(code: u16, reason: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"scripted {code}","reason":"{reason}","code":{code}}}"#
    )
}

/// A server answering from a script (the last reply repeats); records the
/// request lines it saw.
async fn server(script: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let (url, seen, _) = recording_server(script).await;
    (url, seen)
}

/// Request lines and bodies a [`recording_server`] saw, in order.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// [`server`], also recording each request's line and body.
async fn recording_server(script: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    serve(listener, script)
}

/// [`server`] on a given port of 127.0.0.1.
async fn server_on(port: u16, script: Vec<Reply>) -> (Arc<Mutex<Vec<String>>>, Requests) {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
    let (_, seen, requests) = serve(listener, script);
    (seen, requests)
}

fn serve(listener: TcpListener, script: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>, Requests) {
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let requests: Requests = Arc::default();
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let seen2 = seen.clone();
    let requests2 = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            let requests = requests2.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then the body by Content-Length.
                let head_end = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let line = head.lines().next().unwrap_or_default().to_string();
                let body_end = buf.len().min(head_end + len);
                requests
                    .lock()
                    .expect("lock")
                    .push((line.clone(), buf[head_end..body_end].to_vec()));
                seen.lock().expect("lock").push(line);
                let r = {
                    let mut s = script.lock().expect("lock");
                    if s.len() > 1 {
                        s.pop_front()
                    } else {
                        s.front().cloned()
                    }
                };
                let Some(r) = r else { return };
                if r.hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                let mut resp = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    r.status,
                    r.body.len()
                );
                for (k, v) in &r.headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&r.body);
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen, requests)
}

fn cfg(url: &str) -> ClusterConfig {
    ClusterConfig::token(url, None, "scripted-token")
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_servers_delay() {
    let mut busy = reply(429, &status_body(429, "TooManyRequests"));
    busy.headers.push(("retry-after", "1".into()));
    let (url, seen) = server(vec![busy, reply(200, VERSION)]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    let start = Instant::now();
    let v = c.version().await.expect("retried to success");
    assert_eq!(v.git_version, "v1.35.4");
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "Retry-After ignored: {:?}",
        start.elapsed()
    );
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

/// A bare status (a proxy's, or a Status without a reason) maps as the
/// table every kubepkg HTTP backend shares says; image-api and storage-api's
/// S3 backend test the same statuses.
#[tokio::test]
async fn bare_statuses_map_by_the_shared_table() {
    let mut obj = k8s_openapi::api::core::v1::ConfigMap::default();
    obj.metadata.name = Some("a".into());
    for (code, kind, retryable) in [
        (408, ErrorKind::Timeout, true),
        (410, ErrorKind::NotFound, false),
        (500, ErrorKind::Internal, true),
    ] {
        let shared = kubepkg_util::http_status::classify(code);
        assert_eq!((shared.kind, shared.retryable), (kind, retryable));
        // A POST: sent once whatever the status, so the answer is the error.
        let (url, seen) = server(vec![reply(code, &status_body(code, ""))]).await;
        let c = connect(&cfg(&url)).await.expect("client");
        let err = c.config_maps("d").create(&obj).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err}");
        let failure = err.api().expect("an API failure");
        assert_eq!((failure.code, failure.retryable()), (code, retryable));
        assert_eq!(seen.lock().expect("lock").len(), 1, "{code}");
    }
}

#[tokio::test]
async fn a_create_answered_5xx_is_sent_once_but_a_get_is_retried() {
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"d","resourceVersion":"1"}}"#;
    let mut obj = k8s_openapi::api::core::v1::ConfigMap::default();
    obj.metadata.name = Some("a".into());
    // A POST answered 503 or 500 may have been carried out (by the server
    // behind a proxy, say): sending it again could create it twice.
    // (500 is Internal by the table every kubepkg backend shares, 503
    // Unavailable; both are retryable.)
    for (code, reason, kind) in [
        (503, "ServiceUnavailable", ErrorKind::Unavailable),
        (500, "InternalError", ErrorKind::Internal),
    ] {
        let (url, seen) = server(vec![
            reply(code, &status_body(code, reason)),
            reply(201, cm),
        ])
        .await;
        let c = connect(&cfg(&url)).await.expect("client");
        let err = c.config_maps("d").create(&obj).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.api().is_some_and(|f| f.retryable()), "{err}");
        assert_eq!(err.api().map(|f| f.code), Some(code), "{err}");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 1, "{code}: {seen:?}");
        assert!(seen[0].starts_with("POST "), "{seen:?}");
    }

    // A merge patch is not idempotent either…
    let (url, seen) = server(vec![
        reply(503, &status_body(503, "ServiceUnavailable")),
        reply(200, cm),
    ])
    .await;
    let c = connect(&cfg(&url)).await.expect("client");
    let err = c
        .config_maps("d")
        .merge_patch("a", &serde_json::json!({"data": {"k": "v"}}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // …but a server-side apply is, and so is a GET.
    let (url, seen) = server(vec![
        reply(503, &status_body(503, "ServiceUnavailable")),
        reply(200, cm),
    ])
    .await;
    let c = connect(&cfg(&url)).await.expect("client");
    c.config_maps("d")
        .apply(&obj, "kubepkg-test", false)
        .await
        .expect("apply retried");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|l| l.starts_with("PATCH ")), "{seen:?}");
    for code in [500, 503] {
        let (url, seen) = server(vec![
            reply(code, &status_body(code, "InternalError")),
            reply(200, VERSION),
        ])
        .await;
        let c = connect(&cfg(&url)).await.expect("client");
        c.version().await.expect("GET retried");
        assert_eq!(seen.lock().expect("lock").len(), 2, "{code}");
    }
}

#[tokio::test]
async fn a_create_is_retried_after_429_and_a_refused_connection() {
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"d","resourceVersion":"1"}}"#;
    let mut obj = k8s_openapi::api::core::v1::ConfigMap::default();
    obj.metadata.name = Some("a".into());
    // 429: the API server's flow control turned it away unprocessed.
    let (url, seen) = server(vec![
        reply(429, &status_body(429, "TooManyRequests")),
        reply(201, cm),
    ])
    .await;
    let c = connect(&cfg(&url)).await.expect("client");
    c.config_maps("d").create(&obj).await.expect("429 retried");
    assert_eq!(seen.lock().expect("lock").len(), 2);

    // Refused: nothing was sent. The server comes up while the client
    // backs off, and the create goes through exactly once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let c = connect(&cfg(&format!("http://127.0.0.1:{port}")).with_max_retries(6))
        .await
        .expect("client");
    let create = tokio::spawn(async move { c.config_maps("d").create(&obj).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (seen, _) = server_on(port, vec![reply(201, cm)]).await;
    let created = create.await.expect("join");
    created.expect("created after the refused connections");
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn the_retry_budget_is_respected() {
    let (url, seen) = server(vec![reply(429, &status_body(429, "TooManyRequests"))]).await;
    let c = connect(&cfg(&url).with_max_retries(2))
        .await
        .expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.api().map(|f| f.code), Some(429));
    assert_eq!(seen.lock().expect("lock").len(), 3, "1 try + 2 retries");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let mut hang = reply(200, "");
    hang.hang = true;
    let (url, _) = server(vec![hang]).await;
    let c = connect(
        &cfg(&url)
            .with_timeout(Duration::from_secs(1))
            .with_max_retries(0),
    )
    .await
    .expect("client");
    let start = Instant::now();
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_rate_limiter_paces_requests() {
    let (url, seen) = server(vec![reply(200, VERSION)]).await;
    let c = connect(&cfg(&url).with_rate_limit(10.0, 1))
        .await
        .expect("client");
    let start = Instant::now();
    for _ in 0..6 {
        c.version().await.expect("version");
    }
    // One token up front, then one every 100 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(seen.lock().expect("lock").len(), 6);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let c = connect(&cfg(&format!("http://127.0.0.1:{port}")).with_max_retries(1))
        .await
        .expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

/// Decodes `%XX` escapes (and `+`) of a query string value.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// The decoded value of query parameter `key` of a request line.
fn query_param(request_line: &str, key: &str) -> Option<String> {
    let target = request_line.split(' ').nth(1)?;
    let (_, query) = target.split_once('?')?;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

#[tokio::test]
async fn a_blocked_eviction_is_left_to_the_caller_not_retried() {
    // What the API server answers while a PodDisruptionBudget blocks it.
    let mut blocked = reply(429, &status_body(429, "TooManyRequests"));
    blocked.headers.push(("retry-after", "10".into()));
    let (url, seen) = server(vec![blocked]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    let start = Instant::now();
    let err: kubepkg_k8s_api::Error = c
        .pods("d")
        .api()
        .evict("p", &Default::default())
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.api().map(|f| f.code), Some(429), "{err}");
    assert_eq!(seen.lock().expect("lock").len(), 1, "not retried");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "Retry-After honoured: {:?}",
        start.elapsed()
    );
}

const NODE: &str =
    r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","resourceVersion":"1"}}"#;

fn managed_pod(name: &str) -> String {
    format!(
        r#"{{"metadata":{{"name":"{name}","namespace":"d","uid":"uid-{name}","ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"rs-1","controller":true}}]}},"spec":{{"nodeName":"n1","containers":[{{"name":"c","image":"busybox"}}]}},"status":{{"phase":"Running"}}}}"#
    )
}

#[tokio::test]
async fn a_blocked_drain_stops_at_its_timeout_and_keeps_what_it_evicted() {
    let pods = format!(
        r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"resourceVersion":"5"}},"items":[{},{}]}}"#,
        managed_pod("a"),
        managed_pod("b")
    );
    let mut blocked = reply(429, &status_body(429, "TooManyRequests"));
    blocked.headers.push(("retry-after", "10".into()));
    // One eviction at a time, so the script's order is the drain's.
    let (url, seen) = server(vec![
        reply(200, NODE),  // get node
        reply(200, &pods), // pods on it
        reply(200, NODE),  // cordon
        reply(
            201,
            r#"{"kind":"Status","apiVersion":"v1","status":"Success","code":201}"#,
        ), // evict a
        reply(404, &status_body(404, "NotFound")), // a is gone
        blocked,           // evict b, forever
    ])
    .await;
    let c = connect(&cfg(&url)).await.expect("client");
    let opts = kubepkg_k8s_api::node::DrainOptions {
        timeout: Duration::from_secs(3),
        retry_interval: Duration::from_millis(400),
        concurrency: 1,
        ..Default::default()
    };
    let start = Instant::now();
    let err = c.nodes().drain("n1", &opts).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    assert!(
        took < opts.timeout + opts.retry_interval + Duration::from_secs(1),
        "the drain overshot its timeout: {took:?}"
    );
    assert!(
        took >= Duration::from_millis(2500),
        "gave up early: {took:?}"
    );
    assert_eq!(err.report.evicted, ["d/a"], "{err:?}");
    let failed: Vec<&str> = err.failed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(failed, ["d/b"]);
    assert!(err.cordoned);
    let seen = seen.lock().expect("lock").clone();
    let evictions = seen
        .iter()
        .filter(|l| l.starts_with("POST") && l.contains("/pods/b/eviction"))
        .count();
    // Every ~400 ms for ~3 s, one request each time: the drain's own loop.
    assert!(
        (5..=9).contains(&evictions),
        "{evictions} evictions: {seen:?}"
    );
    // `?` into the crate's error keeps the kind.
    let plain: kubepkg_k8s_api::Error = err.into();
    assert_eq!(plain.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn a_drain_sends_policy_v1_evictions_with_its_grace_period() {
    let pods = format!(
        r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"resourceVersion":"5"}},"items":[{}]}}"#,
        managed_pod("a")
    );
    let (url, _, requests) = recording_server(vec![
        reply(200, NODE),  // get node
        reply(200, &pods), // pods on it
        reply(200, NODE),  // cordon
        reply(
            201,
            r#"{"kind":"Status","apiVersion":"v1","status":"Success","code":201}"#,
        ), // evict a
        reply(404, &status_body(404, "NotFound")), // a is gone
    ])
    .await;
    let c = connect(&cfg(&url)).await.expect("client");
    let opts = kubepkg_k8s_api::node::DrainOptions {
        grace_period_secs: Some(7),
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let report = c.nodes().drain("n1", &opts).await.expect("drain");
    assert_eq!(report.evicted, ["d/a"]);
    let requests = requests.lock().expect("lock").clone();
    let evictions: Vec<&(String, Vec<u8>)> = requests
        .iter()
        .filter(|(line, _)| line.starts_with("POST ") && line.contains("/eviction"))
        .collect();
    assert_eq!(evictions.len(), 1, "{requests:?}");
    let (line, body) = evictions[0];
    let path = line.split(' ').nth(1).unwrap_or_default();
    assert_eq!(
        path.split('?').next(),
        Some("/api/v1/namespaces/d/pods/a/eviction"),
        "{line}"
    );
    let body: serde_json::Value = serde_json::from_slice(body).expect("JSON body");
    // kube 5's `evict` sends `delete_options`, which the API server
    // ignores; the field is `deleteOptions`.
    assert_eq!(
        body,
        serde_json::json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "a", "namespace": "d"},
            "deleteOptions": {"gracePeriodSeconds": 7}
        }),
        "{body}"
    );
}

#[tokio::test]
async fn huge_timeouts_mean_no_limit_and_do_not_panic() {
    // wait_for and wait_deleted list the name first (then would watch).
    let listed = r#"{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"5"},
        "items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"d","resourceVersion":"5"}}]}"#;
    let none = r#"{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"6"},"items":[]}"#;
    let (url, _) = server(vec![reply(200, listed), reply(200, none)]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    let cms = c.config_maps("d");
    cms.wait_for("a", Duration::MAX, |_| Some(()))
        .await
        .expect("found at once");
    cms.wait_deleted("a", Duration::MAX)
        .await
        .expect("gone at once");

    let empty =
        r#"{"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":"1"},"items":[]}"#;
    let (url, _) = server(vec![reply(200, NODE), reply(200, empty), reply(200, NODE)]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    let report = c
        .nodes()
        .drain(
            "n1",
            &kubepkg_k8s_api::node::DrainOptions {
                timeout: Duration::MAX,
                ..Default::default()
            },
        )
        .await
        .expect("nothing to evict");
    assert!(report.evicted.is_empty());
}

#[tokio::test]
async fn waits_fall_back_to_get_when_listing_is_forbidden() {
    // Credentials that may get but not list or watch the kind.
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"d"}}"#;
    let (url, seen) = server(vec![
        reply(403, &status_body(403, "Forbidden")),
        reply(200, cm),
        reply(403, &status_body(403, "Forbidden")),
        reply(404, &status_body(404, "NotFound")),
    ])
    .await;
    let c = connect(&cfg(&url)).await.expect("client");
    let cms = c.config_maps("d");
    cms.wait_for("a", Duration::from_secs(10), |_| Some(()))
        .await
        .expect("found by GET");
    cms.wait_deleted("a", Duration::from_secs(10))
        .await
        .expect("gone by GET");
    let seen = seen.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen[0].contains("fieldSelector=metadata.name"), "{seen:?}");
    assert!(seen[1].contains("/configmaps/a "), "{seen:?}");
}

#[tokio::test]
async fn a_sub_second_timeout_still_bounds_a_request() {
    let mut hang = reply(200, "");
    hang.hang = true;
    let (url, _) = server(vec![hang]).await;
    let c = connect(
        &cfg(&url)
            .with_timeout(Duration::from_millis(300))
            .with_max_retries(0),
    )
    .await
    .expect("client");
    // Rounded down, 300 ms used to mean "no deadline": the call would hang.
    let res = tokio::time::timeout(Duration::from_secs(10), c.version()).await;
    let err = res.expect("the request deadline applied").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn an_absurd_rate_limit_is_rejected_up_front() {
    let err = connect(&cfg("http://127.0.0.1:1").with_rate_limit(1e-9, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("qps"), "{err}");
}

#[tokio::test]
async fn bad_names_and_namespaces_never_leave_the_process() {
    use kubepkg_k8s_api::events::{EventApi, ObjectRef};
    use kubepkg_k8s_api::pod::LogOptions;
    let (url, seen) = server(vec![reply(200, VERSION)]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    let invalid = |r: Result<(), kubepkg_k8s_api::Error>, what: &str| match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Invalid, "{what}: {e}"),
        Ok(()) => panic!("{what} was accepted"),
    };
    for ns in ["kube-system/secrets", "a?b", "a#b", "..", "Team", ""] {
        let cms = c.config_maps(ns);
        assert_eq!(cms.namespace(), Some(ns));
        invalid(cms.get("x").await.map(drop), &format!("get in {ns:?}"));
        invalid(
            cms.list(&Default::default()).await.map(drop),
            &format!("list in {ns:?}"),
        );
        invalid(
            cms.delete("x", &Default::default()).await.map(drop),
            &format!("delete in {ns:?}"),
        );
        invalid(
            cms.merge_patch("x", &serde_json::json!({})).await.map(drop),
            &format!("patch in {ns:?}"),
        );
        let mut obj = k8s_openapi::api::core::v1::ConfigMap::default();
        obj.metadata.name = Some("x".into());
        invalid(
            cms.create(&obj).await.map(drop),
            &format!("create in {ns:?}"),
        );
        // Calls that go straight to kube's Api fail too, locally.
        invalid(
            c.pods(ns).logs("p", &LogOptions::default()).await.map(drop),
            &format!("logs in {ns:?}"),
        );
        let raw = c.config_maps(ns).api().get("x").await;
        assert!(raw.is_err(), "raw get in {ns:?} was sent");
        invalid(
            c.namespace_events(ns, EventApi::CoreV1).await.map(drop),
            &format!("events of {ns:?}"),
        );
    }
    let cms = c.config_maps("d");
    for name in ["x?dryRun=All", "x#frag", "a/b", "..", ""] {
        invalid(cms.get(name).await.map(drop), &format!("get {name:?}"));
        invalid(
            cms.delete(name, &Default::default()).await.map(drop),
            &format!("delete {name:?}"),
        );
    }
    for obj in [
        ObjectRef {
            namespace: "d".into(),
            kind: "Pod,involvedObject.kind=Secret".into(),
            name: "p".into(),
            uid: None,
        },
        ObjectRef {
            namespace: "d?x".into(),
            kind: "Pod".into(),
            name: "p".into(),
            uid: None,
        },
        ObjectRef {
            namespace: "d".into(),
            kind: "Pod".into(),
            name: String::new(),
            uid: None,
        },
    ] {
        invalid(
            c.events_for(&obj, EventApi::CoreV1).await.map(drop),
            &format!("events for {obj:?}"),
        );
    }
    assert!(
        seen.lock().expect("lock").is_empty(),
        "requests went out: {:?}",
        seen.lock().expect("lock")
    );
}

#[tokio::test]
async fn a_bad_api_version_never_reaches_a_discovery_path() {
    let (url, seen) = server(vec![reply(200, VERSION)]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    for av in [
        "../../api/v1",
        "apps/v1?x=1",
        "apps/v1#x",
        "/v1",
        "apps/v1/../../v1",
    ] {
        let err = c.dynamic(av, "Secret", Some("d")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{av}: {err}");
        let err = c.resolve_kind(av, "Secret").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{av}: {err}");
    }
    let bundle = "apiVersion: \"../../api/v1\"\nkind: Secret\nmetadata: {name: a}\n---\n\
                  apiVersion: apps/v1?x=1\nkind: Deployment\nmetadata: {name: b}\n";
    let report = c
        .apply(bundle, &kubepkg_k8s_api::ApplyOptions::default())
        .await;
    assert_eq!(report.results.len(), 2, "{report:?}");
    for r in &report.results {
        let err = r.result.as_ref().expect_err("rejected");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert!(err.to_string().contains("apiVersion"), "{err}");
    }
    assert!(
        seen.lock().expect("lock").is_empty(),
        "requests went out: {:?}",
        seen.lock().expect("lock")
    );
}

#[tokio::test]
async fn event_queries_escape_field_selector_values() {
    use kubepkg_k8s_api::events::{EventApi, ObjectRef};
    let empty =
        r#"{"apiVersion":"v1","kind":"EventList","metadata":{"resourceVersion":"1"},"items":[]}"#;
    let empty_v1 = r#"{"apiVersion":"events.k8s.io/v1","kind":"EventList","metadata":{"resourceVersion":"1"},"items":[]}"#;
    let (url, seen) = server(vec![reply(200, empty), reply(200, empty_v1)]).await;
    let c = connect(&cfg(&url)).await.expect("client");
    let obj = ObjectRef {
        namespace: "d".into(),
        kind: "Pod".into(),
        name: r"x,involvedObject.kind=Secret\".into(),
        uid: Some("u=1".into()),
    };
    c.events_for(&obj, EventApi::CoreV1).await.expect("core");
    c.events_for(&obj, EventApi::EventsV1).await.expect("v1");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        query_param(&seen[0], "fieldSelector").as_deref(),
        Some(
            r"involvedObject.name=x\,involvedObject.kind\=Secret\\,involvedObject.kind=Pod,involvedObject.uid=u\=1"
        ),
        "{seen:?}"
    );
    assert!(seen[0].contains("/api/v1/namespaces/d/events"), "{seen:?}");
    assert_eq!(
        query_param(&seen[1], "fieldSelector").as_deref(),
        Some(
            r"regarding.name=x\,involvedObject.kind\=Secret\\,regarding.kind=Pod,regarding.uid=u\=1"
        ),
        "{seen:?}"
    );
}

mod spans {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// A span's name and its recorded fields.
    type SpanRecord = (String, Vec<(String, String)>);

    #[derive(Default)]
    struct Capture {
        next: AtomicU64,
        spans: Mutex<Vec<SpanRecord>>,
    }

    struct Fields(Vec<(String, String)>);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push((
                field.name().to_string(),
                format!("{value:?}").trim_matches('"').to_string(),
            ));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_string(), value.to_string()));
        }
    }

    impl Subscriber for &'static Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut f = Fields(Vec::new());
            span.record(&mut f);
            self.spans
                .lock()
                .expect("lock")
                .push((span.metadata().name().to_string(), f.0));
            Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[tokio::test]
    async fn every_call_runs_in_a_span_naming_backend_operation_and_target() {
        static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
        let cap: &'static Capture = CAPTURE.get_or_init(Capture::default);
        let cm =
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns"}}"#;
        let (url, _) = server(vec![
            reply(200, VERSION),
            reply(200, cm),
            reply(200, VERSION),
            reply(200, cm),
        ])
        .await;
        let c = connect(&cfg(&url)).await.expect("client");
        // Warm up before installing the subscriber. With a single (scoped)
        // dispatcher, tracing-core computes the interest of a callsite
        // first hit on another thread from *that* thread's subscriber
        // (none: "never"), and caches it for everyone. Other tests of this
        // binary hit the `k8s` span concurrently; making sure it is
        // registered before `set_default` lets the interest rebuild that
        // `set_default` triggers decide for it, deterministically.
        c.version().await.expect("version");
        c.config_maps("ns").get("x").await.expect("get");
        let _guard = tracing::subscriber::set_default(cap);
        c.version().await.expect("version");
        c.config_maps("ns").get("x").await.expect("get");
        let spans = cap.spans.lock().expect("lock").clone();
        let ours: Vec<&Vec<(String, String)>> = spans
            .iter()
            .filter(|(n, _)| n == "k8s")
            .map(|(_, f)| f)
            .collect();
        let has = |op: &str, target: &str| {
            ours.iter().any(|f| {
                f.iter().any(|(k, v)| k == "backend" && v == "kubernetes")
                    && f.iter().any(|(k, v)| k == "operation" && v == op)
                    && f.iter().any(|(k, v)| k == "target" && v == target)
            })
        };
        assert!(has("version", "/version"), "{spans:?}");
        assert!(has("get", "ConfigMap ns/x"), "{spans:?}");
        // The token never shows up in any span field.
        assert!(!format!("{spans:?}").contains("scripted-token"));
    }
}
