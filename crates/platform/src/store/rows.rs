//! Rows as the database holds them, their conversion to records, and the
//! input checks shared by every record family.

use std::collections::BTreeMap;

use jiff::Timestamp;
use kubepkg_util::ErrorKind;
use kubepkg_util::names;

use super::records::*;
use crate::error::{Error, Result};

/// The current time, truncated to what the store keeps (milliseconds).
pub(crate) fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// A stored timestamp.
pub(crate) fn ts(column: &str, ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| corrupt(format!("{column} is out of range ({ms}): {e}")))
}

/// An optional stored timestamp.
pub(crate) fn opt_ts(column: &str, ms: Option<i64>) -> Result<Option<Timestamp>> {
    ms.map(|ms| ts(column, ms)).transpose()
}

/// A row the store cannot read back: the database was changed by hand or
/// by a newer version.
pub(crate) fn corrupt(message: String) -> Error {
    Error::Store {
        kind: ErrorKind::Internal,
        message: format!("a stored row is unreadable: {message}"),
        source: None,
    }
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Invalid(format!("{what} cannot be stored as JSON: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{column}: {e}")))
}

/// Columns of `clusters`, in [`ClusterRow`]'s order.
pub(crate) const CLUSTER_COLUMNS: &str = "name, display_name, provider, provider_cluster_id, \
     region, api_server, ca_pem, labels, conditions, credential_expires_at, created_at, \
     updated_at, version";

#[derive(sqlx::FromRow)]
pub(crate) struct ClusterRow {
    name: String,
    display_name: String,
    provider: String,
    provider_cluster_id: Option<String>,
    region: Option<String>,
    api_server: String,
    ca_pem: Option<String>,
    labels: String,
    conditions: String,
    credential_expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl TryFrom<ClusterRow> for ClusterRecord {
    type Error = Error;
    fn try_from(r: ClusterRow) -> Result<ClusterRecord> {
        Ok(ClusterRecord {
            labels: from_json("clusters.labels", &r.labels)?,
            conditions: from_json("clusters.conditions", &r.conditions)?,
            credential_expires_at: opt_ts(
                "clusters.credential_expires_at",
                r.credential_expires_at,
            )?,
            created_at: ts("clusters.created_at", r.created_at)?,
            updated_at: ts("clusters.updated_at", r.updated_at)?,
            name: r.name,
            display_name: r.display_name,
            provider: r.provider,
            provider_cluster_id: r.provider_cluster_id,
            region: r.region,
            api_server: r.api_server,
            ca_pem: r.ca_pem,
            version: r.version,
        })
    }
}

/// Columns of `nodes`, in [`NodeRow`]'s order.
pub(crate) const NODE_COLUMNS: &str =
    "cluster, node_name, provider_instance_id, node_pool, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    cluster: String,
    node_name: String,
    provider_instance_id: String,
    node_pool: Option<String>,
    created_at: i64,
}

impl TryFrom<NodeRow> for NodeRecord {
    type Error = Error;
    fn try_from(r: NodeRow) -> Result<NodeRecord> {
        Ok(NodeRecord {
            created_at: ts("nodes.created_at", r.created_at)?,
            cluster: r.cluster,
            node_name: r.node_name,
            provider_instance_id: r.provider_instance_id,
            node_pool: r.node_pool,
        })
    }
}

/// Metadata columns of `credentials` (never the ciphertext), in
/// [`CredentialInfoRow`]'s order.
pub(crate) const CREDENTIAL_INFO_COLUMNS: &str =
    "owner_kind, owner_name, kind, key_id, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct CredentialInfoRow {
    owner_kind: String,
    owner_name: String,
    kind: String,
    key_id: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<CredentialInfoRow> for CredentialInfo {
    type Error = Error;
    fn try_from(r: CredentialInfoRow) -> Result<CredentialInfo> {
        Ok(CredentialInfo {
            owner: owner_from_parts(&r.owner_kind, r.owner_name)?,
            kind: credential_kind_from_str(&r.kind)?,
            key_id: r.key_id,
            created_at: ts("credentials.created_at", r.created_at)?,
            updated_at: ts("credentials.updated_at", r.updated_at)?,
        })
    }
}

