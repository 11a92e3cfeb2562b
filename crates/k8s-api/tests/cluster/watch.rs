//! The resilient watch (the API-server restart test lives in tests/watch_restart.rs).

use crate::common::{TestNs, admin};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{Event, WatchOptions};
use kubepkg_util::ErrorKind;
use std::time::Duration;

fn cm(name: &str, v: &str) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some([("w".to_string(), "yes".to_string())].into());
    c.data = Some([("v".to_string(), v.to_string())].into());
    c
}

async fn next<S: futures::Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .expect("event in time")
        .expect("stream open")
}

#[tokio::test]
async fn watch_sees_initial_added_modified_deleted_in_order() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-watch").await;
    let cms = c.config_maps(&ns.name);
    cms.create(&cm("pre", "0")).await.expect("pre");
    let mut w = cms.watch(WatchOptions::labels("w=yes"));
    match next(&mut w).await.expect("initial") {
        Event::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("pre")),
        other => panic!("{other:?}"),
    }
    cms.create(&cm("a", "1")).await.expect("a");
    cms.merge_patch("a", &serde_json::json!({"data": {"v": "2"}}))
        .await
        .expect("patch");
    cms.delete("a", &Default::default()).await.expect("delete");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(match next(&mut w).await.expect("event") {
            Event::Added(o) => format!("added {}", o.data.unwrap_or_default()["v"]),
            Event::Modified(o) => format!("modified {}", o.data.unwrap_or_default()["v"]),
            Event::Deleted(o) => format!("deleted {}", o.metadata.name.unwrap_or_default()),
        });
    }
    assert_eq!(seen, ["added 1", "modified 2", "deleted a"]);
}

#[tokio::test]
async fn expired_resource_version_relists_without_losing_state() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-gone").await;
    let cms = c.config_maps(&ns.name);
    cms.create(&cm("x", "1")).await.expect("x");
    // Resource version 1 is long compacted: the server answers 410 Gone and
    // the watch re-lists, reporting what exists as Added.
    let opts = WatchOptions {
        resource_version: Some("1".into()),
        ..WatchOptions::labels("w=yes")
    };
    let mut w = cms.watch(opts);
    match next(&mut w).await.expect("after relist") {
        Event::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("x")),
        other => panic!("{other:?}"),
    }
    cms.create(&cm("y", "1")).await.expect("y");
    match next(&mut w).await.expect("live") {
        Event::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("y")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn after_gone_a_watch_from_a_callers_version_re_emits_existing_objects_even_changes_only() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-gone2").await;
    let cms = c.config_maps(&ns.name);
    cms.create(&cm("x", "1")).await.expect("x");
    // The watch cannot know what the caller holds from before its
    // (expired) version, so after the re-list everything that exists comes
    // out as Added — `changes_only` or not: staying silent would lose
    // whatever changed in between.
    let opts = WatchOptions {
        resource_version: Some("1".into()),
        ..WatchOptions::labels("w=yes").changes_only()
    };
    let mut w = cms.watch(opts);
    match next(&mut w).await.expect("after relist") {
        Event::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("x")),
        other => panic!("{other:?}"),
    }
    // Then live: a delete and re-create under the same name is Deleted +
    // Added (a new uid), never Modified.
    let old_uid = cms.get("x").await.expect("get").metadata.uid;
    cms.delete("x", &Default::default()).await.expect("delete");
    cms.create(&cm("x", "2")).await.expect("re-create");
    match next(&mut w).await.expect("deleted") {
        Event::Deleted(o) => assert_eq!(o.metadata.uid, old_uid),
        other => panic!("{other:?}"),
    }
    match next(&mut w).await.expect("added") {
        Event::Added(o) => {
            assert_ne!(o.metadata.uid, old_uid);
            assert_eq!(o.data.unwrap_or_default()["v"], "2");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forbidden_watch_ends_with_the_error() {
    let limited =
        kubepkg_k8s_api::connect(&crate::common::admin_config().with_context("kubepkg-limited"))
            .await
            .expect("client");
    let mut w = limited
        .config_maps("default")
        .watch(WatchOptions::default());
    let err = next(&mut w).await.expect_err("forbidden");
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("ends")
            .is_none()
    );
}

/// A plain-HTTP proxy in front of the API server (it authenticates
/// upstream with the admin client) that answers every watch request with
/// its headers and a clean end of the body — as a load balancer with a
/// short idle timeout might — until `pass_through` is set. Counts the
/// watch requests it saw.
struct ClosingProxy {
    port: u16,
    watches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pass_through: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl ClosingProxy {
    async fn start(upstream: kubepkg_k8s_api::Client) -> ClosingProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let watches = Arc::new(AtomicUsize::new(0));
        let pass_through = Arc::new(AtomicBool::new(false));
        let (w, p) = (watches.clone(), pass_through.clone());
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (upstream, w, p) = (upstream.clone(), w.clone(), p.clone());
                tokio::spawn(async move {
                    let _ = proxy_one(sock, upstream, &w, &p).await;
                });
            }
        });
        ClosingProxy {
            port,
            watches,
            pass_through,
            accept,
        }
    }
}

