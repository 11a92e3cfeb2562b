//! Apply of a bundle of N objects (default 1,000; `KUBEPKG_BENCH_APPLY_OBJECTS`)
//! measured in one run against:
//! - `kubectl apply --server-side -f` (kubectl of the same release),
//!   target: kubepkg ≥ 5× faster;
//! - a plain sequential kube-rs loop (parse, discover, server-side apply
//!   one object after the other), target: overhead ≤ 5% — compared with
//!   kubepkg at concurrency 1 (like for like) and at its default
//!   concurrency (16; `KUBEPKG_BENCH_APPLY_CONCURRENCY`).
//!
//! Every contender applies the same objects into a fresh namespace of its
//! own (first apply: all created), then applies them again (all unchanged).
//!
//! Server-side apply costs the API server and etcd CPU per object, and here
//! they share the machine's cores with the client: the bench reads their
//! CPU time (from `/proc`, when the control plane is local) during
//! kubepkg's create and prints the floor that sets — the best speed-up any
//! client could reach over kubectl on this machine.
//! Needs the local environment (`cargo xtask env up`) and kubectl
//! (`cargo xtask peers`).

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiResource, pinned_kind};
use kubepkg_k8s_api::{ApplyOptions, Client, Outcome};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn bundle(ns: &str, n: usize) -> String {
    let mut out = String::with_capacity(n * 160);
    for i in 0..n {
        let doc = match i % 4 {
            0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\n  labels: {{app: bench}}\ndata:\n  index: \"{i}\"\n  payload: \"{}\"\n",
                "x".repeat(64)
            ),
            1 => format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: {ns}\ntype: Opaque\nstringData:\n  token: \"t-{i}\"\n"
            ),
            2 => format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i}\n  namespace: {ns}\n"
            ),
            _ => format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: role-{i}\n  namespace: {ns}\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n"
            ),
        };
        out.push_str("---\n");
        out.push_str(&doc);
    }
    out
}

async fn ours(c: &Client, text: &str, concurrency: usize, expect: Outcome) -> Duration {
    let opts = ApplyOptions {
        concurrency,
        ..Default::default()
    };
    let start = Instant::now();
    let report = c.apply(text, &opts).await;
    let took = start.elapsed();
    assert!(
        report.is_ok(),
        "kubepkg apply failed: {:?}",
        report.failures().next()
    );
    assert_eq!(
        report.count(expect),
        report.results.len(),
        "expected all {expect:?}"
    );
    took
}

fn kubectl_apply(text: &str) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bundle.yaml");
    std::fs::write(&file, text).expect("write bundle");
    let start = Instant::now();
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&env().kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--field-manager",
            "kubectl-bench",
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("run kubectl");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The plain program one would write with kube-rs: parse each document,
/// discover its kind once, server-side apply it, one after the other.
async fn sequential_kube(client: &kube::Client, text: &str) -> Duration {
    let start = Instant::now();
    let mut kinds: HashMap<(String, String), ApiResource> = HashMap::new();
    for doc in text.split("\n---\n").map(|d| d.trim_start_matches("---\n")) {
        if doc.trim().is_empty() {
            continue;
        }
        let obj: DynamicObject = serde_yaml::from_str(doc).expect("parse doc");
        let types = obj.types.clone().expect("typed");
        let key = (types.api_version.clone(), types.kind.clone());
        if !kinds.contains_key(&key) {
            let (group, version) = match key.0.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), key.0.clone()),
            };
            let gvk = kube::core::GroupVersionKind::gvk(&group, &version, &key.1);
            let (ar, _caps) = pinned_kind(client, &gvk).await.expect("discover");
            kinds.insert(key.clone(), ar);
        }
        let ar = &kinds[&key];
        let ns = obj.metadata.namespace.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, ar);
        api.patch(
            &name,
            &PatchParams::apply("kube-bench"),
            &Patch::Apply(&obj),
        )
        .await
        .expect("apply");
    }
    start.elapsed()
}

