//! Listing the tags of many repositories in the local registry, kubepkg
//! (one client, `KUBEPKG_BENCH_CONCURRENCY` requests in flight, timed in
//! this warm process) vs:
//!
//! - go-containerregistry used as a library with the same concurrency, a
//!   fresh client per round like kubepkg's, timed inside its own process
//!   (`benches/peers/ggcr-tags`; the like-for-like figure);
//! - `crane ls` run once per repository (go-containerregistry's CLI: a
//!   process launch and a new connection per repository; build it with
//!   `benches/peers/crane/build.sh`), the second, labelled figure.
//!
//! Prints `RESULT registry_tags/{kubepkg,ggcr,crane_cli} <ns> ns` per round
//! (the order of the three reversed every other round), then the medians.
//! Knobs (environment):
//! - `KUBEPKG_BENCH_REPOS` repositories (default 200),
//! - `KUBEPKG_BENCH_ITERS` timed rounds per side, median reported (default 3),
//! - `KUBEPKG_BENCH_CONCURRENCY` kubepkg's requests in flight (default 32),
//! - `CRANE` path of the crane binary (default: what build.sh prints),
//! - `KUBEPKG_PEER_GGCR_TAGS` path of the ggcr-tags peer (default: `go
//!   build` into `~/.cache/kubepkg/bin/peer-ggcr-tags-local/`).
//!
//! Needs the local environment (`cargo xtask env up`). The repositories
//! `kubepkg-bench/tags-<i>` are created on first run and kept.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kubepkg_image_api::distribution::sha256_digest;
use kubepkg_image_api::{RegistryConfig, connect_registry};

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

/// The ggcr-tags peer: the binary `cargo xtask bench` built, else a `go
/// build` into the cache (Go's build cache makes a repeat quick).
fn ggcr_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("KUBEPKG_PEER_GGCR_TAGS") {
        return p.into();
    }
    let cache = std::env::var_os("KUBEPKG_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache/kubepkg")
        });
    let bin = cache.join("bin/peer-ggcr-tags-local/ggcr-tags");
    let out = Command::new("go")
        .current_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../benches/peers/ggcr-tags"
        ))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly")
        .env("CGO_ENABLED", "0")
        .args(["build", "-trimpath", "-o"])
        .arg(&bin)
        .arg(".")
        .output()
        .expect("run go build for benches/peers/ggcr-tags");
    assert!(
        out.status.success(),
        "building ggcr-tags failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn crane_path() -> String {
    if let Ok(p) = std::env::var("CRANE") {
        return p;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../benches/peers/crane/build.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("run benches/peers/crane/build.sh");
    assert!(
        out.status.success(),
        "crane build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// Pushes a tiny image (one config, one layer) as `<repo>:v1` through the
/// raw registry API, for every repository that does not have it yet.
async fn seed(reg: &kubepkg_testenv::Registry, repos: &[String]) {
    let existing: std::collections::HashSet<String> = connect_registry(&config(reg))
        .expect("client")
        .list_repositories(Some("kubepkg-bench"))
        .await
        .expect("catalog")
        .into_iter()
        .map(|r| r.name)
        .collect();
    let missing: Vec<&String> = repos.iter().filter(|r| !existing.contains(*r)).collect();
    if missing.is_empty() {
        return;
    }
    eprintln!("seeding {} repositories…", missing.len());
    let http = reqwest::Client::new();
    let layer = b"kubepkg benchmark layer".to_vec();
    let layer_digest = sha256_digest(&layer);
    let config_blob = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}},"config":{{}}}}"#
    )
    .into_bytes();
    let config_digest = sha256_digest(&config_blob);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":{},"digest":"{layer_digest}"}}]}}"#,
        config_blob.len(),
        layer.len()
    );
    let base = reg.url.trim_end_matches('/').to_string();
    futures::stream::iter(missing)
        .for_each_concurrent(16, |repo| {
            let (http, base) = (http.clone(), base.clone());
            let blobs = [
                (config_digest.clone(), config_blob.clone()),
                (layer_digest.clone(), layer.clone()),
            ];
            let manifest = manifest.clone();
            async move {
                for (digest, body) in blobs {
                    let r = http
                        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                        .basic_auth(&reg.username, Some(&reg.password))
                        .send()
                        .await
                        .expect("start upload");
                    assert_eq!(r.status().as_u16(), 202, "start upload {repo}");
                    let loc = r.headers()["location"]
                        .to_str()
                        .expect("location")
                        .to_string();
                    let loc = if loc.starts_with("http") {
                        loc
                    } else {
                        format!("{base}{loc}")
                    };
                    let sep = if loc.contains('?') { '&' } else { '?' };
                    let r = http
                        .put(format!("{loc}{sep}digest={digest}"))
                        .basic_auth(&reg.username, Some(&reg.password))
                        .header("content-type", "application/octet-stream")
                        .body(body)
                        .send()
                        .await
                        .expect("upload");
                    assert_eq!(r.status().as_u16(), 201, "upload {repo}");
                }
                let r = http
                    .put(format!("{base}/v2/{repo}/manifests/v1"))
                    .basic_auth(&reg.username, Some(&reg.password))
                    .header(
                        "content-type",
                        "application/vnd.docker.distribution.manifest.v2+json",
                    )
                    .body(manifest)
                    .send()
                    .await
                    .expect("manifest");
                assert_eq!(r.status().as_u16(), 201, "manifest {repo}");
            }
        })
        .await;
}

