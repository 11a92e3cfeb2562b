//! Namespaces: list / get / create / delete (from [`Resources`]), plus
//! `ensure` and deletion that waits until the namespace is gone.

use crate::resource::{DeleteOptions, FIELD_MANAGER, Resources};
use crate::{Client, Error, Result};
use k8s_openapi::api::core::v1::Namespace;
use std::collections::BTreeMap;
use std::time::Duration;

impl Client {
    /// Namespaces.
    pub fn namespaces(&self) -> Resources<Namespace> {
        self.cluster()
    }
}

impl Resources<Namespace> {
    /// Creates or updates namespace `name` with `labels` (server-side apply).
    pub async fn ensure(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<Namespace> {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }))
        .map_err(|e| Error::internal(e.to_string()))?;
        self.apply(&ns, FIELD_MANAGER, false).await
    }

    /// Deletes namespace `name` and waits until it is gone (its contents are
    /// removed by the namespace controller first). Returns `true` when the
    /// namespace existed (and is now gone), `false` when there was nothing
    /// to delete. Still existing after `timeout` is an [`Error::Timeout`].
    pub async fn delete_and_wait(&self, name: &str, timeout: Duration) -> Result<bool> {
        if self.delete(name, &DeleteOptions::default()).await? {
            self.wait_deleted(name, timeout).await?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}
