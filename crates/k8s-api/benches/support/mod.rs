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