async fn plain_kube_client() -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&env().kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::main]
async fn main() {
    let n = size("KUBEPKG_BENCH_APPLY_OBJECTS", 1000);
    let conc = size(
        "KUBEPKG_BENCH_APPLY_CONCURRENCY",
        ApplyOptions::default().concurrency,
    );
    let c = client().await;
    let kube_client = plain_kube_client().await;
    println!(
        "apply_bundle: {n} objects (ConfigMaps, Secrets, ServiceAccounts, Roles); kubepkg concurrency {conc}"
    );

    // Warm up every path (connections, discovery, kubectl's caches).
    let warm = [
        fresh_namespace(&c, "kp-bench-warm").await,
        fresh_namespace(&c, "kp-bench-warm").await,
        fresh_namespace(&c, "kp-bench-warm").await,
    ];
    ours(&c, &bundle(&warm[0], 20), 16, Outcome::Created).await;
    kubectl_apply(&bundle(&warm[1], 20));
    sequential_kube(&kube_client, &bundle(&warm[2], 20)).await;

    let names: Vec<String> = futures::future::join_all(
        [
            "kp-bench-ours",
            "kp-bench-ours1",
            "kp-bench-kubectl",
            "kp-bench-kube",
        ]
        .map(|p| fresh_namespace(&c, p)),
    )
    .await;
    let [ns_ours, ns_ours1, ns_kubectl, ns_kube] = [&names[0], &names[1], &names[2], &names[3]];

    let (server0, own0) = (control_plane_cpu(), own_cpu());
    let t_ours = ours(&c, &bundle(ns_ours, n), conc, Outcome::Created).await;
    let (server1, own1) = (control_plane_cpu(), own_cpu());
    let t_kubectl = kubectl_apply(&bundle(ns_kubectl, n));
    let t_kube = sequential_kube(&kube_client, &bundle(ns_kube, n)).await;
    let t_ours1 = ours(&c, &bundle(ns_ours1, n), 1, Outcome::Created).await;

    let r_ours = ours(&c, &bundle(ns_ours, n), conc, Outcome::Unchanged).await;
    let r_kubectl = kubectl_apply(&bundle(ns_kubectl, n));
    let r_kube = sequential_kube(&kube_client, &bundle(ns_kube, n)).await;
    let r_ours1 = ours(&c, &bundle(ns_ours1, n), 1, Outcome::Unchanged).await;

    // The like-for-like comparison is noisy on a shared machine: repeat the
    // re-apply of kubepkg (concurrency 1) and the kube-rs loop alternately
    // and compare medians.
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 5).max(1);
    let mut ours1_runs = vec![r_ours1];
    let mut kube_runs = vec![r_kube];
    for _ in 1..rounds {
        kube_runs.push(sequential_kube(&kube_client, &bundle(ns_kube, n)).await);
        ours1_runs.push(ours(&c, &bundle(ns_ours1, n), 1, Outcome::Unchanged).await);
    }
    let (m_ours1, m_kube) = (median(ours1_runs), median(kube_runs));
    println!(
        "re-apply, median of {rounds}: kubepkg (concurrency 1) {m_ours1:?} vs sequential kube-rs {m_kube:?} -> time ratio {:.3} (target <= 1.05)",
        m_ours1.as_secs_f64() / m_kube.as_secs_f64()
    );
    result("k8s_reapply_median/kubepkg_c1", ns(m_ours1), "ns");
    result("k8s_reapply_median/kube_sequential", ns(m_kube), "ns");

    println!(
        "create:   kubepkg {t_ours:?} | kubepkg (concurrency 1) {t_ours1:?} | kubectl {t_kubectl:?} | sequential kube-rs {t_kube:?}"
    );
    println!(
        "re-apply: kubepkg {r_ours:?} | kubepkg (concurrency 1) {r_ours1:?} | kubectl {r_kubectl:?} | sequential kube-rs {r_kube:?}"
    );
    println!(
        "speed-up vs kubectl (create): {:.2}x (target >= 5x); re-apply: {:.2}x",
        t_kubectl.as_secs_f64() / t_ours.as_secs_f64(),
        r_kubectl.as_secs_f64() / r_ours.as_secs_f64()
    );
    println!(
        "vs sequential kube-rs: concurrency 1 time ratio {:.3} (create), {:.3} (re-apply) (target <= 1.05); default concurrency time ratio {:.3} (create)",
        t_ours1.as_secs_f64() / t_kube.as_secs_f64(),
        r_ours1.as_secs_f64() / r_kube.as_secs_f64(),
        t_ours.as_secs_f64() / t_kube.as_secs_f64()
    );
    // Where the time goes: API server + etcd CPU per object during
    // kubepkg's create, and the floor it sets on this machine's cores (the
    // server, etcd and this process share them).
    if let (Some(s0), Some(s1)) = (server0, server1) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let server = s1 - s0;
        let client = own1 - own0;
        let floor = (server + client) / cores;
        println!(
            "create, CPU per object: API server + etcd {:.2} ms, kubepkg {:.2} ms; floor on {cores} cores {floor:.2} s \
             -> best possible speed-up vs kubectl here {:.2}x; kubepkg reached {:.0}% of the floor",
            server * 1e3 / n as f64,
            client * 1e3 / n as f64,
            t_kubectl.as_secs_f64() / floor,
            floor / t_ours.as_secs_f64() * 100.0
        );
        result(
            "k8s_apply_cpu/server_per_object",
            server * 1e9 / n as f64,
            "ns",
        );
        result(
            "k8s_apply_cpu/kubepkg_per_object",
            client * 1e9 / n as f64,
            "ns",
        );
    }
    result("k8s_apply/kubepkg", ns(t_ours), "ns");
    result("k8s_apply/kubepkg_c1", ns(t_ours1), "ns");
    result("k8s_apply/kubectl", ns(t_kubectl), "ns");
    result("k8s_apply/kube_sequential", ns(t_kube), "ns");
    result("k8s_reapply/kubepkg", ns(r_ours), "ns");
    result("k8s_reapply/kubepkg_c1", ns(r_ours1), "ns");
    result("k8s_reapply/kubectl", ns(r_kubectl), "ns");
    result("k8s_reapply/kube_sequential", ns(r_kube), "ns");

    for n in names.iter().chain(warm.iter()) {
        drop_namespace(&c, n).await;
    }
}
