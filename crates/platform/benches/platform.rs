//! The platform's two benchmarks, each kubepkg vs its baseline in one run:
//!
//! - **cached clients vs a client rebuilt per request**, as the source
//!   design did: for each of `KUBEPKG_BENCH_CALLS` (default 1,000) list
//!   calls, the baseline reads the cluster and its credential from the
//!   store (decrypting it), builds a client and probes `GET /version`
//!   before the list; the platform takes its cached client. Same store,
//!   same list (the ConfigMaps of one namespace), same concurrency (one
//!   call at a time), same TLS verification on both sides.
//! - **multi-cluster search over 10 clusters vs one**: the local API server
//!   registered as 10 clusters, each behind its own relay with a 20 ms
//!   round trip (`KUBEPKG_BENCH_RTT_MS`; the relays of the k8s-api fan-out
//!   benchmark), one search page over all ten vs the same search on one of
//!   them; median of `KUBEPKG_BENCH_ROUNDS` (default 30), alternating.
//!   Target: ≤ 1.5× one cluster's time.

#[path = "../../k8s-api/benches/support/mod.rs"]
mod support;

use kubepkg_k8s_api::k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{ApplyOptions, ClusterSource, ListOptions};
use kubepkg_platform::core::{ImportRequest, ImportRole, ImportSource, SearchQuery};
use kubepkg_platform::crypto::Keyring;
use kubepkg_platform::store::Store;
use kubepkg_platform::{Platform, PlatformOptions};
use kubepkg_util::secret::Secret;
use std::time::{Duration, Instant};
use support::*;

async fn platform() -> Platform {
    let keys = Keyring::new("bench", Keyring::generate_key()).expect("keyring");
    let store = Store::open("sqlite::memory:", keys).await.expect("store");
    Platform::with_store(store, PlatformOptions::default())
        .await
        .expect("platform")
}

fn token_source(server: String) -> ImportSource {
    ImportSource::Token {
        server,
        ca_pem: Some(env().ca_pem.clone()),
        token: Secret::new(env().admin_token.clone()),
    }
}

/// What the source design did per request: read the record and the
/// credential, build a client, probe it, then make the call.
async fn rebuilt_list(p: &Platform, name: &str, ns: &str) -> usize {
    let client = p.uncached_client(name).await.expect("client");
    let v: Vec<ConfigMap> = client
        .config_maps(ns)
        .list(&ListOptions::labels("app=fan"))
        .await
        .expect("list");
    v.len()
}

async fn cached_list(p: &Platform, name: &str, ns: &str) -> usize {
    let ns = ns.to_string();
    p.with_client(name, |c| async move {
        let v: Vec<ConfigMap> = c
            .config_maps(&ns)
            .list(&ListOptions::labels("app=fan"))
            .await?;
        Ok(v.len())
    })
    .await
    .expect("list")
}

async fn bench_cache(ns: &str, objects: usize) {
    let calls = size("KUBEPKG_BENCH_CALLS", 1000).max(1);
    let p = platform().await;
    p.import_cluster(
        ImportRequest::new("local", token_source(env().server.clone())).role(ImportRole::AsGiven),
    )
    .await
    .expect("import");
    // Warm both paths, then alternate blocks of 100 calls so both see the
    // same machine load.
    assert_eq!(cached_list(&p, "local", ns).await, objects);
    assert_eq!(rebuilt_list(&p, "local", ns).await, objects);
    let block = 100.min(calls);
    let (mut cached, mut rebuilt) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < calls {
        let n = block.min(calls - done);
        let t = Instant::now();
        for _ in 0..n {
            assert_eq!(cached_list(&p, "local", ns).await, objects);
        }
        cached += t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            assert_eq!(rebuilt_list(&p, "local", ns).await, objects);
        }
        rebuilt += t.elapsed();
        done += n;
    }
    println!(
        "platform cache: {calls} list calls of {objects} ConfigMaps; cached clients {cached:?}, \
         a client rebuilt per request (store read + build + /version probe) {rebuilt:?} -> {:.3}x",
        cached.as_secs_f64() / rebuilt.as_secs_f64()
    );
    result("platform_cached/list_calls", support::ns(cached), "ns");
    result("platform_rebuilt/list_calls", support::ns(rebuilt), "ns");
}

