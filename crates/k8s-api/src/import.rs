//! [`import_kubeconfig`]: turn an admin kubeconfig into the API server URL,
//! CA and a long-lived token of a dedicated service account, so that only
//! those three values need to be stored.
//!
//! The service account and its binding to the chosen ClusterRole are
//! created (server-side apply, so a second import reuses them), a
//! `kubernetes.io/service-account-token` Secret named `<sa>-token` is
//! created when missing, and the call waits until the token controller has
//! filled in the token.
//!
//! An existing `<sa>-token` Secret is reused only when it is that
//! service account's token: of type `kubernetes.io/service-account-token`,
//! annotated `kubernetes.io/service-account.name: <sa>`, and — when it
//! carries a `kubernetes.io/service-account.uid` annotation — bound to the
//! uid of the service account as it exists now (not of an earlier one of
//! the same name). Anything else under that name (an `Opaque` Secret with
//! a `token` key, another account's token) is somebody else's: the import
//! fails with [`Error::AlreadyExists`] naming the Secret, and its data is
//! neither returned nor used. That check comes first, so such an import
//! creates nothing.

use crate::resource::FIELD_MANAGER;
use crate::{Client, ClusterConfig, Error, Result};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Secret as KubeSecret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kubepkg_util::secret::Secret;
use std::time::Duration;

/// Options of [`import_kubeconfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Context of the admin kubeconfig to use (`None`: current).
    pub context: Option<String>,
    /// Namespace of the service account (default `kube-system`).
    pub namespace: String,
    /// Service account name (default `kubepkg-platform`).
    pub service_account: String,
    /// ClusterRole bound to the service account (default `cluster-admin`).
    pub cluster_role: String,
    /// How long to wait for the token to be filled in (default 30 s).
    pub token_timeout: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            context: None,
            namespace: "kube-system".into(),
            service_account: "kubepkg-platform".into(),
            cluster_role: "cluster-admin".into(),
            token_timeout: Duration::from_secs(30),
        }
    }
}

/// What an import yields: everything needed to reach the cluster later.
#[derive(Debug, Clone)]
pub struct ImportedCluster {
    /// API server URL.
    pub server: String,
    /// Cluster CA, PEM (`None` when the kubeconfig relies on public roots).
    pub ca_pem: Option<String>,
    /// The service account's long-lived token.
    pub token: Secret<String>,
    /// Namespace of the service account.
    pub namespace: String,
    /// Name of the service account.
    pub service_account: String,
    /// Server version, probed with the new token.
    pub version: String,
}

impl ImportedCluster {
    /// A [`ClusterConfig`] using the imported token.
    pub fn to_config(&self) -> ClusterConfig {
        ClusterConfig::token(
            &self.server,
            self.ca_pem.clone(),
            self.token.expose().clone(),
        )
    }
}

/// The type of a service-account token Secret.
const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming the service account of a token Secret.
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation the token controller sets to the service account's uid.
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// Whether `secret` is the token Secret of the service account `sa_name`
/// with uid `sa_uid`; otherwise the error to fail the import with.
fn check_token_secret(secret: &KubeSecret, sa_name: &str, sa_uid: Option<&str>) -> Result<()> {
    let ns = secret.metadata.namespace.as_deref().unwrap_or_default();
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let annotations = secret.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    let problem = if secret.type_.as_deref() != Some(TOKEN_SECRET_TYPE) {
        format!(
            "it is of type {:?}, not {TOKEN_SECRET_TYPE}",
            secret.type_.as_deref().unwrap_or("Opaque")
        )
    } else if annotation(SA_NAME_ANNOTATION) != Some(sa_name) {
        match annotation(SA_NAME_ANNOTATION) {
            Some(other) => format!("it belongs to service account {other:?}"),
            None => format!("it has no {SA_NAME_ANNOTATION} annotation"),
        }
    } else if let (Some(uid), Some(sa_uid)) = (annotation(SA_UID_ANNOTATION), sa_uid)
        && uid != sa_uid
    {
        format!(
            "it was issued to an earlier service account {sa_name:?} (uid {uid}, the current one is {sa_uid})"
        )
    } else {
        return Ok(());
    };
    Err(Error::AlreadyExists(format!(
        "Secret {ns}/{name} exists but is not the token of service account {ns}/{sa_name}: \
         {problem}; delete or rename it, or import with another service account name"
    )))
}

