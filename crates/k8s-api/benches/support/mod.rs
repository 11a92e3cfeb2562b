//! Shared helpers of the k8s-api benchmarks: the local control plane,
//! kubectl, sizes from the environment, result lines, and peak-RSS
//! measurement through `/usr/bin/time -v`.
#![allow(dead_code)]

use kubepkg_k8s_api::{Client, ClusterConfig, connect};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn env() -> &'static kubepkg_testenv::Kubernetes {
    kubepkg_testenv::kubernetes()
}

pub fn config() -> ClusterConfig {
    ClusterConfig::kubeconfig_file(&env().kubeconfig)
}

pub async fn client() -> Client {
    match connect(&config()).await {
        Ok(c) => c,
        Err(e) => panic!(
            "the Kubernetes API server at {} is not usable ({e}); start it with `cargo xtask env up`",
            env().server
        ),
    }
}

/// kubectl of the same release as the control plane.
pub fn kubectl() -> PathBuf {
    let k = env().kubectl.clone();
    assert!(
        k.exists(),
        "kubectl is not built at {}; build it with `cargo xtask peers`",
        k.display()
    );
    k
}

/// A size knob: `name` from the environment, else `default`.
pub fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// One machine-readable result line (see `cargo xtask bench`).
pub fn result(id: &str, value: f64, unit: &str) {
    println!("RESULT {id} {value:.0} {unit}");
}

pub fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

pub fn ratio_line(label: &str, ours: f64, peer: f64, target: &str) {
    println!(
        "{label}: kubepkg {ours:.3e} vs peer {peer:.3e} -> ratio {:.3} (target {target})",
        ours / peer
    );
}

/// Runs `cmd` under `/usr/bin/time -v`: wall time, peak RSS in KiB, stdout.
pub fn time_v(cmd: &mut Command) -> (Duration, u64, Vec<u8>) {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.arg("-v").arg(prog).args(args);
    for (k, v) in envs {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let start = Instant::now();
    let out = wrapped.output().expect("run /usr/bin/time -v");
    let wall = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        err.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    let rss = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak RSS in /usr/bin/time output");
    (wall, rss, out.stdout)
}

pub async fn fresh_namespace(c: &Client, prefix: &str) -> String {
    let name = kubepkg_testenv::unique_name(prefix);
    c.namespaces()
        .ensure(
            &name,
            &BTreeMap::from([("kubepkg.io/bench".to_string(), "true".to_string())]),
        )
        .await
        .expect("namespace");
    name
}

pub async fn drop_namespace(c: &Client, name: &str) {
    let _ = c.namespaces().delete(name, &Default::default()).await;
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A TCP relay that delays every chunk by `one_way` in each direction: a
/// stand-in for the network between a platform and a remote cluster. TLS
/// stays end to end (the relay only moves bytes), so the client verifies
/// the real API server's certificate. Returns the relay's address.
pub async fn delay_relay(
    upstream: std::net::SocketAddr,
    one_way: Duration,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let addr = listener.local_addr().expect("relay address");
    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((due, chunk)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = to.shutdown().await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::join!(pipe(dr, uw, one_way), pipe(ur, dw, one_way));
            });
        }
    });
    addr
}

/// The API server's `host:port` from the environment.
pub fn api_server_addr() -> std::net::SocketAddr {
    let url = env().server.trim_end_matches('/');
    let hostport = url
        .strip_prefix("https://")
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default();
    hostport
        .parse()
        .unwrap_or_else(|e| panic!("API server address {hostport:?} in env.json: {e}"))
}

/// A config for the local API server reached through `addr` (a relay).
pub fn config_via(addr: std::net::SocketAddr) -> ClusterConfig {
    ClusterConfig::token(
        format!("https://{addr}"),
        Some(env().ca_pem.clone()),
        env().admin_token.clone(),
    )
}

/// CPU seconds (user + system) used so far by the local control-plane
/// process `name` (`kube-apiserver`, `etcd`, …), read from its pid file
/// beside the kubeconfig and `/proc`; `None` when the server is not a local
/// process (e.g. `KUBEPKG_ENV_FILE` points elsewhere).
pub fn server_cpu(name: &str) -> Option<f64> {
    let dir = env().kubeconfig.parent()?;
    let pid = std::fs::read_to_string(dir.join("pids").join(format!("{name}.pid"))).ok()?;
    process_cpu(pid.trim())
}

/// CPU seconds (user + system) of process `pid` (`self` for this one),
/// from `/proc/<pid>/stat` (clock ticks of 1/100 s).
fn process_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds used so far by the API server and etcd together.
pub fn control_plane_cpu() -> Option<f64> {
    Some(server_cpu("kube-apiserver")? + server_cpu("etcd")?)
}

/// CPU seconds used so far by this process.
pub fn own_cpu() -> f64 {
    process_cpu("self").unwrap_or(0.0)
}

/// A Go peer program of `benches/peers/<dir>`: the binary `cargo xtask
/// bench` built (`KUBEPKG_PEER_<NAME>`), else `go build` into
/// `~/.cache/kubepkg/bin/peer-<name>-local/` (Go's build cache makes a
/// repeated build quick). Nothing is written into the repository.
pub fn go_peer(name: &str) -> PathBuf {
    let var = format!("KUBEPKG_PEER_{}", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("KUBEPKG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache/kubepkg")
        });
    let bin = cache
        .join("bin")
        .join(format!("peer-{name}-local"))
        .join(name);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches/peers")
        .join(name);
    let out = Command::new("go")
        .current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly")
        .env("CGO_ENABLED", "0")
        .args(["build", "-trimpath", "-o"])
        .arg(&bin)
        .arg(".")
        .output()
        .unwrap_or_else(|e| panic!("building the Go peer {name} (is `go` on PATH?): {e}"));
    assert!(
        out.status.success(),
        "building the Go peer {name} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// The runner's run number (`KUBEPKG_BENCH_ROUND`), to shift which side
/// goes first so repeated runs do not always start with the same one.
pub fn round_shift() -> usize {
    size("KUBEPKG_BENCH_ROUND", 0)
}
