//! Shared helpers: clients for the local control plane and throwaway namespaces.

use kubepkg_k8s_api::{Client, ClusterConfig, connect};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn env() -> &'static kubepkg_testenv::Kubernetes {
    kubepkg_testenv::kubernetes()
}

pub fn admin_config() -> ClusterConfig {
    ClusterConfig::kubeconfig_file(&env().kubeconfig)
}

pub async fn admin() -> Client {
    match connect(&admin_config()).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot build a client for the API server at {}: {e}; start it with `cargo xtask env up`",
            env().server
        ),
    }
}

/// A namespace deleted when dropped (also when the test panics).
pub struct TestNs {
    pub name: String,
}

impl TestNs {
    pub async fn new(client: &Client, prefix: &str) -> TestNs {
        let name = kubepkg_testenv::unique_name(prefix);
        client
            .namespaces()
            .ensure(
                &name,
                &BTreeMap::from([("kubepkg.io/test".to_string(), "true".to_string())]),
            )
            .await
            .expect("create test namespace");
        // The service account controller must create `default` before pods can be made.
        client
            .service_accounts(&name)
            .wait_for("default", Duration::from_secs(30), |_| Some(()))
            .await
            .expect("default service account");
        TestNs { name }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A fresh runtime on its own thread: the test's runtime may be blocked here.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(c) = connect(&admin_config()).await {
                        let _ = c.namespaces().delete(&name, &Default::default()).await;
                    }
                });
            }
        })
        .join();
    }
}

/// A bare pod (one container) requesting 250m CPU / 64Mi, optionally pinned to a node.
pub fn pod(
    name: &str,
    labels: &[(&str, &str)],
    node: Option<&str>,
) -> k8s_openapi::api::core::v1::Pod {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [{"name": "app", "image": "busybox",
                            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}],
            "nodeName": node,
            "terminationGracePeriodSeconds": 0
        }
    }))
    .expect("pod json")
}

pub fn deployment(name: &str, replicas: i32) -> k8s_openapi::api::apps::v1::Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "busybox:1"}],
                    "terminationGracePeriodSeconds": 0
                }
            }
        }
    }))
    .expect("deployment json")
}
