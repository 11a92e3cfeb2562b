//! Importing a cluster, and rotating its credentials.
//!
//! [`Platform::import_cluster`] takes an admin credential — a kubeconfig
//! (file, text or base64), an API server + CA + token, or a provider's
//! kubeconfig — and:
//!
//! 1. checks the name (a DNS-1123 label, not yet stored) and the
//!    credential locally: a malformed kubeconfig, or a client certificate or
//!    token that has expired, is Invalid before anything is sent;
//! 2. probes `GET /version` with it (unreachable → Unavailable, a refused
//!    credential → Unauthorized);
//! 3. creates a dedicated service account, `kubepkg-<name>` in
//!    `kube-system`, bound to the ClusterRole chosen at import —
//!    [`ImportRole::Edit`] by default (workloads and apply; no RBAC, no
//!    namespaces, no node changes), [`ImportRole::View`], or
//!    [`ImportRole::ClusterAdmin`] only when asked — plus read access to
//!    nodes (health needs the ready count), and waits for its token;
//! 4. stores **only that token** (encrypted), never the admin credential,
//!    and reports what it may do ([`CredentialAccess`], from
//!    SelfSubjectAccessReviews) and when it expires.
//!
//! [`ImportRole::AsGiven`] skips the service account and stores the given
//! credential itself, for credentials that are already scoped.
//!
//! Every failing step leaves the store unchanged. Operations the stored
//! role cannot do come back from the cluster as Forbidden.
//!
//! [`Platform::rotate_credentials`] swaps a cluster's credential without
//! a gap: a fresh token is issued and checked, stored and put into the
//! client cache (calls already running finish on the old client), and only
//! then are the old token's Secrets deleted.

use super::Platform;
use crate::store::{ClusterRecord, CredentialKind, NewCluster};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kubepkg_k8s_api::k8s_openapi;
use kubepkg_k8s_api::kube;
use kubepkg_k8s_api::{Client, ClusterConfig, ClusterSource, ImportOptions};
use kubepkg_util::ErrorKind;
use kubepkg_util::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use super::credential::{AccessCheck, CredentialAccess};
use super::credential::{
    SA_NAMESPACE, bind_node_reader, credential_access, credential_expiry, issue_token, jwt_expiry,
    token_secrets,
};

/// Where the admin credential of an import comes from.
///
/// Deserialises from the platform API's JSON (`{"source": "kubeconfig",
/// "text": "…"}`); it is never serialised, so a credential cannot leak
/// through it.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ImportSource {
    /// A kubeconfig file on this machine.
    KubeconfigFile {
        /// The file.
        path: PathBuf,
        /// Context (`None`: the current one).
        #[serde(default)]
        context: Option<String>,
    },
    /// Kubeconfig YAML text.
    Kubeconfig {
        /// The YAML.
        text: Secret<String>,
        /// Context (`None`: the current one).
        #[serde(default)]
        context: Option<String>,
    },
    /// Kubeconfig YAML, base64-encoded (as vendor consoles hand it out).
    KubeconfigBase64 {
        /// The base64 text.
        data: Secret<String>,
        /// Context (`None`: the current one).
        #[serde(default)]
        context: Option<String>,
    },
    /// An API server URL, its CA and a bearer token.
    Token {
        /// `https://host:port`.
        server: String,
        /// The CA, PEM (`None`: the system's roots).
        #[serde(default)]
        ca_pem: Option<String>,
        /// The token.
        token: Secret<String>,
    },
    /// The admin kubeconfig a provider hands out for one of its clusters.
    Provider {
        /// The registered provider name.
        provider: String,
        /// The provider's cluster id.
        cluster_id: String,
    },
}

/// Which credential the platform stores for an imported cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportRole {
    /// A service account bound to `view`: reads only.
    View,
    /// A service account bound to `edit` (the default): workloads and
    /// apply; no RBAC, no namespaces, no node changes.
    #[default]
    Edit,
    /// A service account bound to `cluster-admin` — only when asked.
    ClusterAdmin,
    /// No service account: the given credential is stored as it is.
    AsGiven,
}

impl ImportRole {
    /// The ClusterRole bound, if a service account is created.
    pub fn cluster_role(self) -> Option<&'static str> {
        match self {
            ImportRole::View => Some("view"),
            ImportRole::Edit => Some("edit"),
            ImportRole::ClusterAdmin => Some("cluster-admin"),
            ImportRole::AsGiven => None,
        }
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The platform's name for the cluster (a DNS-1123 label).
    pub name: String,
    /// Display name (`None`: the name).
    pub display_name: Option<String>,
    /// Labels for multi-cluster selection.
    pub labels: BTreeMap<String, String>,
    /// The admin credential.
    pub source: ImportSource,
    /// Which credential to store.
    pub role: ImportRole,
    /// How long to wait for the service account's token.
    pub token_timeout: Duration,
}

