//! kubepkg-server under load: `GET /clusters/{c}/namespaces/{ns}/pods`
//! over 1,000 kwok pods, driven by `wrk` (Debian's; `cargo xtask env up`
//! installs it) at a fixed concurrency, against:
//!
//! - (a) the same list done with `kubectl get pods -o json`, one process
//!   per request, the same number running at once;
//! - (b) the same server with a client rebuilt per request, as the source
//!   design did (`[server] rebuild_clients_per_request`: store read,
//!   decryption, TLS set-up and a `/version` probe per request) —
//!   target: the server's requests per second ≥ 10× this;
//! - (c) the floor: the same list made directly with kube-rs from this
//!   machine at the same concurrency (one shared client, pages of 500 as
//!   the server's list makes them) — target: the server's p50 within 15%.
//!
//! Every side lists all 1,000 pods per request (the server with
//! `page_size=1000`, one envelope of 1,000 pods). Requests per second, p50
//! and p99 for each; the server's resident memory at idle (imported, warm)
//! and at its peak under the load. One round per run (the runner repeats
//! it and alternates: odd rounds start with the server, even ones with the
//! peers); `KUBEPKG_BENCH_SECS` (default 10) per side,
//! `KUBEPKG_BENCH_CONCURRENCY` (default 8), `KUBEPKG_BENCH_PODS` (1,000).
//! Everything runs on this one machine, the local API server included, so
//! every side shares its CPU with it.

#[path = "../../k8s-api/benches/support/mod.rs"]
mod support;

use kubepkg_k8s_api::k8s_openapi::api::core::v1::Pod;
use kubepkg_k8s_api::kube::{self, Api, api::ListParams, api::PostParams};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{result, size};

/// The run's namespace (a fresh one each run, dropped at the end).
static NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn namespace() -> &'static str {
    NAMESPACE.get().expect("namespace set")
}
const TOKEN: &str = "kp_bench_0123456789abcdef0123456789abcdef";

/// One side's figures.
struct Load {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn from_samples(mut lat: Vec<Duration>, wall: Duration) -> Load {
    lat.sort();
    Load {
        rps: lat.len() as f64 / wall.as_secs_f64(),
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
    }
}

fn report(id: &str, l: &Load) {
    println!(
        "{id}: {:.1} requests/s, p50 {:.2?}, p99 {:.2?}",
        l.rps, l.p50, l.p99
    );
    // Rates are small (kubectl: a few per second): keep two decimals.
    println!("RESULT {id}/rps {:.2} req/s", l.rps);
    result(&format!("{id}/p50"), support::ns(l.p50), "ns");
    result(&format!("{id}/p99"), support::ns(l.p99), "ns");
}

/// 1,000 pods bound to the kwok nodes (kwok runs them; no scheduler
/// involved), created 32 at a time into a fresh namespace.
async fn create_pods(client: &kube::Client, pods: usize) {
    let k8s = support::env();
    let ns = support::fresh_namespace(&support::client().await, "bench-server").await;
    NAMESPACE.set(ns).expect("namespace set once");
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace());
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..32 {
        let (api, next, nodes) = (api.clone(), next.clone(), k8s.nodes.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= pods {
                    return;
                }
                let pod: Pod = serde_json::from_value(serde_json::json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("bench-{i:04}"), "labels": {"app": "bench-pods"}},
                    "spec": {
                        "nodeName": nodes[i % nodes.len()],
                        "containers": [{"name": "app", "image": "registry.invalid/bench:1",
                                        "env": [{"name": "INDEX", "value": i.to_string()}]}],
                        "tolerations": [{"operator": "Exists"}]
                    }
                }))
                .expect("pod");
                api.create(&PostParams::default(), &pod)
                    .await
                    .unwrap_or_else(|e| panic!("create pod {i}: {e}"));
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("pod creator");
    }
    // kwok writes each pod's status once it is bound; until it is done the
    // API server is busy with 1,000 status updates, and whichever side
    // were measured first would pay for them. Wait for every pod Running.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let running = api
            .list(&ListParams::default().fields("status.phase=Running"))
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        if running >= pods {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {running} of {pods} pods Running after 300 s (is kwok up? `cargo xtask env up`)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "bench: {pods} pods created and Running in {:.1?}",
        t.elapsed()
    );
}

