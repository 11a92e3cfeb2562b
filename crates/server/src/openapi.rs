//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::{
    apply, clusters, objects, pods, queues, registries, resources, system, tokens, watch, workloads,
};
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// Adds the bearer scheme every protected route uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Documents, on every operation, the error answers any route can give
/// besides those its handler names: the protocol problems the middleware
/// and extractors answer before a handler runs, the token checks, and the
/// kinds of the platform's response-code table that any backend call can
/// end in. Each is the [`ErrorBody`](crate::views::ErrorBody) envelope.
struct ErrorResponses;

/// (status, when, applies to the operation)
type ErrorRule = (u16, &'static str, fn(&OperationFacts) -> bool);

/// What decides which errors an operation can answer.
struct OperationFacts {
    protected: bool,
    has_path_params: bool,
    has_body: bool,
    mutates: bool,
    system: bool,
}

const ERROR_RULES: &[ErrorRule] = &[
    (
        400,
        "Malformed query, path or body (says what and where)",
        |o| !o.system,
    ),
    (401, "No bearer token, or not a valid one", |o| o.protected),
    (403, "The token lacks the role or the cluster", |o| {
        o.protected
    }),
    (
        404,
        "No such cluster, registry, store, queue or object",
        |o| o.has_path_params,
    ),
    (409, "Conflicts with what exists", |o| o.mutates),
    (413, "The body is larger than the configured limit", |o| {
        o.has_body
    }),
    (
        415,
        "The body's content type is not one the route reads",
        |o| o.has_body,
    ),
    (
        422,
        "Well-formed but not acceptable (names, selectors, paging)",
        |o| !o.system,
    ),
    (
        501,
        "The backend cannot do this (e.g. a registry without robot accounts)",
        |o| !o.system,
    ),
    (
        503,
        "A backend (cluster, registry, store, broker, the store's database) is unavailable",
        |o| !o.system,
    ),
    (504, "The request ran past the server's time limit", |o| {
        !o.system
    }),
];

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let global_security = openapi.security.as_ref().is_some_and(|s| !s.is_empty());
        for (path, item) in openapi.paths.paths.iter_mut() {
            let system = matches!(path.as_str(), "/healthz" | "/readyz" | "/openapi.json");
            for method in [
                HttpMethod::Get,
                HttpMethod::Put,
                HttpMethod::Post,
                HttpMethod::Delete,
                HttpMethod::Patch,
            ] {
                let Some(op) = operation_mut(item, &method) else {
                    continue;
                };
                let facts = OperationFacts {
                    protected: match &op.security {
                        // `security(())` is one empty requirement: the operation is open.
                        Some(s) => s.iter().any(|r| *r != SecurityRequirement::default()),
                        None => global_security,
                    },
                    has_path_params: op
                        .parameters
                        .as_ref()
                        .is_some_and(|ps| ps.iter().any(|p| p.parameter_in == ParameterIn::Path)),
                    has_body: op.request_body.is_some(),
                    mutates: !matches!(method, HttpMethod::Get),
                    system,
                };
                for (status, when, applies) in ERROR_RULES {
                    if !applies(&facts) {
                        continue;
                    }
                    let key = status.to_string();
                    if op.responses.responses.contains_key(&key) {
                        continue;
                    }
                    let response = ResponseBuilder::new()
                        .description(*when)
                        .content(
                            "application/json",
                            Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")))),
                        )
                        .build();
                    op.responses.responses.insert(key, RefOr::T(response));
                }
            }
        }
    }
}

fn operation_mut<'a>(
    item: &'a mut utoipa::openapi::PathItem,
    method: &HttpMethod,
) -> Option<&'a mut Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        _ => None,
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kubepkg-server", description = "The kubepkg platform over HTTP: clusters of any vendor, their workloads and pods, apply, watch, multi-cluster search, image registries, object storage and message queues. Every answer is the envelope {code, message, data}."),
    modifiers(&BearerAuth, &ErrorResponses),
    security(("bearer" = [])),
    paths(
        system::healthz, system::readyz, system::openapi,
        clusters::list, clusters::get, clusters::summary, clusters::health, clusters::nodes,
        clusters::cordon, clusters::uncordon, clusters::drain, clusters::import,
        clusters::delete, clusters::rotate, clusters::search,
        resources::namespaces, resources::persistent_volumes, resources::list, resources::get,
        workloads::list, workloads::get, workloads::delete, workloads::scale, workloads::restart,
        workloads::rollout, workloads::rollback, workloads::suspend, workloads::resume,
        pods::list, pods::get, pods::delete, pods::events, pods::namespace_events, pods::logs,
        apply::apply, apply::delete,
        watch::watch,
        registries::list, registries::namespaces, registries::create_namespace,
        registries::delete_namespace, registries::repositories, registries::tags,
        registries::artifacts,
        objects::stores, objects::buckets, objects::create_bucket, objects::list,
        objects::download, objects::upload, objects::delete,
        queues::declare, queues::publish, queues::receive,
        tokens::list, tokens::create, tokens::delete, tokens::audit,
    ),
    tags(
        (name = "system", description = "Liveness, readiness, this document"),
        (name = "clusters", description = "Import, list, health, credentials"),
        (name = "nodes", description = "Nodes joined with vendor ids; cordon, drain"),
        (name = "workloads", description = "Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs"),
        (name = "pods", description = "Pods, logs, events"),
        (name = "resources", description = "Namespaces, services, ingresses, configmaps, secrets (redacted), volumes"),
        (name = "apply", description = "Multi-document bundles"),
        (name = "watch", description = "Server-Sent Events"),
        (name = "search", description = "One kind across clusters"),
        (name = "registries", description = "Image registries"),
        (name = "objects", description = "Object storage"),
        (name = "queues", description = "Message queues"),
        (name = "tokens", description = "API tokens and the audit log"),
    )
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
