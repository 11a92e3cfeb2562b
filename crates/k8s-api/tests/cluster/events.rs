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