async fn bench_search(ns: &str, objects: usize) {
    let clusters = size("KUBEPKG_BENCH_CLUSTERS", 10).max(1);
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 30).max(1);
    let rtt = Duration::from_millis(size("KUBEPKG_BENCH_RTT_MS", 20) as u64);
    let p = platform().await;
    let upstream = api_server_addr();
    let mut names = Vec::new();
    for i in 0..clusters {
        let relay = delay_relay(upstream, rtt / 2).await;
        let name = format!("remote-{i:02}");
        p.import_cluster(
            ImportRequest::new(&name, token_source(format!("https://{relay}")))
                .role(ImportRole::AsGiven),
        )
        .await
        .expect("import through relay");
        names.push(name);
    }
    let all = SearchQuery::new("v1", "ConfigMap")
        .namespace(ns)
        .labels("app=fan")
        .limit(500);
    let mut one = all.clone();
    one.clusters = Some(vec![names[0].clone()]);
    // Warm every connection.
    for _ in 0..3 {
        let page = p.search(&all).await.expect("search");
        assert!(page.errors.is_empty(), "{:?}", page.errors);
        assert_eq!(page.items.len(), (objects * clusters).min(500));
    }
    let (mut t_one, mut t_all) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for single in order {
            let q = if single { &one } else { &all };
            let t = Instant::now();
            let page = p.search(q).await.expect("search");
            let e = t.elapsed();
            assert!(page.errors.is_empty());
            if single {
                assert_eq!(page.items.len(), objects);
                t_one.push(e);
            } else {
                t_all.push(e);
            }
        }
    }
    let (one_m, all_m) = (median(t_one), median(t_all));

    // One cluster among them goes away (its relay's port is closed): the
    // first search finds it down, later ones get the platform's fast answer.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let dead = "remote-dead";
    let source = ClusterSource::Token {
        server: format!("https://127.0.0.1:{dead_port}"),
        ca_pem: Some(env().ca_pem.clone()),
        token: Secret::new(env().admin_token.clone()),
    };
    p.store()
        .create_cluster(
            &kubepkg_platform::store::NewCluster {
                name: dead.into(),
                display_name: dead.into(),
                provider: "imported".into(),
                api_server: format!("https://127.0.0.1:{dead_port}"),
                ..Default::default()
            },
            kubepkg_platform::store::CredentialKind::Token,
            &Secret::new(serde_json::to_string(&source).expect("json")),
        )
        .await
        .expect("store the dead cluster");
    p.sync_clusters().await.expect("sync");
    let t = Instant::now();
    let page = p.search(&all).await.expect("search");
    let first_with_dead = t.elapsed();
    assert_eq!(page.errors.len(), 1);
    let (mut t_healthy, mut t_dead) = (Vec::new(), Vec::new());
    let mut healthy_only = all.clone();
    healthy_only.clusters = Some(names.clone());
    for round in 0..rounds {
        for with_dead in if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            let q = if with_dead { &all } else { &healthy_only };
            let t = Instant::now();
            let page = p.search(q).await.expect("search");
            let e = t.elapsed();
            assert_eq!(page.errors.len(), usize::from(with_dead));
            if with_dead {
                t_dead.push(e)
            } else {
                t_healthy.push(e)
            }
        }
    }
    let (healthy_m, dead_m) = (median(t_healthy), median(t_dead));
    println!(
        "platform search with one cluster down: first search {first_with_dead:?}, later ones {dead_m:?} \
         vs {healthy_m:?} without it -> {:.2}x",
        dead_m.as_secs_f64() / healthy_m.as_secs_f64()
    );
    result(
        "platform_search_down/healthy_only",
        support::ns(healthy_m),
        "ns",
    );
    result(
        "platform_search_down/with_one_down",
        support::ns(dead_m),
        "ns",
    );
    println!(
        "platform search [{rtt:?} round trip]: {objects} ConfigMaps per cluster; one cluster {one_m:?}, \
         {clusters} clusters {all_m:?} -> {:.2}x (target <= 1.5x)",
        all_m.as_secs_f64() / one_m.as_secs_f64()
    );
    result("platform_search/one_cluster", support::ns(one_m), "ns");
    result(
        &format!("platform_search/{clusters}_clusters"),
        support::ns(all_m),
        "ns",
    );
}

#[tokio::main]
async fn main() {
    let objects = size("KUBEPKG_BENCH_FANOUT_OBJECTS", 50);
    let c = client().await;
    let ns = fresh_namespace(&c, "kp-bench-platform").await;
    let text: String = (0..objects)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {ns}, labels: {{app: fan}}}}\ndata: {{i: \"{i}\"}}\n"))
        .collect();
    assert!(c.apply(&text, &ApplyOptions::default()).await.is_ok());
    bench_search(&ns, objects).await;
    bench_cache(&ns, objects).await;
    drop_namespace(&c, &ns).await;
}
