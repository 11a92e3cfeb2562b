//! Events of an object or a namespace, newest first, from `core/v1` or
//! `events.k8s.io/v1`, normalised into [`EventRecord`].
//!
//! Ordering uses the last timestamp, else the first, else `eventTime`
//! (events written through `events.k8s.io/v1` leave the legacy timestamps
//! empty), else the creation time.

use crate::resource::{ListOptions, check_name};
use crate::{Client, Error, Result};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt as _};
use kubepkg_util::selector::FieldSelector;

/// Which events API to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventApi {
    /// `core/v1` Events (what `kubectl get events` shows).
    #[default]
    CoreV1,
    /// `events.k8s.io/v1` Events.
    EventsV1,
}

/// One event, whichever API it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Namespace of the event.
    pub namespace: String,
    /// Name of the Event object.
    pub name: String,
    /// `Normal` or `Warning`.
    pub type_: String,
    /// Short reason, e.g. `Scheduled`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Kind of the object the event is about.
    pub object_kind: String,
    /// Name of the object the event is about.
    pub object_name: String,
    /// UID of the object the event is about.
    pub object_uid: String,
    /// The component that reported it.
    pub source: String,
    /// How many times it happened.
    pub count: i32,
    /// `firstTimestamp` (`core/v1`) / `deprecatedFirstTimestamp`.
    pub first_timestamp: Option<Timestamp>,
    /// `lastTimestamp` (`core/v1`) / `deprecatedLastTimestamp`.
    pub last_timestamp: Option<Timestamp>,
    /// `eventTime`, microsecond precision.
    pub event_time: Option<Timestamp>,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// The API it was read from.
    pub api: EventApi,
}

impl EventRecord {
    /// When it happened: last, else first timestamp, else `eventTime`,
    /// else creation.
    pub fn when(&self) -> Option<Timestamp> {
        self.last_timestamp
            .or(self.first_timestamp)
            .or(self.event_time)
            .or(self.created)
    }

    /// Normalises a `core/v1` Event.
    pub fn from_core(e: &CoreEvent) -> Self {
        let src = e
            .reporting_component
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
            .unwrap_or_default();
        EventRecord {
            namespace: e.namespace().unwrap_or_default(),
            name: e.name_any(),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            object_kind: e.involved_object.kind.clone().unwrap_or_default(),
            object_name: e.involved_object.name.clone().unwrap_or_default(),
            object_uid: e.involved_object.uid.clone().unwrap_or_default(),
            source: src,
            count: e.count.unwrap_or(1),
            first_timestamp: e.first_timestamp.as_ref().map(|t| t.0),
            last_timestamp: e.last_timestamp.as_ref().map(|t| t.0),
            event_time: e.event_time.as_ref().map(|t| t.0),
            created: e.metadata.creation_timestamp.as_ref().map(|t| t.0),
            api: EventApi::CoreV1,
        }
    }

    /// Normalises an `events.k8s.io/v1` Event.
    pub fn from_events_v1(e: &EventsV1Event) -> Self {
        let regarding = e.regarding.clone().unwrap_or_default();
        EventRecord {
            namespace: e.namespace().unwrap_or_default(),
            name: e.name_any(),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.note.clone().unwrap_or_default(),
            object_kind: regarding.kind.unwrap_or_default(),
            object_name: regarding.name.unwrap_or_default(),
            object_uid: regarding.uid.unwrap_or_default(),
            source: e.reporting_controller.clone().unwrap_or_default(),
            count: e
                .series
                .as_ref()
                .map(|s| s.count)
                .or(e.deprecated_count)
                .unwrap_or(1),
            first_timestamp: e.deprecated_first_timestamp.as_ref().map(|t| t.0),
            last_timestamp: e
                .series
                .as_ref()
                .map(|s| s.last_observed_time.0)
                .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0)),
            event_time: e.event_time.as_ref().map(|t| t.0),
            created: e.metadata.creation_timestamp.as_ref().map(|t| t.0),
            api: EventApi::EventsV1,
        }
    }
}

/// Sorts newest first (events without any time last).
pub fn sort_newest_first(events: &mut [EventRecord]) {
    events.sort_by(|a, b| b.when().cmp(&a.when()).then_with(|| a.name.cmp(&b.name)));
}

/// The object an event query is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRef {
    /// Namespace (empty for cluster-scoped objects; their events live in `default`).
    pub namespace: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// UID, when known (narrows to this incarnation of the name).
    pub uid: Option<String>,
}

impl ObjectRef {
    /// The reference of a typed object.
    pub fn of<K: Resource>(obj: &K) -> Self
    where
        K::DynamicType: Default,
    {
        ObjectRef {
            namespace: obj.namespace().unwrap_or_default(),
            kind: K::kind(&Default::default()).into_owned(),
            name: obj.name_any(),
            uid: obj.uid(),
        }
    }
}

impl Client {
    /// Events of one namespace, newest first.
    pub async fn namespace_events(
        &self,
        namespace: &str,
        api: EventApi,
    ) -> Result<Vec<EventRecord>> {
        self.events_matching(Some(namespace), None, api).await
    }

    /// Events about one object, newest first.
    ///
    /// The reference is checked before anything is sent ([`Error::Invalid`]
    /// otherwise): the name must be an object name and the kind a kind
    /// (ASCII letters and digits, e.g. `Pod`); the namespace, when set, a
    /// DNS-1123 label. Values are escaped into the field selector, so they
    /// can only ever match, never add requirements.
    pub async fn events_for(&self, obj: &ObjectRef, api: EventApi) -> Result<Vec<EventRecord>> {
        let ns = if obj.namespace.is_empty() {
            "default"
        } else {
            &obj.namespace
        };
        let prefix = match api {
            EventApi::CoreV1 => "involvedObject",
            EventApi::EventsV1 => "regarding",
        };
        self.events_matching(Some(ns), Some(object_selector(prefix, obj)?), api)
            .await
    }

