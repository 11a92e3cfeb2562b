//! Image registries: the ones configured, their namespaces (list with
//! repository counts, create with visibility, delete), repositories, tags
//! and artifacts. Namespaces go through the platform's registry providers;
//! artifacts through the registry client itself.

use crate::error::{Error, Result};
use crate::extract::{JsonBody, Query};
use crate::state::AppState;
use crate::views::{Envelope, ErrorBody};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use kubepkg_image_api::registry::Visibility;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A configured registry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryView {
    /// Its name in the config.
    pub name: String,
    /// Provider kind (`distribution`, `harbor`, …).
    pub kind: String,
}

/// The registries this server knows.
#[utoipa::path(get, path = "/registries", tag = "registries",
    responses((status = 200, description = "Registries", body = Envelope<Vec<RegistryView>>)))]
pub async fn list(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let providers = state.platform.providers();
    let mut out = Vec::new();
    for name in providers.registry_names() {
        let kind = providers.registry(&name)?.kind().to_owned();
        out.push(RegistryView { name, kind });
    }
    Ok(super::ok(out))
}

/// Namespaces of a registry, with repository counts where it has them.
#[utoipa::path(get, path = "/registries/{registry}/namespaces", tag = "registries",
    params(("registry" = String, Path)),
    responses((status = 200, description = "Namespaces", body = Envelope<Vec<Object>>),
        (status = 404, description = "Unknown registry", body = ErrorBody)))]
pub async fn namespaces(
    State(state): State<AppState>,
    Path(registry): Path<String>,
) -> Result<impl IntoResponse> {
    let p = state.platform.providers().registry(&registry)?;
    Ok(super::ok(p.list_namespaces().await?))
}

/// A namespace to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamespaceBody {
    /// Name.
    pub name: String,
    /// `public` or `private` (default).
    #[serde(default)]
    #[schema(value_type = String)]
    pub visibility: Visibility,
}

/// Creates a namespace (a Harbor project, a TKE or ACR namespace).
#[utoipa::path(post, path = "/registries/{registry}/namespaces", tag = "registries",
    params(("registry" = String, Path)), request_body = NamespaceBody,
    responses((status = 200, description = "Created", body = Envelope<Object>),
        (status = 409, description = "It exists", body = ErrorBody),
        (status = 501, description = "The registry has no namespaces to create", body = ErrorBody)))]
pub async fn create_namespace(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    JsonBody(body): JsonBody<NamespaceBody>,
) -> Result<impl IntoResponse> {
    let p = state.platform.providers().registry(&registry)?;
    Ok(super::ok(
        p.create_namespace(&body.name, body.visibility).await?,
    ))
}

/// Deletes a namespace.
#[utoipa::path(delete, path = "/registries/{registry}/namespaces/{namespace}", tag = "registries",
    params(("registry" = String, Path), ("namespace" = String, Path)),
    responses((status = 200, description = "Deleted", body = Envelope<String>),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub async fn delete_namespace(
    State(state): State<AppState>,
    Path((registry, namespace)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let p = state.platform.providers().registry(&registry)?;
    p.delete_namespace(&namespace).await?;
    Ok(super::ok(namespace))
}

/// `?namespace=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RepositoryParams {
    /// Only this namespace's repositories.
    pub namespace: Option<String>,
}

/// Repositories, of one namespace or all.
#[utoipa::path(get, path = "/registries/{registry}/repositories", tag = "registries",
    params(("registry" = String, Path), RepositoryParams),
    responses((status = 200, description = "Repositories", body = Envelope<Vec<Object>>),
        (status = 404, description = "Unknown registry", body = ErrorBody)))]
pub async fn repositories(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    Query(q): Query<RepositoryParams>,
) -> Result<impl IntoResponse> {
    let p = state.platform.providers().registry(&registry)?;
    Ok(super::ok(
        p.list_repositories(q.namespace.as_deref()).await?,
    ))
}

/// `?repository=namespace/name`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RepoParams {
    /// The repository (`library/nginx`).
    pub repository: String,
}

/// Tags of a repository.
#[utoipa::path(get, path = "/registries/{registry}/tags", tag = "registries",
    params(("registry" = String, Path), RepoParams),
    responses((status = 200, description = "Tags", body = Envelope<Vec<String>>),
        (status = 404, description = "Unknown registry or repository", body = ErrorBody)))]
pub async fn tags(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    Query(q): Query<RepoParams>,
) -> Result<impl IntoResponse> {
    let p = state.platform.providers().registry(&registry)?;
    Ok(super::ok(p.list_tags(&q.repository).await?))
}

/// Artifacts (manifests with their tags, digest, size) of a repository.
#[utoipa::path(get, path = "/registries/{registry}/artifacts", tag = "registries",
    params(("registry" = String, Path), RepoParams),
    responses((status = 200, description = "Artifacts", body = Envelope<Vec<Object>>),
        (status = 404, description = "Unknown registry or repository", body = ErrorBody)))]
pub async fn artifacts(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    Query(q): Query<RepoParams>,
) -> Result<impl IntoResponse> {
    // The provider must exist: an unknown name is a 404 naming the known ones.
    state.platform.providers().registry(&registry)?;
    let r = kubepkg_image_api::global::named_registry(&registry)
        .map_err(|_| Error::NotFound(format!("registry {registry:?} has no registry client")))?;
    Ok(super::ok(r.list_artifacts(&q.repository).await?))
}
