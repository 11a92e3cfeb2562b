//! Any kind — custom resources included — through discovery and kube's
//! dynamic API: `client.dynamic("example.com/v1", "Widget", Some("ns"))`
//! gives a [`Resources<DynamicObject>`] with the same list / get / apply /
//! delete calls as the typed families.

use crate::discovery::ResolvedKind;
use crate::resource::Resources;
use crate::{Client, Error, Result};
use kube::api::Api;
pub use kube::api::DynamicObject;
use std::sync::Arc;

impl Client {
    /// A handle on any kind, resolved through discovery. `namespace` is
    /// required for namespaced kinds when acting on single objects; `None`
    /// on a namespaced kind lists across all namespaces. A namespace given
    /// for a cluster-scoped kind is ignored.
    pub async fn dynamic(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Resources<DynamicObject>> {
        let rk = self.resolve_kind(api_version, kind).await?;
        Ok(self.dynamic_for(&rk, namespace))
    }

    /// A handle for an already resolved kind.
    pub fn dynamic_for(
        &self,
        rk: &ResolvedKind,
        namespace: Option<&str>,
    ) -> Resources<DynamicObject> {
        let ns = namespace.filter(|_| rk.namespaced);
        let api = match ns {
            Some(ns) => Api::namespaced_with(self.kube().clone(), ns, &rk.resource),
            None => Api::all_with(self.kube().clone(), &rk.resource),
        };
        Resources {
            client: self.clone(),
            api,
            namespace: ns.map(str::to_string),
            kind: Arc::from(rk.resource.kind.as_str()),
        }
    }
}

/// Converts a dynamic object into a typed one (e.g. to inspect a
/// `Deployment` that came through [`Client::dynamic`]).
pub fn to_typed<K: serde::de::DeserializeOwned>(obj: &DynamicObject) -> Result<K> {
    let v = serde_json::to_value(obj).map_err(|e| Error::internal(e.to_string()))?;
    serde_json::from_value(v)
        .map_err(|e| Error::invalid(format!("object does not match the type: {e}")))
}