fn config(reg: &kubepkg_testenv::Registry) -> RegistryConfig {
    RegistryConfig::new(reg.url.clone())
        .credentials(reg.username.clone(), reg.password.clone())
        .allow_http(true)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let n = env_usize("KUBEPKG_BENCH_REPOS", 200);
    let iters = env_usize("KUBEPKG_BENCH_ITERS", 3).max(1);
    let concurrency = env_usize("KUBEPKG_BENCH_CONCURRENCY", 32).max(1);
    let reg = kubepkg_testenv::registry();
    let repos: Vec<String> = (0..n).map(|i| format!("kubepkg-bench/tags-{i}")).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(seed(reg, &repos));
    let crane = crane_path();

    // crane reads credentials from a docker config.json
    let docker_config = tempfile::tempdir().expect("tempdir");
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", reg.username, reg.password))
    };
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .expect("config.json");

    let run_ours = || {
        // kubepkg: a fresh client each round (it learns the auth scheme again)
        let start = Instant::now();
        let results: Vec<Vec<String>> = rt.block_on(async {
            let client = connect_registry(&config(reg)).expect("client");
            futures::stream::iter(repos.iter())
                .map(|r| {
                    let client = client.clone();
                    async move { client.list_tags(r).await.expect("list_tags") }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await
        });
        let t = start.elapsed();
        assert_eq!(results.len(), n);
        assert!(results.iter().all(|tags| tags == &["v1".to_string()]));
        t
    };
    let ggcr = ggcr_path();
    let run_ggcr = || {
        let out = Command::new(&ggcr)
            .args([
                "-registry",
                &reg.host,
                "-user",
                &reg.username,
                "-count",
                &n.to_string(),
                "-concurrency",
                &concurrency.to_string(),
                "-insecure",
            ])
            .env("REGISTRY_PASSWORD", &reg.password)
            .output()
            .expect("run ggcr-tags");
        assert!(
            out.status.success(),
            "ggcr-tags: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let ns: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT registry_tags/ggcr "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("ggcr-tags printed its time");
        Duration::from_nanos(ns as u64)
    };
    let run_crane = || {
        let start = Instant::now();
        for r in &repos {
            let out = Command::new(&crane)
                .args(["ls", "--insecure", &format!("{}/{r}", reg.host)])
                .env("DOCKER_CONFIG", docker_config.path())
                .output()
                .expect("run crane");
            assert!(
                out.status.success(),
                "crane ls {r}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v1");
        }
        start.elapsed()
    };

    let (mut ours, mut lib, mut cli) = (Vec::new(), Vec::new(), Vec::new());
    // The runner's run number shifts the alternation of who goes first.
    let shift = env_usize("KUBEPKG_BENCH_ROUND", 0);
    for round in 0..iters {
        let mut order = ["kubepkg", "ggcr", "crane_cli"];
        if (round + shift) % 2 == 1 {
            order.reverse();
        }
        for who in order {
            let t = match who {
                "kubepkg" => run_ours(),
                "ggcr" => run_ggcr(),
                _ => run_crane(),
            };
            println!("RESULT registry_tags/{who} {:.0} ns", t.as_secs_f64() * 1e9);
            eprintln!("round {round}: {who} {:.3}s", t.as_secs_f64());
            match who {
                "kubepkg" => ours.push(t),
                "ggcr" => lib.push(t),
                _ => cli.push(t),
            }
        }
    }
    let (k, g, c) = (median(ours), median(lib), median(cli));
    println!(
        "# list tags of {n} repositories, {concurrency} in flight: kubepkg vs go-containerregistry (library), and vs `crane ls` per repository"
    );
    println!(
        "kubepkg: {:.3}s  ggcr: {:.3}s  ratio: {:.2} (kubepkg / ggcr, target <= 1)",
        k.as_secs_f64(),
        g.as_secs_f64(),
        k.as_secs_f64() / g.as_secs_f64()
    );
    println!(
        "kubepkg: {:.3}s  crane ls x {n}: {:.3}s  speed-up: {:.2}x (target >= 3)",
        k.as_secs_f64(),
        c.as_secs_f64(),
        c.as_secs_f64() / k.as_secs_f64()
    );
}
