//! A watch survives the API server being restarted mid-stream without losing
//! or repeating any of 1,000 ConfigMap updates.
//!
//! This test restarts an API server (`cargo xtask env restart
//! kube-apiserver-fault`): the environment's fault-injection instance over
//! the same etcd, held exclusively through its testenv lock, so no other
//! test ever talks to a server that this one restarts.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{ClusterConfig, Event, WatchOptions, connect};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const UPDATES: u64 = 1000;
const RESTART_AT: u64 = 300;
const HOLD_AFTER: u64 = 100;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .expect("workspace root")
}

fn value_of(cm: &ConfigMap) -> u64 {
    cm.data
        .as_ref()
        .and_then(|d| d.get("n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_api_server_restart_without_losing_updates() {
    let env = kubepkg_testenv::kubernetes_fault();
    // Build xtask now, so that the restart starts promptly later. (Its exit
    // status reflects every server of the environment: not checked here.)
    std::process::Command::new("cargo")
        .args(["xtask", "env", "status"])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo xtask env status");
    let cfg = ClusterConfig::kubeconfig_file(&env.kubeconfig);
    let client = connect(&cfg).await.expect("client");
    let ns = kubepkg_testenv::unique_name("kp-restart");
    client
        .namespaces()
        .ensure(&ns, &BTreeMap::new())
        .await
        .expect("namespace");
    let cms = client.config_maps(&ns);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("counter".into());
    cm.data = Some([("n".to_string(), "0".to_string())].into());
    cms.create(&cm).await.expect("counter");

    let mut watch = cms.watch(WatchOptions {
        field_selector: Some("metadata.name=counter".into()),
        ..Default::default()
    });
    match tokio::time::timeout(Duration::from_secs(20), watch.next()).await {
        Ok(Some(Ok(Event::Added(o)))) => assert_eq!(value_of(&o), 0),
        other => panic!("expected the initial object, got {other:?}"),
    }

    // Writer: 1..=1000, each value written until the server acknowledges it.
    // Past RESTART_AT it slows down until it sees the server go away, and
    // past RESTART_AT + HOLD_AFTER it holds, re-sending the value already
    // written (a no-op patch: no event) until it does — so the restart
    // lands mid-stream however long `cargo xtask` takes to start it.
    let written = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The writer's own client does not retry, so it sees the outage.
    let writer_client = connect(&cfg.clone().with_max_retries(0))
        .await
        .expect("writer client");
    let writer = {
        let cms = writer_client.config_maps(&ns);
        let written = written.clone();
        let restarted = restarted.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            for i in 1..=UPDATES {
                while i > RESTART_AT && failures == 0 && !restarted.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if i <= RESTART_AT + HOLD_AFTER {
                        break;
                    }
                    let same = serde_json::json!({"data": {"n": (i - 1).to_string()}});
                    if cms.merge_patch("counter", &same).await.is_err() {
                        failures += 1;
                    }
                }
                loop {
                    let patch = serde_json::json!({"data": {"n": i.to_string()}});
                    match cms.merge_patch("counter", &patch).await {
                        Ok(_) => break,
                        Err(_) => {
                            failures += 1;
                            assert!(failures < 2000, "the API server never came back");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                written.store(i, Ordering::SeqCst);
            }
            failures
        })
    };

    // Restart the API server once the writer is under way.
    let restarter = {
        let written = written.clone();
        let restarted = restarted.clone();
        tokio::spawn(async move {
            while written.load(Ordering::SeqCst) < RESTART_AT {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let out = tokio::process::Command::new("cargo")
                .args(["xtask", "env", "restart", "kube-apiserver-fault"])
                .current_dir(workspace_root())
                .output()
                .await
                .expect("run cargo xtask env restart kube-apiserver-fault");
            restarted.store(true, Ordering::SeqCst);
            assert!(
                out.status.success(),
                "restart failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            written.load(Ordering::SeqCst)
        })
    };

    // Reader: every value exactly once, in order.
    let mut seen: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while seen.last().copied() != Some(UPDATES) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, watch.next()).await {
            Ok(Some(Ok(Event::Modified(o)))) => seen.push(value_of(&o)),
            Ok(Some(Ok(other))) => panic!("unexpected event {other:?}"),
            Ok(Some(Err(e))) => panic!("watch failed: {e}"),
            Ok(None) => panic!("watch ended"),
            Err(_) => panic!(
                "timed out; last value seen {:?}, written {}",
                seen.last(),
                written.load(Ordering::SeqCst)
            ),
        }
    }
    let restarted_at = restarter.await.expect("restarter");
    let failures = writer.await.expect("writer");
    assert!(
        failures > 0 && restarted_at < UPDATES,
        "the restart did not land mid-stream (restart done at update {restarted_at}, \
         {failures} failed writes)"
    );
    let expected: Vec<u64> = (1..=UPDATES).collect();
    if seen != expected {
        let dups = seen.windows(2).filter(|w| w[0] >= w[1]).count();
        let missing: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|v| !seen.contains(v))
            .collect();
        panic!(
            "updates lost or repeated across the restart (at {restarted_at}): \
             {dups} out of order/duplicate, missing {missing:?}"
        );
    }
    let _ = client.namespaces().delete(&ns, &Default::default()).await;
}