impl Drop for ClosingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves one request of one connection (`connection: close`).
async fn proxy_one(
    mut sock: tokio::net::TcpStream,
    upstream: kubepkg_k8s_api::Client,
    watches: &std::sync::atomic::AtomicUsize,
    pass_through: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use futures::AsyncBufReadExt as _;
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut byte).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let request = || {
        http::Request::get(target.as_str())
            .body(Vec::new())
            .expect("request")
    };
    let is_watch = target.contains("watch=true") || target.contains("watch=1");
    if !is_watch {
        let (status, body) = match upstream.kube().request_text(request()).await {
            Ok(body) => ("200 OK", body),
            Err(e) => (
                "502 Bad Gateway",
                format!("{{\"message\": {:?}}}", e.to_string()),
            ),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).await?;
        return sock.shutdown().await;
    }
    watches.fetch_add(1, Ordering::SeqCst);
    sock.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )
    .await?;
    if pass_through.load(Ordering::SeqCst) {
        let reader = upstream
            .kube()
            .request_stream(request())
            .await
            .map_err(std::io::Error::other)?;
        let mut lines = reader.lines();
        while let Some(line) = futures::StreamExt::next(&mut lines).await {
            let line = format!("{}\n", line?);
            sock.write_all(format!("{:x}\r\n{line}\r\n", line.len()).as_bytes())
                .await?;
        }
    }
    // The last chunk: a clean end of the watch.
    sock.write_all(b"0\r\n\r\n").await?;
    sock.shutdown().await
}

#[tokio::test]
async fn a_proxy_closing_every_watch_at_once_meets_a_backoff_not_a_hot_loop() {
    use std::sync::atomic::Ordering;
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-closing").await;
    c.config_maps(&ns.name)
        .create(&cm("pre", "0"))
        .await
        .expect("pre");
    let proxy = ClosingProxy::start(c.clone()).await;
    let through = kubepkg_k8s_api::connect(&kubepkg_k8s_api::ClusterConfig::token(
        format!("http://127.0.0.1:{}", proxy.port),
        None,
        "the-proxy-authenticates-upstream",
    ))
    .await
    .expect("client");
    let mut w = through
        .config_maps(&ns.name)
        .watch(WatchOptions::labels("w=yes"));
    // The list goes through: the existing object.
    match next(&mut w).await.expect("initial") {
        Event::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("pre")),
        other => panic!("{other:?}"),
    }
    // Then every watch request ends at once, cleanly, without an event.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(ev) = w.next().await {
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    let window = Duration::from_secs(4);
    tokio::time::sleep(window).await;
    let reconnects = proxy.watches.load(Ordering::SeqCst);
    // Backoff ceilings 0.1, 0.2, 0.4, 0.8, 1.6, 3.2 s (full jitter): about
    // seven requests in four seconds. Without a backoff: thousands.
    assert!(
        (2..=25).contains(&reconnects),
        "{reconnects} watch requests in {window:?}"
    );
    assert!(rx.try_recv().is_err(), "no event was delivered");

    // Once watches stay open again, the watch delivers changes.
    proxy.pass_through.store(true, Ordering::SeqCst);
    c.config_maps(&ns.name)
        .create(&cm("after", "1"))
        .await
        .expect("after");
    let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event once the proxy passes watches through")
        .expect("stream open")
        .expect("event");
    match ev {
        Event::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("after")),
        other => panic!("{other:?}"),
    }
    reader.abort();
}