/// The floor: kube-rs lists, pages of 500, `concurrency` at once.
async fn floor(client: &kube::Client, concurrency: usize, secs: u64, pods: usize) -> Load {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace());
    let list_all = |api: Api<Pod>| async move {
        let mut n = 0;
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().limit(500);
            if let Some(t) = token.take() {
                lp = lp.continue_token(&t);
            }
            let page = api.list(&lp).await.expect("kube-rs list");
            n += page.items.len();
            match page.metadata.continue_ {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return n,
            }
        }
    };
    assert_eq!(list_all(api.clone()).await, pods, "warm-up list");
    let stop = Instant::now() + Duration::from_secs(secs);
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let api = api.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < stop {
                let s = Instant::now();
                assert_eq!(list_all(api.clone()).await, pods);
                lat.push(s.elapsed());
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r.expect("lister"));
    }
    from_samples(lat, t.elapsed())
}

/// `kubectl get pods -n <ns> -o json` against the local control plane.
fn kubectl_get_pods() -> Command {
    let mut c = Command::new(support::kubectl());
    c.args([
        "get",
        "pods",
        "-n",
        namespace(),
        "-o",
        "json",
        "--kubeconfig",
    ])
    .arg(&support::env().kubeconfig);
    c
}

/// (a): `kubectl get pods -o json`, one process per request.
fn kubectl(concurrency: usize, secs: u64, pods: usize) -> Load {
    let check = kubectl_get_pods().output().expect("kubectl");
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).expect("kubectl JSON");
    assert_eq!(
        v["items"].as_array().map(Vec::len),
        Some(pods),
        "kubectl list"
    );
    let stop = Instant::now() + Duration::from_secs(secs);
    let t = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                while Instant::now() < stop {
                    let s = Instant::now();
                    let st = kubectl_get_pods()
                        .stdout(Stdio::null())
                        .status()
                        .expect("kubectl");
                    assert!(st.success(), "kubectl get pods failed");
                    lat.push(s.elapsed());
                }
                lat
            })
        })
        .collect();
    let lat = threads
        .into_iter()
        .flat_map(|t| t.join().expect("kubectl runner"))
        .collect();
    from_samples(lat, t.elapsed())
}

