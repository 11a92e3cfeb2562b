//! Pushing a large image to the local registry: kubepkg's engine client
//! (bollard, progress streamed) vs the `docker push` CLI, both against the
//! same daemon, which does the compressing and uploading. This checks the
//! client adds no overhead.
//!
//! Prints `RESULT image_push/kubepkg <ns> ns` and `RESULT
//! image_push/docker_cli <ns> ns` for every timed round (the two sides take
//! turns going first), then `kubepkg: X  peer: Y  ratio: Z` with the
//! medians, Z = kubepkg time / peer time (target ≤ 1.05). Knobs (environment):
//! - `KUBEPKG_BENCH_PUSH_MIB` payload size in MiB (default 200),
//! - `KUBEPKG_BENCH_ITERS` timed pushes per side, median reported (default 3),
//! - `KUBEPKG_BENCH_WARMUP` untimed rounds first (default 1),
//! - `DOCKER` the docker CLI (default `docker`).
//!
//! Every push goes to a fresh repository, and afterwards the blobs are
//! unlinked from it, so the next push cannot mount them and uploads every
//! byte again. Needs the local environment (`cargo xtask env up`).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubepkg_image_api::distribution::DistributionRegistry;
use kubepkg_image_api::engine::{BuildContext, BuildOptions, ImageEngine};
use kubepkg_image_api::{
    ArtifactRef, EngineConfig, ImageRegistry, RegistryAuth, RegistryConfig, connect_engine,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Incompressible bytes (xorshift), so gzip cannot shrink the layer.
fn payload(mib: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(mib << 20);
    while out.len() < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

async fn ensure_image(engine: &Arc<dyn ImageEngine>, tag: &str, mib: usize) {
    if engine.inspect_image(tag).await.is_ok() {
        return;
    }
    eprintln!("building {tag} ({mib} MiB payload)…");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        &kubepkg_testenv::docker().busybox,
        dir.path().join("busybox"),
    )
    .expect("busybox");
    std::fs::write(dir.path().join("payload"), payload(mib)).expect("payload");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY payload /payload\n",
    )
    .expect("Dockerfile");
    engine
        .build(
            BuildContext::Directory(dir.path().into()),
            BuildOptions::tagged(tag),
        )
        .await
        .expect("build");
}

/// Unlinks everything `repo:v1` references, then the manifest.
async fn scrub(registry: &DistributionRegistry, repo: &str) -> String {
    let v1 = ArtifactRef::Tag("v1".into());
    let m = registry.get_manifest(repo, &v1).await.expect("manifest");
    let image = m.as_image().expect("image manifest");
    for d in std::iter::once(&image.config).chain(&image.layers) {
        registry
            .delete_blob(repo, &d.digest)
            .await
            .expect("delete blob");
    }
    registry
        .delete_artifact(repo, &ArtifactRef::Digest(m.digest.clone()))
        .await
        .expect("delete manifest");
    m.digest
}

fn main() {
    let mib = env_usize("KUBEPKG_BENCH_PUSH_MIB", 200).max(1);
    let iters = env_usize("KUBEPKG_BENCH_ITERS", 3).max(1);
    let warmup = env_usize("KUBEPKG_BENCH_WARMUP", 1);
    let docker_cli = std::env::var("DOCKER").unwrap_or_else(|_| "docker".into());
    let d = kubepkg_testenv::docker();
    let reg = kubepkg_testenv::registry();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = connect_engine(&EngineConfig::new(d.host.clone())).expect("engine");
    let registry = DistributionRegistry::new(
        &RegistryConfig::new(reg.url.clone())
            .credentials(reg.username.clone(), reg.password.clone())
            .allow_http(true),
    )
    .expect("registry");
    let auth = RegistryAuth::basic(reg.host.clone(), reg.username.clone(), reg.password.clone());
    let base = format!("kubepkg-bench-push:{mib}m");
    rt.block_on(ensure_image(&engine, &base, mib));

    let docker_config = tempfile::tempdir().expect("tempdir");
    {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", reg.username, reg.password));
        std::fs::write(
            docker_config.path().join("config.json"),
            format!(r#"{{"auths":{{"{}":{{"auth":"{enc}"}}}}}}"#, reg.host),
        )
        .expect("config.json");
    }

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut digest = None::<String>;
    // The runner's run number shifts the alternation, so repeated runs
    // do not always start with the same side.
    let shift = env_usize("KUBEPKG_BENCH_ROUND", 0);
    for round in 0..warmup + iters {
        // alternate who goes first
        let order: [bool; 2] = if (round + shift).is_multiple_of(2) {
            [true, false]
        } else {
            [false, true]
        };
        for kubepkg in order {
            let side = if kubepkg { "kp" } else { "cli" };
            let repo = format!(
                "kubepkg-bench/{}",
                kubepkg_testenv::unique_name(&format!("push-{side}"))
            );
            let target = format!("{}/{repo}:v1", reg.host);
            rt.block_on(engine.tag_image(&base, &target)).expect("tag");
            let start = Instant::now();
            if kubepkg {
                let pushed = rt
                    .block_on(engine.push(&target, Some(&auth)))
                    .expect("push");
                assert_eq!(pushed.tag, "v1");
            } else {
                let out = Command::new(&docker_cli)
                    .args(["-H", &d.host, "push", &target])
                    .env("DOCKER_CONFIG", docker_config.path())
                    .output()
                    .expect("run docker");
                assert!(
                    out.status.success(),
                    "docker push: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let t = start.elapsed();
            let got = rt.block_on(scrub(&registry, &repo));
            // both sides pushed the same image
            match &digest {
                Some(d) => assert_eq!(d, &got, "{side} pushed a different manifest"),
                None => digest = Some(got),
            }
            rt.block_on(engine.remove_image(&target, false))
                .expect("untag");
            let label = if round < warmup { "warm-up" } else { "round" };
            eprintln!("{label} {round}: {side} {:.3}s", t.as_secs_f64());
            if round < warmup {
                continue;
            }
            let id = if kubepkg { "kubepkg" } else { "docker_cli" };
            println!("RESULT image_push/{id} {:.0} ns", t.as_secs_f64() * 1e9);
            if kubepkg {
                ours.push(t);
            } else {
                theirs.push(t);
            }
        }
    }
    let (k, p) = (median(ours), median(theirs));
    println!("# push of a {mib} MiB image through the engine: kubepkg (bollard) vs `docker push`");
    println!(
        "kubepkg: {:.3}s  peer: {:.3}s  ratio: {:.2}",
        k.as_secs_f64(),
        p.as_secs_f64(),
        k.as_secs_f64() / p.as_secs_f64()
    );
}
