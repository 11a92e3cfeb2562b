//! The credentials of imported clusters: what a stored credential may do
//! (SelfSubjectAccessReviews), when a credential expires (a client
//! certificate's notAfter, a token's `exp`), and the service-account
//! plumbing of import and rotation (token Secrets, node read access).

use crate::{Error, Result};
use base64::Engine as _;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kubepkg_k8s_api::Client;
use kubepkg_k8s_api::{k8s_openapi, kube};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub(crate) const FIELD_MANAGER: &str = "kubepkg-platform";
pub(crate) const SA_NAMESPACE: &str = "kube-system";
const NODE_READER: &str = "kubepkg:node-reader";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// One SelfSubjectAccessReview answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessCheck {
    /// The verb (`list`, `delete`…).
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Resource (`pods`).
    pub resource: String,
    /// Whether the stored credential may.
    pub allowed: bool,
}

/// What a stored credential may do, cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialAccess {
    /// Who the cluster says the credential is.
    pub username: String,
    /// The answers, one per check in [`CredentialAccess::CHECKS`].
    pub checks: Vec<AccessCheck>,
}

impl CredentialAccess {
    /// The checks asked: (verb, group, resource).
    pub const CHECKS: [(&'static str, &'static str, &'static str); 9] = [
        ("list", "", "pods"),
        ("create", "apps", "deployments"),
        ("delete", "apps", "deployments"),
        ("list", "", "secrets"),
        ("list", "", "nodes"),
        ("patch", "", "nodes"),
        ("create", "", "namespaces"),
        ("delete", "", "namespaces"),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ];

    /// Whether `verb` on `group/resource` was allowed (false when not asked).
    pub fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.verb == verb && c.group == group && c.resource == resource && c.allowed)
    }
}

/// Read access to nodes (health counts them) for the service account.
pub(crate) async fn bind_node_reader(admin: &Client, sa: &str) -> kubepkg_k8s_api::Result<()> {
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": NODE_READER, "labels": {MANAGED_BY: "kubepkg"}},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}],
    }))
    .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?;
    admin
        .cluster::<ClusterRole>()
        .apply(&role, FIELD_MANAGER, true)
        .await?;
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("{sa}-node-reader"), "labels": {MANAGED_BY: "kubepkg"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NODE_READER},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": SA_NAMESPACE}],
    }))
    .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?;
    admin
        .cluster::<ClusterRoleBinding>()
        .apply(&binding, FIELD_MANAGER, true)
        .await?;
    Ok(())
}

/// Names of the service-account token Secrets of `sa`.
pub(crate) async fn token_secrets(
    admin: &Client,
    sa: &str,
) -> kubepkg_k8s_api::Result<Vec<String>> {
    let list = admin
        .namespaced::<KubeSecret>(SA_NAMESPACE)
        .list(
            &kubepkg_k8s_api::ListOptions::default()
                .fields("type=kubernetes.io/service-account-token"),
        )
        .await?;
    Ok(list
        .into_iter()
        .filter(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .is_some_and(|n| n == sa)
        })
        .filter_map(|s| s.metadata.name)
        .collect())
}

/// Issues a fresh long-lived token for `sa` in a new Secret; returns the
/// Secret's name, the token and the CA the token controller put beside it.
pub(crate) async fn issue_token(
    admin: &Client,
    sa: &str,
    timeout: Duration,
) -> kubepkg_k8s_api::Result<(String, String, Option<String>)> {
    let secrets = admin.namespaced::<KubeSecret>(SA_NAMESPACE);
    let secret: KubeSecret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"generateName": format!("{sa}-token-"), "namespace": SA_NAMESPACE,
                     "labels": {MANAGED_BY: "kubepkg"},
                     "annotations": {"kubernetes.io/service-account.name": sa}},
        "type": "kubernetes.io/service-account-token",
    }))
    .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?;
    let created = secrets.create(&secret).await?;
    let name = created
        .metadata
        .name
        .ok_or_else(|| kubepkg_k8s_api::Error::Internal("created Secret has no name".into()))?;
    let (token, ca) = secrets
        .wait_for(&name, timeout, kubepkg_k8s_api::import::token_of)
        .await?;
    Ok((name, token, ca))
}

