//! Apply of a bundle of N objects (default 1,000; `KUBEPKG_BENCH_APPLY_OBJECTS`)
//! measured in one run against:
//! - a client-go program doing the same work in-process (parse, discovery
//!   through a cached REST mapper, server-side apply through the dynamic
//!   client) with the same concurrency as kubepkg (its default, 16;
//!   `KUBEPKG_BENCH_APPLY_CONCURRENCY`), warmed up like kubepkg's client
//!   (`benches/peers/client-go`, `apply`), target: kubepkg no slower;
//! - `kubectl apply --server-side -f` (kubectl of the same release: one
//!   object after the other, its start-up, discovery and output in the
//!   figure), target: kubepkg ≥ 5× faster;
//! - a plain sequential kube-rs loop (parse, discover, server-side apply
//!   one object after the other), target: overhead ≤ 5% — compared with
//!   kubepkg at concurrency 1 (like for like), re-applies alternating,
//!   `KUBEPKG_BENCH_ROUNDS` (default 5) of each.
//!
//! Every contender applies the same objects into a fresh namespace of its
//! own (first apply: all created), then applies them again (all unchanged).
//! kubepkg, client-go and kubectl do so in `KUBEPKG_BENCH_APPLY_ROUNDS`
//! rounds (default 3), the order reversed every other round, a `RESULT`
//! line per contender per round.
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

/// The client-go peer applying `text` (after an untimed warm-up bundle);
/// its own in-process time.
async fn client_go_apply(text: &str, warm: &str, concurrency: usize) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, warm_file) = (dir.path().join("bundle.yaml"), dir.path().join("warm.yaml"));
    std::fs::write(&file, text).expect("write bundle");
    std::fs::write(&warm_file, warm).expect("write warm-up bundle");
    let out = tokio::process::Command::new(go_peer("client-go"))
        .arg("apply")
        .arg("-kubeconfig")
        .arg(&env().kubeconfig)
        .arg("-file")
        .arg(&file)
        .arg("-warm")
        .arg(&warm_file)
        .args(["-concurrency", &concurrency.to_string()])
        .args(["-field-manager", "client-go-bench"])
        .output()
        .await
        .expect("run the client-go peer");
    assert!(
        out.status.success(),
        "client-go apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let ns: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT apply "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("the client-go peer printed its time");
    Duration::from_nanos(ns as u64)
}

