//! Waiting for one object: [`Resources::wait_for`] and
//! [`Resources::wait_deleted`] wait on a watch of that one name (a
//! `metadata.name` field selector), so a change is seen as soon as the API
//! server sends it and an idle wait costs one open request, not a GET every
//! second.
//!
//! Both start from a list of the name (the object's state now), then watch
//! from that list's resourceVersion, and re-list after `410 Gone` like every
//! [`watch`](crate::watch). Credentials that may `get` but not `list` /
//! `watch` the kind (a Forbidden list) fall back to polling with GET, as
//! these calls did before. A server that stays unreachable for more than
//! [`GIVE_UP_AFTER`] ends the wait with Unavailable, as a failed GET did.

use crate::resource::{check_name, deadline_after};
use crate::watch::{Update, WatchOptions};
use crate::{Error, Resources, Result};
use futures::StreamExt as _;
use kube::Resource;
use kubepkg_util::ErrorKind;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// How long the watch of a wait may go without reaching the server before
/// the wait fails with Unavailable (the client's own retries come first).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// What a watched wait ended with.
enum Watched<T> {
    /// The awaited state.
    Done(T),
    /// Listing or watching is forbidden: poll with GET instead.
    Forbidden,
}

impl<K> Resources<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// Waits until `name` no longer exists, up to `timeout`. A timeout too
    /// large to add to the clock (`Duration::MAX`) means no limit. See the
    /// [module docs](crate::wait) for how it waits.
    pub async fn wait_deleted(&self, name: &str, timeout: Duration) -> Result<()> {
        self.check_scope()?;
        check_name(name)?;
        let mut present = false;
        let watched = self
            .wait_watching(name, timeout, |update| match update {
                Update::Init => {
                    present = false;
                    None
                }
                Update::InitApply(_) => {
                    present = true;
                    None
                }
                Update::InitDone => (!present).then_some(()),
                Update::Apply(_) => {
                    present = true;
                    None
                }
                Update::Delete(_) => Some(()),
            })
            .await;
        match watched {
            Ok(Watched::Done(())) => Ok(()),
            Ok(Watched::Forbidden) => self.poll_deleted(name, timeout).await,
            Err(e) if e.kind() == ErrorKind::Timeout => Err(Error::Timeout(format!(
                "{} still exists after {timeout:?}",
                self.target(Some(name))
            ))),
            Err(e) => Err(e),
        }
    }

    /// Waits until `done` returns `Some` for object `name` (called with
    /// the object as it is now, then after every change), up to `timeout`.
    /// A timeout too large to add to the clock (`Duration::MAX`) means no
    /// limit. An object that does not exist yet is waited for. See the
    /// [module docs](crate::wait) for how it waits.
    pub async fn wait_for<T>(
        &self,
        name: &str,
        timeout: Duration,
        mut done: impl FnMut(&K) -> Option<T>,
    ) -> Result<T> {
        self.check_scope()?;
        check_name(name)?;
        let watched = self
            .wait_watching(name, timeout, |update| match update {
                Update::InitApply(o) | Update::Apply(o) => done(o),
                Update::Init | Update::InitDone | Update::Delete(_) => None,
            })
            .await;
        match watched {
            Ok(Watched::Done(t)) => Ok(t),
            Ok(Watched::Forbidden) => self.poll_for(name, timeout, done).await,
            Err(e) if e.kind() == ErrorKind::Timeout => Err(self.not_reached(name, timeout)),
            Err(e) => Err(e),
        }
    }

    fn not_reached(&self, name: &str, timeout: Duration) -> Error {
        Error::Timeout(format!(
            "{} did not reach the awaited state within {timeout:?}",
            self.target(Some(name))
        ))
    }

    /// Feeds the updates of a watch of `name` to `step` until it returns
    /// `Some`, up to `timeout` (a Timeout error).
    async fn wait_watching<T>(
        &self,
        name: &str,
        timeout: Duration,
        mut step: impl FnMut(&Update<K>) -> Option<T>,
    ) -> Result<Watched<T>> {
        let opts = WatchOptions {
            field_selector: Some(
                kubepkg_util::selector::FieldSelector::new()
                    .eq("metadata.name", name)
                    .to_string(),
            ),
            give_up_after: Some(GIVE_UP_AFTER),
            ..WatchOptions::default()
        };
        let mut updates = self.watch_updates(opts);
        let run = async {
            while let Some(update) = updates.next().await {
                match update {
                    Ok(u) => {
                        if let Some(t) = step(&u) {
                            return Ok(Watched::Done(t));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Forbidden => return Ok(Watched::Forbidden),
                    Err(e) => return Err(e),
                }
            }
            Err(Error::Internal(format!(
                "the watch of {} ended without an error",
                self.target(Some(name))
            )))
        };
        match deadline_after(timeout) {
            None => run.await,
            Some(deadline) => tokio::time::timeout_at(deadline, run)
                .await
                .unwrap_or_else(|_| Err(Error::Timeout(format!("{timeout:?}")))),
        }
    }

    /// The GET polling of credentials that may not watch.
    async fn poll_for<T>(
        &self,
        name: &str,
        timeout: Duration,
        mut done: impl FnMut(&K) -> Option<T>,
    ) -> Result<T> {
        let deadline = deadline_after(timeout);
        let mut delay = Duration::from_millis(100);
        loop {
            if let Some(obj) = self.get_opt(name).await?
                && let Some(t) = done(&obj)
            {
                return Ok(t);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(self.not_reached(name, timeout));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// The GET polling of credentials that may not watch.
    async fn poll_deleted(&self, name: &str, timeout: Duration) -> Result<()> {
        let deadline = deadline_after(timeout);
        loop {
            if self.get_opt(name).await?.is_none() {
                return Ok(());
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(Error::Timeout(format!(
                    "{} still exists after {timeout:?}",
                    self.target(Some(name))
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