/// Asks the cluster what the client's credential may do.
pub(crate) async fn credential_access(
    client: &Client,
) -> kubepkg_k8s_api::Result<CredentialAccess> {
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.kube().clone());
    let checks = futures::future::try_join_all(CredentialAccess::CHECKS.iter().map(
        |(verb, group, resource)| {
            let api = api.clone();
            async move {
                let review: SelfSubjectAccessReview = serde_json::from_value(serde_json::json!({
                    "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource}},
                }))
                .map_err(|e| kubepkg_k8s_api::Error::Internal(e.to_string()))?;
                let answer = api
                    .create(&kube::api::PostParams::default(), &review)
                    .await
                    .map_err(kubepkg_k8s_api::Error::from)?;
                Ok::<_, kubepkg_k8s_api::Error>(AccessCheck {
                    verb: verb.to_string(),
                    group: group.to_string(),
                    resource: resource.to_string(),
                    allowed: answer.status.is_some_and(|s| s.allowed),
                })
            }
        },
    ))
    .await?;
    let username = super::health::whoami(client).await.unwrap_or_default();
    Ok(CredentialAccess { username, checks })
}

/// The `exp` claim of a JWT, if the token is one and has it.
pub(crate) fn jwt_expiry(token: &str) -> Option<jiff::Timestamp> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = v.get("exp")?.as_i64()?;
    jiff::Timestamp::from_second(exp).ok()
}

/// When a resolved admin credential expires: a client certificate's
/// notAfter, or a token's `exp`. A certificate that does not parse is
/// Invalid (it would fail the TLS handshake anyway).
pub(crate) fn credential_expiry(kcfg: &kube::Config) -> Result<Option<jiff::Timestamp>> {
    use secrecy::ExposeSecret as _;
    let auth = &kcfg.auth_info;
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| Error::Invalid("client-certificate-data is not base64".into()))?,
        ),
        (None, Some(path)) => Some(std::fs::read(path).map_err(|e| {
            Error::Invalid(format!("client-certificate {path:?} cannot be read: {e}"))
        })?),
        (None, None) => None,
    };
    let cert_expiry = match pem {
        None => None,
        Some(bytes) => Some(certificate_not_after(&bytes)?),
    };
    let token_expiry = auth
        .token
        .as_ref()
        .and_then(|t| jwt_expiry(t.expose_secret()));
    Ok(match (cert_expiry, token_expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// The notAfter of the first certificate of a PEM bundle.
pub(crate) fn certificate_not_after(pem: &[u8]) -> Result<jiff::Timestamp> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|_| Error::Invalid("the client certificate is not PEM".into()))?;
    let cert = pem
        .parse_x509()
        .map_err(|_| Error::Invalid("the client certificate does not parse".into()))?;
    let secs = cert.validity().not_after.timestamp();
    jiff::Timestamp::from_second(secs)
        .map_err(|_| Error::Invalid("the client certificate's notAfter is out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepkg_util::ErrorKind;

    fn jwt(claims: serde_json::Value) -> String {
        let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            enc(br#"{"alg":"RS256"}"#),
            enc(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn jwt_exp_is_read_and_opaque_tokens_have_none() {
        let t = jwt(serde_json::json!({"exp": 1_900_000_000, "sub": "x"}));
        assert_eq!(jwt_expiry(&t).map(|t| t.as_second()), Some(1_900_000_000));
        assert_eq!(jwt_expiry(&jwt(serde_json::json!({"sub": "x"}))), None);
        assert_eq!(jwt_expiry("abcdef0123456789"), None);
        assert_eq!(jwt_expiry("a.%%%.c"), None);
    }

    #[test]
    fn garbage_certificates_are_invalid() {
        assert_eq!(
            certificate_not_after(b"not a pem").unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
}
