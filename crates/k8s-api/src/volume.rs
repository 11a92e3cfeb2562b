//! Storage: PersistentVolumes, PersistentVolumeClaims, StorageClasses, and
//! which pods mount a claim.

use crate::resource::{ListOptions, Resources, check_name};
use crate::{Client, Error, Result};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

impl Client {
    /// PersistentVolumes (cluster-scoped).
    pub fn persistent_volumes(&self) -> Resources<PersistentVolume> {
        self.cluster()
    }
    /// PersistentVolumeClaims of `namespace`.
    pub fn persistent_volume_claims(&self, namespace: &str) -> Resources<PersistentVolumeClaim> {
        self.namespaced(namespace)
    }
    /// StorageClasses (cluster-scoped).
    pub fn storage_classes(&self) -> Resources<StorageClass> {
        self.cluster()
    }
}

/// Whether `pod` mounts claim `claim` (directly, or through a generic
/// ephemeral volume, whose claim is named `<pod>-<volume>`).
pub fn mounts_claim(pod: &Pod, claim: &str) -> bool {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vols| {
            vols.iter().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == claim)
                    || (v.ephemeral.is_some() && format!("{pod_name}-{}", v.name) == claim)
            })
        })
}

impl Resources<PersistentVolumeClaim> {
    /// The pods of this namespace that mount claim `claim`.
    pub async fn pods_mounting(&self, claim: &str) -> Result<Vec<Pod>> {
        check_name(claim)?;
        let ns = self
            .namespace()
            .ok_or_else(|| Error::invalid("pods_mounting needs a namespaced handle"))?;
        let pods = self.client.pods(ns).list(&ListOptions::default()).await?;
        Ok(pods
            .into_iter()
            .filter(|p| mounts_claim(p, claim))
            .collect())
    }

    /// The PersistentVolume bound to claim `claim`, if bound.
    pub async fn bound_volume(&self, claim: &str) -> Result<Option<PersistentVolume>> {
        let pvc = self.get(claim).await?;
        match pvc
            .spec
            .and_then(|s| s.volume_name)
            .filter(|v| !v.is_empty())
        {
            Some(pv) => self.client.persistent_volumes().get_opt(&pv).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_mounts_are_found() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [], "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "pvc-a"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "cfg", "configMap": {"name": "c"}}
            ]}
        }))
        .unwrap();
        assert!(mounts_claim(&p, "pvc-a"));
        assert!(mounts_claim(&p, "web-scratch"));
        assert!(!mounts_claim(&p, "pvc-b"));
    }
}
