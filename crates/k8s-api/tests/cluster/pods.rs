//! Pods: Running on kwok nodes, selectors, pagination, logs, events, delete.

use crate::common::{TestNs, admin, env, pod};
use futures::{StreamExt as _, TryStreamExt as _};
use kubepkg_k8s_api::pod::{LogOptions, is_ready};
use kubepkg_k8s_api::{DeleteOptions, ListOptions};
use kubepkg_util::ErrorKind;
use std::time::Duration;

#[tokio::test]
async fn pods_run_on_kwok_nodes_and_list_by_selector_and_pages() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-pods").await;
    let pods = c.pods(&ns.name);
    for i in 0..5 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        pods.create(&pod(
            &format!("p{i}"),
            &[("app", "demo"), ("tier", tier)],
            None,
        ))
        .await
        .expect("create pod");
    }
    for i in 0..5 {
        let p = pods
            .wait_ready(&format!("p{i}"), Duration::from_secs(60))
            .await
            .expect("pod becomes Ready");
        let node = p.spec.and_then(|s| s.node_name).expect("scheduled");
        assert!(
            node.starts_with("kwok-") || env().nodes.contains(&node),
            "{node}"
        );
    }
    let even = pods
        .list(&ListOptions::labels("tier=even"))
        .await
        .expect("list");
    assert_eq!(even.len(), 3);
    let running = pods
        .list(&ListOptions::labels("app=demo").fields("status.phase=Running"))
        .await
        .expect("list");
    assert_eq!(running.len(), 5);
    assert!(running.iter().all(is_ready));

    // Pages of 2, as a stream, and as explicit pages.
    let streamed: Vec<String> = pods
        .stream(&ListOptions::labels("app=demo").page_size(2))
        .map_ok(|p| p.metadata.name.unwrap_or_default())
        .try_collect()
        .await
        .expect("stream");
    let mut sorted = streamed.clone();
    sorted.sort();
    assert_eq!(sorted, ["p0", "p1", "p2", "p3", "p4"]);
    let first = pods
        .list_page(&ListOptions::default().page_size(2), None)
        .await
        .expect("page");
    assert_eq!(first.items.len(), 2);
    assert!(first.continue_token.is_some());

    // The same list left as the API server's JSON, over pages of 2: the
    // same objects a typed list re-serializes, apiVersion and kind included.
    let opts = ListOptions::labels("app=demo").page_size(2);
    let raw = pods.list_json(&opts).await.expect("list_json");
    let typed = pods.list(&opts).await.expect("list");
    assert_eq!(raw.len(), 5);
    for (r, t) in raw.iter().zip(&typed) {
        let r: serde_json::Value = serde_json::from_str(r.get()).expect("raw item is JSON");
        let t = serde_json::to_value(t).expect("typed item");
        assert_eq!(r["apiVersion"], "v1");
        assert_eq!(r["kind"], "Pod");
        assert_eq!(r["metadata"]["name"], t["metadata"]["name"]);
        assert_eq!(r["metadata"]["uid"], t["metadata"]["uid"]);
        assert_eq!(r["spec"]["nodeName"], t["spec"]["nodeName"]);
    }

    // Events of a pod (the scheduler reports Scheduled).
    let evs = pods.events("p0").await.expect("events");
    assert!(evs.iter().any(|e| e.reason == "Scheduled"), "{evs:?}");

    // Delete with a grace period.
    assert!(
        pods.delete("p0", &DeleteOptions::grace(0))
            .await
            .expect("delete")
    );
    pods.wait_deleted("p0", Duration::from_secs(30))
        .await
        .expect("gone");
    assert!(
        !pods
            .delete("p0", &DeleteOptions::grace(0))
            .await
            .expect("delete again")
    );
}

