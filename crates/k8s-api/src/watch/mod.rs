//! A typed watch that survives dropped connections.
//!
//! [`Resources::watch`] lists first (optionally emitting the existing
//! objects as `Added`), then watches from the list's resourceVersion. When
//! the connection drops (API server restart, network, server-side timeout)
//! it resumes from the last resourceVersion it delivered; when the server
//! answers `410 Gone` (that version is compacted away) it re-lists and emits
//! the difference against what the caller has already seen — additions,
//! modifications and deletions — so the caller's view converges without a
//! lost or duplicated event. Bookmarks keep the resume point fresh.
//!
//! ## Identity
//!
//! Objects are tracked by `metadata.uid` (by `namespace/name` only for an
//! object without one). An object deleted and re-created under the same
//! name while the watch was re-listing is therefore reported as `Deleted`
//! (the old object) followed by `Added` (the new one), not as `Modified`.
//! A re-list's diff delivers its deletions first, then additions and
//! modifications, so a caller keeping its own map by name ends up holding
//! the new object.
//!
//! ## Starting from a resourceVersion
//!
//! With [`WatchOptions::resource_version`] the watch does not list first:
//! it knows nothing of what the caller holds. If the server answers
//! `410 Gone` (that version was compacted away — etcd keeps only a few
//! minutes of history), the watch re-lists and can only diff against the
//! objects *it* delivered since: every other object that exists is
//! re-emitted as `Added` — also ones the caller already has, so treat an
//! `Added` of a known object as a replacement — and an object deleted
//! between the caller's resourceVersion and the re-list that the watch
//! never delivered is **not** reported (there is nothing to report it
//! from). A caller that must see such deletions should reconcile its state
//! with a fresh list, or start the watch without a resourceVersion (it
//! then lists first and every later re-list is a complete diff).
//!
//! ## Reconnecting
//!
//! A watch request ends normally after [`WatchOptions::server_timeout_secs`]
//! and is re-issued at once. One that ends *early* — before it delivered
//! any progress (an event or a bookmark moving the resourceVersion
//! forward) and before it stayed open for a healthy period (5 s, or half
//! the server timeout when that is shorter) — counts as a failure, like a
//! dropped connection: the next attempt waits an exponential backoff with
//! full jitter (up to 100 ms, 200 ms, 400 ms… capped at 5 s), so a proxy or
//! load balancer that closes every watch right away does not turn the
//! watch into a hot loop of requests. The same holds for a server that
//! answers `410 Gone` again right after a re-list. The backoff resets once
//! a stream makes progress or stays open for the healthy period. Early
//! ends count toward [`WatchOptions::give_up_after`] like other outages.
//!
//! ## Duplicate filter
//!
//! After a reconnect the server may replay events the caller already got.
//! Events at or before the last delivered resourceVersion are dropped,
//! comparing resourceVersions as integers (etcd's are). The API treats
//! them as opaque strings, though: when either side of the comparison is
//! not an integer (a server not backed by etcd, an aggregated API), that
//! comparison is skipped — the filter is off for that event, never wrong —
//! and only the per-object check remains (an event whose object has the
//! resourceVersion already delivered for it is dropped).

//!
//! ## Lists bracketed by markers, and a shared store
//!
//! [`Resources::watch_updates`] is the same resilient watch in the
//! vocabulary of kube's `watcher`: every list (the first one and every
//! re-list after `410 Gone`) arrives as [`Update::Init`], one
//! [`Update::InitApply`] per listed object, then [`Update::InitDone`];
//! live changes as [`Update::Apply`] and [`Update::Delete`]. An object
//! applied before a list but absent from it is gone, so a consumer that
//! swaps its state at `InitDone` never misses a deletion. With the
//! `runtime` feature, [`Resources::reflect`] feeds these updates into a
//! shared kube reflector [`Store`](crate::runtime::reflector::Store), and
//! `From<Update<K>>` turns them into kube's `watcher::Event`.

mod update;

use update::Out;
pub use update::Update;

