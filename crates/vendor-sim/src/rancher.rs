//! A simulated Rancher v3 API: every request's bearer API key checked,
//! collections as `{"type": "collection", "data", "pagination"}` and
//! errors in norman's shape (`{"type": "error", "status", "code",
//! "message"}`), as the Rancher v3 API guide and `rancher/norman`
//! document them.

use crate::kube::KubeTarget;
use crate::server::{Countdown, Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The name kwok nodes of this simulator are labelled with.
pub const NAME: &str = "rancher";

#[derive(Debug, Clone)]
struct Node {
    id: String,
    name: String,
    pool: String,
    labels: BTreeMap<String, String>,
    ready: Countdown,
    removing: Option<Countdown>,
    created: bool,
}

#[derive(Debug, Clone)]
struct Cluster {
    id: String,
    name: String,
    ready: Countdown,
    fails: bool,
    removing: Option<Countdown>,
    pools: BTreeMap<String, (String, BTreeMap<String, String>)>,
    nodes: Vec<Node>,
}

impl Cluster {
    fn state(&self) -> &'static str {
        match (&self.removing, self.ready.left, self.fails) {
            (Some(_), _, _) => "removing",
            (None, n, _) if n > 0 => "provisioning",
            (None, _, true) => "error",
            _ => "active",
        }
    }
}

struct Sim {
    token: String,
    options: SimOptions,
    kube: OnceLock<KubeTarget>,
    owner: Arc<crate::kube::Owner>,
    faults: Arc<Mutex<Faults>>,
    clusters: Mutex<BTreeMap<String, Cluster>>,
}

