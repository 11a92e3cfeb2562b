//! A simulated Alibaba Cloud ACK ROA API (version 2015-12-15): every
//! request's ACS3-HMAC-SHA256 signature, date and nonce checked; answers
//! and errors (`{"code", "message", "requestId"}` with an HTTP status) in
//! the shapes of the API reference (paths and fields as in
//! `alibabacloud-go/cs-20151215` `client/client.go`). Every change returns
//! a `task_id`; `GET /tasks/{id}` runs it for a few polls, then applies it.
//!
//! The module is split by concern: this file holds the state, the
//! handle and the request pipeline (signature, version, faults);
//! `auth` the ACS3 checks and URI helpers shared with the other
//! Alibaba Cloud simulator (ACR) and the rest; `clusters` the routes of
//! clusters, node pools and nodes; `tasks` the asynchronous tasks and
//! their effects.

mod auth;
mod clusters;
mod tasks;

pub(crate) use auth::{check_acs3, decode, header, query_pairs};

use crate::kube::KubeTarget;
use crate::server::{Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kubepkg_util::secret::Secret;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use tasks::Task;

/// The name kwok nodes of this simulator are labelled with.
pub const NAME: &str = "ack";

#[derive(Debug, Clone)]
struct Node {
    instance_id: String,
    node_name: String,
    pool: Option<String>,
    labels: BTreeMap<String, String>,
    running: bool,
}

#[derive(Debug, Clone)]
struct Cluster {
    id: String,
    name: String,
    version: String,
    state: &'static str,
    nodes: Vec<Node>,
}

#[derive(Default)]
struct State {
    clusters: BTreeMap<String, Cluster>,
    tasks: BTreeMap<String, Task>,
    nonces: BTreeSet<String>,
}

struct Sim {
    key_id: String,
    secret: Secret<String>,
    region: String,
    options: SimOptions,
    kube: OnceLock<KubeTarget>,
    owner: Arc<crate::kube::Owner>,
    faults: Arc<Mutex<Faults>>,
    state: Mutex<State>,
}

/// Starts an ACK simulator for region `cn-hangzhou` with fresh credentials.
pub async fn start(options: SimOptions) -> SimHandle {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let sim = Arc::new(Sim {
        key_id: format!("LTAIsim{}", rand_id(16)),
        secret: Secret::new(rand_id(30)),
        region: "cn-hangzhou".into(),
        options,
        kube: OnceLock::new(),
        owner: Arc::new(crate::kube::Owner::new(NAME)),
        faults: faults.clone(),
        state: Mutex::new(State::default()),
    });
    let s = sim.clone();
    let app = axum::Router::new().fallback(move |m: Method, uri: Uri, h: HeaderMap, b: Bytes| {
        let s = s.clone();
        async move { handle(&s, &m, &uri, &h, &b).await }
    });
    let (endpoint, task) = serve(app).await;
    SimHandle {
        endpoint,
        key_id: sim.key_id.clone(),
        secret: sim.secret.expose().clone(),
        region: sim.region.clone(),
        faults,
        task,
        owner: sim.owner.clone(),
    }
}

pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"code": code, "message": message, "requestId": uuid::Uuid::new_v4().to_string().to_uppercase(), "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

fn ok(mut body: Value) -> Response {
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "request_id".into(),
            json!(uuid::Uuid::new_v4().to_string().to_uppercase()),
        );
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn handle(sim: &Sim, m: &Method, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Response {
    lock(&sim.faults).requests += 1;
    {
        let mut st = lock(&sim.state);
        if let Err((status, code, message)) =
            check_acs3(&sim.key_id, &sim.secret, &mut st.nonces, m, uri, h, body)
        {
            return error(status, code, message);
        }
    }
    if header(h, "x-acs-version") != "2015-12-15" {
        return error(
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        );
    }
    match lock(&sim.faults).take() {
        Injected::Throttle => {
            return error(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            );
        }
        Injected::Canned(c) => return c.into_response(),
        Injected::None => {}
    }
    let p: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or(json!({}))
    };
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (resp, create, delete) = clusters::route(sim, m.as_str(), &segs, &p);
    let kube = sim
        .kube
        .get_or_init(|| sim.options.kube.clone().unwrap_or_else(KubeTarget::local));
    for n in create {
        sim.owner.create_node(kube, &n.node_name, &n.labels).await;
    }
    for n in delete {
        sim.owner.delete_node(kube, &n).await;
    }
    resp
}

fn s<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str)
}
