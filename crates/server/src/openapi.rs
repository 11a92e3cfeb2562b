//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::{
    apply, clusters, objects, pods, queues, registries, resources, system, tokens, watch, workloads,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
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

#[derive(OpenApi)]
#[openapi(
    info(title = "kubepkg-server", description = "The kubepkg platform over HTTP: clusters of any vendor, their workloads and pods, apply, watch, multi-cluster search, image registries, object storage and message queues. Every answer is the envelope {code, message, data}."),
    modifiers(&BearerAuth),
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