/// Starts a Rancher simulator with a fresh API key.
pub async fn start(options: SimOptions) -> SimHandle {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let sim = Arc::new(Sim {
        token: format!("token-{}:{}", rand_id(5), rand_id(32)),
        options,
        kube: OnceLock::new(),
        owner: Arc::new(crate::kube::Owner::new(NAME)),
        faults: faults.clone(),
        clusters: Mutex::new(BTreeMap::new()),
    });
    let s = sim.clone();
    let app = axum::Router::new().fallback(move |m: Method, uri: Uri, h: HeaderMap, b: Bytes| {
        let s = s.clone();
        async move { handle(&s, &m, &uri, &h, &b).await }
    });
    let (endpoint, task) = serve(app).await;
    SimHandle {
        endpoint,
        key_id: String::new(),
        secret: sim.token.clone(),
        region: String::new(),
        faults,
        task,
        owner: sim.owner.clone(),
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        st,
        axum::Json(json!({"type": "error", "status": status, "code": code, "message": message})),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn cluster_json(c: &Cluster) -> Value {
    let mut v = json!({"id": c.id, "type": "cluster", "name": c.name, "state": c.state(),
           "version": {"gitVersion": "v1.30.4"}, "driver": "imported", "transitioning": "no"});
    if c.state() == "error" {
        v["transitioning"] = json!("error");
        v["transitioningMessage"] =
            json!("cluster provisioning failed: the simulated control plane did not come up");
    }
    v
}

async fn handle(sim: &Sim, m: &Method, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Response {
    lock(&sim.faults).requests += 1;
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth.strip_prefix("Bearer ") != Some(sim.token.as_str()) {
        return error(401, "Unauthorized", "must authenticate");
    }
    match lock(&sim.faults).take() {
        Injected::Throttle => return error(429, "TooManyRequests", "too many requests, slow down"),
        Injected::Canned(c) => return c.into_response(),
        Injected::None => {}
    }
    let p: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let query = crate::ack::query_pairs(uri);
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let segs: Vec<String> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let polls = sim.options.polls_to_ready.max(1);
    let gone = sim.options.polls_to_gone.max(1);
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let resp = {
        let mut clusters = lock(&sim.clusters);
        match (m.as_str(), segs.as_slice()) {
            ("POST", ["v3", "clusters"]) => {
                let Some(name) = p.get("name").and_then(Value::as_str) else {
                    return error(422, "MissingRequired", "name is required");
                };
                let id = format!("c-{}", &rand_id(5));
                let fails = lock(&sim.faults).take_fail_create();
                let c = Cluster {
                    id: id.clone(),
                    name: name.into(),
                    ready: Countdown::new(polls),
                    fails,
                    removing: None,
                    pools: BTreeMap::new(),
                    nodes: Vec::new(),
                };
                let body = cluster_json(&c);
                clusters.insert(id, c);
                ok(body)
            }
            ("GET", ["v3", "clusters"]) => {
                let data: Vec<Value> = clusters.values().map(cluster_json).collect();
                ok(
                    json!({"type": "collection", "data": data, "pagination": {"limit": 1000, "total": data.len()}}),
                )
            }
            ("GET", ["v3", "clusters", id]) => {
                let id = id.to_string();
                let missing = || {
                    error(
                        404,
                        "NotFound",
                        &format!("clusters.management.cattle.io \"{id}\" not found"),
                    )
                };
                let gone_now = clusters.get_mut(&id).map(|c| match c.removing.as_mut() {
                    Some(r) => r.tick(),
                    None => {
                        c.ready.tick();
                        false
                    }
                });
                match gone_now {
                    None => missing(),
                    Some(true) => {
                        if let Some(c) = clusters.remove(&id) {
                            delete.extend(
                                c.nodes.iter().filter(|n| n.created).map(|n| n.name.clone()),
                            );
                        }
                        missing()
                    }
                    Some(false) => match clusters.get(&id) {
                        Some(c) => ok(cluster_json(c)),
                        None => missing(),
                    },
                }
            }
            ("DELETE", ["v3", "clusters", id]) => match clusters.get_mut(*id) {
                None => error(404, "NotFound", "cluster not found"),
                Some(c) => {
                    c.removing = Some(Countdown::new(gone));
                    // Its kwok nodes go now, polled to the end or not.
                    for n in &mut c.nodes {
                        release(n, &mut delete);
                    }
                    ok(cluster_json(c))
                }
            },
            ("POST", ["v3", "clusters", id])
                if q("action").as_deref() == Some("generateKubeconfig") =>
            {
                match clusters.get(*id) {
                    None => error(404, "NotFound", "cluster not found"),
                    Some(c) if c.state() != "active" => {
                        error(422, "ActionNotAvailable", "the cluster is not active")
                    }
                    Some(c) => ok(
                        json!({"type": "generateKubeConfigOutput", "config": kube(sim).kubeconfig(&c.id)}),
                    ),
                }
            }
            ("POST", ["v3", "nodepools"]) => {
                let cid = p
                    .get("clusterId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let Some(c) = clusters.get_mut(&cid) else {
                    return error(422, "InvalidReference", "clusterId does not exist");
                };
                let np = format!("{cid}:np-{}", rand_id(5));
                let prefix = p
                    .get("hostnamePrefix")
                    .and_then(Value::as_str)
                    .unwrap_or("node-")
                    .to_string();
                let labels: BTreeMap<String, String> = p
                    .get("labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                c.pools.insert(np.clone(), (prefix, labels));
                let n = p.get("quantity").and_then(Value::as_u64).unwrap_or(0) as usize;
                add_nodes(c, &np, n, polls);
                ok(json!({"id": np, "type": "nodePool", "clusterId": cid, "quantity": n}))
            }
            ("PUT", ["v3", "nodepools", np]) => {
                let np = np.to_string();
                let cid = np.split(':').next().unwrap_or_default().to_string();
                let Some(c) = clusters.get_mut(&cid).filter(|c| c.pools.contains_key(&np)) else {
                    return error(404, "NotFound", "node pool not found");
                };
                let want = p.get("quantity").and_then(Value::as_u64).unwrap_or(0) as usize;
                let have = c
                    .nodes
                    .iter()
                    .filter(|n| n.pool == np && n.removing.is_none())
                    .count();
                if want > have {
                    add_nodes(c, &np, want - have, polls);
                } else {
                    for n in c
                        .nodes
                        .iter_mut()
                        .filter(|n| n.pool == np && n.removing.is_none())
                        .skip(want)
                    {
                        n.removing = Some(Countdown::new(gone));
                        release(n, &mut delete);
                    }
                }
                ok(json!({"id": np, "type": "nodePool", "quantity": want}))
            }
            ("GET", ["v3", "nodes"]) => {
                let cid = q("clusterId").unwrap_or_default();
                let mut data = Vec::new();
                if let Some(c) = clusters.get_mut(&cid) {
                    let active = c.state() == "active";
                    let mut gone_now = Vec::new();
                    for n in &mut c.nodes {
                        if let Some(r) = n.removing.as_mut() {
                            if r.tick() {
                                if n.created {
                                    delete.push(n.name.clone());
                                }
                                gone_now.push(n.id.clone());
                                continue;
                            }
                        } else if active && n.ready.tick() && !n.created {
                            n.created = true;
                            create.push((n.name.clone(), n.labels.clone()));
                        }
                        let state = if n.removing.is_some() {
                            "removing"
                        } else if n.created {
                            "active"
                        } else {
                            "provisioning"
                        };
                        data.push(json!({"id": n.id, "type": "node", "nodeName": if n.created { n.name.clone() } else { String::new() },
                                         "hostname": n.name, "nodePoolId": n.pool, "clusterId": cid, "state": state}));
                    }
                    c.nodes.retain(|n| !gone_now.contains(&n.id));
                }
                ok(
                    json!({"type": "collection", "data": data, "pagination": {"limit": 1000, "total": data.len()}}),
                )
            }
            ("DELETE", ["v3", "nodes", id]) => {
                let id = id.to_string();
                let node = clusters
                    .values_mut()
                    .flat_map(|c| c.nodes.iter_mut())
                    .find(|n| n.id == id);
                match node {
                    None => error(
                        404,
                        "NotFound",
                        &format!("nodes.management.cattle.io \"{id}\" not found"),
                    ),
                    Some(n) => {
                        n.removing = Some(Countdown::new(gone));
                        release(n, &mut delete);
                        ok(json!({"id": id, "type": "node", "state": "removing"}))
                    }
                }
            }
            _ => error(404, "NotFound", "the simulator has no such resource"),
        }
    };
    for (name, labels) in create {
        sim.owner.create_node(kube(sim), &name, &labels).await;
    }
    for name in delete {
        sim.owner.delete_node(kube(sim), &name).await;
    }
    resp
}

fn kube(sim: &Sim) -> &KubeTarget {
    sim.kube
        .get_or_init(|| sim.options.kube.clone().unwrap_or_else(KubeTarget::local))
}

fn add_nodes(c: &mut Cluster, np: &str, n: usize, polls: u32) {
    let Some((prefix, labels)) = c.pools.get(np).cloned() else {
        return;
    };
    for _ in 0..n {
        c.nodes.push(Node {
            id: format!("{}:m-{}", c.id, rand_id(5)),
            name: format!("{}-{prefix}{}", c.id, rand_id(5)),
            pool: np.to_string(),
            labels: labels.clone(),
            ready: Countdown::new(polls),
            removing: None,
            created: false,
        });
    }
}

/// A removed (or deleted) node's kwok node goes at once.
fn release(n: &mut Node, delete: &mut Vec<String>) {
    if n.created {
        n.created = false;
        delete.push(n.name.clone());
    }
}