    async fn events_matching(
        &self,
        namespace: Option<&str>,
        fields: Option<String>,
        api: EventApi,
    ) -> Result<Vec<EventRecord>> {
        let opts = ListOptions {
            field_selector: fields,
            ..Default::default()
        };
        let mut out: Vec<EventRecord> = match api {
            EventApi::CoreV1 => {
                let r = match namespace {
                    Some(ns) => self.namespaced::<CoreEvent>(ns),
                    None => self.all::<CoreEvent>(),
                };
                r.list(&opts)
                    .await?
                    .iter()
                    .map(EventRecord::from_core)
                    .collect()
            }
            EventApi::EventsV1 => {
                let r = match namespace {
                    Some(ns) => self.namespaced::<EventsV1Event>(ns),
                    None => self.all::<EventsV1Event>(),
                };
                r.list(&opts)
                    .await?
                    .iter()
                    .map(EventRecord::from_events_v1)
                    .collect()
            }
        };
        sort_newest_first(&mut out);
        Ok(out)
    }
}

/// The field selector of the events about `obj`, `prefix` naming the
/// reference field (`involvedObject` or `regarding`).
fn object_selector(prefix: &str, obj: &ObjectRef) -> Result<String> {
    check_name(&obj.name).map_err(|e| Error::invalid(format!("event query: object name: {e}")))?;
    if obj.kind.is_empty() || !obj.kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid(format!(
            "event query: {:?} is not a kind (ASCII letters and digits, e.g. Pod)",
            obj.kind
        )));
    }
    let mut sel = FieldSelector::new()
        .eq(format!("{prefix}.name"), &obj.name)
        .eq(format!("{prefix}.kind"), &obj.kind);
    if let Some(uid) = obj.uid.as_deref().filter(|u| !u.is_empty()) {
        sel = sel.eq(format!("{prefix}.uid"), uid);
    }
    Ok(sel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, uid: Option<&str>) -> ObjectRef {
        ObjectRef {
            namespace: "ns".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.map(str::to_string),
        }
    }

    #[test]
    fn selectors_escape_values_so_they_cannot_add_requirements() {
        assert_eq!(
            object_selector("involvedObject", &obj("Pod", "web-1", Some("u-1"))).unwrap(),
            "involvedObject.name=web-1,involvedObject.kind=Pod,involvedObject.uid=u-1"
        );
        let sel = object_selector(
            "regarding",
            &obj("Pod", "x,regarding.kind=Secret", Some("a=b")),
        )
        .unwrap();
        assert_eq!(
            sel,
            r"regarding.name=x\,regarding.kind\=Secret,regarding.kind=Pod,regarding.uid=a\=b"
        );
        // Split the way the API server does: on unescaped commas only.
        let mut parts = 0;
        let mut prev = ' ';
        for c in sel.chars() {
            if c == ',' && prev != '\\' {
                parts += 1;
            }
            prev = c;
        }
        assert_eq!(parts + 1, 3, "three requirements, no injected one");
        // An empty uid adds nothing.
        assert!(
            !object_selector("x", &obj("Pod", "p", Some("")))
                .unwrap()
                .contains("uid")
        );
    }

    #[test]
    fn bad_references_are_invalid() {
        for (kind, name) in [
            ("Pod", ""),
            ("Pod", "a/b"),
            ("Pod", "a?b"),
            ("", "p"),
            ("Pod,x=y", "p"),
            ("Pod=", "p"),
            ("P od", "p"),
        ] {
            let err = object_selector("involvedObject", &obj(kind, name, None)).unwrap_err();
            assert_eq!(
                err.kind(),
                kubepkg_util::ErrorKind::Invalid,
                "{kind:?} {name:?}"
            );
        }
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn falls_back_to_event_time_and_sorts_newest_first() {
        let mut a = CoreEvent::default();
        a.metadata.name = Some("a".into());
        a.last_timestamp = Some(Time(ts("2024-01-01T00:00:00Z")));
        let mut b = CoreEvent::default();
        b.metadata.name = Some("b".into());
        // No first/last timestamps: eventTime decides.
        b.event_time = Some(MicroTime(ts("2024-06-01T00:00:00Z")));
        let mut c = CoreEvent::default();
        c.metadata.name = Some("c".into());
        c.first_timestamp = Some(Time(ts("2023-01-01T00:00:00Z")));
        let d = CoreEvent::default();
        let mut v: Vec<EventRecord> = [a, b, c, d].iter().map(EventRecord::from_core).collect();
        sort_newest_first(&mut v);
        let names: Vec<&str> = v.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", ""]);
        assert_eq!(v[0].when(), Some(ts("2024-06-01T00:00:00Z")));
    }

    #[test]
    fn events_v1_use_note_and_series() {
        let mut e = EventsV1Event {
            event_time: Some(MicroTime(ts("2024-02-02T00:00:00Z"))),
            note: Some("pulled".into()),
            reason: Some("Pulled".into()),
            ..Default::default()
        };
        e.metadata.name = Some("x".into());
        let r = EventRecord::from_events_v1(&e);
        assert_eq!(r.message, "pulled");
        assert_eq!(r.when(), Some(ts("2024-02-02T00:00:00Z")));
        assert_eq!(r.api, EventApi::EventsV1);
    }
}