/// A whole credential row: metadata and ciphertext.
#[derive(sqlx::FromRow)]
pub(crate) struct SealedRow {
    pub(crate) owner_kind: String,
    pub(crate) owner_name: String,
    pub(crate) kind: String,
    pub(crate) key_id: String,
    pub(crate) nonce: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// Columns of `registries`, in [`RegistryRow`]'s order.
pub(crate) const REGISTRY_COLUMNS: &str =
    "name, provider, endpoint, labels, created_at, updated_at, version";

#[derive(sqlx::FromRow)]
pub(crate) struct RegistryRow {
    name: String,
    provider: String,
    endpoint: String,
    labels: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl TryFrom<RegistryRow> for RegistryRecord {
    type Error = Error;
    fn try_from(r: RegistryRow) -> Result<RegistryRecord> {
        Ok(RegistryRecord {
            labels: from_json("registries.labels", &r.labels)?,
            created_at: ts("registries.created_at", r.created_at)?,
            updated_at: ts("registries.updated_at", r.updated_at)?,
            name: r.name,
            provider: r.provider,
            endpoint: r.endpoint,
            version: r.version,
        })
    }
}

/// Columns of `registry_permissions`, in [`PermissionRow`]'s order.
pub(crate) const PERMISSION_COLUMNS: &str = "registry, namespace, subject, access, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct PermissionRow {
    registry: String,
    namespace: String,
    subject: String,
    access: String,
    created_at: i64,
}

impl TryFrom<PermissionRow> for PermissionRecord {
    type Error = Error;
    fn try_from(r: PermissionRow) -> Result<PermissionRecord> {
        Ok(PermissionRecord {
            access: access_from_str(&r.access)?,
            created_at: ts("registry_permissions.created_at", r.created_at)?,
            registry: r.registry,
            namespace: r.namespace,
            subject: r.subject,
        })
    }
}

/// Columns of `operations`, in [`OperationRow`]'s order.
pub(crate) const OPERATION_COLUMNS: &str = "id, kind, provider, target, state, last_error, \
     vendor_request_id, created_at, updated_at, version";

#[derive(sqlx::FromRow)]
pub(crate) struct OperationRow {
    id: String,
    kind: String,
    provider: String,
    target: String,
    state: String,
    last_error: Option<String>,
    vendor_request_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl TryFrom<OperationRow> for OperationRecord {
    type Error = Error;
    fn try_from(r: OperationRow) -> Result<OperationRecord> {
        Ok(OperationRecord {
            state: state_from_str(&r.state)?,
            created_at: ts("operations.created_at", r.created_at)?,
            updated_at: ts("operations.updated_at", r.updated_at)?,
            id: r.id,
            kind: r.kind,
            provider: r.provider,
            target: r.target,
            last_error: r.last_error,
            vendor_request_id: r.vendor_request_id,
            version: r.version,
        })
    }
}

/// Converts every row, failing on the first unreadable one.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = Error>,
{
    rows.into_iter().map(T::try_from).collect()
}

// ---- enums as stored text ----

/// `(owner_kind, owner_name)` of an owner.
pub(crate) fn owner_parts(owner: &CredentialOwner) -> (&'static str, &str) {
    match owner {
        CredentialOwner::Cluster(n) => ("cluster", n),
        CredentialOwner::Provider(n) => ("provider", n),
        CredentialOwner::Registry(n) => ("registry", n),
    }
}

pub(crate) fn owner_from_parts(kind: &str, name: String) -> Result<CredentialOwner> {
    match kind {
        "cluster" => Ok(CredentialOwner::Cluster(name)),
        "provider" => Ok(CredentialOwner::Provider(name)),
        "registry" => Ok(CredentialOwner::Registry(name)),
        other => Err(corrupt(format!(
            "credentials.owner_kind: unknown value {other:?}"
        ))),
    }
}

/// `kind/name`: the owner as errors and the encryption's associated data
/// name it.
pub(crate) fn owner_label(owner: &CredentialOwner) -> String {
    let (kind, name) = owner_parts(owner);
    format!("{kind}/{name}")
}

pub(crate) fn credential_kind_str(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Token => "token",
        CredentialKind::Kubeconfig => "kubeconfig",
        CredentialKind::ClientCertificate => "client_certificate",
        CredentialKind::AccessKey => "access_key",
        CredentialKind::Login => "login",
    }
}

pub(crate) fn credential_kind_from_str(s: &str) -> Result<CredentialKind> {
    Ok(match s {
        "token" => CredentialKind::Token,
        "kubeconfig" => CredentialKind::Kubeconfig,
        "client_certificate" => CredentialKind::ClientCertificate,
        "access_key" => CredentialKind::AccessKey,
        "login" => CredentialKind::Login,
        other => {
            return Err(corrupt(format!(
                "credentials.kind: unknown value {other:?}"
            )));
        }
    })
}

pub(crate) fn access_str(access: Access) -> &'static str {
    match access {
        Access::Pull => "pull",
        Access::Push => "push",
    }
}

pub(crate) fn access_from_str(s: &str) -> Result<Access> {
    match s {
        "pull" => Ok(Access::Pull),
        "push" => Ok(Access::Push),
        other => Err(corrupt(format!(
            "registry_permissions.access: unknown value {other:?}"
        ))),
    }
}

pub(crate) fn state_str(state: OperationState) -> &'static str {
    match state {
        OperationState::Pending => "pending",
        OperationState::Running => "running",
        OperationState::Succeeded => "succeeded",
        OperationState::Failed => "failed",
    }
}

pub(crate) fn state_from_str(s: &str) -> Result<OperationState> {
    Ok(match s {
        "pending" => OperationState::Pending,
        "running" => OperationState::Running,
        "succeeded" => OperationState::Succeeded,
        "failed" => OperationState::Failed,
        other => {
            return Err(corrupt(format!(
                "operations.state: unknown value {other:?}"
            )));
        }
    })
}

// ---- input checks ----