/// The token and CA the token controller put into a service-account token
/// Secret, once it has filled them in (`None` before that).
pub fn token_of(secret: &KubeSecret) -> Option<(String, Option<String>)> {
    let data = secret.data.as_ref()?;
    let token = data.get("token").filter(|t| !t.0.is_empty())?;
    let token = String::from_utf8(token.0.clone()).ok()?;
    let ca = data
        .get("ca.crt")
        .and_then(|c| String::from_utf8(c.0.clone()).ok())
        .filter(|c| c.contains("BEGIN CERTIFICATE"));
    Some((token, ca))
}

/// A DER certificate as PEM (64-character lines).
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Imports a cluster from admin kubeconfig YAML. See the module docs.
pub async fn import_kubeconfig(
    kubeconfig_yaml: &str,
    opts: &ImportOptions,
) -> Result<ImportedCluster> {
    let mut cfg = ClusterConfig::kubeconfig_text(kubeconfig_yaml);
    if let Some(c) = &opts.context {
        cfg = cfg.with_context(c);
    }
    import_with(&cfg, opts).await
}

/// [`import_kubeconfig`] from any admin [`ClusterConfig`].
pub async fn import_with(admin: &ClusterConfig, opts: &ImportOptions) -> Result<ImportedCluster> {
    for (what, v) in [
        ("namespace", &opts.namespace),
        ("service account", &opts.service_account),
        ("cluster role", &opts.cluster_role),
    ] {
        if v.is_empty() {
            return Err(Error::invalid(format!("the {what} name must not be empty")));
        }
    }
    let kcfg = admin.to_kube_config().await?;
    let server = kcfg
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let kube_ca = kcfg
        .root_cert
        .as_ref()
        .and_then(|certs| certs.first())
        .map(|der| der_to_pem(der));
    let client = Client::connect_named("import", admin).await?;
    let ns = &opts.namespace;
    let sa_name = &opts.service_account;

    // A Secret in the way fails the import before anything is changed.
    let secret_name = format!("{sa_name}-token");
    let secrets = client.namespaced::<KubeSecret>(ns);
    if let Some(existing) = secrets.get_opt(&secret_name).await? {
        let current = client
            .namespaced::<ServiceAccount>(ns)
            .get_opt(sa_name)
            .await?;
        let uid = current.and_then(|sa| sa.metadata.uid);
        check_token_secret(&existing, sa_name, uid.as_deref())?;
    }

    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": sa_name, "namespace": ns,
                     "labels": {"app.kubernetes.io/managed-by": "kubepkg"}},
    }))
    .map_err(|e| Error::internal(e.to_string()))?;
    let sa = client
        .namespaced::<ServiceAccount>(ns)
        .apply(&sa, FIELD_MANAGER, true)
        .await?;
    let sa_uid = sa.metadata.uid.clone();

    let binding_name = format!("{sa_name}-{}", opts.cluster_role.replace(':', "-"));
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": binding_name, "labels": {"app.kubernetes.io/managed-by": "kubepkg"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": opts.cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
    }))
    .map_err(|e| Error::internal(e.to_string()))?;
    client
        .cluster::<ClusterRoleBinding>()
        .apply(&crb, FIELD_MANAGER, true)
        .await?;

    match secrets.get_opt(&secret_name).await? {
        Some(existing) => check_token_secret(&existing, sa_name, sa_uid.as_deref())?,
        None => {
            let s: KubeSecret = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": ns,
                             "annotations": {SA_NAME_ANNOTATION: sa_name}},
                "type": TOKEN_SECRET_TYPE,
            }))
            .map_err(|e| Error::internal(e.to_string()))?;
            match secrets.create(&s).await {
                Ok(_) => {}
                // Created meanwhile by someone else: checked below.
                Err(e) if e.kind() == kubepkg_util::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }
    let (token, secret_ca) = secrets
        .wait_for(&secret_name, opts.token_timeout, |s| {
            // Checked on every read: a Secret replaced meanwhile is not used.
            if let Err(e) = check_token_secret(s, sa_name, sa_uid.as_deref()) {
                return Some(Err(e));
            }
            token_of(s).map(Ok)
        })
        .await
        .map_err(|e| match e {
            Error::Timeout(_) => Error::Timeout(format!(
                "the token of service account {ns}/{sa_name} was not filled in within {:?} \
                 (is the token controller of kube-controller-manager running?)",
                opts.token_timeout
            )),
            other => other,
        })??;
    let imported = ImportedCluster {
        server,
        ca_pem: secret_ca.or(kube_ca),
        token: Secret::new(token),
        namespace: ns.clone(),
        service_account: sa_name.clone(),
        version: String::new(),
    };
    // Prove the stored credentials work before handing them out. The API
    // server checks a service-account token Secret through its informer
    // cache, so a token minted a moment ago can be refused (401) until the
    // cache has seen the Secret — more so on a loaded server. Unauthorized
    // is retried with backoff until the token timeout; anything else at once.
    let check = Client::connect_named("import-check", &imported.to_config()).await?;
    let deadline = std::time::Instant::now() + opts.token_timeout;
    let mut pause = std::time::Duration::from_millis(100);
    let version = loop {
        match check.version().await {
            Ok(info) => break info.git_version,
            Err(e)
                if e.kind() == kubepkg_util::ErrorKind::Unauthorized
                    && std::time::Instant::now() + pause < deadline =>
            {
                tracing::debug!(service_account = %sa_name, ?pause, "new token not accepted yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(server = %imported.server, service_account = %sa_name, "cluster imported");
    Ok(ImportedCluster {
        version,
        ..imported
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_is_wrapped_as_pem() {
        let pem = der_to_pem(&[1u8; 100]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
    }

    fn secret(type_: Option<&str>, annotations: &[(&str, &str)]) -> KubeSecret {
        let mut s = KubeSecret::default();
        s.metadata.name = Some("sa-token".into());
        s.metadata.namespace = Some("ns".into());
        s.type_ = type_.map(str::to_string);
        s.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        s
    }

    #[test]
    fn only_the_service_accounts_own_token_secret_is_reused() {
        let ok = secret(Some(TOKEN_SECRET_TYPE), &[(SA_NAME_ANNOTATION, "sa")]);
        assert!(check_token_secret(&ok, "sa", Some("u1")).is_ok());
        let bound = secret(
            Some(TOKEN_SECRET_TYPE),
            &[(SA_NAME_ANNOTATION, "sa"), (SA_UID_ANNOTATION, "u1")],
        );
        assert!(check_token_secret(&bound, "sa", Some("u1")).is_ok());
        assert!(check_token_secret(&bound, "sa", None).is_ok());
        for (s, why) in [
            (secret(None, &[(SA_NAME_ANNOTATION, "sa")]), "Opaque"),
            (
                secret(Some("Opaque"), &[(SA_NAME_ANNOTATION, "sa")]),
                "Opaque",
            ),
            (
                secret(Some(TOKEN_SECRET_TYPE), &[]),
                "no kubernetes.io/service-account.name",
            ),
            (
                secret(Some(TOKEN_SECRET_TYPE), &[(SA_NAME_ANNOTATION, "other")]),
                "\"other\"",
            ),
            (
                secret(
                    Some(TOKEN_SECRET_TYPE),
                    &[(SA_NAME_ANNOTATION, "sa"), (SA_UID_ANNOTATION, "u0")],
                ),
                "earlier",
            ),
        ] {
            let err = check_token_secret(&s, "sa", Some("u1")).unwrap_err();
            assert_eq!(err.kind(), kubepkg_util::ErrorKind::AlreadyExists, "{err}");
            let text = err.to_string();
            assert!(text.contains("ns/sa-token") && text.contains(why), "{text}");
        }
    }

    #[tokio::test]
    async fn empty_names_are_rejected_before_any_call() {
        let opts = ImportOptions {
            service_account: String::new(),
            ..Default::default()
        };
        let err = import_kubeconfig("garbage", &opts).await.unwrap_err();
        assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid);
        assert!(err.to_string().contains("service account"));
    }
}