use crate::resource::{ListOptions, Resources};
use crate::{Error, Result};
use futures::stream::{BoxStream, StreamExt as _};
use kube::api::{WatchEvent, WatchParams};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::time::Duration;
use tokio::time::Instant;

/// The first backoff ceiling of a watch that keeps failing.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The largest backoff ceiling.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A watch stream open this long was healthy, events or not (see the
/// module docs; shorter when the server timeout is).
const HEALTHY_STREAM: Duration = Duration::from_secs(5);

fn new_backoff() -> kubepkg_util::retry::Backoff {
    kubepkg_util::retry::RetryPolicy::default()
        .initial_delay(BACKOFF_FIRST)
        .max_delay(BACKOFF_CAP)
        .unlimited_attempts()
        .backoff()
}

/// One change delivered by [`Resources::watch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// The object appeared (or existed when the watch started).
    Added(K),
    /// The object changed.
    Modified(K),
    /// The object is gone (the last state seen).
    Deleted(K),
}

impl<K> Event<K> {
    /// The object of the event.
    pub fn object(&self) -> &K {
        match self {
            Event::Added(o) | Event::Modified(o) | Event::Deleted(o) => o,
        }
    }

    /// The object, by value.
    pub fn into_object(self) -> K {
        match self {
            Event::Added(o) | Event::Modified(o) | Event::Deleted(o) => o,
        }
    }
}

/// Options of [`Resources::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Emit the objects that exist when the watch starts as `Added`
    /// (default true). Ignored when `resource_version` is set.
    pub initial: bool,
    /// Start after this resourceVersion instead of listing first.
    ///
    /// If it has expired (or expires during an outage), the server answers
    /// `410 Gone` and the watch re-lists: objects the watch has not
    /// delivered itself are (re-)emitted as `Added` whatever
    /// [`Self::initial`] says, and deletions between this version and the
    /// re-list of objects the watch never delivered cannot be reported.
    /// See the [module docs](crate::watch#starting-from-a-resourceversion).
    pub resource_version: Option<String>,
    /// Server-side timeout of one watch request, after which it is
    /// transparently re-issued (default 290 s).
    pub server_timeout_secs: u32,
    /// End the stream with an Unavailable error when the server has been
    /// unreachable this long (default: keep trying).
    pub give_up_after: Option<Duration>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            label_selector: None,
            field_selector: None,
            initial: true,
            resource_version: None,
            server_timeout_secs: 290,
            give_up_after: None,
        }
    }
}

impl WatchOptions {
    /// Watch objects matching a label selector.
    pub fn labels(selector: impl Into<String>) -> Self {
        WatchOptions {
            label_selector: Some(selector.into()),
            ..Default::default()
        }
    }

    /// Do not emit the objects that already exist.
    pub fn changes_only(mut self) -> Self {
        self.initial = false;
        self
    }
}

/// `namespace/name`: how events are ordered, and the identity of an
/// object without a uid.
fn name_of<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

/// The identity of an object across the watch: its uid, so that a
/// re-created object (same name, new uid) is another object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Uid(String),
    Name(String),
}

fn key_of<K: Resource>(o: &K) -> Key {
    match o.meta().uid.as_deref() {
        Some(uid) if !uid.is_empty() => Key::Uid(uid.to_string()),
        _ => Key::Name(name_of(o)),
    }
}

