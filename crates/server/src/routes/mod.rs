//! The routes, one module per family, and the router that groups them by
//! the least role they need.

pub mod apply;
pub mod clusters;
pub mod objects;
pub mod pods;
pub mod queues;
pub mod registries;
pub mod resources;
pub mod system;
pub mod tokens;
pub mod watch;
pub mod workloads;

use crate::auth::{self, Role};
use crate::error::{Error, Problem, Result};
use crate::middleware;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use kubepkg_platform::api::ApiResponse;
use serde::Serialize;

/// `?page=&page_size=&labels=` of the Kubernetes lists.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// 1-based page.
    pub page: Option<u64>,
    /// Page size.
    pub page_size: Option<u64>,
    /// Label selector.
    pub labels: Option<String>,
}

impl ListParams {
    /// The list options of the label selector.
    pub(crate) fn options(&self) -> kubepkg_k8s_api::ListOptions {
        self.labels
            .clone()
            .map(kubepkg_k8s_api::ListOptions::labels)
            .unwrap_or_default()
    }
}

/// Objects as JSON values (one shape for every kind's page).
pub(crate) fn json<T: Serialize>(items: &[T]) -> Vec<serde_json::Value> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect()
}

/// A success envelope.
pub(crate) fn ok<T: Serialize>(data: T) -> axum::Json<ApiResponse<T>> {
    axum::Json(ApiResponse::ok(data))
}

/// The cached client of `cluster`, checked against the store first, so a
/// cluster another instance deleted or re-credentialed is served
/// accordingly at once (NotFound for an unknown one, Unavailable at once
/// for one known to be down).
pub(crate) async fn client(state: &AppState, cluster: &str) -> Result<kubepkg_k8s_api::Client> {
    if state.settings.rebuild_clients_per_request {
        return Ok(state.platform.uncached_client(cluster).await?);
    }
    Ok(state.platform.fresh_client(cluster).await?)
}

fn with_role(router: Router<AppState>, role: Role) -> Router<AppState> {
    router.route_layer(axum::middleware::from_fn(
        move |params: axum::extract::RawPathParams,
              req: axum::extract::Request,
              next: axum::middleware::Next| { auth::require_role(role, params, req, next) },
    ))
}

async fn no_route() -> Error {
    Error::request(Problem::NoRoute, "no such route; see /openapi.json")
}

async fn wrong_method() -> Error {
    Error::request(
        Problem::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let c = "/clusters/{cluster}";
    let ns = "/clusters/{cluster}/namespaces/{namespace}";
    let viewer = Router::new()
        .route("/openapi.json", get(system::openapi))
        .route("/clusters", get(clusters::list))
        .route(c, get(clusters::get))
        .route(&format!("{c}/summary"), get(clusters::summary))
        .route(&format!("{c}/health"), get(clusters::health))
        .route(&format!("{c}/nodes"), get(clusters::nodes))
        .route(&format!("{c}/namespaces"), get(resources::namespaces))
        .route(
            &format!("{c}/persistentvolumes"),
            get(resources::persistent_volumes),
        )
        .route(&format!("{c}/watch"), get(watch::watch))
        .route(&format!("{ns}/workloads/{{kind}}"), get(workloads::list))
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}"),
            get(workloads::get),
        )
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}/rollout"),
            get(workloads::rollout),
        )
        .route(&format!("{ns}/pods"), get(pods::list))
        .route(&format!("{ns}/pods/{{name}}"), get(pods::get))
        .route(&format!("{ns}/pods/{{name}}/events"), get(pods::events))
        .route(&format!("{ns}/events"), get(pods::namespace_events))
        .route(
            &format!("{ns}/resources/{{resource}}"),
            get(resources::list),
        )
        .route(
            &format!("{ns}/resources/{{resource}}/{{name}}"),
            get(resources::get),
        )
        .route("/search", get(clusters::search))
        .route("/registries", get(registries::list))
        .route(
            "/registries/{registry}/namespaces",
            get(registries::namespaces),
        )
        .route(
            "/registries/{registry}/repositories",
            get(registries::repositories),
        )
        .route("/registries/{registry}/tags", get(registries::tags))
        .route(
            "/registries/{registry}/artifacts",
            get(registries::artifacts),
        )
        .route("/object-stores", get(objects::stores))
        .route("/object-stores/{store}/buckets", get(objects::buckets))
        .route(
            "/object-stores/{store}/buckets/{bucket}/objects",
            get(objects::list),
        )
        .route(
            "/object-stores/{store}/buckets/{bucket}/objects/{*key}",
            get(objects::download),
        );
    let operator = Router::new()
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}"),
            delete(workloads::delete),
        )
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}/scale"),
            post(workloads::scale),
        )
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}/restart"),
            post(workloads::restart),
        )
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}/rollback"),
            post(workloads::rollback),
        )
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}/suspend"),
            post(workloads::suspend),
        )
        .route(
            &format!("{ns}/workloads/{{kind}}/{{name}}/resume"),
            post(workloads::resume),
        )
        .route(&format!("{ns}/pods/{{name}}"), delete(pods::delete))
        .route(&format!("{ns}/pods/{{name}}/logs"), get(pods::logs))
        .route(
            &format!("{c}/nodes/{{node}}/cordon"),
            post(clusters::cordon),
        )
        .route(
            &format!("{c}/nodes/{{node}}/uncordon"),
            post(clusters::uncordon),
        )
        .route(&format!("{c}/nodes/{{node}}/drain"), post(clusters::drain))
        .route(&format!("{c}/apply"), post(apply::apply))
        .route(&format!("{c}/apply/delete"), post(apply::delete))
        .route(
            "/object-stores/{store}/buckets",
            post(objects::create_bucket),
        )
        .route(
            "/object-stores/{store}/buckets/{bucket}/objects/{*key}",
            axum::routing::put(objects::upload).delete(objects::delete),
        )
        .route("/message-queues/{mq}/queues", post(queues::declare))
        .route("/message-queues/{mq}/publish", post(queues::publish))
        .route(
            "/message-queues/{mq}/queues/{queue}/receive",
            post(queues::receive),
        );
    let admin = Router::new()
        .route("/clusters", post(clusters::import))
        .route(c, delete(clusters::delete))
        .route(&format!("{c}/rotate-credentials"), post(clusters::rotate))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::delete))
        .route("/audit", get(tokens::audit))
        .route(
            "/registries/{registry}/namespaces",
            post(registries::create_namespace),
        )
        .route(
            "/registries/{registry}/namespaces/{namespace}",
            delete(registries::delete_namespace),
        );
    let protected = with_role(viewer, Role::Viewer)
        .merge(with_role(operator, Role::Operator))
        .merge(with_role(admin, Role::Admin))
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::audit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let public = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz));
    public
        .merge(protected)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.settings.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::time_limit,
        ))
        .layer(axum::middleware::from_fn(middleware::request_span))
        .with_state(state)
}
