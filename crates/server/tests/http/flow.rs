//! The platform through HTTP against the local control plane: import,
//! apply a bundle, follow its rollout, pods, events, logs, scale, restart,
//! secrets redacted, watch, search, delete.

use crate::common::{Server, assert_error};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

fn bundle(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
  namespace: {ns}
stringData:
  password: hunter2-do-not-show
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
"#
    )
}

async fn apply(s: &Server, cluster: &str, text: &str, query: &str) -> (StatusCode, Value) {
    let b = s
        .req(
            Method::POST,
            &format!("/clusters/{cluster}/apply{query}"),
            Some(&s.admin),
        )
        .header("content-type", "application/yaml")
        .body(text.to_owned());
    crate::common::send(b).await
}

#[tokio::test]
async fn import_apply_rollout_pods_logs_search_delete() {
    let s = Server::start();
    let cluster = kubepkg_testenv::unique_name("http");
    let ns = kubepkg_testenv::unique_name("app");
    let report = s.import_local(&cluster).await;
    assert_eq!(report["data"]["cluster"]["name"], cluster.as_str());
    assert_eq!(
        report["data"]["service_account"],
        format!("kube-system/kubepkg-{cluster}")
    );

    let (status, v) = s.admin(Method::GET, "/clusters", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v["data"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == cluster.as_str()),
        "{v}"
    );
    let (_, v) = s
        .admin(Method::GET, &format!("/clusters/{cluster}/summary"), None)
        .await;
    assert!(v["data"]["nodes"].as_u64().unwrap() >= 3, "{v}");
    let (_, v) = s
        .admin(Method::GET, &format!("/clusters/{cluster}/health"), None)
        .await;
    assert_eq!(v["data"]["cluster"], cluster.as_str(), "{v}");
    let (_, v) = s
        .admin(Method::GET, &format!("/clusters/{cluster}/nodes"), None)
        .await;
    let nodes = v["data"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["name"] == "kwok-node-0"), "{v}");

    // Dry run: nothing is created.
    let text = bundle(&ns);
    let (status, v) = apply(&s, &cluster, &text, "?dry_run=true").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["dry_run"], true);
    let (status, _) = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/workloads/deployments/web"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a dry run created nothing");

    let (status, v) = apply(&s, &cluster, &text, "?bundle=web-app").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["ok"], true, "{v}");
    let outcomes: Vec<&str> = v["data"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["created", "created", "created"], "{v}");
    assert!(
        !v.to_string().contains("hunter2"),
        "apply results carry no secret values"
    );

    // Follow the rollout to completion.
    let rollout = format!("/clusters/{cluster}/namespaces/{ns}/workloads/deployments/web/rollout");
    let mut done = false;
    for _ in 0..120 {
        let (_, v) = s.admin(Method::GET, &rollout, None).await;
        if v["data"]["complete"] == true {
            assert_eq!(v["data"]["ready"], 2, "{v}");
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(done, "the rollout completed");

    let (_, v) = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/pods?labels=app%3Dweb&page_size=1"),
            None,
        )
        .await;
    assert_eq!(v["data"]["total"], 2, "{v}");
    assert_eq!(v["data"]["total_page"], 2, "{v}");
    let pod = v["data"]["data"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/pods/{pod}/events"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let events = v["data"].as_array().unwrap();
    let times: Vec<&str> = events
        .iter()
        .filter_map(|e| e["last_seen"].as_str())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "events newest first");
    let (_, v) = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/events"),
            None,
        )
        .await;
    assert!(
        !v["data"].as_array().unwrap().is_empty(),
        "the namespace has events: {v}"
    );

    // Logs: kwok pods have no containers running, so the API server's own
    // answer comes back in the envelope, never a 500.
    let resp = s
        .req(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/pods/{pod}/logs?tail_lines=10"),
            Some(&s.admin),
        )
        .send()
        .await
        .unwrap();
    assert!(
        !resp.status().is_server_error() || resp.status() == StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        resp.status()
    );

    // Secrets: keys listed, values redacted.
    let (_, v) = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/resources/secrets/app-secret"),
            None,
        )
        .await;
    assert_eq!(v["data"]["data"]["password"], "<redacted>", "{v}");
    let (_, v) = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/{ns}/resources/secrets"),
            None,
        )
        .await;
    assert!(!v.to_string().contains("hunter2"), "{v}");
    assert!(
        !v.to_string().contains(&base64_of("hunter2-do-not-show")),
        "{v}"
    );

    // Watch: the SSE stream's first events are the existing pods.
    let resp = s
        .req(
            Method::GET,
            &format!("/clusters/{cluster}/watch?kind=Pod&namespace={ns}"),
            Some(&s.admin),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.matches("event: added").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("two added events")
            .expect("stream open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body);

    // Scale and restart through the operator role.
    let operator = s
        .token("flow-operator", "operator", Some(vec![cluster.as_str()]))
        .await;
    let base = format!("/clusters/{cluster}/namespaces/{ns}/workloads/deployments/web");
    let (status, v) = s
        .call(
            Method::POST,
            &format!("{base}/scale"),
            Some(&operator),
            Some(json!({"replicas": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = s.admin(Method::GET, &base, None).await;
    assert_eq!(v["data"]["spec"]["replicas"], 3, "{v}");
    let (status, v) = s
        .call(
            Method::POST,
            &format!("{base}/restart"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = s.admin(Method::GET, &base, None).await;
    assert!(v["data"]["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(), "{v}");
    // A DaemonSet-only operation on a Deployment is refused clearly.
    let (status, v) = s
        .call(
            Method::POST,
            &format!("{base}/suspend"),
            Some(&operator),
            None,
        )
        .await;
    assert_error(status, &v, 422, "suspend a Deployment");

    // Search across clusters: a second name for the same cluster.
    let second = format!("{cluster}-b");
    s.import_local(&second).await;
    let (status, v) = s
        .admin(
            Method::GET,
            &format!("/search?kind=Deployment&api_version=apps/v1&namespace={ns}&limit=1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let first = v["data"]["items"].as_array().unwrap().len();
    let token = v["data"]["continue"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, v2) = s
        .admin(
            Method::GET,
            &format!(
                "/search?kind=Deployment&api_version=apps/v1&namespace={ns}&limit=1&continue={}",
                urlencode(&token)
            ),
            None,
        )
        .await;
    let clusters: Vec<&str> = [&v, &v2]
        .iter()
        .flat_map(|p| {
            p["data"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["cluster"].as_str().unwrap())
        })
        .collect();
    assert_eq!(first, 1);
    assert_eq!(clusters.len(), 2, "{v} {v2}");
    assert_ne!(clusters[0], clusters[1]);

    // The bundle's delete, then the clusters.
    let b = s
        .req(
            Method::POST,
            &format!("/clusters/{cluster}/apply/delete"),
            Some(&s.admin),
        )
        .header("content-type", "application/yaml")
        .body(text.clone());
    let (status, v) = crate::common::send(b).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for c in [&cluster, &second] {
        let (status, v) = s
            .admin(Method::DELETE, &format!("/clusters/{c}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let (status, v) = s
            .admin(Method::GET, &format!("/clusters/{c}/summary"), None)
            .await;
        assert_error(status, &v, 404, "a deleted cluster is not served");
    }
    let out = s.all_output();
    assert!(!out.contains("hunter2"), "a secret value reached the log");
    assert!(
        !out.contains(&kubepkg_testenv::kubernetes().admin_token),
        "the cluster admin token reached the log"
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
