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
use base64::Engine as _;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kubepkg_k8s_api::k8s_openapi;
use kubepkg_k8s_api::kube;
use kubepkg_k8s_api::{Client, ClusterConfig, ClusterSource, ImportOptions};
use kubepkg_util::ErrorKind;
use kubepkg_util::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const FIELD_MANAGER: &str = "kubepkg-platform";
const SA_NAMESPACE: &str = "kube-system";
const NODE_READER: &str = "kubepkg:node-reader";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

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
                let kind = match admin_cfg.source {
                    ClusterSource::Token { .. } => CredentialKind::Token,
                    _ => CredentialKind::Kubeconfig,
                };
                (admin_cfg.source.clone(), kind, given_expiry, None)
            }
            Some(role) => {
                let sa = service_account_name(name);
                let opts = ImportOptions {
                    context: None,
                    namespace: SA_NAMESPACE.into(),
                    service_account: sa.clone(),
                    cluster_role: role.into(),
                    token_timeout: req.token_timeout,
                };
                let imported = kubepkg_k8s_api::import::import_with(&admin_cfg, &opts)
                    .await
                    .map_err(k8s(name))?;
                if req.role != ImportRole::ClusterAdmin {
                    bind_node_reader(&admin, &sa).await.map_err(k8s(name))?;
                }
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
                    .map(|der| der_to_pem(der)),
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
                let kind = match admin_cfg.source {
                    ClusterSource::Token { .. } => CredentialKind::Token,
                    _ => CredentialKind::Kubeconfig,
                };
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
                let opts = ImportOptions {
                    context: None,
                    namespace: SA_NAMESPACE.into(),
                    service_account: sa.clone(),
                    cluster_role: cluster_role.into(),
                    token_timeout: Duration::from_secs(30),
                };
                let imported = kubepkg_k8s_api::import::import_with(&admin_cfg, &opts)
                    .await
                    .map_err(k8s(name))?;
                if role != ImportRole::ClusterAdmin {
                    bind_node_reader(&admin, &sa).await.map_err(k8s(name))?;
                }
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

/// Read access to nodes (health counts them) for the service account.
async fn bind_node_reader(admin: &Client, sa: &str) -> kubepkg_k8s_api::Result<()> {
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
async fn token_secrets(admin: &Client, sa: &str) -> kubepkg_k8s_api::Result<Vec<String>> {
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
async fn issue_token(
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
        .wait_for(&name, timeout, |s| {
            let data = s.data.as_ref()?;
            let token = data.get("token").filter(|t| !t.0.is_empty())?;
            let token = String::from_utf8(token.0.clone()).ok()?;
            let ca = data
                .get("ca.crt")
                .and_then(|c| String::from_utf8(c.0.clone()).ok())
                .filter(|c| c.contains("BEGIN CERTIFICATE"));
            Some((token, ca))
        })
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

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
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
fn credential_expiry(kcfg: &kube::Config) -> Result<Option<jiff::Timestamp>> {
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

    #[test]
    fn garbage_certificates_are_invalid() {
        assert_eq!(
            certificate_not_after(b"not a pem").unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
}
