//! [`Update`]: the items of [`Resources::watch_updates`](crate::Resources::watch_updates),
//! and what the watcher queues.

use super::Event;

/// One item of [`Resources::watch_updates`](crate::Resources::watch_updates): kube's `watcher::Event`
/// vocabulary, where every (re-)list is bracketed by markers (see the
/// [module docs](crate::watch#lists-bracketed-by-markers-and-a-shared-store)).
#[derive(Debug, Clone, PartialEq)]
pub enum Update<K> {
    /// A list starts: the `InitApply` objects that follow, up to
    /// `InitDone`, are the complete state.
    Init,
    /// One object of the list.
    InitApply(K),
    /// The list is complete: objects applied before and not listed since
    /// `Init` are gone.
    InitDone,
    /// An object was added or changed.
    Apply(K),
    /// An object was deleted (its last state).
    Delete(K),
}

impl<K> Update<K> {
    /// The object of the update; `None` for the `Init` / `InitDone` markers.
    pub fn object(&self) -> Option<&K> {
        match self {
            Update::InitApply(o) | Update::Apply(o) | Update::Delete(o) => Some(o),
            Update::Init | Update::InitDone => None,
        }
    }
}

impl<K> From<Event<K>> for Update<K> {
    fn from(e: Event<K>) -> Self {
        match e {
            Event::Added(o) | Event::Modified(o) => Update::Apply(o),
            Event::Deleted(o) => Update::Delete(o),
        }
    }
}

/// What the watcher queues: an event, or (in marked mode) a list marker.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Out<K> {
    Event(Event<K>),
    Init,
    InitApply(K),
    InitDone,
}

impl<K> From<Out<K>> for Update<K> {
    fn from(o: Out<K>) -> Self {
        match o {
            Out::Event(e) => e.into(),
            Out::Init => Update::Init,
            Out::InitApply(k) => Update::InitApply(k),
            Out::InitDone => Update::InitDone,
        }
    }
}
