//! Events: newest first, eventTime fallback, both APIs.

use crate::common::{TestNs, admin};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event as EventsV1;
use kubepkg_k8s_api::events::{EventApi, ObjectRef};

#[tokio::test]
async fn events_newest_first_with_event_time_fallback_on_both_apis() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-ev").await;
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("target".into());
    let cm = c.config_maps(&ns.name).create(&cm).await.expect("cm");
    let uid = cm.metadata.uid.clone().unwrap_or_default();
    let involved = serde_json::json!({"kind": "ConfigMap", "name": "target", "namespace": ns.name,
                                      "uid": uid, "apiVersion": "v1"});
    // An old core/v1 event with legacy timestamps.
    let old: CoreEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "old", "namespace": ns.name},
        "involvedObject": involved, "reason": "Old", "message": "old one", "type": "Normal",
        "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": "2020-01-01T00:00:00Z", "count": 1,
        "source": {"component": "kubepkg-test"}
    }))
    .expect("event");
    c.namespaced::<CoreEvent>(&ns.name)
        .create(&old)
        .await
        .expect("old event");
    // A newer events.k8s.io/v1 event with only eventTime (legacy timestamps empty).
    let newer: EventsV1 = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "newer", "namespace": ns.name},
        "regarding": involved, "reason": "Newer", "note": "new one", "type": "Warning",
        "eventTime": "2030-01-01T00:00:00.000000Z", "action": "Test",
        "reportingController": "kubepkg.io/test", "reportingInstance": "t1"
    }))
    .expect("events v1");
    c.namespaced::<EventsV1>(&ns.name)
        .create(&newer)
        .await
        .expect("new event");
    // A middle one.
    let mid: CoreEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "mid", "namespace": ns.name},
        "involvedObject": involved, "reason": "Mid", "message": "mid", "type": "Normal",
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:00:00Z", "count": 2,
        "source": {"component": "kubepkg-test"}
    }))
    .expect("event");
    c.namespaced::<CoreEvent>(&ns.name)
        .create(&mid)
        .await
        .expect("mid event");

    let target = ObjectRef::of(&cm);
    for api in [EventApi::CoreV1, EventApi::EventsV1] {
        let evs = c.events_for(&target, api).await.expect("events");
        let reasons: Vec<&str> = evs.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["Newer", "Mid", "Old"], "{api:?}: {evs:?}");
        assert!(evs.iter().all(|e| e.api == api));
        assert_eq!(evs[0].message, "new one");
        assert_eq!(evs[1].count, 2);
    }
    let ns_events = c
        .namespace_events(&ns.name, EventApi::CoreV1)
        .await
        .expect("ns events");
    assert!(ns_events.len() >= 3);
    let times: Vec<_> = ns_events.iter().map(|e| e.when()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    // Another object has none.
    let none = c
        .events_for(
            &ObjectRef {
                kind: "ConfigMap".into(),
                name: "other".into(),
                namespace: ns.name.clone(),
                uid: None,
            },
            EventApi::CoreV1,
        )
        .await
        .expect("events");
    assert!(none.is_empty());
}

#[tokio::test]
async fn namespace_events_through_events_v1_newest_first() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-nsev").await;
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("subject".into());
    let cm = c.config_maps(&ns.name).create(&cm).await.expect("cm");
    let regarding = serde_json::json!({"kind": "ConfigMap", "name": "subject", "namespace": ns.name,
                                       "uid": cm.metadata.uid, "apiVersion": "v1"});
    let v1 = c.namespaced::<EventsV1>(&ns.name);
    let make = |name: &str, event_time: &str, extra: serde_json::Value| -> EventsV1 {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "namespace": ns.name},
            "regarding": regarding, "reason": name, "note": format!("note of {name}"),
            "type": "Normal", "eventTime": event_time, "action": "Test",
            "reportingController": "kubepkg.io/test", "reportingInstance": "t1"
        });
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        serde_json::from_value(v).expect("events v1")
    };
    // Created out of order; only eventTime set.
    v1.create(&make(
        "e2021",
        "2021-01-01T00:00:00.000000Z",
        serde_json::json!({}),
    ))
    .await
    .expect("e2021");
    v1.create(&make(
        "e2031",
        "2031-01-01T00:00:00.000000Z",
        serde_json::json!({}),
    ))
    .await
    .expect("e2031");
    // A series: first seen in 2020, last observed in 2032 — the last
    // observation decides.
    v1.create(&make(
        "series",
        "2020-01-01T00:00:00.000000Z",
        serde_json::json!({"series": {"count": 4, "lastObservedTime": "2032-01-01T00:00:00.000000Z"}}),
    ))
    .await
    .expect("series");
    // A core/v1 event with legacy timestamps only, read back through
    // events.k8s.io/v1 (deprecatedLastTimestamp).
    let legacy: CoreEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "legacy", "namespace": ns.name},
        "involvedObject": regarding, "reason": "Legacy", "message": "legacy one", "type": "Warning",
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z", "count": 3,
        "source": {"component": "kubepkg-test"}
    }))
    .expect("core event");
    c.namespaced::<CoreEvent>(&ns.name)
        .create(&legacy)
        .await
        .expect("legacy");

    let evs = c
        .namespace_events(&ns.name, EventApi::EventsV1)
        .await
        .expect("namespace events");
    assert!(evs.iter().all(|e| e.api == EventApi::EventsV1));
    assert!(evs.iter().all(|e| e.namespace == ns.name));
    let ours: Vec<&str> = evs
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| ["e2021", "e2031", "series", "legacy"].contains(n))
        .collect();
    assert_eq!(ours, ["series", "e2031", "legacy", "e2021"], "{evs:#?}");
    let times: Vec<_> = evs.iter().map(|e| e.when()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    let series = evs.iter().find(|e| e.name == "series").expect("series");
    assert_eq!(series.count, 4);
    assert_eq!(series.message, "note of series");
    assert_eq!(series.object_name, "subject");
    let legacy = evs.iter().find(|e| e.name == "legacy").expect("legacy");
    assert_eq!(legacy.message, "legacy one");
    assert_eq!(legacy.type_, "Warning");
    assert_eq!(
        legacy.last_timestamp,
        Some("2026-01-01T00:00:00Z".parse().expect("time"))
    );
    // Another namespace's events are not included.
    let other = TestNs::new(&c, "kp-nsev-other").await;
    let none = c
        .namespace_events(&other.name, EventApi::EventsV1)
        .await
        .expect("other namespace");
    assert!(none.iter().all(|e| e.namespace == other.name), "{none:?}");
    assert!(!none.iter().any(|e| e.name == "series"));
}
