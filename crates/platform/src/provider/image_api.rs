//! A [`RegistryProvider`] over any `kubepkg-image-api` registry (Harbor,
//! OCI distribution): namespaces, repositories and tags through the
//! [`ImageRegistry`] trait.
//!
//! Per-namespace access (robot accounts) is the vendor adapters' job (the
//! [`harbor`](super::harbor) provider's project robots): here
//! [`RegistryProvider::grant_access`] is Unsupported, and the platform
//! still records the permission in its store.

use super::{AccessGrant, Namespace, RegistryProvider, Repository, Visibility, no_robot_accounts};
use crate::Result;
use crate::store::Access;
use async_trait::async_trait;
use kubepkg_image_api::registry::{ImageRegistry, NamespaceSpec};
use std::sync::Arc;

/// What to use instead of robot accounts here.
const ACCESS_INSTEAD: &str = "use the registry's own accounts, or the harbor provider for Harbor";

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ImageApiRegistry {
    kind: String,
    registry: Arc<dyn ImageRegistry>,
}

impl ImageApiRegistry {
    /// Wraps a registry client; `kind` names its flavour
    /// (`"harbor"`, `"distribution"`).
    pub fn new(kind: impl Into<String>, registry: Arc<dyn ImageRegistry>) -> Self {
        ImageApiRegistry {
            kind: kind.into(),
            registry,
        }
    }

    /// Connects from an image-api registry config.
    pub fn connect(config: &kubepkg_image_api::config::RegistryConfig) -> Result<Self> {
        let registry = kubepkg_image_api::registry::connect(config)?;
        let kind = format!("{:?}", config.kind).to_lowercase();
        Ok(ImageApiRegistry::new(kind, registry))
    }

    /// The wrapped client.
    pub fn registry(&self) -> &Arc<dyn ImageRegistry> {
        &self.registry
    }
}

#[async_trait]
impl RegistryProvider for ImageApiRegistry {
    fn kind(&self) -> &str {
        &self.kind
    }

    async fn create_namespace(&self, name: &str, visibility: Visibility) -> Result<Namespace> {
        let spec = NamespaceSpec::new(name).visibility(visibility);
        Ok(self.registry.create_namespace(&spec).await?)
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        Ok(self.registry.list_namespaces().await?)
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        Ok(self.registry.delete_namespace(name).await?)
    }

    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>> {
        Ok(self.registry.list_repositories(namespace).await?)
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        Ok(self.registry.list_tags(repository).await?)
    }

    async fn grant_access(
        &self,
        namespace: &str,
        subject: &str,
        _access: Access,
    ) -> Result<AccessGrant> {
        Err(no_robot_accounts(
            &self.kind,
            namespace,
            subject,
            ACCESS_INSTEAD,
        ))
    }

    async fn revoke_access(&self, namespace: &str, subject: &str) -> Result<()> {
        Err(no_robot_accounts(
            &self.kind,
            namespace,
            subject,
            ACCESS_INSTEAD,
        ))
    }
}
