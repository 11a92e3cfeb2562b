//! Networking and configuration: Services, Endpoints, EndpointSlices,
//! Ingresses, ConfigMaps, and Secrets (returned as [`SecretObject`], whose
//! `Debug` never shows the values).

use crate::resource::{ListOptions, Resources, check_name};
use crate::{Client, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Secret as KubeSecret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt as _;
use kubepkg_util::secret::Secret;
use std::collections::BTreeMap;
use std::fmt;

/// Label EndpointSlices carry with the name of their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl Client {
    /// Services of `namespace`.
    pub fn services(&self, namespace: &str) -> Resources<Service> {
        self.namespaced(namespace)
    }
    /// Endpoints of `namespace`.
    pub fn endpoints(&self, namespace: &str) -> Resources<Endpoints> {
        self.namespaced(namespace)
    }
    /// EndpointSlices of `namespace`.
    pub fn endpoint_slices(&self, namespace: &str) -> Resources<EndpointSlice> {
        self.namespaced(namespace)
    }
    /// Ingresses of `namespace`.
    pub fn ingresses(&self, namespace: &str) -> Resources<Ingress> {
        self.namespaced(namespace)
    }
    /// ConfigMaps of `namespace`.
    pub fn config_maps(&self, namespace: &str) -> Resources<ConfigMap> {
        self.namespaced(namespace)
    }
    /// Secrets of `namespace`, with redacting results.
    pub fn secrets(&self, namespace: &str) -> Secrets {
        Secrets {
            inner: self.namespaced(namespace),
        }
    }
}

impl Resources<EndpointSlice> {
    /// The EndpointSlices of Service `service`.
    pub async fn of_service(&self, service: &str) -> Result<Vec<EndpointSlice>> {
        check_name(service)?;
        self.list(&ListOptions::labels(format!(
            "{SERVICE_NAME_LABEL}={service}"
        )))
        .await
    }
}

/// A Kubernetes Secret whose `Debug` lists the keys but never the values.
#[derive(Clone, PartialEq)]
pub struct SecretObject(pub KubeSecret);

impl fmt::Debug for SecretObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretObject")
            .field("namespace", &self.0.metadata.namespace)
            .field("name", &self.0.metadata.name)
            .field("type", &self.0.type_)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl SecretObject {
    /// Builds an Opaque secret from string values (sent as `stringData`).
    pub fn opaque(name: &str, values: BTreeMap<String, Secret<String>>) -> Self {
        let mut s = KubeSecret::default();
        s.metadata.name = Some(name.to_string());
        s.type_ = Some("Opaque".into());
        s.string_data = Some(
            values
                .into_iter()
                .map(|(k, v)| (k, v.expose().clone()))
                .collect(),
        );
        SecretObject(s)
    }

    /// The name.
    pub fn name(&self) -> String {
        self.0.name_any()
    }

    /// The keys of `data` and `stringData`, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .0
            .data
            .iter()
            .flat_map(|d| d.keys().cloned())
            .chain(self.0.string_data.iter().flat_map(|d| d.keys().cloned()))
            .collect();
        k.sort();
        k.dedup();
        k
    }

    /// One value (decoded bytes), wrapped so it cannot leak into logs.
    pub fn value(&self, key: &str) -> Option<Secret<Vec<u8>>> {
        if let Some(v) = self.0.data.as_ref().and_then(|d| d.get(key)) {
            return Some(Secret::new(v.0.clone()));
        }
        self.0
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| Secret::new(v.as_bytes().to_vec()))
    }

    /// One value as UTF-8 text.
    pub fn text(&self, key: &str) -> Option<Secret<String>> {
        self.value(key)
            .and_then(|v| String::from_utf8(v.expose().clone()).ok())
            .map(Secret::new)
    }
}

/// Secrets of one namespace; every result is a [`SecretObject`].
#[derive(Clone, Debug)]
pub struct Secrets {
    inner: Resources<KubeSecret>,
}

impl Secrets {
    /// The typed handle underneath (results there are plain Secrets).
    pub fn raw(&self) -> &Resources<KubeSecret> {
        &self.inner
    }

    /// All secrets matching `opts`.
    pub async fn list(&self, opts: &ListOptions) -> Result<Vec<SecretObject>> {
        Ok(self
            .inner
            .list(opts)
            .await?
            .into_iter()
            .map(SecretObject)
            .collect())
    }

    /// One secret.
    pub async fn get(&self, name: &str) -> Result<SecretObject> {
        self.inner.get(name).await.map(SecretObject)
    }

    /// Creates a secret.
    pub async fn create(&self, s: &SecretObject) -> Result<SecretObject> {
        self.inner.create(&s.0).await.map(SecretObject)
    }

    /// Server-side applies a secret.
    pub async fn apply(
        &self,
        s: &SecretObject,
        field_manager: &str,
        force: bool,
    ) -> Result<SecretObject> {
        self.inner
            .apply(&s.0, field_manager, force)
            .await
            .map(SecretObject)
    }

    /// Deletes a secret (`false` when it did not exist).
    pub async fn delete(&self, name: &str) -> Result<bool> {
        self.inner.delete(name, &Default::default()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_shows_keys_not_values() {
        let mut vals = BTreeMap::new();
        vals.insert("password".to_string(), Secret::new("hunter2".to_string()));
        let s = SecretObject::opaque("db", vals);
        let dbg = format!("{s:?}");
        assert!(
            dbg.contains("password") && !dbg.contains("hunter2"),
            "{dbg}"
        );
        assert_eq!(
            s.text("password").map(|v| v.expose().clone()).as_deref(),
            Some("hunter2")
        );
        assert_eq!(s.keys(), vec!["password".to_string()]);
    }
}
