//! Request ids in answers and in every log line of the request, and a
//! graceful shutdown that lets a request in flight finish.

use crate::common::{Server, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn request_ids_are_answered_and_on_every_log_line_of_the_request() {
    let s = Server::start();
    let cluster = kubepkg_testenv::unique_name("rid");
    let id = format!("test-{}", kubepkg_testenv::unique_name("rid"));
    let k8s = kubepkg_testenv::kubernetes();
    let resp = s
        .req(Method::POST, "/clusters", Some(&s.admin))
        .header("x-request-id", &id)
        .json(&serde_json::json!({
            "name": cluster,
            "source": {"source": "token", "server": k8s.server, "ca_pem": k8s.ca_pem, "token": k8s.admin_token}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["x-request-id"],
        id.as_str(),
        "the client's id is kept"
    );
    // Without one, the server makes one up.
    let resp = s
        .req(Method::GET, "/clusters", Some(&s.admin))
        .send()
        .await
        .unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    // An id that is not a sane token is replaced, not echoed.
    let resp = s
        .req(Method::GET, "/clusters", Some(&s.admin))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], "bad id\twith spaces");

    // The log lines of the import — the server's own and the libraries'
    // (k8s-api logs the imported cluster) — carry the id.
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        let text = std::fs::read_to_string(&s.log_file).unwrap_or_default();
        lines = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.to_string().contains(&id))
            .collect();
        if lines.iter().any(|v| v["message"] == "request done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        lines.iter().any(|v| v["message"] == "request done"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|v| v["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("kubepkg_k8s_api"))),
        "a library's line inside the request carries the id: {lines:?}"
    );
    // The request's span is on each line, outermost, whatever span the
    // line was written in.
    for v in &lines {
        assert_eq!(v["spans"][0]["name"], "request", "{v}");
        assert_eq!(v["spans"][0]["request_id"], id.as_str(), "{v}");
    }
    let (status, _) = s
        .admin(Method::DELETE, &format!("/clusters/{cluster}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish() {
    let mut s = Server::start();
    let queue = kubepkg_testenv::unique_name("drain-q");
    let (status, v) = s
        .admin(
            Method::POST,
            "/message-queues/default/queues",
            Some(serde_json::json!({"name": queue, "durable": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // A request that takes 3 s: waiting on an empty queue.
    let slow = s
        .req(
            Method::POST,
            &format!("/message-queues/default/queues/{queue}/receive"),
            Some(&s.admin),
        )
        .header("content-type", "application/json")
        .body(r#"{"wait_secs":3}"#);
    let pending = tokio::spawn(send(slow));
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.terminate();
    let (status, v) = pending.await.expect("the request task");
    assert_error(status, &v, 404, "the in-flight request got its answer");
    let exit = tokio::task::block_in_place(|| s.wait_exit(Duration::from_secs(15)));
    assert!(
        exit.is_some_and(|e| e.success()),
        "the server exits cleanly: {exit:?}\n{}",
        s.all_output()
    );
    // New connections are refused after the shutdown.
    let after = reqwest::Client::new().get(s.url("/healthz")).send().await;
    assert!(after.is_err(), "nothing listens any more");
}
