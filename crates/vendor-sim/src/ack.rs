//! A simulated Alibaba Cloud ACK ROA API (version 2015-12-15): every
//! request's ACS3-HMAC-SHA256 signature, date and nonce checked; answers
//! and errors (`{"code", "message", "requestId"}` with an HTTP status) in
//! the shapes of the API reference (paths and fields as in
//! `alibabacloud-go/cs-20151215` `client/client.go`). Every change returns
//! a `task_id`; `GET /tasks/{id}` runs it for a few polls, then applies it.

use crate::kube::KubeTarget;
use crate::server::{Countdown, Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kubepkg_platform::provider::sign::acs3;
use kubepkg_util::secret::Secret;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

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

#[derive(Debug, Clone)]
enum Effect {
    Create { fails: bool },
    Delete,
    AddNodes(Vec<Node>),
    RemoveNodes(Vec<String>),
}

#[derive(Debug, Clone)]
struct Task {
    cluster: String,
    countdown: Countdown,
    effect: Effect,
    state: &'static str,
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

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Percent-decodes `s` once.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query pairs of a URI, decoded.
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Checks an ACS3-signed request (shared with the ACR simulator).
/// The error is (HTTP status, code, message), for the caller to answer in
/// its API's shape (ROA or RPC).
pub(crate) fn check_acs3(
    key_id: &str,
    secret: &Secret<String>,
    nonces: &mut BTreeSet<String>,
    m: &Method,
    uri: &Uri,
    h: &HeaderMap,
    body: &[u8],
) -> Result<(), (u16, &'static str, &'static str)> {
    let Some(auth) = acs3::parse_authorization(header(h, "authorization")) else {
        return Err((
            400,
            "MissingAuthorization",
            "Authorization is mandatory for this action.",
        ));
    };
    if auth.access_key_id != key_id {
        return Err((
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    let date = header(h, "x-acs-date");
    let fresh = date
        .parse::<jiff::Timestamp>()
        .map(|t| (jiff::Timestamp::now().as_second() - t.as_second()).abs() <= 900)
        .unwrap_or(false);
    if !fresh {
        return Err((
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let nonce = header(h, "x-acs-signature-nonce");
    if nonce.is_empty() || !nonces.insert(nonce.to_string()) {
        return Err((
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    let query = query_pairs(uri);
    let ct = h.get("content-type").and_then(|v| v.to_str().ok());
    let req = acs3::Acs3Request {
        method: m.as_str(),
        host: header(h, "host"),
        path: &decode(uri.path()),
        query: &query,
        content_type: ct,
        action: header(h, "x-acs-action"),
        version: header(h, "x-acs-version"),
        date,
        nonce,
        body,
    };
    if !acs3::verify(&req, &auth, secret) {
        return Err((
            400,
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation.",
        ));
    }
    Ok(())
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
    let (resp, create, delete) = route(sim, m.as_str(), &segs, &p);
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

fn task(st: &mut State, cluster: &str, polls: u32, effect: Effect) -> String {
    let id = format!("T-{}", rand_id(20));
    st.tasks.insert(
        id.clone(),
        Task {
            cluster: cluster.into(),
            countdown: Countdown::new(polls.max(1)),
            effect,
            state: "running",
        },
    );
    id
}

fn new_nodes(
    region: &str,
    pool: Option<&str>,
    labels: &BTreeMap<String, String>,
    n: u64,
    ids: Option<&[String]>,
) -> Vec<Node> {
    (0..n as usize)
        .map(|k| {
            let r = rand_id(6);
            let b = |i: usize| u8::from_str_radix(&r[i..i + 2], 16).unwrap_or(1);
            Node {
                instance_id: ids
                    .and_then(|i| i.get(k).cloned())
                    .unwrap_or_else(|| format!("i-{}", rand_id(18))),
                node_name: format!("{region}.172.{}.{}.{}", b(0) % 32 + 16, b(2), b(4).max(2)),
                pool: pool.map(str::to_string),
                labels: labels.clone(),
                running: false,
            }
        })
        .collect()
}

fn pool_labels(p: &Value) -> BTreeMap<String, String> {
    p.pointer("/kubernetes_config/labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| Some((s(l, "key")?.to_string(), s(l, "value")?.to_string())))
        .collect()
}

type Routed = (Response, Vec<Node>, Vec<String>);

fn route(sim: &Sim, m: &str, segs: &[&str], p: &Value) -> Routed {
    let polls = sim.options.polls_to_ready;
    let mut st = lock(&sim.state);
    let st = &mut *st;
    let none = (Vec::new(), Vec::new());
    let nf = |id: &str| {
        error(
            404,
            "ErrorClusterNotFound",
            &format!("cluster {id} not found"),
        )
    };
    let r = match (m, segs) {
        ("POST", ["clusters"]) => {
            let Some(name) = s(p, "name") else {
                return (
                    error(400, "ErrorParamsInvalid", "name is required"),
                    none.0,
                    none.1,
                );
            };
            let id = format!("c{}", rand_id(32));
            let mut nodes = Vec::new();
            for pool in p
                .get("nodepools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let n = pool
                    .pointer("/scaling_group/desired_size")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                nodes.extend(new_nodes(
                    &sim.region,
                    Some(&format!("np{}", rand_id(30))),
                    &pool_labels(pool),
                    n,
                    None,
                ));
            }
            st.clusters.insert(
                id.clone(),
                Cluster {
                    id: id.clone(),
                    name: name.into(),
                    version: s(p, "kubernetes_version")
                        .unwrap_or("1.30.1-aliyun.1")
                        .into(),
                    state: "initial",
                    nodes: nodes.clone(),
                },
            );
            let fails = lock(&sim.faults).take_fail_create();
            let t = task(st, &id, polls, Effect::Create { fails });
            ok(json!({"cluster_id": id, "task_id": t}))
        }
        ("GET", ["api", "v1", "clusters"]) => {
            let list: Vec<Value> = st.clusters.values().map(cluster_json).collect();
            ok(
                json!({"clusters": list, "page_info": {"page_number": 1, "page_size": 100, "total_count": list.len()}}),
            )
        }
        ("GET", ["tasks", t]) => match st.tasks.get_mut(*t) {
            None => error(404, "ErrorTaskNotFound", "task not found"),
            Some(task) => {
                let mut apply = None;
                if task.state == "running" && task.countdown.tick() {
                    apply = Some((task.cluster.clone(), task.effect.clone()));
                }
                let (c, d) = match apply {
                    Some((cid, effect)) => apply_effect(st, t, &cid, effect),
                    None => (Vec::new(), Vec::new()),
                };
                let task = &st.tasks[*t];
                let mut body =
                    json!({"task_id": t, "state": task.state, "cluster_id": task.cluster});
                if task.state == "fail" {
                    body["error"] = json!({"code": "ErrorCreateCluster", "message": "cluster creation failed: the simulated control plane did not come up"});
                }
                return (ok(body), c, d);
            }
        },
        ("GET", ["clusters", id])
            if st.clusters.get(*id).is_some_and(|c| c.state == "deleting") =>
        {
            // A deletion runs whether or not its task is asked about.
            let id = id.to_string();
            let (c, d) = advance(st, &id);
            let r = match st.clusters.get(&id) {
                Some(cl) => ok(cluster_json(cl)),
                None => nf(&id),
            };
            return (r, c, d);
        }
        (_, ["clusters", id, rest @ ..]) | (_, ["k8s", id, rest @ ..]) => {
            let id = id.to_string();
            let Some(c) = st.clusters.get_mut(&id) else {
                return (nf(&id), none.0, none.1);
            };
            match (m, segs[0], rest) {
                ("GET", "clusters", []) => ok(cluster_json(c)),
                ("DELETE", "clusters", []) => {
                    c.state = "deleting";
                    // Its kwok nodes go now: a deleted cluster never leaves
                    // them behind, polled to the end or not.
                    let gone: Vec<String> = c
                        .nodes
                        .iter_mut()
                        .filter(|n| n.running)
                        .map(|n| {
                            n.running = false;
                            n.node_name.clone()
                        })
                        .collect();
                    let t = task(st, &id, sim.options.polls_to_gone, Effect::Delete);
                    return (
                        ok(json!({"cluster_id": id, "task_id": t})),
                        Vec::new(),
                        gone,
                    );
                }
                ("GET", "k8s", ["user_config"]) => {
                    if c.state != "running" {
                        return (
                            error(400, "ErrorClusterState", "the cluster is not running"),
                            none.0,
                            none.1,
                        );
                    }
                    let kube = sim
                        .kube
                        .get_or_init(|| sim.options.kube.clone().unwrap_or_else(KubeTarget::local));
                    ok(
                        json!({"config": kube.kubeconfig(&id), "expiration": "2027-12-01T00:00:00Z"}),
                    )
                }
                ("GET", "clusters", ["nodes"]) => {
                    let list: Vec<Value> = c.nodes.iter().map(|n| json!({
                        "instance_id": n.instance_id, "node_name": if n.running { n.node_name.clone() } else { String::new() },
                        "nodepool_id": n.pool.clone().unwrap_or_default(), "state": if n.running { "running" } else { "initial" },
                        "instance_type": "ecs.g7.large", "node_status": if n.running { "Ready" } else { "Unknown" },
                    })).collect();
                    ok(
                        json!({"nodes": list, "page": {"page_number": 1, "page_size": 100, "total_count": list.len()}}),
                    )
                }
                ("POST", "clusters", ["nodepools"]) => {
                    let np = format!("np{}", rand_id(30));
                    let n = p
                        .pointer("/scaling_group/desired_size")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let nodes = new_nodes(&sim.region, Some(&np), &pool_labels(p), n, None);
                    c.nodes.extend(nodes.clone());
                    let t = task(st, &id, polls, Effect::AddNodes(nodes));
                    ok(json!({"nodepool_id": np, "task_id": t}))
                }
                ("POST", "clusters", ["attach"]) => {
                    let ids: Vec<String> = p
                        .get("instances")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default();
                    let nodes = new_nodes(
                        &sim.region,
                        None,
                        &BTreeMap::new(),
                        ids.len() as u64,
                        Some(&ids),
                    );
                    c.nodes.extend(nodes.clone());
                    let list: Vec<Value> = ids
                        .iter()
                        .map(|i| json!({"code": "200", "instanceId": i, "message": "successful"}))
                        .collect();
                    let t = task(st, &id, polls, Effect::AddNodes(nodes));
                    ok(json!({"list": list, "task_id": t}))
                }
                ("POST", "clusters", ["nodes", "remove"]) => {
                    let names: Vec<String> = p
                        .get("nodes")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default();
                    let t = task(
                        st,
                        &id,
                        sim.options.polls_to_gone,
                        Effect::RemoveNodes(names.clone()),
                    );
                    return (
                        ok(json!({"cluster_id": id, "task_id": t})),
                        Vec::new(),
                        names,
                    );
                }
                ("PUT", "clusters", ["nodepools", np]) => {
                    let np = np.to_string();
                    let want = p
                        .pointer("/scaling_group/desired_size")
                        .and_then(Value::as_u64)
                        .unwrap_or(0) as usize;
                    let have: Vec<Node> = c
                        .nodes
                        .iter()
                        .filter(|n| n.pool.as_deref() == Some(np.as_str()))
                        .cloned()
                        .collect();
                    let labels = have.first().map(|n| n.labels.clone()).unwrap_or_default();
                    let (add, rm) = if want > have.len() {
                        let nodes = new_nodes(
                            &sim.region,
                            Some(&np),
                            &labels,
                            (want - have.len()) as u64,
                            None,
                        );
                        c.nodes.extend(nodes.clone());
                        (nodes, Vec::new())
                    } else {
                        (
                            Vec::new(),
                            have.iter()
                                .skip(want)
                                .map(|n| n.node_name.clone())
                                .collect(),
                        )
                    };
                    let t = if rm.is_empty() {
                        task(st, &id, polls, Effect::AddNodes(add))
                    } else {
                        task(st, &id, polls, Effect::RemoveNodes(rm.clone()))
                    };
                    return (ok(json!({"task_id": t})), Vec::new(), rm);
                }
                _ => error(
                    404,
                    "InvalidAction.NotFound",
                    "the simulator has no such API",
                ),
            }
        }
        _ => error(
            404,
            "InvalidAction.NotFound",
            "the simulator has no such API",
        ),
    };
    (r, none.0, none.1)
}

fn cluster_json(c: &Cluster) -> Value {
    json!({
        "cluster_id": c.id, "name": c.name, "state": c.state, "current_version": c.version,
        "region_id": "cn-hangzhou", "cluster_type": "ManagedKubernetes", "size": c.nodes.len(),
        "master_url": json!({"intranet_api_server_endpoint": format!("https://{}.cn-hangzhou.sim:6443", c.id)}).to_string(),
    })
}

/// One poll of every running task of cluster `cid`.
fn advance(st: &mut State, cid: &str) -> (Vec<Node>, Vec<String>) {
    let due: Vec<(String, Effect)> = st
        .tasks
        .iter_mut()
        .filter(|(_, t)| t.cluster == cid && t.state == "running")
        .filter_map(|(id, t)| t.countdown.tick().then(|| (id.clone(), t.effect.clone())))
        .collect();
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    for (t, effect) in due {
        let (c, d) = apply_effect(st, &t, cid, effect);
        create.extend(c);
        delete.extend(d);
    }
    (create, delete)
}

fn apply_effect(st: &mut State, t: &str, cid: &str, effect: Effect) -> (Vec<Node>, Vec<String>) {
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let mut state = "success";
    match effect {
        Effect::Create { fails } => {
            if let Some(c) = st.clusters.get_mut(cid) {
                if fails {
                    c.state = "failed";
                    state = "fail";
                } else {
                    c.state = "running";
                    for n in &mut c.nodes {
                        n.running = true;
                        create.push(n.clone());
                    }
                }
            }
        }
        Effect::Delete => {
            if let Some(c) = st.clusters.remove(cid) {
                delete.extend(
                    c.nodes
                        .iter()
                        .filter(|n| n.running)
                        .map(|n| n.node_name.clone()),
                );
            }
        }
        Effect::AddNodes(nodes) => {
            if let Some(c) = st.clusters.get_mut(cid) {
                for n in &mut c.nodes {
                    if nodes.iter().any(|x| x.instance_id == n.instance_id) {
                        n.running = true;
                        create.push(n.clone());
                    }
                }
            }
        }
        Effect::RemoveNodes(names) => {
            if let Some(c) = st.clusters.get_mut(cid) {
                c.nodes.retain(|n| !names.contains(&n.node_name));
                delete.extend(names);
            }
        }
    }
    if let Some(task) = st.tasks.get_mut(t) {
        task.state = state;
    }
    (create, delete)
}
