//! Providers built from the platform config's `providers` section, by
//! kind. Every vendor module registers itself here with one line of
//! [`KINDS`]; nothing else knows the list.

use super::{ClusterProvider, Providers, RegistryProvider};
use crate::config::ProviderSettings;
use crate::{Error, Result};
use kubepkg_util::secret::Secret;
use std::sync::Arc;

/// What one kind builds from its settings.
pub enum Built {
    /// A cluster provider.
    Cluster(Arc<dyn ClusterProvider>),
    /// A registry provider.
    Registry(Arc<dyn RegistryProvider>),
    /// Both (a vendor account that serves clusters and a registry).
    Both(Arc<dyn ClusterProvider>, Arc<dyn RegistryProvider>),
}

/// A kind's builder: the entry's name and settings to a provider.
pub type Builder = fn(&str, &ProviderSettings) -> Result<Built>;

/// Every provider kind the platform has, with its builder. A new vendor
/// is one module plus one line here.
pub const KINDS: &[(&str, Builder)] = &[
    (super::imported::KIND, |_, _| {
        Ok(Built::Cluster(Arc::new(super::imported::Imported)))
    }),
    (super::tke::KIND, super::tke::build),
    (super::ack::KIND, super::ack::build),
    (super::rancher::KIND, super::rancher::build),
    (super::harbor::KIND, super::harbor::build),
    (super::tkestack::KIND, super::tkestack::build),
    (super::acr::KIND, super::acr::build),
];

/// The known kinds' names.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|(k, _)| *k).collect()
}

/// Builds the provider of one config entry.
pub fn build(name: &str, settings: &ProviderSettings) -> Result<Built> {
    let builder = KINDS
        .iter()
        .find(|(k, _)| *k == settings.kind)
        .map(|(_, b)| *b)
        .ok_or_else(|| {
            Error::config(
                format!("providers.{name}.kind"),
                format!(
                    "unknown provider kind {:?}; one of: {}",
                    settings.kind,
                    kind_names().join(", ")
                ),
            )
        })?;
    builder(name, settings)
}

impl Providers {
    /// The registry with `imported` plus every entry of the config's
    /// `providers` section, each under its entry name.
    pub fn from_config(
        providers: &std::collections::BTreeMap<String, ProviderSettings>,
    ) -> Result<Providers> {
        let registry = Providers::new();
        for (name, settings) in providers {
            match build(name, settings)? {
                Built::Cluster(c) => registry.insert_cluster(name, c),
                Built::Registry(r) => registry.insert_registry(name, r),
                Built::Both(c, r) => {
                    registry.insert_cluster(name, c);
                    registry.insert_registry(name, r);
                }
            }
        }
        Ok(registry)
    }
}

/// A required plain setting of entry `name`.
pub fn required<'a>(name: &str, field: &str, value: &'a Option<String>) -> Result<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            Error::config(
                format!("providers.{name}.{field}"),
                "is required for this kind",
            )
        })
}

/// A required secret setting of entry `name`.
pub fn required_secret(
    name: &str,
    field: &str,
    value: &Option<Secret<String>>,
) -> Result<Secret<String>> {
    value
        .as_ref()
        .filter(|v| !v.expose().is_empty())
        .cloned()
        .ok_or_else(|| {
            Error::config(
                format!("providers.{name}.{field}"),
                "is required for this kind (the value is never shown)",
            )
        })
}
