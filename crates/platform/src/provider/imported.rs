//! The `imported` cluster provider: clusters the platform did not create.
//!
//! An imported cluster comes in through a kubeconfig, an API server + CA +
//! token, or a provider's kubeconfig, and the core layer's import
//! ([`crate::core::Platform::import_cluster`]) creates the dedicated
//! service account in it. There is no vendor behind it, so "create" and
//! "delete" mean register and unregister: [`Imported::delete_cluster`]
//! finishes at once (the platform then forgets the cluster), while
//! creating one or changing its nodes is Unsupported — there is no vendor
//! to ask — and says what to do instead.

use super::{AddNodes, ClusterProvider, ClusterSpec, PollResult, VendorCluster, VendorOperation};
use crate::{Error, Result};
use async_trait::async_trait;
use kubepkg_util::secret::Secret;

/// The provider kind and registered name: `"imported"`.
pub const KIND: &str = "imported";

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Imported;

fn unsupported(what: &str) -> Error {
    Error::Unsupported(format!(
        "{what}: an imported cluster has no vendor behind it; change it with the tools \
         that created it (import a cluster with Platform::import_cluster)"
    ))
}

#[async_trait]
impl ClusterProvider for Imported {
    fn kind(&self) -> &str {
        KIND
    }

    async fn create_cluster(&self, _spec: &ClusterSpec) -> Result<VendorOperation> {
        Err(unsupported("create a cluster"))
    }

    async fn describe_cluster(&self, id: &str) -> Result<VendorCluster> {
        Err(Error::NotFound(format!(
            "imported cluster {id:?} has no vendor record; its state is in its own API"
        )))
    }

    async fn delete_cluster(&self, id: &str) -> Result<VendorOperation> {
        // Unregistering needs nothing from a vendor: the platform removes
        // the cluster's record and credential.
        Ok(VendorOperation::completed("unregister_cluster", id))
    }

    async fn add_nodes(&self, _id: &str, _nodes: &AddNodes) -> Result<VendorOperation> {
        Err(unsupported("add nodes"))
    }

    async fn remove_nodes(&self, _id: &str, _ids: &[String]) -> Result<VendorOperation> {
        Err(unsupported("remove nodes"))
    }

    async fn scale_node_pool(&self, _id: &str, _pool: &str, _n: u32) -> Result<VendorOperation> {
        Err(unsupported("scale a node pool"))
    }

    async fn kubeconfig(&self, _id: &str) -> Result<Secret<String>> {
        Err(unsupported("fetch a kubeconfig"))
    }

    async fn list_clusters(&self) -> Result<Vec<VendorCluster>> {
        Ok(Vec::new())
    }

    async fn poll(&self, op: &VendorOperation) -> Result<PollResult> {
        if op.done {
            Ok(PollResult::Succeeded)
        } else {
            Err(Error::NotFound(format!(
                "imported clusters have no running operations ({})",
                op.kind
            )))
        }
    }
}
