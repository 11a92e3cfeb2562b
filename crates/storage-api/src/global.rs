//! Process-wide instances: one default object store and one default message
//! queue, set once with [`init`] / [`init_queue`] or built lazily by
//! [`get`] / [`queue`], plus named instances in a small registry.
//!
//! Without `init`, [`get`] builds the local backend in
//! [`default_data_dir`](crate::config::default_data_dir) (the `memory`
//! backend when `local` is not compiled in), after applying the `KUBEPKG_*`
//! environment overrides; [`queue`] builds the in-process broker unless
//! `KUBEPKG_QUEUE_BACKEND` says otherwise.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::config::{QueueConfig, StorageConfig, connect, connect_queue};
use crate::error::{Error, Result};
use crate::mq::MessageQueue;
use crate::object::ObjectStorage;

static STORAGE: OnceLock<Arc<dyn ObjectStorage>> = OnceLock::new();
static QUEUE: OnceLock<Arc<dyn MessageQueue>> = OnceLock::new();
static NAMED_STORAGE: OnceLock<RwLock<HashMap<String, Arc<dyn ObjectStorage>>>> = OnceLock::new();
static NAMED_QUEUE: OnceLock<RwLock<HashMap<String, Arc<dyn MessageQueue>>>> = OnceLock::new();
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sets the default object store from `config`. Fails with `AlreadyExists`
/// when a default was already set or lazily built.
pub fn init(config: &StorageConfig) -> Result<Arc<dyn ObjectStorage>> {
    let _g = INIT_LOCK
        .lock()
        .map_err(|_| Error::Internal("init lock poisoned".into()))?;
    if STORAGE.get().is_some() {
        return Err(Error::AlreadyExists(
            "the default object store is already initialized".into(),
        ));
    }
    let store = connect(config)?;
    let _ = STORAGE.set(store.clone());
    Ok(store)
}

fn default_storage_config() -> StorageConfig {
    #[cfg(feature = "local")]
    let base = StorageConfig::default();
    #[cfg(not(feature = "local"))]
    let base = StorageConfig::Memory;
    base
}

/// The default object store, built on first use when nobody called
/// [`init`].
pub fn get() -> Result<Arc<dyn ObjectStorage>> {
    if let Some(s) = STORAGE.get() {
        return Ok(s.clone());
    }
    let _g = INIT_LOCK
        .lock()
        .map_err(|_| Error::Internal("init lock poisoned".into()))?;
    if let Some(s) = STORAGE.get() {
        return Ok(s.clone());
    }
    let config = default_storage_config().with_env()?;
    tracing::info!(?config, "building the default object store");
    let store = connect(&config)?;
    let _ = STORAGE.set(store.clone());
    Ok(store)
}

/// Sets the default message queue from `config` (`AlreadyExists` when set).
pub fn init_queue(config: &QueueConfig) -> Result<Arc<dyn MessageQueue>> {
    let _g = INIT_LOCK
        .lock()
        .map_err(|_| Error::Internal("init lock poisoned".into()))?;
    if QUEUE.get().is_some() {
        return Err(Error::AlreadyExists(
            "the default message queue is already initialized".into(),
        ));
    }
    let q = connect_queue(config)?;
    let _ = QUEUE.set(q.clone());
    Ok(q)
}

/// The default message queue, built on first use when nobody called
/// [`init_queue`].
pub fn queue() -> Result<Arc<dyn MessageQueue>> {
    if let Some(q) = QUEUE.get() {
        return Ok(q.clone());
    }
    let _g = INIT_LOCK
        .lock()
        .map_err(|_| Error::Internal("init lock poisoned".into()))?;
    if let Some(q) = QUEUE.get() {
        return Ok(q.clone());
    }
    let q = connect_queue(&QueueConfig::default().with_env()?)?;
    let _ = QUEUE.set(q.clone());
    Ok(q)
}

fn storages() -> &'static RwLock<HashMap<String, Arc<dyn ObjectStorage>>> {
    NAMED_STORAGE.get_or_init(Default::default)
}

fn queues() -> &'static RwLock<HashMap<String, Arc<dyn MessageQueue>>> {
    NAMED_QUEUE.get_or_init(Default::default)
}

/// Builds and registers a named object store (replacing one of that name).
pub fn register(name: &str, config: &StorageConfig) -> Result<Arc<dyn ObjectStorage>> {
    let store = connect(config)?;
    register_instance(name, store.clone())?;
    Ok(store)
}

/// Registers an already built object store under `name`.
pub fn register_instance(name: &str, store: Arc<dyn ObjectStorage>) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Invalid("instance name must not be empty".into()));
    }
    storages()
        .write()
        .map_err(|_| Error::Internal("registry lock poisoned".into()))?
        .insert(name.to_owned(), store);
    Ok(())
}

/// A named object store; `NotFound` when none was registered.
pub fn named(name: &str) -> Result<Arc<dyn ObjectStorage>> {
    storages()
        .read()
        .map_err(|_| Error::Internal("registry lock poisoned".into()))?
        .get(name)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("no object store named {name:?}")))
}

/// Removes a named object store; returns it if it was there.
pub fn unregister(name: &str) -> Option<Arc<dyn ObjectStorage>> {
    storages().write().ok()?.remove(name)
}

/// Builds and registers a named message queue.
pub fn register_queue(name: &str, config: &QueueConfig) -> Result<Arc<dyn MessageQueue>> {
    if name.is_empty() {
        return Err(Error::Invalid("instance name must not be empty".into()));
    }
    let q = connect_queue(config)?;
    queues()
        .write()
        .map_err(|_| Error::Internal("registry lock poisoned".into()))?
        .insert(name.to_owned(), q.clone());
    Ok(q)
}

/// A named message queue; `NotFound` when none was registered.
pub fn named_queue(name: &str) -> Result<Arc<dyn MessageQueue>> {
    queues()
        .read()
        .map_err(|_| Error::Internal("registry lock poisoned".into()))?
        .get(name)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("no message queue named {name:?}")))
}
