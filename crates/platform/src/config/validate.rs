//! [`PlatformConfig::validate`]: the checks serde cannot make.

use kubepkg_storage_api::{QueueConfig, StorageConfig};

use super::{PlatformConfig, ProviderSettings};
use crate::{Error, Result};

/// The provider kinds the platform has adapters for, as the provider
/// modules register them ([`crate::provider::registry::KINDS`]).
pub fn provider_kinds() -> Vec<&'static str> {
    crate::provider::registry::kind_names()
}

use crate::crypto::MAX_KEY_ID_LEN as MAX_KEY_ID;

pub(super) fn validate(config: &PlatformConfig) -> Result<()> {
    if config.data_dir.as_os_str().is_empty() {
        return Err(Error::config("data_dir", "is empty"));
    }
    store(config)?;
    encryption(config)?;
    config
        .log
        .validate()
        .map_err(|e| Error::config("log", e.to_string()))?;
    if let Some(cluster) = &config.kubernetes {
        cluster
            .validate()
            .map_err(|e| Error::config("kubernetes", e.to_string()))?;
    }
    for (name, registry) in &config.registries {
        check_name("registries", name)?;
        registry
            .base_url()
            .map_err(|e| Error::config(format!("registries.{name}.url"), e.to_string()))?;
        if registry.timeout_secs == 0 {
            return Err(at_least_one(format!("registries.{name}.timeout_secs")));
        }
        if registry.concurrency == 0 {
            return Err(at_least_one(format!("registries.{name}.concurrency")));
        }
    }
    for (name, engine) in &config.engines {
        check_name("engines", name)?;
        let host = engine.resolved_host();
        let known = ["unix://", "tcp://", "http://", "https://", "npipe://"];
        if !known.iter().any(|s| host.starts_with(s)) {
            return Err(Error::config(
                format!("engines.{name}.host"),
                format!(
                    "{host:?} is not an engine address: use unix:///path/docker.sock, \
                     a socket path, tcp://host:port or https://host:port"
                ),
            ));
        }
        if engine.timeout_secs == 0 {
            return Err(at_least_one(format!("engines.{name}.timeout_secs")));
        }
    }
    for (name, store) in &config.object_stores {
        check_name("object_stores", name)?;
        object_store(name, store)?;
    }
    for (name, queue) in &config.queues {
        check_name("queues", name)?;
        if let QueueConfig::Amqp(amqp) = queue {
            let url = amqp.url.expose();
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                return Err(Error::config(
                    format!("queues.{name}.url"),
                    "must be an amqp:// or amqps:// URL (the value is not shown: it may hold a password)",
                ));
            }
            if amqp.publish_channels == 0 {
                return Err(at_least_one(format!("queues.{name}.publish_channels")));
            }
        }
    }
    for (name, provider) in &config.providers {
        check_name("providers", name)?;
        self::provider(name, provider)?;
    }
    let health = &config.health;
    if health.interval_secs == 0 {
        return Err(at_least_one("health.interval_secs"));
    }
    if health.timeout_secs == 0 {
        return Err(at_least_one("health.timeout_secs"));
    }
    if health.timeout_secs > health.interval_secs {
        return Err(Error::config(
            "health.timeout_secs",
            format!(
                "{} exceeds health.interval_secs ({}): a check must end before the next starts",
                health.timeout_secs, health.interval_secs
            ),
        ));
    }
    if health.max_backoff_secs < health.interval_secs {
        return Err(Error::config(
            "health.max_backoff_secs",
            format!(
                "{} is below health.interval_secs ({})",
                health.max_backoff_secs, health.interval_secs
            ),
        ));
    }
    if !(3..=86_400).contains(&health.lease_secs) {
        return Err(Error::config(
            "health.lease_secs",
            format!(
                "{} is outside 3..=86400 (renewals come every third of it)",
                health.lease_secs
            ),
        ));
    }
    if config.search.concurrency == 0 {
        return Err(at_least_one("search.concurrency"));
    }
    Ok(())
}

fn at_least_one(setting: impl Into<String>) -> Error {
    Error::config(setting, "must be at least 1")
}