/// Longest free-text field (names of providers, regions, ids), in bytes.
pub(crate) const MAX_TEXT: usize = 253;
/// Longest URL (API server, registry endpoint), in bytes.
pub(crate) const MAX_URL: usize = 2048;
/// Longest CA bundle, in bytes.
pub(crate) const MAX_PEM: usize = 256 * 1024;
/// Longest secret, in bytes (a kubeconfig with embedded certificates fits).
pub(crate) const MAX_SECRET: usize = 1024 * 1024;
/// Longest stored error message of an operation, in bytes; longer ones are
/// cut at a character boundary.
pub(crate) const MAX_ERROR: usize = 8 * 1024;

/// A cluster or registry name: a DNS-1123 label.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    names::validate_dns1123_label(name).map_err(|e| Error::Invalid(format!("{what} name: {e}")))
}

/// A one-line text: at most `max` bytes, no control characters; required
/// ones must not be empty.
pub(crate) fn check_text(what: &str, value: &str, max: usize, required: bool) -> Result<()> {
    if required && value.is_empty() {
        return Err(Error::Invalid(format!("{what} must not be empty")));
    }
    if value.len() > max {
        return Err(Error::Invalid(format!(
            "{what} must be at most {max} bytes (it has {})",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_opt_text(what: &str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check_text(what, v, max, true))
}

/// A PEM bundle: text of at most [`MAX_PEM`] bytes (line breaks allowed).
pub(crate) fn check_pem(what: &str, value: Option<&str>) -> Result<()> {
    let Some(pem) = value else { return Ok(()) };
    if pem.len() > MAX_PEM {
        return Err(Error::Invalid(format!(
            "{what} must be at most {MAX_PEM} bytes"
        )));
    }
    if pem
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::Invalid(format!(
            "{what} must not contain control characters other than line breaks"
        )));
    }
    Ok(())
}

/// Labels: keys are qualified names, values label values, as in Kubernetes.
pub(crate) fn check_labels(what: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in labels {
        names::validate_qualified_name(key)
            .map_err(|e| Error::Invalid(format!("{what} label key: {e}")))?;
        names::validate_label_value(value)
            .map_err(|e| Error::Invalid(format!("{what} label {key:?} value: {e}")))?;
    }
    Ok(())
}

/// A secret to store: not empty, at most [`MAX_SECRET`] bytes. The message
/// never contains the secret.
pub(crate) fn check_secret(what: &str, secret: &str) -> Result<()> {
    if secret.is_empty() {
        return Err(Error::Invalid(format!("the {what} secret is empty")));
    }
    if secret.len() > MAX_SECRET {
        return Err(Error::Invalid(format!(
            "the {what} secret must be at most {MAX_SECRET} bytes"
        )));
    }
    Ok(())
}

/// The owner of a credential: a cluster or registry name (DNS-1123 label)
/// or a provider name (text).
pub(crate) fn check_owner(owner: &CredentialOwner) -> Result<()> {
    match owner {
        CredentialOwner::Cluster(n) => check_name("cluster", n),
        CredentialOwner::Registry(n) => check_name("registry", n),
        CredentialOwner::Provider(n) => check_text("provider name", n, MAX_TEXT, true),
    }
}

/// An error message cut to [`MAX_ERROR`] bytes at a character boundary.
pub(crate) fn clip_error(message: &str) -> String {
    clip_to(message, MAX_ERROR)
}

/// `message` cut to `max` bytes at a character boundary, marked with `…`.
pub(crate) fn clip_to(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_texts_round_trip() {
        for k in [
            CredentialKind::Token,
            CredentialKind::Kubeconfig,
            CredentialKind::ClientCertificate,
            CredentialKind::AccessKey,
            CredentialKind::Login,
        ] {
            assert_eq!(
                credential_kind_from_str(credential_kind_str(k)).ok(),
                Some(k)
            );
        }
        for s in [
            OperationState::Pending,
            OperationState::Running,
            OperationState::Succeeded,
            OperationState::Failed,
        ] {
            assert_eq!(state_from_str(state_str(s)).ok(), Some(s));
        }
        for a in [Access::Pull, Access::Push] {
            assert_eq!(access_from_str(access_str(a)).ok(), Some(a));
        }
        assert!(credential_kind_from_str("password").is_err());
    }

    #[test]
    fn clips_long_errors_on_char_boundaries() {
        let long = "é".repeat(MAX_ERROR);
        let clipped = clip_error(&long);
        assert!(clipped.len() <= MAX_ERROR + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
        assert_eq!(clip_error("short"), "short");
    }

    #[test]
    fn text_checks() {
        assert!(check_text("x", "", 10, true).is_err());
        assert!(check_text("x", "", 10, false).is_ok());
        assert!(check_text("x", "a\nb", 10, true).is_err());
        assert!(check_text("x", "abcdefghijk", 10, true).is_err());
        assert!(check_pem("ca", Some("-----BEGIN\nabc\n-----END\n")).is_ok());
        assert!(check_pem("ca", Some("a\u{0}b")).is_err());
    }
}
