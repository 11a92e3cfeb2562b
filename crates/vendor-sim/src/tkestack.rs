//! A simulated TKEStack registry API (`registry.tkestack.io/v1` under
//! `/apis/registry.tkestack.io/v1/`): every request's bearer token
//! checked; `Namespace` objects (cluster-scoped, `metadata.name`
//! generated as `rns-…`, the registry name in `spec.name`) kept in memory;
//! `Repository` objects (in the Kubernetes namespace named by their
//! registry namespace's `metadata.name`) made from the images recorded
//! with [`SimHandle::push_image`]. Errors are Kubernetes `Status` objects
//! (`reason`, `message`, `code`), throttling is 429 `TooManyRequests` with
//! `Retry-After`, and every answer carries an `Audit-Id` — as the
//! Kubernetes API conventions and `tkestack/tke` `api/registry/v1/types.go`
//! describe them.

use crate::ack::query_pairs;
use crate::server::{Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve_sync};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The name of this simulator.
pub const NAME: &str = "tkestack";
const PREFIX: &str = "/apis/registry.tkestack.io/v1";

#[derive(Debug, Clone)]
struct Ns {
    name: String,
    visibility: String,
    tenant: String,
    created: String,
}

struct Sim {
    token: String,
    faults: Arc<Mutex<Faults>>,
    namespaces: Mutex<BTreeMap<String, Ns>>,
}

/// Starts a TKEStack registry simulator with a fresh token.
pub async fn start(_options: SimOptions) -> SimHandle {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let sim = Arc::new(Sim {
        token: rand_id(32),
        faults: faults.clone(),
        namespaces: Mutex::new(BTreeMap::new()),
    });
    let (endpoint, task) = serve_sync(sim.clone(), handle).await;
    SimHandle {
        endpoint,
        key_id: String::new(),
        secret: sim.token.clone(),
        region: String::new(),
        faults,
        task,
        owner: Arc::new(crate::kube::Owner::new(NAME)),
    }
}

fn reply(status: u16, body: Value) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let audit = uuid::Uuid::new_v4().to_string();
    let mut r = (st, axum::Json(body)).into_response();
    if let Ok(v) = audit.parse() {
        r.headers_mut().insert("audit-id", v);
    }
    r
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let mut r = reply(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    );
    if code == 429 {
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    }
    r
}

fn ns_json(id: &str, ns: &Ns, repos: usize) -> Value {
    json!({"apiVersion": "registry.tkestack.io/v1", "kind": "Namespace",
           "metadata": {"name": id, "creationTimestamp": ns.created},
           "spec": {"name": ns.name, "displayName": ns.name, "tenantID": ns.tenant,
                    "visibility": ns.visibility},
           "status": {"locked": false, "repoCount": repos}})
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    reply(
        200,
        json!({"apiVersion": "registry.tkestack.io/v1", "kind": kind,
               "metadata": {}, "items": items}),
    )
}

fn handle(sim: &Sim, m: &Method, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Response {
    lock(&sim.faults).requests += 1;
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth.strip_prefix("Bearer ") != Some(sim.token.as_str()) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    match lock(&sim.faults).take() {
        Injected::Throttle => {
            return status(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            );
        }
        Injected::Canned(c) => return c.into_response(),
        Injected::None => {}
    }
    let Some(rest) = uri.path().strip_prefix(PREFIX) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let query: BTreeMap<String, String> = query_pairs(uri).into_iter().collect();
    let images = lock(&sim.faults).images.clone();
    let mut nss = lock(&sim.namespaces);
    let repos_of = |ns: &Ns| -> Vec<(String, BTreeMap<String, String>)> {
        images
            .iter()
            .filter_map(|(r, tags)| {
                let (n, name) = r.split_once('/')?;
                (n == ns.name).then(|| (name.to_string(), tags.clone()))
            })
            .collect()
    };
    let repo_json = |id: &str, ns: &Ns, name: &str, tags: &BTreeMap<String, String>| {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(t, d)| json!({"name": t, "digest": d, "timeCreated": ns.created}))
            .collect();
        json!({"apiVersion": "registry.tkestack.io/v1", "kind": "Repository",
               "metadata": {"name": format!("repo-{}", &kubepkg_platform::provider::sign::sha256_hex(name.as_bytes())[..10]),
                            "namespace": id, "creationTimestamp": ns.created},
               "spec": {"name": name, "namespaceName": ns.name, "tenantID": ns.tenant,
                        "displayName": name, "visibility": ns.visibility},
               "status": {"locked": false, "pullCount": 0, "tags": tags}})
    };
    match (m.as_str(), segs.as_slice()) {
        ("GET", ["namespaces"]) => {
            let want = query
                .get("fieldSelector")
                .and_then(|f| f.strip_prefix("spec.name="))
                .map(str::to_string);
            let items = nss
                .iter()
                .filter(|(_, ns)| want.as_ref().is_none_or(|w| *w == ns.name))
                .map(|(id, ns)| ns_json(id, ns, repos_of(ns).len()))
                .collect();
            list("NamespaceList", items)
        }
        ("POST", ["namespaces"]) => {
            let p: Value = serde_json::from_slice(body).unwrap_or(json!({}));
            let Some(name) = p.pointer("/spec/name").and_then(Value::as_str) else {
                return status(
                    422,
                    "Invalid",
                    "Namespace.registry.tkestack.io is invalid: spec.name: Required value",
                );
            };
            if nss.values().any(|n| n.name == name) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("namespace {name} already exists"),
                );
            }
            let ns = Ns {
                name: name.to_string(),
                visibility: p
                    .pointer("/spec/visibility")
                    .and_then(Value::as_str)
                    .unwrap_or("Private")
                    .to_string(),
                tenant: p
                    .pointer("/spec/tenantID")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .unwrap_or("default")
                    .to_string(),
                created: jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            };
            let id = format!("rns-{}", rand_id(8));
            let out = ns_json(&id, &ns, 0);
            nss.insert(id, ns);
            reply(201, out)
        }
        ("GET", ["namespaces", id]) => match nss.get(*id) {
            Some(ns) => reply(200, ns_json(id, ns, repos_of(ns).len())),
            None => status(
                404,
                "NotFound",
                &format!("namespaces.registry.tkestack.io \"{id}\" not found"),
            ),
        },
        ("DELETE", ["namespaces", id]) => match nss.remove(*id) {
            Some(_) => reply(
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            ),
            None => status(
                404,
                "NotFound",
                &format!("namespaces.registry.tkestack.io \"{id}\" not found"),
            ),
        },
        ("GET", ["namespaces", id, "repositories"]) => match nss.get(*id) {
            Some(ns) => list(
                "RepositoryList",
                repos_of(ns)
                    .iter()
                    .map(|(name, tags)| repo_json(id, ns, name, tags))
                    .collect(),
            ),
            None => status(
                404,
                "NotFound",
                &format!("namespaces.registry.tkestack.io \"{id}\" not found"),
            ),
        },
        ("GET", ["repositories"]) => {
            let items = nss
                .iter()
                .flat_map(|(id, ns)| {
                    repos_of(ns)
                        .iter()
                        .map(|(name, tags)| repo_json(id, ns, name, tags))
                        .collect::<Vec<_>>()
                })
                .collect();
            list("RepositoryList", items)
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}
