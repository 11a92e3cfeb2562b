//! Fan-out of one list call over 10 registered clusters
//! (`KUBEPKG_BENCH_CLUSTERS`) vs the same call on one cluster: median wall
//! time of `KUBEPKG_BENCH_ROUNDS` rounds (default 30). Target: ≤ 1.5× one
//! cluster's time.
//!
//! Only one API server runs here, so every "cluster" is that server under
//! another name. Two set-ups are measured in the same run:
//!
//! - **remote** (the target): each cluster is reached through its own relay
//!   that delays every packet by half of `KUBEPKG_BENCH_RTT_MS` (default
//!   20 ms round trip, a cluster in another region or cloud). This is what a
//!   multi-vendor platform talks to; TLS stays end to end through the relay.
//! - **loopback** (context): straight to the local server. Ten "clusters"
//!   then share one server process and the same two cores as this process,
//!   so the fan-out is bounded by that server's CPU, not by the client; the
//!   figure says how much of the server the lists cost, not how well the
//!   client overlaps them.
//!
//! For context it also times the calls made one cluster after the other
//! (what a loop without fan-out costs) and a `GET /version` fan-out.
//!
//! The remote set-up is also measured with a client-go program doing the
//! same fan-out through the same relays (`benches/peers/client-go`,
//! `fanout`: one clientset per cluster, the lists at once, timed in its
//! process after the same warm-up): target kubepkg's 10-cluster time ≤
//! client-go's. kubepkg and client-go run in alternating blocks
//! (`KUBEPKG_BENCH_BLOCKS`, default 3) of the rounds; every round prints a
//! `RESULT` line per figure.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{ApplyOptions, Client, ClusterConfig, ClusterManager, Error, ListOptions};
use std::time::{Duration, Instant};
use support::*;

struct Timings {
    single: Duration,
    fan: Duration,
    serial: Duration,
    version_single: Duration,
    version_fan: Duration,
}

async fn measure(
    label: &str,
    set: &str,
    configs: Vec<ClusterConfig>,
    ns: &str,
    objects: usize,
    rounds: usize,
) -> Timings {
    let clusters = configs.len();
    let m = ClusterManager::new();
    for (i, cfg) in configs.into_iter().enumerate() {
        m.add(&format!("cluster-{i:02}"), cfg)
            .await
            .expect("register");
    }
    let names = m.names();
    let one = vec![names[0].clone()];
    let list = |cl: Client| {
        let ns = ns.to_string();
        async move {
            let v: Vec<ConfigMap> = cl
                .config_maps(&ns)
                .list(&ListOptions::labels("app=fan"))
                .await?;
            Ok::<usize, Error>(v.len())
        }
    };
    let version = |cl: Client| async move { cl.version().await.map(|_| 0usize) };
    // Warm up every connection (several per cluster, as the rounds use).
    for _ in 0..3 {
        for r in m.fan_out(clusters, list).await.into_values() {
            assert_eq!(r.expect("warm-up"), objects);
        }
    }
    let (mut single, mut fan, mut serial, mut v_single, mut v_fan) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let t = Instant::now();
        let r = m.fan_out_to(&one, 1, version).await;
        v_single.push(t.elapsed());
        assert!(r.values().all(Result::is_ok));
        let t = Instant::now();
        let r = m.fan_out(clusters, version).await;
        v_fan.push(t.elapsed());
        assert!(r.values().all(Result::is_ok));
        let t = Instant::now();
        let r = m.fan_out(1, list).await;
        serial.push(t.elapsed());
        assert!(r.values().all(Result::is_ok));
        let t = Instant::now();
        let r = m.fan_out_to(&one, 1, list).await;
        single.push(t.elapsed());
        assert!(r.values().all(|r| matches!(r, Ok(n) if *n == objects)));
        let t = Instant::now();
        let r = m.fan_out(clusters, list).await;
        fan.push(t.elapsed());
        assert_eq!(r.len(), clusters);
        assert!(r.values().all(|r| matches!(r, Ok(n) if *n == objects)));
    }
    for i in 0..rounds {
        result(
            &format!("k8s_fan_out{set}/serial"),
            support::ns(serial[i]),
            "ns",
        );
        result(
            &format!("k8s_fan_out_version{set}/one_cluster"),
            support::ns(v_single[i]),
            "ns",
        );
        result(
            &format!("k8s_fan_out_version{set}/{clusters}_clusters"),
            support::ns(v_fan[i]),
            "ns",
        );
        result(
            &format!("k8s_fan_out{set}/one_cluster"),
            support::ns(single[i]),
            "ns",
        );
        result(
            &format!("k8s_fan_out{set}/{clusters}_clusters"),
            support::ns(fan[i]),
            "ns",
        );
    }
    let t = Timings {
        single: median(single),
        fan: median(fan),
        serial: median(serial),
        version_single: median(v_single),
        version_fan: median(v_fan),
    };
    println!(
        "fan_out [{label}]: list of {objects} ConfigMaps; one cluster {:?}, {clusters} clusters {:?} -> {:.2}x; \
         one after the other {:?} -> {:.2}x; GET /version: one {:?}, {clusters} {:?} -> {:.2}x",
        t.single,
        t.fan,
        t.fan.as_secs_f64() / t.single.as_secs_f64(),
        t.serial,
        t.serial.as_secs_f64() / t.single.as_secs_f64(),
        t.version_single,
        t.version_fan,
        t.version_fan.as_secs_f64() / t.version_single.as_secs_f64(),
    );
    t
}