fn check_name(section: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(|c| c.is_control()) {
        return Err(Error::config(
            format!("{section}.{name:?}"),
            "an entry needs a non-empty name without control characters",
        ));
    }
    Ok(())
}

fn store(config: &PlatformConfig) -> Result<()> {
    if let Some(url) = &config.store.url {
        let url = url.expose();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|s| url.starts_with(s)) {
            return Err(Error::config(
                "store.url",
                "must start with sqlite:, postgres:// or postgresql:// \
                 (the value is not shown: it may hold a password)",
            ));
        }
    }
    if config.store.max_connections == 0 {
        return Err(at_least_one("store.max_connections"));
    }
    if config.store.connect_timeout_secs == 0 {
        return Err(at_least_one("store.connect_timeout_secs"));
    }
    Ok(())
}

fn encryption(config: &PlatformConfig) -> Result<()> {
    let enc = &config.encryption;
    for (id, key) in &enc.keys {
        let setting = format!("encryption.keys.{id}");
        let id_ok = !id.is_empty()
            && id.len() <= MAX_KEY_ID
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            return Err(Error::config(
                setting,
                format!("a key id is 1 to {MAX_KEY_ID} characters of A-Z a-z 0-9 . _ -"),
            ));
        }
        // The store's own parser, so what validates is what the store reads.
        crate::crypto::Keyring::parse_key(&setting, key.expose())?;
    }
    let ids = || enc.keys.keys().cloned().collect::<Vec<_>>().join(", ");
    if enc.active_key.is_empty() {
        if !enc.keys.is_empty() {
            return Err(Error::config(
                "encryption.active_key",
                format!(
                    "is not set; name the key new credentials are encrypted with (one of: {})",
                    ids()
                ),
            ));
        }
    } else if !enc.keys.contains_key(&enc.active_key) {
        let message = if enc.keys.is_empty() {
            format!(
                "names key {:?} but encryption.keys is empty; add it there",
                enc.active_key
            )
        } else {
            format!(
                "names key {:?}, which is not in encryption.keys (it has: {})",
                enc.active_key,
                ids()
            )
        };
        return Err(Error::config("encryption.active_key", message));
    }
    Ok(())
}

fn object_store(name: &str, store: &StorageConfig) -> Result<()> {
    match store {
        StorageConfig::Local(local) if local.root.as_os_str().is_empty() => Err(Error::config(
            format!("object_stores.{name}.root"),
            "is empty",
        )),
        StorageConfig::Minio(minio) if !is_http_url(&minio.endpoint) => Err(Error::config(
            format!("object_stores.{name}.endpoint"),
            format!(
                "{} is not an http(s)://host[:port] URL",
                shown(&minio.endpoint)
            ),
        )),
        StorageConfig::S3(s3) => match &s3.endpoint {
            Some(endpoint) if !is_http_url(endpoint) => Err(Error::config(
                format!("object_stores.{name}.endpoint"),
                format!("{} is not an http(s)://host[:port] URL", shown(endpoint)),
            )),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn provider(name: &str, provider: &ProviderSettings) -> Result<()> {
    let kinds = provider_kinds();
    if !kinds.contains(&provider.kind.as_str()) {
        let message = if provider.kind.is_empty() {
            format!("is missing; one of: {}", kinds.join(", "))
        } else {
            format!(
                "unknown provider kind {:?}; one of: {}",
                provider.kind,
                kinds.join(", ")
            )
        };
        return Err(Error::config(format!("providers.{name}.kind"), message));
    }
    if let Some(endpoint) = &provider.endpoint
        && !is_http_url(endpoint)
    {
        return Err(Error::config(
            format!("providers.{name}.endpoint"),
            format!("{} is not an http(s)://host[:port] URL", shown(endpoint)),
        ));
    }
    Ok(())
}

/// `http://` or `https://` followed by a host.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            !host.is_empty() && !host.contains('@') && !host.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// A URL for an error message, unless it carries credentials.
fn shown(url: &str) -> String {
    if url.contains('@') {
        "the value (not shown: it holds credentials)".to_owned()
    } else {
        format!("{url:?}")
    }
}
