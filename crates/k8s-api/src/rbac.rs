//! RBAC objects: Roles, RoleBindings, ClusterRoles, ClusterRoleBindings and
//! ServiceAccounts, plus a helper binding a ClusterRole to a service account.

use crate::resource::{FIELD_MANAGER, Resources};
use crate::{Client, Error, Result};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

impl Client {
    /// Roles of `namespace`.
    pub fn roles(&self, namespace: &str) -> Resources<Role> {
        self.namespaced(namespace)
    }
    /// RoleBindings of `namespace`.
    pub fn role_bindings(&self, namespace: &str) -> Resources<RoleBinding> {
        self.namespaced(namespace)
    }
    /// ClusterRoles.
    pub fn cluster_roles(&self) -> Resources<ClusterRole> {
        self.cluster()
    }
    /// ClusterRoleBindings.
    pub fn cluster_role_bindings(&self) -> Resources<ClusterRoleBinding> {
        self.cluster()
    }
    /// ServiceAccounts of `namespace`.
    pub fn service_accounts(&self, namespace: &str) -> Resources<ServiceAccount> {
        self.namespaced(namespace)
    }

    /// Grants ClusterRole `cluster_role` to service account
    /// `namespace/service_account` inside `namespace` only (a RoleBinding
    /// named `<service_account>-<cluster_role>`), by server-side apply.
    pub async fn bind_cluster_role_in_namespace(
        &self,
        namespace: &str,
        service_account: &str,
        cluster_role: &str,
    ) -> Result<RoleBinding> {
        let rb: RoleBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{service_account}-{}", cluster_role.replace(':', "-")),
                         "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
        }))
        .map_err(|e| Error::internal(e.to_string()))?;
        self.role_bindings(namespace)
            .apply(&rb, FIELD_MANAGER, true)
            .await
    }
}
