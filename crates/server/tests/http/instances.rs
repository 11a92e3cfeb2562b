//! Server instances and their store through failures: several instances
//! over one PostgreSQL store (what one does the others serve at once; one
//! instance probes each cluster, another takes over when it dies), a
//! server killed in the middle of an import, and PostgreSQL restarted
//! under load.

use crate::common::{Server, assert_error, send};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Config lines for a store in a schema of its own on `pg`.
fn pg_store(pg: &kubepkg_testenv::Postgres) -> String {
    kubepkg_testenv::require_tcp("PostgreSQL", &format!("{}:{}", pg.host, pg.port));
    let schema = kubepkg_testenv::unique_name("srv").replace('-', "_");
    format!(
        "\n[store]\nurl = \"{}\"\npostgres_schema = \"{schema}\"\n",
        pg.url
    )
}

/// Two instances over one PostgreSQL store: what one does, the other
/// serves at once, and neither serves a deleted cluster.
#[tokio::test]
async fn two_instances_over_postgres_agree_at_once() {
    let extra = pg_store(kubepkg_testenv::postgres());
    let a = Server::start_on(&extra, None);
    let b = Server::start_on(&extra, Some(&a.admin));
    let cluster = kubepkg_testenv::unique_name("shared");
    a.import_local(&cluster).await;
    // B never saw the import, and serves the cluster at once.
    let (status, v) = b
        .admin(Method::GET, &format!("/clusters/{cluster}/summary"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = b
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/default/pods"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // A token made on B works on A.
    let viewer = b.token("shared-viewer", "viewer", None).await;
    let (status, _) = a
        .call(
            Method::GET,
            &format!("/clusters/{cluster}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Deleted through A: B answers 404 on its very next request.
    let (status, v) = a
        .admin(Method::DELETE, &format!("/clusters/{cluster}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for path in [
        format!("/clusters/{cluster}/summary"),
        format!("/clusters/{cluster}/nodes"),
        format!("/clusters/{cluster}/namespaces/default/pods"),
    ] {
        let (status, v) = b.admin(Method::GET, &path, None).await;
        assert_error(status, &v, 404, &format!("B after A deleted: {path}"));
    }
}

/// The background probe lines an instance logged for `cluster`.
fn probes_logged(s: &Server, cluster: &str) -> usize {
    s.all_output()
        .lines()
        .filter(|l| l.contains("probed cluster health") && l.contains(cluster))
        .count()
}

/// The instance holding `cluster`'s probe lease, as `s` reports it.
async fn lease_holder(s: &Server, cluster: &str) -> Option<String> {
    let (status, v) = s
        .admin(Method::GET, &format!("/clusters/{cluster}/health"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["data"]["probed_by"]["instance"]
        .as_str()
        .map(str::to_owned)
}

/// Background probing is shared: one instance probes a cluster while the
/// other does not; when that one is killed (SIGKILL: no goodbye, its lease
/// simply lapses) the other takes the lease over and probes within 30 s.
#[tokio::test]
async fn one_instance_probes_a_cluster_and_another_takes_over_when_it_dies() {
    let extra = format!(
        "{}\n[health]\ninterval_secs = 1\ntimeout_secs = 1\nmax_backoff_secs = 5\nlease_secs = 3\n",
        pg_store(kubepkg_testenv::postgres())
    );
    let mut a = Server::start_on(&extra, None);
    let mut b = Server::start_on(&extra, Some(&a.admin));
    assert_ne!(a.instance, b.instance);
    let cluster = kubepkg_testenv::unique_name("leased");
    a.import_local(&cluster).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let holder = loop {
        if let Some(h) = lease_holder(&a, &cluster).await {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "nobody took the probe lease of {cluster}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        holder == a.instance || holder == b.instance,
        "lease held by {holder}, neither {} nor {}",
        a.instance,
        b.instance
    );
    let a_leads = holder == a.instance;
    // Over five probe intervals the holder probes and the other does not.
    let before = (probes_logged(&a, &cluster), probes_logged(&b, &cluster));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = (probes_logged(&a, &cluster), probes_logged(&b, &cluster));
    let (led, idle) = if a_leads {
        (after.0 - before.0, after.1 - before.1)
    } else {
        (after.1 - before.1, after.0 - before.0)
    };
    let holder_log = if a_leads {
        a.all_output()
    } else {
        b.all_output()
    };
    assert!(
        led >= 2,
        "the lease holder probed {led} times in 5 s; its lines about probes:\n{}",
        holder_log
            .lines()
            .filter(|l| l.contains("probe"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(idle, 0, "the other instance probed {idle} times in 5 s");

    let (dead, survivor) = if a_leads { (&mut a, &b) } else { (&mut b, &a) };
    let dead_id = dead.instance.clone();
    dead.kill();
    let killed = Instant::now();
    let before = probes_logged(survivor, &cluster);
    loop {
        let holder = lease_holder(survivor, &cluster).await;
        if holder.as_deref() == Some(survivor.instance.as_str())
            && probes_logged(survivor, &cluster) > before
        {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "30 s after {dead_id} died its lease is held by {holder:?}, and {} has not probed",
            survivor.instance
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "lease taken over {:.1?} after its holder was killed",
        killed.elapsed()
    );
}

/// SIGKILL at points spread over an import, then a restart: each import
/// either happened whole (the cluster is there and its stored credential
/// works) or not at all (the name is free for a new import).
#[tokio::test]
async fn an_import_killed_midway_leaves_the_store_whole() {
    let mut server = Server::start();
    // How long one import takes here, to spread the kills over it.
    let probe = kubepkg_testenv::unique_name("timed");
    let t = Instant::now();
    server.import_local(&probe).await;
    let took = t.elapsed();
    let (status, v) = server
        .admin(Method::DELETE, &format!("/clusters/{probe}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let mut present = 0;
    for tenth in [1u32, 3, 5, 7, 9] {
        let name = kubepkg_testenv::unique_name(&format!("killed{tenth}"));
        let k8s = kubepkg_testenv::kubernetes();
        let request = server
            .req(Method::POST, "/clusters", Some(&server.admin.clone()))
            .json(&serde_json::json!({
                "name": name,
                "role": "cluster_admin",
                "source": {
                    "source": "token",
                    "server": k8s.server,
                    "ca_pem": k8s.ca_pem,
                    "token": k8s.admin_token,
                }
            }));
        let inflight = tokio::spawn(request.send());
        tokio::time::sleep(took * tenth / 10).await;
        server.restart();
        // The killed request fails, or answered just before the kill.
        let _ = inflight.await;
        let (status, v) = server
            .admin(Method::GET, &format!("/clusters/{name}"), None)
            .await;
        match status.as_u16() {
            200 => {
                present += 1;
                let (status, v) = server
                    .admin(Method::GET, &format!("/clusters/{name}/namespaces"), None)
                    .await;
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "{name} is stored after a kill at {tenth}/10 of an import, but its credential does not work: {v}"
                );
            }
            404 => {
                // Nothing half-written blocks the name.
                server.import_local(&name).await;
            }
            other => panic!("{name} after a kill at {tenth}/10: {other} {v}"),
        }
        let (status, v) = server
            .admin(Method::DELETE, &format!("/clusters/{name}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    eprintln!("of 5 imports killed midway, {present} had been stored whole");
}

/// PostgreSQL stopped under load and started again: while it is down
/// every answer is 503 Unavailable in the envelope (never a 500, never a
/// 401 for a good token), and after it is back requests succeed again.
#[tokio::test]
async fn postgres_restarted_under_load_gives_503_then_recovers() {
    let pg = kubepkg_testenv::postgres_fault();
    // A short pool timeout: while the database is down a request fails
    // after 2 s instead of the default 10.
    let extra = format!("{}connect_timeout_secs = 2\n", pg_store(&pg));
    let server = Arc::new(Server::start_with(&extra));
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(std::sync::Mutex::new(Vec::<(Instant, u16, String)>::new()));
    let mut workers = Vec::new();
    for i in 0..4 {
        let (server, stop, statuses) = (server.clone(), stop.clone(), statuses.clone());
        workers.push(tokio::spawn(async move {
            let path = if i % 2 == 0 { "/clusters" } else { "/tokens" };
            while !stop.load(Ordering::Relaxed) {
                let (status, v) = send(server.req(Method::GET, path, Some(&server.admin))).await;
                if status != StatusCode::OK {
                    assert_error(status, &v, status.as_u16(), path);
                }
                statuses
                    .lock()
                    .unwrap()
                    .push((Instant::now(), status.as_u16(), v.to_string()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.stop().expect("stop the fault-injection PostgreSQL");
    let stopped = Instant::now();
    // Longer than the token cache and the pool timeout, so requests fail
    // and authentication needs the store too.
    tokio::time::sleep(Duration::from_secs(6)).await;
    pg.start().expect("start the fault-injection PostgreSQL");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let ok_after = statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, s, _)| *at > started && *s == 200)
            .count();
        if ok_after >= 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery 30 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a load worker");
    }
    let seen = statuses.lock().unwrap();
    let bad: Vec<_> = seen
        .iter()
        .filter(|(_, s, _)| *s != 200 && *s != 503)
        .collect();
    assert!(bad.is_empty(), "answers other than 200 / 503: {bad:?}");
    let unavailable = seen.iter().filter(|(_, s, _)| *s == 503).count();
    assert!(
        unavailable > 0,
        "no 503 while PostgreSQL was down ({} answers)",
        seen.len()
    );
    let down = seen
        .iter()
        .filter(|(at, _, _)| *at > stopped + Duration::from_secs(3) && *at < started)
        .collect::<Vec<_>>();
    assert!(
        down.iter().all(|(_, s, _)| *s == 503),
        "answered while the store was down: {down:?}"
    );
}
