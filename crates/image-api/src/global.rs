//! Process-wide clients: one default registry and one default engine, plus
//! named instances ("both", as the source design has it).
//!
//! Call [`init`] once at start-up with the application's [`Config`]. Without
//! it, the defaults are built lazily on first use from the environment:
//! the registry from `KUBEPKG_REGISTRY_URL` / `_KIND` / `_USERNAME` /
//! `_PASSWORD` / `_ALLOW_HTTP` / `_DANGER_ACCEPT_INVALID_CERTS` (a leftover
//! `_INSECURE` is a configuration error), the engine from `DOCKER_HOST` (else
//! `unix:///var/run/docker.sock`). Clients are built once and shared; nothing
//! is rebuilt per call.
//!
//! ```
//! use std::sync::Arc;
//! use kubepkg_image_api::{global, Config, RegistryConfig};
//!
//! let mut cfg = Config::default();
//! cfg.registries.insert("mirror".into(), RegistryConfig::new("https://mirror.example.com"));
//! # #[cfg(feature = "distribution")] {
//! global::init(cfg).unwrap();
//! assert!(global::init(Config::default()).is_err()); // only once
//! let a = global::named_registry("mirror").unwrap();
//! let b = global::named_registry("mirror").unwrap();
//! assert!(Arc::ptr_eq(&a, &b)); // built once, shared
//! assert_eq!(a.host(), "mirror.example.com");
//! assert!(global::named_registry("nope").is_err());
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::config::{Config, EngineConfig, RegistryConfig};
use crate::engine::ImageEngine;
use crate::registry::ImageRegistry;
use crate::{Error, Result};

/// The environment-variable prefix of the lazily built default registry.
pub const REGISTRY_ENV_PREFIX: &str = "KUBEPKG_REGISTRY";

static CONFIG: OnceLock<Config> = OnceLock::new();

#[derive(Default)]
struct Instances {
    default_registry: Option<Arc<dyn ImageRegistry>>,
    default_engine: Option<Arc<dyn ImageEngine>>,
    registries: HashMap<String, Arc<dyn ImageRegistry>>,
    engines: HashMap<String, Arc<dyn ImageEngine>>,
}

fn instances() -> std::sync::MutexGuard<'static, Instances> {
    static I: OnceLock<Mutex<Instances>> = OnceLock::new();
    I.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Sets the process-wide configuration. Succeeds once; later calls fail with
/// [`Error::Invalid`] and change nothing. Nothing connects until first use.
pub fn init(config: Config) -> Result<()> {
    let inst = instances();
    if inst.default_registry.is_some() || inst.default_engine.is_some() {
        return Err(Error::Invalid(
            "image-api globals were already used with the default configuration; call init first"
                .into(),
        ));
    }
    CONFIG
        .set(config)
        .map_err(|_| Error::Invalid("image-api globals are already initialised".into()))?;
    Ok(())
}

/// The configuration given to [`init`], if any.
pub fn config() -> Option<&'static Config> {
    CONFIG.get()
}

fn default_registry_config() -> Result<RegistryConfig> {
    if let Some(c) = CONFIG.get().and_then(|c| c.registry.clone()) {
        return Ok(c);
    }
    RegistryConfig::from_env(REGISTRY_ENV_PREFIX)?.ok_or_else(|| {
        Error::Config(format!(
            "no default registry: call global::init with a `registry` section or set {REGISTRY_ENV_PREFIX}_URL"
        ))
    })
}

fn default_engine_config() -> EngineConfig {
    CONFIG
        .get()
        .and_then(|c| c.engine.clone())
        .unwrap_or_else(EngineConfig::from_env)
}

/// The default registry, built on first use.
pub fn registry() -> Result<Arc<dyn ImageRegistry>> {
    let mut inst = instances();
    if let Some(r) = &inst.default_registry {
        return Ok(r.clone());
    }
    let r = crate::registry::connect(&default_registry_config()?)?;
    inst.default_registry = Some(r.clone());
    Ok(r)
}

/// The default engine, built on first use.
pub fn engine() -> Result<Arc<dyn ImageEngine>> {
    let mut inst = instances();
    if let Some(e) = &inst.default_engine {
        return Ok(e.clone());
    }
    let e = crate::engine::connect(&default_engine_config())?;
    inst.default_engine = Some(e.clone());
    Ok(e)
}

/// A named registry: one registered with [`insert_registry`], else one built
/// (once) from the `registries` section of the config.
pub fn named_registry(name: &str) -> Result<Arc<dyn ImageRegistry>> {
    let mut inst = instances();
    if let Some(r) = inst.registries.get(name) {
        return Ok(r.clone());
    }
    let cfg = CONFIG
        .get()
        .and_then(|c| c.registries.get(name))
        .ok_or_else(|| Error::Config(format!("no registry named {name:?} is configured")))?;
    let r = crate::registry::connect(cfg)?;
    inst.registries.insert(name.to_string(), r.clone());
    Ok(r)
}

/// A named engine: one registered with [`insert_engine`], else one built
/// (once) from the `engines` section of the config.
pub fn named_engine(name: &str) -> Result<Arc<dyn ImageEngine>> {
    let mut inst = instances();
    if let Some(e) = inst.engines.get(name) {
        return Ok(e.clone());
    }
    let cfg = CONFIG
        .get()
        .and_then(|c| c.engines.get(name))
        .ok_or_else(|| Error::Config(format!("no engine named {name:?} is configured")))?;
    let e = crate::engine::connect(cfg)?;
    inst.engines.insert(name.to_string(), e.clone());
    Ok(e)
}

/// Registers (or replaces) a named registry, e.g. one built from credentials
/// kept in a database. Returns the one it replaced.
pub fn insert_registry(
    name: impl Into<String>,
    registry: Arc<dyn ImageRegistry>,
) -> Option<Arc<dyn ImageRegistry>> {
    instances().registries.insert(name.into(), registry)
}

/// Registers (or replaces) a named engine. Returns the one it replaced.
pub fn insert_engine(
    name: impl Into<String>,
    engine: Arc<dyn ImageEngine>,
) -> Option<Arc<dyn ImageEngine>> {
    instances().engines.insert(name.into(), engine)
}

/// Forgets a named registry (e.g. after its credentials changed); the next
/// [`named_registry`] call builds it again from the config.
pub fn remove_registry(name: &str) -> Option<Arc<dyn ImageRegistry>> {
    instances().registries.remove(name)
}

/// Forgets a named engine.
pub fn remove_engine(name: &str) -> Option<Arc<dyn ImageEngine>> {
    instances().engines.remove(name)
}
