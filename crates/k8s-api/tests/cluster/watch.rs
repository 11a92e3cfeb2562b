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
