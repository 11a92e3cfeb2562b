//! Listing N ConfigMaps across all namespaces (default 10,000;
//! `KUBEPKG_BENCH_LIST_CONFIGMAPS`), each written out as JSON, in a process
//! of its own: kubepkg (this binary re-run as a child, streaming pages of
//! 500) vs `kubectl get cm -A -o json`. Wall time and peak RSS of both are
//! measured with `/usr/bin/time -v` in the same run (median of
//! `KUBEPKG_BENCH_ROUNDS`, default 3). Targets: ≥ 2× faster, ≤ 50% of
//! kubectl's peak RSS. The ConfigMaps are created in a throwaway namespace
//! first (not measured) and deleted afterwards.

mod support;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{ApplyOptions, ListOptions};
use std::io::Write as _;
use std::process::Command;
use support::*;

const CHILD: &str = "KUBEPKG_BENCH_LIST_CHILD";

/// The measured program: stream every ConfigMap and print each as JSON.
async fn child() {
    let c = client().await;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut all = c
        .all::<ConfigMap>()
        .stream(&ListOptions::default().page_size(500));
    while let Some(cm) = all.next().await {
        let cm = cm.expect("list");
        serde_json::to_writer(&mut out, &cm).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
}

fn run_ours() -> (std::time::Duration, u64, usize) {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.env(CHILD, "1");
    let (wall, rss, out) = time_v(&mut cmd);
    let count = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    (wall, rss, count)
}

fn run_kubectl() -> (std::time::Duration, u64, usize) {
    let mut cmd = Command::new(kubectl());
    cmd.arg("--kubeconfig")
        .arg(&env().kubeconfig)
        .args(["get", "configmaps", "-A", "-o", "json"]);
    let (wall, rss, out) = time_v(&mut cmd);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("kubectl JSON");
    let count = v["items"].as_array().map_or(0, Vec::len);
    (wall, rss, count)
}

fn mid<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    if std::env::var_os(CHILD).is_some() {
        child().await;
        return;
    }
    let n = size("KUBEPKG_BENCH_LIST_CONFIGMAPS", 10_000);
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 3).max(1);
    let c = client().await;
    let ns = fresh_namespace(&c, "kp-bench-list").await;
    let mut text = String::with_capacity(n * 200);
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {ns}, labels: {{app: bench}}}}\ndata: {{index: \"{i}\", payload: \"{}\"}}\n",
            "y".repeat(100)
        ));
    }
    let report = c
        .apply(
            &text,
            &ApplyOptions {
                concurrency: 32,
                ..Default::default()
            },
        )
        .await;
    assert!(
        report.is_ok(),
        "setup failed: {:?}",
        report.failures().next()
    );
    println!("list_configmaps: {n} ConfigMaps created for the run; {rounds} rounds each");

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..rounds {
        let o = run_ours();
        let k = run_kubectl();
        assert!(o.2 >= n, "kubepkg listed {} < {n}", o.2);
        assert!(k.2 >= n, "kubectl listed {} < {n}", k.2);
        assert_eq!(o.2, k.2, "both must see the same ConfigMaps");
        ours.push(o);
        theirs.push(k);
    }
    let (ow, orss) = (
        mid(ours.iter().map(|o| o.0).collect()),
        mid(ours.iter().map(|o| o.1).collect()),
    );
    let (kw, krss) = (
        mid(theirs.iter().map(|k| k.0).collect()),
        mid(theirs.iter().map(|k| k.1).collect()),
    );
    println!(
        "wall:     kubepkg {ow:?} vs kubectl {kw:?} -> {:.2}x faster (target >= 2x)",
        kw.as_secs_f64() / ow.as_secs_f64()
    );
    println!(
        "peak RSS: kubepkg {orss} KiB vs kubectl {krss} KiB -> {:.1}% of kubectl (target <= 50%)",
        orss as f64 * 100.0 / krss as f64
    );
    result("k8s_list_cm/kubepkg", ns_of(ow), "ns");
    result("k8s_list_cm/kubectl", ns_of(kw), "ns");
    result("k8s_list_cm_rss/kubepkg", (orss * 1024) as f64, "B");
    result("k8s_list_cm_rss/kubectl", (krss * 1024) as f64, "B");
    if std::env::var_os("KUBEPKG_BENCH_KEEP").is_none() {
        drop_namespace(&c, &ns).await;
    }
}

fn ns_of(d: std::time::Duration) -> f64 {
    support::ns(d)
}