impl ImportRequest {
    /// An import of `name` from `source` with the default role (`edit`).
    pub fn new(name: impl Into<String>, source: ImportSource) -> Self {
        ImportRequest {
            name: name.into(),
            display_name: None,
            labels: BTreeMap::new(),
            source,
            role: ImportRole::default(),
            token_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the role.
    pub fn role(mut self, role: ImportRole) -> Self {
        self.role = role;
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
}

/// What an import or a rotation did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The stored record.
    pub cluster: ClusterRecord,
    /// The server version, probed with the stored credential.
    pub version: String,
    /// The service account created (`namespace/name`), unless
    /// [`ImportRole::AsGiven`].
    pub service_account: Option<String>,
    /// What the stored credential may do.
    pub access: CredentialAccess,
    /// When it expires, if it does.
    pub expires_at: Option<jiff::Timestamp>,
    /// Whether that is within the warning window (7 days).
    pub expiring_soon: bool,
}

/// The service account's name for a platform cluster name.
pub fn service_account_name(cluster: &str) -> String {
    format!("kubepkg-{cluster}")
}

fn k8s(name: &str) -> impl Fn(kubepkg_k8s_api::Error) -> Error + '_ {
    move |e| Error::kubernetes(name, e)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot build a Kubernetes object: {e}"))
}

impl Platform {
    async fn admin_source(&self, source: &ImportSource) -> Result<ClusterSource> {
        Ok(match source {
            ImportSource::KubeconfigFile { path, context } => ClusterSource::KubeconfigFile {
                path: path.clone(),
                context: context.clone(),
            },
            ImportSource::Kubeconfig { text, context } => ClusterSource::Kubeconfig {
                text: text.clone(),
                context: context.clone(),
            },
            ImportSource::KubeconfigBase64 { data, context } => ClusterSource::KubeconfigBase64 {
                data: data.clone(),
                context: context.clone(),
            },
            ImportSource::Token {
                server,
                ca_pem,
                token,
            } => ClusterSource::Token {
                server: server.clone(),
                ca_pem: ca_pem.clone(),
                token: token.clone(),
            },
            ImportSource::Provider {
                provider,
                cluster_id,
            } => {
                let p = self.providers().cluster(provider)?;
                ClusterSource::Kubeconfig {
                    text: p.kubeconfig(cluster_id).await?,
                    context: None,
                }
            }
        })
    }

    /// Parses an admin source and rejects expired credentials, locally.
    async fn resolve_admin(
        &self,
        name: &str,
        source: &ImportSource,
    ) -> Result<(ClusterConfig, kube::Config, Option<jiff::Timestamp>)> {
        let cfg = self.client_config(self.admin_source(source).await?);
        cfg.validate().map_err(k8s(name))?;
        let kcfg = cfg.to_kube_config().await.map_err(k8s(name))?;
        let expiry = credential_expiry(&kcfg)?;
        if let Some(at) = expiry
            && at <= jiff::Timestamp::now()
        {
            return Err(Error::Invalid(format!(
                "the credential for cluster {name:?} expired at {at}"
            )));
        }
        Ok((cfg, kcfg, expiry))
    }