#[tokio::test]
async fn logs_with_options_and_follow() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-logs").await;
    let pods = c.pods(&ns.name);
    pods.create(&pod("web", &[], None)).await.expect("create");
    pods.wait_ready("web", Duration::from_secs(60))
        .await
        .expect("ready");

    let all = pods
        .logs("web", &LogOptions::default())
        .await
        .expect("logs");
    assert_eq!(all.lines().count(), 10, "{all}");
    assert!(all.starts_with("kubepkg simulated log line 1\n"));

    let tail = pods
        .logs(
            "web",
            &LogOptions {
                tail_lines: Some(3),
                ..LogOptions::container("app")
            },
        )
        .await
        .expect("tail");
    assert_eq!(tail.lines().collect::<Vec<_>>().len(), 3);
    assert!(tail.ends_with("line 10\n"), "{tail}");

    let ts = pods
        .logs(
            "web",
            &LogOptions {
                timestamps: true,
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("timestamps");
    assert!(ts.starts_with("2024-01-01T00:00:10"), "{ts}");

    let limited = pods
        .logs(
            "web",
            &LogOptions {
                limit_bytes: Some(20),
                ..Default::default()
            },
        )
        .await
        .expect("limit");
    assert!(limited.len() <= 20, "{limited:?}");

    // The fixture lines are from 2024: nothing is newer than a minute.
    let recent = pods
        .logs(
            "web",
            &LogOptions {
                since_seconds: Some(60),
                ..Default::default()
            },
        )
        .await
        .expect("since");
    assert!(recent.is_empty(), "{recent:?}");

    let prev = pods
        .logs(
            "web",
            &LogOptions {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .expect("previous");
    assert!(prev.contains("previous instance line 1"), "{prev}");

    // Follow: a stream of lines that stays open; take the first 10.
    let stream = pods
        .log_stream("web", &LogOptions::default())
        .await
        .expect("follow");
    let lines: Vec<String> =
        tokio::time::timeout(Duration::from_secs(20), stream.take(10).try_collect())
            .await
            .expect("10 lines in time")
            .expect("lines");
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[9], "kubepkg simulated log line 10");

    // Bad options are rejected before any call; a missing container is the server's 400.
    let err = pods
        .logs(
            "web",
            &LogOptions {
                tail_lines: Some(-1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err = pods
        .logs("web", &LogOptions::container("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let err = pods
        .logs("ghost", &LogOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn logs_since_time_keeps_only_newer_lines() {
    use k8s_openapi::jiff::Timestamp;
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-since").await;
    let pods = c.pods(&ns.name);
    pods.create(&pod("web", &[], None)).await.expect("create");
    pods.wait_ready("web", Duration::from_secs(60))
        .await
        .expect("ready");
    let since = |t: &str, timestamps: bool| LogOptions {
        since_time: Some(t.parse::<Timestamp>().expect("time")),
        timestamps,
        ..Default::default()
    };

    // The fixture's lines are stamped 2024-01-01T00:00:01Z .. 00:00:10Z.
    let half = "2024-01-01T00:00:05.500Z";
    let newer = pods.logs("web", &since(half, true)).await.expect("since");
    let lines: Vec<&str> = newer.lines().collect();
    assert_eq!(lines.len(), 5, "{newer}");
    let cut: Timestamp = half.parse().expect("time");
    for line in &lines {
        let (stamp, _) = line.split_once(' ').expect("timestamp prefix");
        let t: Timestamp = stamp.parse().expect("RFC 3339 timestamp");
        assert!(t >= cut, "{line} is older than {half}");
    }
    assert!(
        lines[0].ends_with("kubepkg simulated log line 6"),
        "{newer}"
    );
    assert!(
        lines[4].ends_with("kubepkg simulated log line 10"),
        "{newer}"
    );
    let plain = pods
        .logs("web", &since(half, false))
        .await
        .expect("since, no timestamps");
    assert!(
        plain.starts_with("kubepkg simulated log line 6\n"),
        "{plain}"
    );
    assert_eq!(plain.lines().count(), 5);

    // Before every line: all of them; after every line: none.
    let all = pods
        .logs("web", &since("2023-12-31T23:59:59Z", false))
        .await
        .expect("since before");
    assert_eq!(all.lines().count(), 10, "{all}");
    let now = Timestamp::now().to_string();
    let none = pods
        .logs("web", &since(&now, false))
        .await
        .expect("since now");
    assert!(none.is_empty(), "{none:?}");

    // since_seconds wins over since_time (the API accepts only one).
    let both = pods
        .logs(
            "web",
            &LogOptions {
                since_seconds: Some(60),
                ..since("2023-12-31T23:59:59Z", false)
            },
        )
        .await
        .expect("both");
    assert!(both.is_empty(), "{both:?}");
}

#[tokio::test]
async fn logs_stream_line_by_line_without_following() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-loglines").await;
    let pods = c.pods(&ns.name);
    pods.create(&pod("web", &[], None)).await.expect("create");
    pods.wait_ready("web", Duration::from_secs(60))
        .await
        .expect("ready");
    let collect = |opts: LogOptions| {
        let pods = pods.clone();
        async move {
            let stream = pods.log_lines("web", &opts).await?;
            // Not followed: the stream ends by itself at the end of the log
            // (a followed one stays open and would hit this timeout).
            tokio::time::timeout(Duration::from_secs(20), stream.try_collect::<Vec<String>>())
                .await
                .expect("the stream ends at the end of the log")
        }
    };

    // The same lines `logs` returns, one item per line, no newlines.
    let lines = collect(LogOptions::default()).await.expect("lines");
    let whole = pods
        .logs("web", &LogOptions::default())
        .await
        .expect("logs");
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert_eq!(lines, whole.lines().collect::<Vec<_>>());
    assert_eq!(lines[0], "kubepkg simulated log line 1");
    assert!(lines.iter().all(|l| !l.contains('\n')));

    // The options apply as for `logs`.
    let tail = collect(LogOptions {
        tail_lines: Some(3),
        ..LogOptions::container("app")
    })
    .await
    .expect("tail");
    assert_eq!(
        tail,
        [
            "kubepkg simulated log line 8",
            "kubepkg simulated log line 9",
            "kubepkg simulated log line 10"
        ]
    );
    let stamped = collect(LogOptions {
        timestamps: true,
        tail_lines: Some(1),
        ..Default::default()
    })
    .await
    .expect("timestamps");
    assert_eq!(stamped.len(), 1, "{stamped:?}");
    assert!(stamped[0].starts_with("2024-01-01T00:00:10"), "{stamped:?}");
    // A byte limit can cut the last line short: it is delivered anyway.
    let limited = collect(LogOptions {
        limit_bytes: Some(40),
        ..Default::default()
    })
    .await
    .expect("limit");
    assert_eq!(
        limited,
        ["kubepkg simulated log line 1", "kubepkg sim"],
        "40 bytes = line 1 (28) + its newline + 11 bytes"
    );

    // A line longer than the cap comes in pieces of at most that size.
    let capped = collect(LogOptions {
        tail_lines: Some(1),
        max_line_bytes: Some(10),
        ..Default::default()
    })
    .await
    .expect("capped");
    assert_eq!(capped, ["kubepkg si", "mulated lo", "g line 10"]);
    let follow = pods
        .log_stream(
            "web",
            &LogOptions {
                max_line_bytes: Some(16),
                ..Default::default()
            },
        )
        .await
        .expect("follow");
    let pieces: Vec<String> =
        tokio::time::timeout(Duration::from_secs(20), follow.take(4).try_collect())
            .await
            .expect("4 pieces in time")
            .expect("pieces");
    assert_eq!(
        pieces,
        [
            "kubepkg simulate",
            "d log line 1",
            "kubepkg simulate",
            "d log line 2"
        ]
    );

    // Failures come from the call, before any line: typed as for `logs`.
    let err = collect(LogOptions {
        limit_bytes: Some(-5),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let err = collect(LogOptions::container("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let err = match pods.log_lines("ghost", &LogOptions::default()).await {
        Ok(_) => panic!("logs of a missing pod"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