/// A kubepkg-server process on a store of its own.
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(rebuild: bool) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("kubepkg.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"
[encryption]
active_key = "k1"
keys = {{ k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }}
[log]
filter = "warn"
outputs = [{{ type = "file", path = "{data}/server.log" }}]
[server]
listen = "127.0.0.1:0"
rebuild_clients_per_request = {rebuild}
[health]
interval_secs = 300
"#,
                data = dir.path().display()
            ),
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubepkg-server"))
            .arg("--config")
            .arg(&config)
            .env("KUBEPKG_SERVER__BOOTSTRAP_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubepkg-server");
        let out = child.stdout.take().expect("stdout");
        let mut base = None;
        for line in BufReader::new(out).lines() {
            let line = line.expect("server output");
            if let Some(url) = line.split("listening on ").nth(1) {
                base = Some(url.trim().to_string());
                break;
            }
        }
        let base = base.expect("the server did not say where it listens");
        Server {
            child,
            base,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn import(&self, http: &reqwest::Client) {
        let k8s = support::env();
        let r = http
            .post(format!("{}/clusters", self.base))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({
                "name": "local", "role": "cluster_admin",
                "source": {"source": "token", "server": k8s.server,
                           "ca_pem": k8s.ca_pem, "token": k8s.admin_token}
            }))
            .send()
            .await
            .expect("import");
        assert!(
            r.status().is_success(),
            "import: {}",
            r.text().await.unwrap_or_default()
        );
    }

    fn pods_url(&self) -> String {
        format!(
            "{}/clusters/local/namespaces/{}/pods?page_size=1000",
            self.base,
            namespace()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `10.5ms`, `812.33us`, `1.02s`, `2.00m` as a duration.
fn wrk_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// The server under wrk; also its peak resident memory while loaded.
async fn server_load(
    server: &Server,
    http: &reqwest::Client,
    concurrency: usize,
    secs: u64,
    pods: usize,
) -> (Load, u64) {
    // Warm: one full answer, checked.
    let v: serde_json::Value = http
        .get(server.pods_url())
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("warm-up")
        .json()
        .await
        .expect("warm-up JSON");
    assert_eq!(
        v["data"]["data"].as_array().map(Vec::len),
        Some(pods),
        "the server's page: {}",
        &v.to_string()[..v.to_string().len().min(300)]
    );
    let pid = server.pid();
    let done = Arc::new(AtomicBool::new(false));
    let peak = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_bytes(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let threads = concurrency.clamp(1, 2);
    let out = Command::new(wrk())
        .args([
            "--latency",
            &format!("-t{threads}"),
            &format!("-c{concurrency}"),
            &format!("-d{secs}s"),
            "--timeout",
            "30s",
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            &server.pods_url(),
        ])
        .output()
        .expect("wrk");
    done.store(true, Ordering::Relaxed);
    let peak = peak.join().expect("rss sampler");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed:\n{text}");
    assert!(
        !text.contains("Non-2xx"),
        "the server answered errors under load:\n{text}"
    );
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("wrk printed no {prefix:?}:\n{text}"))
    };
    let rps: f64 = field("Requests/sec:").parse().expect("requests/sec");
    let p50 = wrk_duration(field("50%")).expect("p50");
    let p99 = wrk_duration(field("99%")).expect("p99");
    (Load { rps, p50, p99 }, peak)
}

fn wrk() -> PathBuf {
    let p = PathBuf::from("/usr/bin/wrk");
    assert!(
        p.is_file(),
        "wrk is not installed; `cargo xtask env up` installs Debian's wrk"
    );
    p
}

#[tokio::main]
async fn main() {
    let pods = size("KUBEPKG_BENCH_PODS", 1000).max(1);
    let secs = size("KUBEPKG_BENCH_SECS", 10).max(1) as u64;
    let concurrency = size("KUBEPKG_BENCH_CONCURRENCY", 8).max(1);
    let round = size("KUBEPKG_BENCH_ROUND", 1);
    wrk();
    let kcfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&support::env().kubeconfig).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("kube config");
    let client = kube::Client::try_from(kcfg).expect("kube client");
    create_pods(&client, pods).await;

    let http = reqwest::Client::new();
    let cached = Server::start(false);
    let rebuilt = Server::start(true);
    cached.import(&http).await;
    rebuilt.import(&http).await;
    // Idle: imported, one request answered, nothing in flight.
    let _ = http
        .get(cached.pods_url())
        .bearer_auth(TOKEN)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("first request");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_bytes(cached.pid());

    let server_first = round % 2 == 1;
    let mut ours = None;
    if server_first {
        ours = Some(server_load(&cached, &http, concurrency, secs, pods).await);
    }
    let (rebuilt_load, _) = server_load(&rebuilt, &http, concurrency, secs, pods).await;
    let kubectl_load = kubectl(concurrency, secs, pods);
    let floor_load = floor(&client, concurrency, secs, pods).await;
    if !server_first {
        ours = Some(server_load(&cached, &http, concurrency, secs, pods).await);
    }
    let (ours, peak) = ours.expect("measured");

    println!(
        "round {round}: {pods} pods, {concurrency} at once, {secs} s per side ({})",
        if server_first {
            "server first"
        } else {
            "peers first"
        }
    );
    report("server_pods/cached", &ours);
    report("server_pods/rebuilt", &rebuilt_load);
    report("server_pods/kubectl", &kubectl_load);
    report("server_pods/kube_rs", &floor_load);
    println!(
        "server memory: idle {:.1} MiB, peak under load {:.1} MiB",
        idle as f64 / 1048576.0,
        peak as f64 / 1048576.0
    );
    result("server_rss/idle", idle as f64, "B");
    result("server_rss/load", peak as f64, "B");
    drop(cached);
    drop(rebuilt);
    support::drop_namespace(&support::client().await, namespace()).await;
}