    async fn probe_admin(&self, name: &str, cfg: &ClusterConfig) -> Result<Client> {
        let client = Client::connect_named(name, cfg).await.map_err(k8s(name))?;
        let t = self.options().probe_timeout;
        match tokio::time::timeout(t, client.version()).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(e)) => Err(Error::kubernetes(name, e)),
            Err(_) => Err(Error::Unavailable(format!(
                "cluster {name:?} at {} did not answer GET /version within {t:?}",
                client.server()
            ))),
        }
    }

    /// Imports a cluster. See the module docs.
    pub async fn import_cluster(&self, req: ImportRequest) -> Result<ImportReport> {
        let name = req.name.as_str();
        check_name(name)?;
        check_labels(&req.labels)?;
        match self.store().get_cluster(name).await {
            Ok(_) => {
                return Err(Error::AlreadyExists(format!("cluster {name:?}")));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (admin_cfg, kcfg, given_expiry) = self.resolve_admin(name, &req.source).await?;
        let admin = self.probe_admin(name, &admin_cfg).await?;

        let (source, kind, expiry, sa) = match req.role.cluster_role() {
            None => {
                let kind = credential_kind(&admin_cfg.source);
                (admin_cfg.source.clone(), kind, given_expiry, None)
            }
            Some(role) => {
                let sa = service_account_name(name);
                let imported = ensure_service_account(
                    name,
                    &admin_cfg,
                    &admin,
                    role,
                    req.role,
                    req.token_timeout,
                )
                .await?;
                let expiry = jwt_expiry(imported.token.expose());
                let source = ClusterSource::Token {
                    server: imported.server.clone(),
                    ca_pem: imported.ca_pem.clone(),
                    token: imported.token.clone(),
                };
                (
                    source,
                    CredentialKind::Token,
                    expiry,
                    Some(format!("{SA_NAMESPACE}/{sa}")),
                )
            }
        };
        let stored_cfg = self.client_config(source.clone());
        let (client, version) = self.verify(name, &stored_cfg).await?;
        let access = credential_access(&client).await.map_err(k8s(name))?;
        let (api_server, ca_pem) = match &source {
            ClusterSource::Token { server, ca_pem, .. } => (server.clone(), ca_pem.clone()),
            _ => (
                kcfg.cluster_url
                    .to_string()
                    .trim_end_matches('/')
                    .to_string(),
                kcfg.root_cert
                    .as_ref()
                    .and_then(|c| c.first())
                    .map(|der| kubepkg_k8s_api::import::der_to_pem(der)),
            ),
        };
        let (provider, provider_cluster_id) = match &req.source {
            ImportSource::Provider {
                provider,
                cluster_id,
            } => (provider.clone(), Some(cluster_id.clone())),
            _ => (crate::provider::imported::KIND.to_string(), None),
        };
        let secret = Secret::new(serde_json::to_string(&source).map_err(internal)?);
        let record = self
            .store()
            .create_cluster(
                &NewCluster {
                    name: name.to_string(),
                    display_name: req.display_name.clone().unwrap_or_else(|| name.to_string()),
                    provider,
                    provider_cluster_id,
                    region: None,
                    api_server,
                    ca_pem,
                    labels: req.labels.clone(),
                    credential_expires_at: expiry,
                },
                kind,
                &secret,
            )
            .await?;
        self.cluster_manager()
            .add(name, stored_cfg)
            .await
            .map_err(k8s(name))?;
        self.inner.health.mark_up(name);
        tracing::info!(cluster = name, version = %version, service_account = ?sa, "cluster imported");
        Ok(ImportReport {
            expiring_soon: self.expiring_soon(expiry),
            cluster: record,
            version,
            service_account: sa,
            access,
            expires_at: expiry,
        })
    }

    fn expiring_soon(&self, at: Option<jiff::Timestamp>) -> bool {
        let window = i64::try_from(self.options().expiry_warning.as_millis()).unwrap_or(i64::MAX);
        at.is_some_and(|at| at.as_millisecond() - jiff::Timestamp::now().as_millisecond() <= window)
    }

    /// Connects with a credential about to be stored and reads the version.
    async fn verify(&self, name: &str, cfg: &ClusterConfig) -> Result<(Client, String)> {
        let client = Client::connect_named(name, cfg).await.map_err(k8s(name))?;
        let version = client.version().await.map_err(k8s(name))?.git_version;
        Ok((client, version))
    }

    /// What the stored credential of a cluster may do.
    pub async fn credential_access(&self, name: &str) -> Result<CredentialAccess> {
        self.with_client(name, |c| async move { credential_access(&c).await })
            .await
    }

    /// Swaps a cluster's credential without a gap. `source` is an admin
    /// credential (as for an import); with a service-account `role` a fresh
    /// token of the cluster's service account is issued, checked, stored
    /// and put in use before the old token's Secrets are deleted. With
    /// [`ImportRole::AsGiven`] the given credential replaces the stored one.
    pub async fn rotate_credentials(
        &self,
        name: &str,
        source: ImportSource,
        role: ImportRole,
    ) -> Result<ImportReport> {
        let record = self.store().get_cluster(name).await?;
        let (admin_cfg, _kcfg, given_expiry) = self.resolve_admin(name, &source).await?;
        let admin = self.probe_admin(name, &admin_cfg).await?;
        let (new_source, kind, expiry, sa, stale) = match role.cluster_role() {
            None => {
                let kind = credential_kind(&admin_cfg.source);
                (
                    admin_cfg.source.clone(),
                    kind,
                    given_expiry,
                    None,
                    Vec::new(),
                )
            }
            Some(cluster_role) => {
                let sa = service_account_name(name);
                // Make sure the account and its binding exist (reused if so).
                let imported = ensure_service_account(
                    name,
                    &admin_cfg,
                    &admin,
                    cluster_role,
                    role,
                    Duration::from_secs(30),
                )
                .await?;
                let (fresh, token, ca) = issue_token(&admin, &sa, Duration::from_secs(30))
                    .await
                    .map_err(k8s(name))?;
                let stale = token_secrets(&admin, &sa)
                    .await
                    .map_err(k8s(name))?
                    .into_iter()
                    .filter(|s| *s != fresh)
                    .collect::<Vec<_>>();
                let source = ClusterSource::Token {
                    server: imported.server.clone(),
                    ca_pem: ca.or(imported.ca_pem.clone()),
                    token: Secret::new(token),
                };
                let expiry = match &source {
                    ClusterSource::Token { token, .. } => jwt_expiry(token.expose()),
                    _ => None,
                };
                (
                    source,
                    CredentialKind::Token,
                    expiry,
                    Some(format!("{SA_NAMESPACE}/{sa}")),
                    stale,
                )
            }
        };
        let cfg = self.client_config(new_source.clone());
        let (client, version) = self.verify(name, &cfg).await?;
        let access = credential_access(&client).await.map_err(k8s(name))?;
        let (api_server, ca_pem) = match &new_source {
            ClusterSource::Token { server, ca_pem, .. } => {
                (Some(server.clone()), Some(ca_pem.clone()))
            }
            _ => (None, None),
        };
        let secret = Secret::new(serde_json::to_string(&new_source).map_err(internal)?);
        let updated = self
            .store()
            .replace_cluster_credential(
                name,
                record.version,
                kind,
                &secret,
                api_server.as_deref(),
                ca_pem.as_ref().map(|c| c.as_deref()),
                expiry,
            )
            .await?;
        // New callers get the new client from here on; calls in flight
        // finish on the old one, whose token is still valid.
        self.cluster_manager()
            .add(name, cfg)
            .await
            .map_err(k8s(name))?;
        self.inner.health.mark_up(name);
        let secrets = admin.namespaced::<KubeSecret>(SA_NAMESPACE);
        for s in &stale {
            if let Err(e) = secrets
                .delete(s, &kubepkg_k8s_api::DeleteOptions::default())
                .await
            {
                tracing::warn!(cluster = name, secret = %s, error = %e, "old token Secret not deleted");
            }
        }
        tracing::info!(
            cluster = name,
            retired = stale.len(),
            "cluster credentials rotated"
        );
        Ok(ImportReport {
            expiring_soon: self.expiring_soon(expiry),
            cluster: updated,
            version,
            service_account: sa,
            access,
            expires_at: expiry,
        })
    }
}

/// Creates (or reuses) the cluster's service account bound to
/// `cluster_role`, plus node read access below `cluster-admin`, and
/// returns its token.
async fn ensure_service_account(
    name: &str,
    admin_cfg: &ClusterConfig,
    admin: &Client,
    cluster_role: &str,
    role: ImportRole,
    token_timeout: Duration,
) -> Result<kubepkg_k8s_api::ImportedCluster> {
    let sa = service_account_name(name);
    let opts = ImportOptions {
        context: None,
        namespace: SA_NAMESPACE.into(),
        service_account: sa.clone(),
        cluster_role: cluster_role.into(),
        token_timeout,
    };
    let imported = kubepkg_k8s_api::import::import_with(admin_cfg, &opts)
        .await
        .map_err(k8s(name))?;
    if role != ImportRole::ClusterAdmin {
        bind_node_reader(admin, &sa).await.map_err(k8s(name))?;
    }
    Ok(imported)
}

/// What kind of credential a source stored as given holds.
fn credential_kind(source: &ClusterSource) -> CredentialKind {
    match source {
        ClusterSource::Token { .. } => CredentialKind::Token,
        _ => CredentialKind::Kubeconfig,
    }
}

fn check_name(name: &str) -> Result<()> {
    if !kubepkg_util::names::is_dns1123_label(name) {
        return Err(Error::Invalid(format!(
            "cluster name {name:?}: {}",
            kubepkg_util::names::dns1123_label_messages(name).join("; ")
        )));
    }
    // The service account and its token Secret carry the name.
    if service_account_name(name).len() > 63 {
        return Err(Error::Invalid(format!(
            "cluster name {name:?} is too long (at most 55 characters)"
        )));
    }
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in labels {
        if !kubepkg_util::names::is_qualified_name(k) {
            return Err(Error::Invalid(format!(
                "label key {k:?}: {}",
                kubepkg_util::names::qualified_name_messages(k).join("; ")
            )));
        }
        if !kubepkg_util::names::is_label_value(v) {
            return Err(Error::Invalid(format!(
                "label {k:?} value: {}",
                kubepkg_util::names::label_value_messages(v).join("; ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_checked() {
        assert!(check_name("prod-1").is_ok());
        for bad in ["", "Prod", "a_b", "-a", &"x".repeat(56)] {
            assert_eq!(
                check_name(bad).unwrap_err().kind(),
                ErrorKind::Invalid,
                "{bad}"
            );
        }
        let mut l = BTreeMap::new();
        l.insert("env".to_string(), "prod".to_string());
        assert!(check_labels(&l).is_ok());
        l.insert("bad key!".to_string(), "x".to_string());
        assert!(check_labels(&l).is_err());
    }
}
