//! Fan-out of one list call over 10 registered clusters (all pointing at the
//! local API server under different names; `KUBEPKG_BENCH_CLUSTERS`) vs the
//! same call on one cluster, median wall time of `KUBEPKG_BENCH_ROUNDS`
//! rounds (default 30). Target: ≤ 1.5× one cluster's time. For context it
//! also times the same calls made one cluster after the other (what a
//! loop without fan-out costs), and a `GET /version` fan-out (almost no
//! server work). Every "cluster" here is the same API server on the same
//! two cores as this process, so server CPU, not network latency, bounds
//! the list fan-out.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{ApplyOptions, ClusterManager, Error, ListOptions};
use std::time::Instant;
use support::*;

#[tokio::main]
async fn main() {
    let clusters = size("KUBEPKG_BENCH_CLUSTERS", 10).max(1);
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 30).max(1);
    let objects = size("KUBEPKG_BENCH_FANOUT_OBJECTS", 50);
    let c = client().await;
    let ns = fresh_namespace(&c, "kp-bench-fan").await;
    let text: String = (0..objects)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {ns}, labels: {{app: fan}}}}\ndata: {{i: \"{i}\"}}\n"))
        .collect();
    assert!(c.apply(&text, &ApplyOptions::default()).await.is_ok());

    let m = ClusterManager::new();
    for i in 0..clusters {
        m.add(&format!("cluster-{i}"), config())
            .await
            .expect("register");
    }
    let names = m.names();
    let one = vec![names[0].clone()];
    let list = |cl: kubepkg_k8s_api::Client| {
        let ns = ns.clone();
        async move {
            let v: Vec<ConfigMap> = cl
                .config_maps(&ns)
                .list(&ListOptions::labels("app=fan"))
                .await?;
            Ok::<usize, Error>(v.len())
        }
    };
    // Warm up every connection.
    for r in m.fan_out(clusters, list).await.into_values() {
        assert_eq!(r.expect("warm-up"), objects);
    }
    let mut single = Vec::new();
    let mut fan = Vec::new();
    let mut serial = Vec::new();
    let mut v_single = Vec::new();
    let mut v_fan = Vec::new();
    let version = |cl: kubepkg_k8s_api::Client| async move { cl.version().await.map(|_| 0usize) };
    for _ in 0..rounds {
        let t = Instant::now();
        m.fan_out_to(&one, 1, version).await;
        v_single.push(t.elapsed());
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
    let (s, f, q) = (median(single), median(fan), median(serial));
    let (vs, vf) = (median(v_single), median(v_fan));
    println!(
        "fan_out: list of {objects} ConfigMaps; one cluster {s:?}, {clusters} clusters {f:?} -> {:.2}x (target <= 1.5x); \
         one after the other {q:?} -> {:.2}x",
        f.as_secs_f64() / s.as_secs_f64(),
        q.as_secs_f64() / s.as_secs_f64()
    );
    println!(
        "fan_out: GET /version; one cluster {vs:?}, {clusters} clusters {vf:?} -> {:.2}x",
        vf.as_secs_f64() / vs.as_secs_f64()
    );
    result("k8s_fan_out/serial", support::ns(q), "ns");
    result("k8s_fan_out_version/one_cluster", support::ns(vs), "ns");
    result(
        &format!("k8s_fan_out_version/{clusters}_clusters"),
        support::ns(vf),
        "ns",
    );
    result("k8s_fan_out/one_cluster", support::ns(s), "ns");
    result(
        &format!("k8s_fan_out/{clusters}_clusters"),
        support::ns(f),
        "ns",
    );
    drop_namespace(&c, &ns).await;
}
