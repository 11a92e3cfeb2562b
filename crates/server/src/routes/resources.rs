//! Namespaces, services, ingresses, configmaps, secrets (values redacted),
//! persistent volume claims and persistent volumes.

use super::{ListParams, json};
use crate::error::{Error, Result};
use crate::extract::Query;
use crate::state::AppState;
#[allow(unused_imports)]
use crate::views::{Envelope, ErrorBody, PageOf};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kubepkg_k8s_api::service::SecretObject;
use kubepkg_util::paging::paginate;
use serde_json::Value;

/// What stands in for every secret value.
pub const REDACTED: &str = "<redacted>";

/// The resources under `/resources/{resource}`.
pub const RESOURCES: [&str; 5] = [
    "services",
    "ingresses",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
];

/// A Secret with every value replaced by [`REDACTED`] (keys kept), and
/// the last-applied annotation, which would repeat the values, dropped.
fn redacted(s: &SecretObject) -> Value {
    let mut k: KubeSecret = s.0.clone();
    if let Some(data) = k.data.as_mut() {
        for v in data.values_mut() {
            *v = k8s_openapi::ByteString(REDACTED.as_bytes().to_vec());
        }
    }
    if let Some(data) = k.string_data.as_mut() {
        for v in data.values_mut() {
            *v = REDACTED.into();
        }
    }
    if let Some(a) = k.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    k.metadata.managed_fields = None;
    let mut v = serde_json::to_value(&k).unwrap_or_default();
    // Show the placeholder as text, not as its base64.
    if let Some(Value::Object(data)) = v.get_mut("data") {
        for val in data.values_mut() {
            *val = Value::String(REDACTED.into());
        }
    }
    v
}

fn unknown(resource: &str) -> Error {
    Error::NotFound(format!(
        "resource {resource:?}; one of: {}",
        RESOURCES.join(", ")
    ))
}

/// The objects of one resource in a namespace, paged (secret values
/// redacted).
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/resources/{resource}",
    tag = "resources", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("resource" = String, Path, description = "services, ingresses, configmaps, secrets or persistentvolumeclaims"),
        ListParams),
    responses((status = 200, description = "One page", body = Envelope<PageOf<Object>>),
        (status = 404, description = "Unknown cluster or resource", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path((cluster, ns, resource)): Path<(String, String, String)>,
    Query(q): Query<ListParams>,
) -> Result<impl IntoResponse> {
    let req = crate::extract::page_request(q.page, q.page_size, state.settings.max_page_size)?;
    if !RESOURCES.contains(&resource.as_str()) {
        return Err(unknown(&resource));
    }
    let client = super::client(&state, &cluster).await?;
    let opts = q.options();
    let items = match resource.as_str() {
        "services" => json(&client.services(&ns).list(&opts).await?),
        "ingresses" => json(&client.ingresses(&ns).list(&opts).await?),
        "configmaps" => json(&client.config_maps(&ns).list(&opts).await?),
        "secrets" => client
            .secrets(&ns)
            .list(&opts)
            .await?
            .iter()
            .map(redacted)
            .collect(),
        _ => json(&client.persistent_volume_claims(&ns).list(&opts).await?),
    };
    Ok(super::ok(PageOf::from(paginate(items, &req))))
}

/// One object (secret values redacted).
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces/{namespace}/resources/{resource}/{name}",
    tag = "resources", params(("cluster" = String, Path), ("namespace" = String, Path),
        ("resource" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The object", body = Envelope<Object>),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path((cluster, ns, resource, name)): Path<(String, String, String, String)>,
) -> Result<impl IntoResponse> {
    if !RESOURCES.contains(&resource.as_str()) {
        return Err(unknown(&resource));
    }
    let client = super::client(&state, &cluster).await?;
    let value = match resource.as_str() {
        "services" => serde_json::to_value(client.services(&ns).get(&name).await?),
        "ingresses" => serde_json::to_value(client.ingresses(&ns).get(&name).await?),
        "configmaps" => serde_json::to_value(client.config_maps(&ns).get(&name).await?),
        "secrets" => Ok(redacted(&client.secrets(&ns).get(&name).await?)),
        _ => serde_json::to_value(client.persistent_volume_claims(&ns).get(&name).await?),
    }
    .unwrap_or_default();
    Ok(super::ok(value))
}

/// The namespaces of a cluster, paged.
#[utoipa::path(get, path = "/clusters/{cluster}/namespaces", tag = "resources",
    params(("cluster" = String, Path), ListParams),
    responses((status = 200, description = "One page", body = Envelope<PageOf<Object>>),
        (status = 404, description = "Unknown cluster", body = ErrorBody)))]
pub async fn namespaces(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<impl IntoResponse> {
    let req = crate::extract::page_request(q.page, q.page_size, state.settings.max_page_size)?;
    let client = super::client(&state, &cluster).await?;
    let items = json(&client.namespaces().list(&q.options()).await?);
    Ok(super::ok(PageOf::from(paginate(items, &req))))
}

/// The persistent volumes of a cluster, paged.
#[utoipa::path(get, path = "/clusters/{cluster}/persistentvolumes", tag = "resources",
    params(("cluster" = String, Path), ListParams),
    responses((status = 200, description = "One page", body = Envelope<PageOf<Object>>),
        (status = 404, description = "Unknown cluster", body = ErrorBody)))]
pub async fn persistent_volumes(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<impl IntoResponse> {
    let req = crate::extract::page_request(q.page, q.page_size, state.settings.max_page_size)?;
    let client = super::client(&state, &cluster).await?;
    let items = json(&client.persistent_volumes().list(&q.options()).await?);
    Ok(super::ok(PageOf::from(paginate(items, &req))))
}
