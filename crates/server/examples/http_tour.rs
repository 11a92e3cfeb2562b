//! The tour of the platform through its REST API, run by `cargo xtask demo`
//! against a `kubepkg-server` it started on SQLite.
//!
//! Reads `KUBEPKG_SERVER_URL` and `KUBEPKG_TOKEN_FILE` (the admin token),
//! and the local environment's `env.json` for what a user would paste in
//! (the control plane's URL, CA and admin token for the import). Every step
//! is one or a few HTTP calls, printed as a person would want to read them.

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::error::Error;
use std::time::Duration;

type Res<T = ()> = Result<T, Box<dyn Error>>;

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Res<Value> {
        let mut b = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(v) = body {
            b = b.json(&v);
        }
        let resp = b.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {}", v["message"]).into());
        }
        Ok(v["data"].clone())
    }

    async fn get(&self, path: &str) -> Res<Value> {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Res<Value> {
        self.call(Method::POST, path, Some(body)).await
    }
}

fn bundle(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: {ns}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector: {{app: web}}
  ports:
  - port: 80
"#
    )
}

#[tokio::main]
async fn main() -> Res {
    let base = std::env::var("KUBEPKG_SERVER_URL")
        .map_err(|_| "set KUBEPKG_SERVER_URL (cargo xtask demo does)")?;
    let token_file = std::env::var("KUBEPKG_TOKEN_FILE")
        .map_err(|_| "set KUBEPKG_TOKEN_FILE (cargo xtask demo does)")?;
    let token = std::fs::read_to_string(&token_file)?.trim().to_owned();
    if let Err(msg) = kubepkg_testenv::try_env() {
        return Err(msg.into());
    }
    let api = Api {
        base: base.clone(),
        token,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
    };
    println!("== The platform through its REST API at {base}");
    let health: Value = reqwest::get(format!("{base}/readyz")).await?.json().await?;
    println!("  GET /readyz -> {}", health["data"]);

    // 1. Import the local control plane.
    let k8s = kubepkg_testenv::kubernetes();
    let cluster = kubepkg_testenv::unique_name("local");
    println!("\n== Import {} as {cluster:?}", k8s.server);
    let report = api
        .post(
            "/clusters",
            json!({"name": cluster, "labels": {"env": "demo"}, "role": "cluster_admin",
                   "source": {"source": "token", "server": k8s.server, "ca_pem": k8s.ca_pem, "token": k8s.admin_token}}),
        )
        .await?;
    println!(
        "  POST /clusters -> Kubernetes {}, stored credential: service account {} (the admin token is not kept)",
        report["version"], report["service_account"]
    );
    let nodes = api.get(&format!("/clusters/{cluster}/nodes")).await?;
    for n in nodes.as_array().into_iter().flatten() {
        println!(
            "  node {} ready={} kubelet {}",
            n["name"], n["ready"], n["kubelet_version"]
        );
    }

    // 2. Apply a bundle and follow its rollout.
    let ns = kubepkg_testenv::unique_name("demo");
    println!("\n== Apply a bundle of 4 objects into {ns}");
    let resp = api
        .http
        .post(format!("{base}/clusters/{cluster}/apply?bundle=demo-web"))
        .bearer_auth(&api.token)
        .header("content-type", "application/yaml")
        .body(bundle(&ns))
        .send()
        .await?;
    let applied: Value = resp.json().await?;
    for r in applied["data"]["results"].as_array().into_iter().flatten() {
        println!(
            "  {} {}/{}: {}",
            r["kind"].as_str().unwrap_or(""),
            ns,
            r["name"].as_str().unwrap_or(""),
            r["outcome"].as_str().unwrap_or("")
        );
    }
    let rollout = format!("/clusters/{cluster}/namespaces/{ns}/workloads/deployments/web/rollout");
    let started = std::time::Instant::now();
    loop {
        let s = api.get(&rollout).await?;
        println!(
            "  rollout: {} of {} updated, {} ready",
            s["updated"], s["desired"], s["ready"]
        );
        if s["complete"] == true {
            println!(
                "  rollout complete after {:.1?} (kwok's simulated nodes run the pods)",
                started.elapsed()
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            return Err("the rollout did not complete within 90 s".into());
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    // 3. Pods, events newest first, a pod's logs.
    let pods = api
        .get(&format!(
            "/clusters/{cluster}/namespaces/{ns}/pods?labels=app%3Dweb"
        ))
        .await?;
    println!(
        "\n== Pods ({} of them, page {} of {})",
        pods["total"], pods["cur_page"], pods["total_page"]
    );
    for p in pods["data"].as_array().into_iter().flatten() {
        println!(
            "  {} on {}: {}",
            p["metadata"]["name"].as_str().unwrap_or(""),
            p["spec"]["nodeName"].as_str().unwrap_or("?"),
            p["status"]["phase"].as_str().unwrap_or("?")
        );
    }
    let events = api
        .get(&format!("/clusters/{cluster}/namespaces/{ns}/events"))
        .await?;
    println!("  events, newest first:");
    for e in events.as_array().into_iter().flatten().take(5) {
        println!(
            "    {} {} {}: {}",
            e["last_seen"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or(""),
            e["object"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
    if let Some(pod) = pods["data"][0]["metadata"]["name"].as_str() {
        let resp = api
            .http
            .get(format!(
                "{base}/clusters/{cluster}/namespaces/{ns}/pods/{pod}/logs?tail_lines=5"
            ))
            .bearer_auth(&api.token)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if status.is_success() {
            println!("  logs of {pod}: {} lines", text.lines().count());
        } else {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            println!(
                "  logs of {pod}: {status} — {} (kwok runs no containers, so there is no log to read)",
                v["message"].as_str().unwrap_or("")
            );
        }
    }

    // 4. An image pushed to the local registry, listed through the API.
    println!("\n== Registry");
    let repo = push_image().await?;
    let repos = api
        .get("/registries/local/repositories?namespace=tour")
        .await?;
    println!(
        "  GET /registries/local/repositories?namespace=tour -> {} repositories",
        repos.as_array().map_or(0, Vec::len)
    );
    let tags = api
        .get(&format!("/registries/local/tags?repository={repo}"))
        .await?;
    println!("  GET /registries/local/tags?repository={repo} -> {tags}");

    // 5. An object up and down.
    println!("\n== Object storage (MinIO)");
    let bucket = kubepkg_testenv::unique_name("demo");
    api.post("/object-stores/default/buckets", json!({"name": bucket}))
        .await?;
    let body: Vec<u8> = b"hello from the kubepkg tour\n".repeat(1000);
    let path = format!("{base}/object-stores/default/buckets/{bucket}/objects/greetings/hello.txt");
    let put: Value = api
        .http
        .put(&path)
        .bearer_auth(&api.token)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await?
        .json()
        .await?;
    println!(
        "  PUT .../{bucket}/objects/greetings/hello.txt -> {} bytes, etag {}",
        put["data"]["size"], put["data"]["etag"]
    );
    let got = api
        .http
        .get(&path)
        .bearer_auth(&api.token)
        .send()
        .await?
        .bytes()
        .await?;
    println!(
        "  GET it back: {} bytes, {}",
        got.len(),
        if got.as_ref() == body.as_slice() {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    if got.as_ref() != body.as_slice() {
        return Err("the downloaded object differs".into());
    }

    // 6. A message published and consumed.
    println!("\n== Message queue (RabbitMQ)");
    let queue = kubepkg_testenv::unique_name("demo");
    api.post(
        "/message-queues/default/queues",
        json!({"name": queue, "durable": false}),
    )
    .await?;
    api.post(
        "/message-queues/default/publish",
        json!({"routing_key": queue, "body": "order #1 placed"}),
    )
    .await?;
    let m = api
        .post(
            &format!("/message-queues/default/queues/{queue}/receive"),
            json!({}),
        )
        .await?;
    println!(
        "  published to {queue}, received and acknowledged: {:?}",
        m["body"].as_str().unwrap_or("")
    );

    // 7. Search across clusters.
    let second = format!("{cluster}-b");
    api.post(
        "/clusters",
        json!({"name": second, "source": {"source": "token", "server": k8s.server, "ca_pem": k8s.ca_pem, "token": k8s.admin_token}}),
    )
    .await?;
    println!("\n== Search Deployments across {cluster} and {second}");
    let found = api
        .get(&format!(
            "/search?kind=Deployment&api_version=apps/v1&namespace={ns}"
        ))
        .await?;
    for i in found["items"].as_array().into_iter().flatten() {
        println!(
            "  {}: {}/{}",
            i["cluster"].as_str().unwrap_or(""),
            i["object"]["metadata"]["namespace"].as_str().unwrap_or(""),
            i["object"]["metadata"]["name"].as_str().unwrap_or("")
        );
    }

    // 8. Watch: the first events of a live stream.
    let resp = api
        .http
        .get(format!(
            "{base}/clusters/{cluster}/watch?kind=Pod&namespace={ns}"
        ))
        .bearer_auth(&api.token)
        .send()
        .await?;
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while text.matches("event: added").count() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk?)),
            _ => break,
        }
    }
    println!(
        "\n== Watch (Server-Sent Events): {} `added` events for the pods that exist",
        text.matches("event: added").count()
    );
    drop(stream);
    println!("\nThe clusters {cluster} and {second} and the app in {ns} stay, to explore.");
    Ok(())
}

/// Builds a `FROM scratch` image on the Docker engine and pushes it to the
/// local registry; returns the repository.
async fn push_image() -> Res<String> {
    use kubepkg_image_api::config::{EngineConfig, RegistryConfig};
    use kubepkg_image_api::engine::{BuildContext, BuildOptions, RegistryAuth};
    let d = kubepkg_testenv::docker();
    let reg = kubepkg_testenv::registry();
    let engine = kubepkg_image_api::engine::connect(&EngineConfig::new(d.host.clone()))?;
    let dir = std::env::temp_dir().join(kubepkg_testenv::unique_name("http-tour-image"));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(&d.busybox, dir.join("busybox"))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n",
    )?;
    let repo = format!("tour/{}", kubepkg_testenv::unique_name("web"));
    let reference = format!("{}/{repo}:v1", reg.host);
    let mut build = engine.build_stream(
        BuildContext::Directory(dir.clone()),
        BuildOptions::tagged(&reference),
    );
    while let Some(event) = build.next().await {
        event?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = RegistryConfig::new(reg.url.clone())
        .credentials(reg.username.clone(), reg.password.clone())
        .allow_http(true);
    let pushed = engine
        .push(&reference, Some(&RegistryAuth::from_registry_config(&cfg)?))
        .await?;
    println!(
        "  built and pushed {reference} ({}, {} bytes) on the Docker engine",
        pushed.digest, pushed.size
    );
    let _ = engine.remove_image(&reference, true).await;
    Ok(repo)
}