/// The client-go peer over the same relays: (one cluster, all) per round.
async fn client_go(
    relays: &[std::net::SocketAddr],
    ns: &str,
    objects: usize,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, &env().admin_token).expect("token file");
    let servers: Vec<String> = relays.iter().map(|a| format!("https://{a}")).collect();
    let out = tokio::process::Command::new(go_peer("client-go"))
        .arg("fanout")
        .arg("-ca-file")
        .arg(&env().ca_file)
        .arg("-token-file")
        .arg(&token)
        .args(["-namespace", ns, "-selector", "app=fan"])
        .args(["-servers", &servers.join(",")])
        .args(["-rounds", &rounds.to_string(), "-warmup", "3"])
        .args(["-expect", &objects.to_string()])
        .output()
        .await
        .expect("run the client-go peer");
    assert!(
        out.status.success(),
        "client-go fanout failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| -> Vec<Duration> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("RESULT {key} ")))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_nanos)
            .collect()
    };
    let (one, all) = (get("one"), get("all"));
    assert_eq!(one.len(), rounds, "client-go printed every round");
    (one, all)
}

#[tokio::main]
async fn main() {
    let clusters = size("KUBEPKG_BENCH_CLUSTERS", 10).max(1);
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 30).max(1);
    let blocks = size("KUBEPKG_BENCH_BLOCKS", 3).clamp(1, rounds);
    let objects = size("KUBEPKG_BENCH_FANOUT_OBJECTS", 50);
    let rtt = Duration::from_millis(size("KUBEPKG_BENCH_RTT_MS", 20) as u64);
    let c = client().await;
    let ns = fresh_namespace(&c, "kp-bench-fan").await;
    let text: String = (0..objects)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {ns}, labels: {{app: fan}}}}\ndata: {{i: \"{i}\"}}\n"))
        .collect();
    assert!(c.apply(&text, &ApplyOptions::default()).await.is_ok());
    let _ = go_peer("client-go");

    let upstream = api_server_addr();
    let mut relays = Vec::new();
    for _ in 0..clusters {
        relays.push(delay_relay(upstream, rtt / 2).await);
    }
    let per_block = rounds.div_ceil(blocks);
    let (mut ours_one, mut ours_all, mut go_one, mut go_all) = (vec![], vec![], vec![], vec![]);
    for block in 0..blocks {
        let go_first = (block + round_shift()) % 2 == 1;
        for side in if go_first {
            ["go", "ours"]
        } else {
            ["ours", "go"]
        } {
            if side == "ours" {
                let r = measure(
                    &format!("remote, {rtt:?} round trip"),
                    "",
                    relays.iter().map(|a| config_via(*a)).collect(),
                    &ns,
                    objects,
                    per_block,
                )
                .await;
                ours_one.push(r.single);
                ours_all.push(r.fan);
            } else {
                let (one, all) = client_go(&relays, &ns, objects, per_block).await;
                for (o, a) in one.iter().zip(&all) {
                    result("k8s_fan_out_client_go/one_cluster", support::ns(*o), "ns");
                    result(
                        &format!("k8s_fan_out_client_go/{clusters}_clusters"),
                        support::ns(*a),
                        "ns",
                    );
                }
                go_one.extend(one);
                go_all.extend(all);
            }
        }
    }
    let l = measure(
        "loopback, one shared server",
        "_loopback",
        (0..clusters).map(|_| config()).collect(),
        &ns,
        objects,
        rounds,
    )
    .await;
    let (go_one, go_all) = (median(go_one), median(go_all));
    println!(
        "fan_out [client-go, remote]: one cluster {go_one:?}, {clusters} clusters {go_all:?} -> {:.2}x",
        go_all.as_secs_f64() / go_one.as_secs_f64()
    );
    let (ours_one, ours_all) = (median(ours_one), median(ours_all));
    println!(
        "fan_out: {clusters} remote clusters take {:.2}x one remote cluster's time (target <= 1.5x); \
         kubepkg / client-go over {clusters} remote clusters: time ratio {:.3} (target <= 1); loopback {:.2}x",
        ours_all.as_secs_f64() / ours_one.as_secs_f64(),
        ours_all.as_secs_f64() / go_all.as_secs_f64(),
        l.fan.as_secs_f64() / l.single.as_secs_f64()
    );
    drop_namespace(&c, &ns).await;
}