#[tokio::main]
async fn main() {
    let n = size("KUBEPKG_BENCH_APPLY_OBJECTS", 1000);
    let conc = size(
        "KUBEPKG_BENCH_APPLY_CONCURRENCY",
        ApplyOptions::default().concurrency,
    );
    let apply_rounds = size("KUBEPKG_BENCH_APPLY_ROUNDS", 3).max(1);
    let shift = round_shift();
    let c = client().await;
    let kube_client = plain_kube_client().await;
    println!(
        "apply_bundle: {n} objects (ConfigMaps, Secrets, ServiceAccounts, Roles); kubepkg and client-go concurrency {conc}"
    );

    // Warm up every path (connections, discovery, kubectl's caches).
    let warm = [
        fresh_namespace(&c, "kp-bench-warm").await,
        fresh_namespace(&c, "kp-bench-warm").await,
        fresh_namespace(&c, "kp-bench-warm").await,
        fresh_namespace(&c, "kp-bench-warm").await,
    ];
    ours(&c, &bundle(&warm[0], 20), 16, Outcome::Created).await;
    kubectl_apply(&bundle(&warm[1], 20));
    sequential_kube(&kube_client, &bundle(&warm[2], 20)).await;
    // The client-go peer warms up on its own namespace in every run.
    let go_warm = bundle(&warm[3], 20);
    client_go_apply(&go_warm, &go_warm, conc).await;

    let mut names: Vec<String> = Vec::new();
    // (contender, create, re-apply) per round
    let mut runs: Vec<(&str, Duration, Duration)> = Vec::new();
    let mut cpu: Vec<(f64, f64, Duration)> = Vec::new();
    for round in 0..apply_rounds {
        let mut order = ["kubepkg", "client_go", "kubectl"];
        if (round + shift) % 2 == 1 {
            order.reverse();
        }
        for who in order {
            let space = fresh_namespace(&c, &format!("kp-bench-{}", who.replace('_', "-"))).await;
            let text = bundle(&space, n);
            names.push(space);
            let (create, reapply) = match who {
                "kubepkg" => {
                    let (server0, own0) = (control_plane_cpu(), own_cpu());
                    let t = ours(&c, &text, conc, Outcome::Created).await;
                    let (server1, own1) = (control_plane_cpu(), own_cpu());
                    if let (Some(s0), Some(s1)) = (server0, server1) {
                        cpu.push((s1 - s0, own1 - own0, t));
                    }
                    (t, ours(&c, &text, conc, Outcome::Unchanged).await)
                }
                "client_go" => (
                    client_go_apply(&text, &go_warm, conc).await,
                    client_go_apply(&text, &go_warm, conc).await,
                ),
                _ => (kubectl_apply(&text), kubectl_apply(&text)),
            };
            println!("round {round}: {who}: create {create:?}, re-apply {reapply:?}");
            result(&format!("k8s_apply/{who}"), ns(create), "ns");
            result(&format!("k8s_reapply/{who}"), ns(reapply), "ns");
            runs.push((who, create, reapply));
        }
    }

    // Like for like with a plain kube-rs loop: kubepkg at concurrency 1.
    let [ns_ours1, ns_kube] = [
        fresh_namespace(&c, "kp-bench-ours1").await,
        fresh_namespace(&c, "kp-bench-kube").await,
    ];
    let t_kube = sequential_kube(&kube_client, &bundle(&ns_kube, n)).await;
    let t_ours1 = ours(&c, &bundle(&ns_ours1, n), 1, Outcome::Created).await;
    result("k8s_apply_c1/kubepkg", ns(t_ours1), "ns");
    result("k8s_apply_c1/kube_sequential", ns(t_kube), "ns");
    // The re-apply is repeated alternately: noisy on a shared machine.
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 5).max(1);
    let (mut ours1_runs, mut kube_runs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let kube_first = (round + shift) % 2 == 1;
        if kube_first {
            kube_runs.push(sequential_kube(&kube_client, &bundle(&ns_kube, n)).await);
        }
        ours1_runs.push(ours(&c, &bundle(&ns_ours1, n), 1, Outcome::Unchanged).await);
        if !kube_first {
            kube_runs.push(sequential_kube(&kube_client, &bundle(&ns_kube, n)).await);
        }
    }
    for (o, k) in ours1_runs.iter().zip(&kube_runs) {
        result("k8s_reapply_c1/kubepkg", ns(*o), "ns");
        result("k8s_reapply_c1/kube_sequential", ns(*k), "ns");
    }
    let (m_ours1, m_kube) = (median(ours1_runs), median(kube_runs));
    println!(
        "re-apply, median of {rounds}: kubepkg (concurrency 1) {m_ours1:?} vs sequential kube-rs {m_kube:?} -> time ratio {:.3} (target <= 1.05); create: {t_ours1:?} vs {t_kube:?}",
        m_ours1.as_secs_f64() / m_kube.as_secs_f64()
    );

    let med = |who: &str, reapply: bool| {
        median(
            runs.iter()
                .filter(|r| r.0 == who)
                .map(|r| if reapply { r.2 } else { r.1 })
                .collect(),
        )
    };
    let (o, g, k) = (
        med("kubepkg", false),
        med("client_go", false),
        med("kubectl", false),
    );
    let (ro, rg, rk) = (
        med("kubepkg", true),
        med("client_go", true),
        med("kubectl", true),
    );
    println!(
        "create, median of {apply_rounds}: kubepkg {o:?} | client-go {g:?} | kubectl {k:?}; re-apply: kubepkg {ro:?} | client-go {rg:?} | kubectl {rk:?}"
    );
    println!(
        "kubepkg / client-go (same concurrency {conc}): time ratio {:.3} create, {:.3} re-apply (target <= 1); speed-up vs kubectl: {:.2}x create (target >= 5x), {:.2}x re-apply",
        o.as_secs_f64() / g.as_secs_f64(),
        ro.as_secs_f64() / rg.as_secs_f64(),
        k.as_secs_f64() / o.as_secs_f64(),
        rk.as_secs_f64() / ro.as_secs_f64()
    );
    // Where the time goes: API server + etcd CPU per object during
    // kubepkg's creates, and the floor it sets on this machine's cores (the
    // server, etcd and this process share them).
    if !cpu.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let server: f64 = cpu.iter().map(|c| c.0).sum::<f64>() / cpu.len() as f64;
        let client: f64 = cpu.iter().map(|c| c.1).sum::<f64>() / cpu.len() as f64;
        let floor = (server + client) / cores;
        println!(
            "create, CPU per object: API server + etcd {:.2} ms, kubepkg {:.2} ms; floor on {cores} cores {floor:.2} s \
             -> best possible speed-up vs kubectl here {:.2}x; kubepkg reached {:.0}% of the floor",
            server * 1e3 / n as f64,
            client * 1e3 / n as f64,
            k.as_secs_f64() / floor,
            floor / o.as_secs_f64() * 100.0
        );
        for (s, cl, _) in &cpu {
            result("k8s_apply_cpu/server_per_object", s * 1e9 / n as f64, "ns");
            result(
                "k8s_apply_cpu/kubepkg_per_object",
                cl * 1e9 / n as f64,
                "ns",
            );
        }
    }

    for n in names.iter().chain([&ns_ours1, &ns_kube]).chain(warm.iter()) {
        drop_namespace(&c, n).await;
    }
}