/// A resourceVersion as an integer, when it is one (see the module docs:
/// `None` switches the numeric duplicate filter off for that comparison).
fn rv_num(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

struct Watcher<K> {
    res: Resources<K>,
    opts: WatchOptions,
    /// Last state delivered per object, for de-duplication and re-list diffs.
    known: HashMap<Key, K>,
    last_rv: Option<String>,
    stream: Option<BoxStream<'static, kube::Result<WatchEvent<K>>>>,
    pending: VecDeque<Out<K>>,
    /// Every list is delivered whole between `Init` and `InitDone`
    /// ([`Resources::watch_updates`]) instead of as a diff.
    marked: bool,
    need_list: bool,
    first_list: bool,
    done: bool,
    down_since: Option<Instant>,
    attempt: u32,
    /// The jittered waits of the current run of failures.
    backoff: kubepkg_util::retry::Backoff,
    /// When the current watch stream was opened.
    stream_opened: Option<Instant>,
    /// Whether the current watch stream moved the resourceVersion forward.
    stream_progressed: bool,
    /// Whether anything moved the resourceVersion forward since the last
    /// re-list (`true` before the first one).
    progressed_since_list: bool,
}

impl<K> Watcher<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// The next wait of the current run of failures (full jitter).
    fn backoff(&mut self) -> Duration {
        self.backoff.next().unwrap_or(BACKOFF_CAP)
    }

    /// How long a stream must stay open to count as healthy without events.
    fn healthy_after(&self) -> Duration {
        let half_timeout =
            Duration::from_millis(u64::from(self.opts.server_timeout_secs.clamp(1, 3600)) * 500);
        HEALTHY_STREAM.min(half_timeout)
    }

    /// A transient failure: wait, or give up when down too long.
    async fn transient(&mut self, e: Error) -> Option<Error> {
        let since = *self.down_since.get_or_insert_with(Instant::now);
        if let Some(limit) = self.opts.give_up_after
            && since.elapsed() >= limit
        {
            self.done = true;
            return Some(Error::Unavailable(format!(
                "watch of {} gave up after {limit:?} without the server: {e}",
                self.res.target(None)
            )));
        }
        let wait = self.backoff();
        tracing::debug!(error = %e, attempt = self.attempt, ?wait, "watch interrupted; resuming");
        tokio::time::sleep(wait).await;
        self.attempt = self.attempt.saturating_add(1);
        None
    }

    /// Errors that retrying cannot fix (Forbidden, NotFound, an event that
    /// does not decode…) end the stream; transport trouble and a status the
    /// shared table calls retryable (a 500 mid-watch, say) do not.
    fn fatal(&mut self, e: &Error) -> bool {
        !e.is_retryable() && !e.is_gone()
    }

    fn healthy(&mut self) {
        self.down_since = None;
        self.attempt = 0;
        self.backoff = new_backoff();
    }

    /// The resourceVersion moved forward: the server is delivering.
    fn progressed(&mut self) {
        self.stream_progressed = true;
        self.progressed_since_list = true;
        self.healthy();
    }

    async fn relist(&mut self) -> Result<()> {
        let opts = ListOptions {
            label_selector: self.opts.label_selector.clone(),
            field_selector: self.opts.field_selector.clone(),
            page_size: Some(500),
        };
        let mut items: Vec<K> = Vec::new();
        let mut token = None;
        let mut list_rv = None;
        loop {
            let page = self.res.list_page(&opts, token).await?;
            if list_rv.is_none() {
                list_rv = page.resource_version.clone();
            }
            items.extend(page.items);
            match page.continue_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        self.listed(items, list_rv);
        Ok(())
    }

    /// Takes a complete list in: queues what the caller has to be told and
    /// makes it the known state. No I/O, so the diff is testable.
    fn listed(&mut self, items: Vec<K>, list_rv: Option<String>) {
        let mut fresh: HashMap<Key, K> = HashMap::with_capacity(items.len());
        for o in items {
            fresh.insert(key_of(&o), o);
        }
        // Deterministic order: by namespace/name, then uid.
        let order = |o: &K| (name_of(o), key_of(o));
        if self.marked {
            let mut v: Vec<&K> = fresh.values().collect();
            v.sort_by_cached_key(|o| order(o));
            self.pending.push_back(Out::Init);
            self.pending
                .extend(v.into_iter().cloned().map(Out::InitApply));
            self.pending.push_back(Out::InitDone);
        } else if self.first_list && self.opts.resource_version.is_none() {
            if self.opts.initial {
                let mut v: Vec<&K> = fresh.values().collect();
                v.sort_by_cached_key(|o| order(o));
                self.pending
                    .extend(v.into_iter().cloned().map(|o| Out::Event(Event::Added(o))));
            }
        } else {
            // Diff against what the caller has been told (after a watch
            // from a caller's resourceVersion, only what this watch told
            // it: the rest comes out as Added). Deletions first, so that a
            // re-created object's Deleted (old uid) precedes its Added.
            let mut gone: Vec<&K> = self
                .known
                .iter()
                .filter(|(k, _)| !fresh.contains_key(*k))
                .map(|(_, o)| o)
                .collect();
            gone.sort_by_cached_key(|o| order(o));
            self.pending.extend(
                gone.into_iter()
                    .cloned()
                    .map(|o| Out::Event(Event::Deleted(o))),
            );
            let mut present: Vec<(&Key, &K)> = fresh.iter().collect();
            present.sort_by_cached_key(|(_, o)| order(o));
            for (k, new) in present {
                match self.known.get(k) {
                    None => self
                        .pending
                        .push_back(Out::Event(Event::Added(new.clone()))),
                    Some(old) if old.resource_version() != new.resource_version() => self
                        .pending
                        .push_back(Out::Event(Event::Modified(new.clone()))),
                    Some(_) => {}
                }
            }
        }
        self.known = fresh;
        self.first_list = false;
        self.last_rv = list_rv;
    }

    async fn start_watch(&mut self) -> Result<()> {
        let wp = WatchParams {
            label_selector: self.opts.label_selector.clone(),
            field_selector: self.opts.field_selector.clone(),
            timeout: Some(self.opts.server_timeout_secs.clamp(1, 3600)),
            bookmarks: true,
            ..Default::default()
        };
        let rv = self.last_rv.clone().unwrap_or_else(|| "0".into());
        let target = self.res.target(None);
        let s = self
            .res
            .client
            .run("watch", &target, self.res.api.watch(&wp, &rv))
            .await?;
        self.stream = Some(s.boxed());
        Ok(())
    }

    /// Applies one server event; returns the event to deliver, if any.
    fn accept(&mut self, ev: WatchEvent<K>) -> Option<Event<K>> {
        let (obj, kind) = match ev {
            WatchEvent::Added(o) => (o, 0),
            WatchEvent::Modified(o) => (o, 1),
            WatchEvent::Deleted(o) => (o, 2),
            WatchEvent::Bookmark(b) => {
                self.last_rv = Some(b.metadata.resource_version);
                return None;
            }
            WatchEvent::Error(_) => return None,
        };
        let rv = obj.resource_version();
        // Never go back: an event at or before the resume point was delivered.
        if let (Some(new), Some(last)) = (
            rv.as_deref().and_then(rv_num),
            self.last_rv.as_deref().and_then(rv_num),
        ) && new <= last
        {
            return None;
        }
        if let Some(r) = &rv {
            self.last_rv = Some(r.clone());
        }
        let k = key_of(&obj);
        match kind {
            2 => {
                self.known.remove(&k);
                Some(Event::Deleted(obj))
            }
            _ => {
                let prev = self.known.insert(k, obj.clone());
                match prev {
                    Some(p) if p.resource_version() == rv => None,
                    Some(_) => Some(Event::Modified(obj)),
                    None if kind == 0 => Some(Event::Added(obj)),
                    None => Some(Event::Modified(obj)),
                }
            }
        }
    }

    /// `410 Gone`: re-list — after a backoff when nothing progressed
    /// since the last re-list (a server answering Gone to every watch).
    async fn gone_again(&mut self, e: Error) -> Option<Error> {
        tracing::debug!("resourceVersion expired; re-listing");
        self.need_list = true;
        if self.progressed_since_list {
            return None;
        }
        self.transient(e).await
    }

    async fn next_event(&mut self) -> Option<Result<Out<K>>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            if self.need_list {
                match self.relist().await {
                    Ok(()) => {
                        // Reachable, but not yet delivering: the backoff
                        // resets only when a watch makes progress.
                        self.need_list = false;
                        self.down_since = None;
                        self.progressed_since_list = false;
                    }
                    Err(e) if self.fatal(&e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Err(e) => {
                        if let Some(err) = self.transient(e).await {
                            return Some(Err(err));
                        }
                    }
                }
                continue;
            }
            let Some(stream) = self.stream.as_mut() else {
                match self.start_watch().await {
                    Ok(()) => {
                        self.stream_opened = Some(Instant::now());
                        self.stream_progressed = false;
                    }
                    Err(e) if e.is_gone() => {
                        if let Some(err) = self.gone_again(e).await {
                            return Some(Err(err));
                        }
                    }
                    Err(e) if self.fatal(&e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Err(e) => {
                        if let Some(err) = self.transient(e).await {
                            return Some(Err(err));
                        }
                    }
                }
                continue;
            };
            match stream.next().await {
                None => {
                    // The server-side timeout, or a connection closed
                    // cleanly: resume — at once after a healthy stream,
                    // after a backoff when it ended early (module docs).
                    self.stream = None;
                    let lived = self
                        .stream_opened
                        .take()
                        .map_or(Duration::ZERO, |t| t.elapsed());
                    if self.stream_progressed || lived >= self.healthy_after() {
                        self.healthy();
                    } else if let Some(err) = self
                        .transient(Error::Unavailable(format!(
                            "the watch of {} ended after {lived:?} without any event",
                            self.res.target(None)
                        )))
                        .await
                    {
                        return Some(Err(err));
                    }
                }
                Some(Ok(WatchEvent::Error(status))) => {
                    self.stream = None;
                    let e = Error::Api(crate::error::failure_from_status(&status));
                    if e.is_gone() {
                        if let Some(err) = self.gone_again(e).await {
                            return Some(Err(err));
                        }
                    } else if self.fatal(&e) {
                        self.done = true;
                        return Some(Err(e));
                    } else if let Some(err) = self.transient(e).await {
                        return Some(Err(err));
                    }
                }
                Some(Ok(ev)) => {
                    let before = self.last_rv.clone();
                    let out = self.accept(ev);
                    if self.last_rv != before {
                        self.progressed();
                    }
                    if let Some(out) = out {
                        return Some(Ok(Out::Event(out)));
                    }
                }
                Some(Err(e)) => {
                    self.stream = None;
                    let e = Error::from(e);
                    if e.is_gone() {
                        if let Some(err) = self.gone_again(e).await {
                            return Some(Err(err));
                        }
                    } else if self.fatal(&e) {
                        self.done = true;
                        return Some(Err(e));
                    } else if let Some(err) = self.transient(e).await {
                        return Some(Err(err));
                    }
                }
            }
        }
    }
}

impl<K> Resources<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// A resilient watch; see the module docs. The stream ends only on a
    /// non-transient error (Forbidden, NotFound…), which it yields last, or
    /// when `give_up_after` runs out.
    pub fn watch(&self, opts: WatchOptions) -> BoxStream<'static, Result<Event<K>>> {
        self.watcher(opts, false)
            .filter_map(|out| {
                futures::future::ready(match out {
                    Ok(Out::Event(e)) => Some(Ok(e)),
                    // Markers are queued only in marked mode.
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
            })
            .boxed()
    }

    /// The same resilient watch as [`Self::watch`], with every list
    /// bracketed by `Init` / `InitDone` markers (kube's `watcher`
    /// vocabulary; see the
    /// [module docs](crate::watch#lists-bracketed-by-markers-and-a-shared-store)).
    /// Lists are always delivered, whatever [`WatchOptions::initial`] says;
    /// with [`WatchOptions::resource_version`] the first list comes only
    /// after a `410 Gone`.
    pub fn watch_updates(&self, opts: WatchOptions) -> BoxStream<'static, Result<Update<K>>> {
        self.watcher(opts, true)
            .map(|out| out.map(Update::from))
            .boxed()
    }

    fn watcher(&self, opts: WatchOptions, marked: bool) -> BoxStream<'static, Result<Out<K>>> {
        let start_rv = opts.resource_version.clone();
        let w = Watcher {
            marked,
            res: self.clone(),
            need_list: start_rv.is_none(),
            first_list: true,
            last_rv: start_rv,
            opts,
            known: HashMap::new(),
            stream: None,
            pending: VecDeque::new(),
            done: false,
            down_since: None,
            attempt: 0,
            backoff: new_backoff(),
            stream_opened: None,
            stream_progressed: false,
            progressed_since_list: true,
        };
        futures::stream::unfold(w, |mut w| async move {
            let ev = w.next_event().await?;
            Some((ev, w))
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("ns".into());
        c.metadata.resource_version = Some(rv.into());
        c
    }

    fn watcher() -> Watcher<ConfigMap> {
        // A client that is never contacted by these tests.
        let cfg = kube::Config::new("https://127.0.0.1:1".parse().expect("uri"));
        let kc = kube::Client::try_from(cfg).expect("offline client");
        let client = crate::Client::from_kube("t", kc, "https://127.0.0.1:1");
        Watcher {
            res: client.namespaced("ns"),
            opts: WatchOptions::default(),
            known: HashMap::new(),
            last_rv: Some("10".into()),
            stream: None,
            pending: VecDeque::new(),
            marked: false,
            need_list: false,
            first_list: false,
            done: false,
            down_since: None,
            attempt: 0,
            backoff: new_backoff(),
            stream_opened: None,
            stream_progressed: false,
            progressed_since_list: true,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_with_jitter_and_progress_resets_the_backoff() {
        let mut w = watcher();
        let mut waits = Vec::new();
        for _ in 0..12 {
            let t = Instant::now();
            assert!(w.transient(Error::Unavailable("x".into())).await.is_none());
            waits.push(t.elapsed());
        }
        // Full jitter: each wait within its ceiling, which doubles to 5 s.
        for (i, wait) in waits.iter().enumerate() {
            let ceiling = BACKOFF_FIRST
                .saturating_mul(1 << i.min(10))
                .min(BACKOFF_CAP);
            assert!(*wait <= ceiling, "wait {i}: {wait:?} > {ceiling:?}");
        }
        let total: Duration = waits.iter().sum();
        assert!(total >= Duration::from_secs(5), "{waits:?}");
        // Jitter: not all the same.
        assert!(waits.windows(2).any(|p| p[0] != p[1]), "{waits:?}");
        // Progress resets the run: the next wait is a first one again.
        w.progressed();
        let t = Instant::now();
        w.transient(Error::Unavailable("x".into())).await;
        assert!(t.elapsed() <= BACKOFF_FIRST, "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn the_healthy_period_follows_a_short_server_timeout() {
        let mut w = watcher();
        assert_eq!(w.healthy_after(), HEALTHY_STREAM);
        w.opts.server_timeout_secs = 1;
        assert_eq!(w.healthy_after(), Duration::from_millis(500));
    }

    #[tokio::test]
    async fn duplicates_and_replays_are_dropped() {
        let mut w = watcher();
        assert!(matches!(
            w.accept(WatchEvent::Added(cm("a", "11"))),
            Some(Event::Added(_))
        ));
        // Replayed after a reconnect: same or older version.
        assert!(w.accept(WatchEvent::Added(cm("a", "11"))).is_none());
        assert!(w.accept(WatchEvent::Modified(cm("b", "9"))).is_none());
        assert!(matches!(
            w.accept(WatchEvent::Modified(cm("a", "12"))),
            Some(Event::Modified(_))
        ));
        assert_eq!(w.last_rv.as_deref(), Some("12"));
        assert!(matches!(
            w.accept(WatchEvent::Deleted(cm("a", "13"))),
            Some(Event::Deleted(_))
        ));
        assert!(w.known.is_empty());
    }

    #[tokio::test]
    async fn bookmarks_move_the_resume_point_silently() {
        let mut w = watcher();
        let b: WatchEvent<ConfigMap> = serde_json::from_value(serde_json::json!({
            "type": "BOOKMARK",
            "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "42"}}
        }))
        .unwrap();
        assert!(w.accept(b).is_none());
        assert_eq!(w.last_rv.as_deref(), Some("42"));
    }

    fn with_uid(mut c: ConfigMap, uid: &str) -> ConfigMap {
        c.metadata.uid = Some(uid.into());
        c
    }

    /// What an event says: `added a uid-1 @5`.
    fn describe(e: &Event<ConfigMap>) -> String {
        let (what, o) = match e {
            Event::Added(o) => ("added", o),
            Event::Modified(o) => ("modified", o),
            Event::Deleted(o) => ("deleted", o),
        };
        format!(
            "{what} {} {} @{}",
            o.metadata.name.as_deref().unwrap_or_default(),
            o.metadata.uid.as_deref().unwrap_or("-"),
            o.metadata.resource_version.as_deref().unwrap_or_default(),
        )
    }

    fn drain_pending(w: &mut Watcher<ConfigMap>) -> Vec<String> {
        w.pending
            .drain(..)
            .map(|o| match o {
                Out::Event(e) => describe(&e),
                Out::Init => "init".into(),
                Out::InitApply(o) => describe(&Event::Added(o)).replacen("added", "init-apply", 1),
                Out::InitDone => "init-done".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_relist_reports_a_recreated_object_as_deleted_then_added() {
        let mut w = watcher();
        w.first_list = true;
        w.listed(
            vec![
                with_uid(cm("a", "5"), "uid-a1"),
                with_uid(cm("b", "6"), "uid-b"),
                with_uid(cm("c", "7"), "uid-c"),
            ],
            Some("7".into()),
        );
        assert_eq!(
            drain_pending(&mut w),
            ["added a uid-a1 @5", "added b uid-b @6", "added c uid-c @7"]
        );
        // During an outage: `a` deleted and re-created (new uid), `b`
        // changed, `c` deleted, `d` created. Then 410 Gone and a re-list.
        w.listed(
            vec![
                with_uid(cm("d", "12"), "uid-d"),
                with_uid(cm("a", "11"), "uid-a2"),
                with_uid(cm("b", "10"), "uid-b"),
            ],
            Some("12".into()),
        );
        assert_eq!(
            drain_pending(&mut w),
            [
                "deleted a uid-a1 @5",
                "deleted c uid-c @7",
                "added a uid-a2 @11",
                "modified b uid-b @10",
                "added d uid-d @12",
            ]
        );
        assert_eq!(w.last_rv.as_deref(), Some("12"));
        // The same list again changes nothing.
        w.listed(
            vec![
                with_uid(cm("a", "11"), "uid-a2"),
                with_uid(cm("b", "10"), "uid-b"),
                with_uid(cm("d", "12"), "uid-d"),
            ],
            Some("12".into()),
        );
        assert!(w.pending.is_empty(), "{:?}", w.pending);
    }

    #[tokio::test]
    async fn marked_lists_come_whole_between_init_and_init_done() {
        let mut w = watcher();
        w.marked = true;
        w.first_list = true;
        w.opts = WatchOptions::default().changes_only();
        w.listed(
            vec![
                with_uid(cm("b", "6"), "uid-b"),
                with_uid(cm("a", "5"), "uid-a"),
            ],
            Some("6".into()),
        );
        assert_eq!(
            drain_pending(&mut w),
            [
                "init",
                "init-apply a uid-a @5",
                "init-apply b uid-b @6",
                "init-done"
            ]
        );
        // A re-list is a whole list again, not a diff: `a` is gone by
        // absence, and the unchanged `b` is listed again.
        w.listed(vec![with_uid(cm("b", "6"), "uid-b")], Some("9".into()));
        assert_eq!(
            drain_pending(&mut w),
            ["init", "init-apply b uid-b @6", "init-done"]
        );
        assert_eq!(w.known.len(), 1);
        let u: Update<ConfigMap> = Out::Event(Event::Modified(cm("b", "7"))).into();
        assert!(matches!(u, Update::Apply(_)));
        let u: Update<ConfigMap> = Event::Deleted(cm("b", "8")).into();
        assert!(matches!(&u, Update::Delete(o) if o.metadata.name.as_deref() == Some("b")));
        assert!(Update::<ConfigMap>::InitDone.object().is_none());
    }

    #[tokio::test]
    async fn live_events_track_objects_by_uid() {
        let mut w = watcher();
        let out = w.accept(WatchEvent::Added(with_uid(cm("a", "11"), "uid-1")));
        assert_eq!(
            out.as_ref().map(describe).as_deref(),
            Some("added a uid-1 @11")
        );
        let out = w.accept(WatchEvent::Deleted(with_uid(cm("a", "12"), "uid-1")));
        assert_eq!(
            out.as_ref().map(describe).as_deref(),
            Some("deleted a uid-1 @12")
        );
        // Re-created under the same name: a new object, Added.
        let out = w.accept(WatchEvent::Added(with_uid(cm("a", "13"), "uid-2")));
        assert_eq!(
            out.as_ref().map(describe).as_deref(),
            Some("added a uid-2 @13")
        );
        assert_eq!(w.known.len(), 1);
        assert!(w.known.contains_key(&Key::Uid("uid-2".into())));
        // An object without a uid is tracked by namespace/name.
        assert!(w.accept(WatchEvent::Added(cm("n", "14"))).is_some());
        assert!(w.known.contains_key(&Key::Name("ns/n".into())));
    }

    #[tokio::test]
    async fn after_gone_a_watch_from_a_callers_version_re_emits_what_it_did_not_deliver() {
        // Started from a caller's resourceVersion, with `changes_only`:
        // the watch has no list of its own.
        let mut w = watcher();
        w.first_list = true;
        w.opts = WatchOptions {
            resource_version: Some("10".into()),
            ..WatchOptions::default().changes_only()
        };
        // It delivered `a` and `b` live, then the version expired.
        assert!(
            w.accept(WatchEvent::Added(with_uid(cm("a", "11"), "uid-a")))
                .is_some()
        );
        assert!(
            w.accept(WatchEvent::Added(with_uid(cm("b", "12"), "uid-b")))
                .is_some()
        );
        // The re-list: `a` unchanged, `b` gone, `old` (from before the
        // caller's version) still there, `c` new.
        w.listed(
            vec![
                with_uid(cm("old", "3"), "uid-old"),
                with_uid(cm("a", "11"), "uid-a"),
                with_uid(cm("c", "20"), "uid-c"),
            ],
            Some("20".into()),
        );
        assert_eq!(
            drain_pending(&mut w),
            [
                // What the watch delivered itself is diffed exactly…
                "deleted b uid-b @12",
                // …everything else can only be re-emitted as Added.
                "added c uid-c @20",
                "added old uid-old @3",
            ]
        );
    }

    #[tokio::test]
    async fn non_numeric_resource_versions_switch_only_the_numeric_filter_off() {
        let mut w = watcher();
        w.last_rv = Some("opaque-b".into());
        // Not comparable with the resume point: delivered, not dropped.
        assert!(
            w.accept(WatchEvent::Added(with_uid(cm("a", "opaque-a"), "u")))
                .is_some()
        );
        assert_eq!(w.last_rv.as_deref(), Some("opaque-a"));
        // The per-object check still drops an exact replay…
        assert!(
            w.accept(WatchEvent::Modified(with_uid(cm("a", "opaque-a"), "u")))
                .is_none()
        );
        // …and a change is delivered.
        assert!(matches!(
            w.accept(WatchEvent::Modified(with_uid(cm("a", "opaque-c"), "u"))),
            Some(Event::Modified(_))
        ));
        // A numeric version after an opaque one is not compared either.
        assert!(
            w.accept(WatchEvent::Modified(with_uid(cm("a", "1"), "u")))
                .is_some()
        );
        // Once both are numeric, the filter is back.
        assert!(
            w.accept(WatchEvent::Modified(with_uid(cm("a", "1"), "u")))
                .is_none()
        );
        assert!(
            w.accept(WatchEvent::Added(with_uid(cm("z", "1"), "uz")))
                .is_none()
        );
    }

    #[test]
    fn event_accessors() {
        let e = Event::Modified(cm("a", "1"));
        assert_eq!(e.object().metadata.name.as_deref(), Some("a"));
        assert_eq!(
            e.into_object().metadata.resource_version.as_deref(),
            Some("1")
        );
    }
}
