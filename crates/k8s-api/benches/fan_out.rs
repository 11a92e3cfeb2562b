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

#[tokio::main]
async fn main() {
    let clusters = size("KUBEPKG_BENCH_CLUSTERS", 10).max(1);
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 30).max(1);
    let objects = size("KUBEPKG_BENCH_FANOUT_OBJECTS", 50);
    let rtt = Duration::from_millis(size("KUBEPKG_BENCH_RTT_MS", 20) as u64);
    let c = client().await;
    let ns = fresh_namespace(&c, "kp-bench-fan").await;
    let text: String = (0..objects)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {ns}, labels: {{app: fan}}}}\ndata: {{i: \"{i}\"}}\n"))
        .collect();
    assert!(c.apply(&text, &ApplyOptions::default()).await.is_ok());

    let upstream = api_server_addr();
    let mut remote = Vec::new();
    for _ in 0..clusters {
        remote.push(config_via(delay_relay(upstream, rtt / 2).await));
    }
    let r = measure(
        &format!("remote, {rtt:?} round trip"),
        remote,
        &ns,
        objects,
        rounds,
    )
    .await;
    let l = measure(
        "loopback, one shared server",
        (0..clusters).map(|_| config()).collect(),
        &ns,
        objects,
        rounds,
    )
    .await;
    println!(
        "fan_out: {clusters} remote clusters take {:.2}x one remote cluster's time (target <= 1.5x)",
        r.fan.as_secs_f64() / r.single.as_secs_f64()
    );
    for (set, t) in [("", &r), ("_loopback", &l)] {
        result(
            &format!("k8s_fan_out{set}/serial"),
            support::ns(t.serial),
            "ns",
        );
        result(
            &format!("k8s_fan_out_version{set}/one_cluster"),
            support::ns(t.version_single),
            "ns",
        );
        result(
            &format!("k8s_fan_out_version{set}/{clusters}_clusters"),
            support::ns(t.version_fan),
            "ns",
        );
        result(
            &format!("k8s_fan_out{set}/one_cluster"),
            support::ns(t.single),
            "ns",
        );
        result(
            &format!("k8s_fan_out{set}/{clusters}_clusters"),
            support::ns(t.fan),
            "ns",
        );
    }
    drop_namespace(&c, &ns).await;
}
