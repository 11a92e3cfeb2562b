//! A simulated Tencent Cloud TKE API 3.0 (`tke`, version 2018-05-25):
//! `POST /` with `X-TC-Action`, every request's TC3-HMAC-SHA256 signature
//! checked, answers and errors in the `{"Response": {…, "RequestId"}}`
//! shape of the API reference (field names as in
//! `TencentCloud/tencentcloud-sdk-go` `tencentcloud/tke/v20180525/models.go`).
//!
//! Supported actions: CreateCluster, DescribeClusters, DeleteCluster,
//! DescribeClusterKubeconfig, DescribeClusterInstances,
//! AddExistedInstances, CreateClusterNodePool,
//! ModifyNodePoolDesiredCapacityAboutAsg, DeleteClusterInstances.

use crate::kube::KubeTarget;
use crate::server::{Countdown, Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kubepkg_platform::provider::sign::tc3;
use kubepkg_util::secret::Secret;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The name kwok nodes of this simulator are labelled with.
pub const NAME: &str = "tke";

#[derive(Debug, Clone)]
struct Instance {
    id: String,
    lan_ip: String,
    pool: Option<String>,
    labels: BTreeMap<String, String>,
    ready: Countdown,
    removing: Option<Countdown>,
    node_created: bool,
}

#[derive(Debug, Clone)]
struct Cluster {
    id: String,
    name: String,
    version: String,
    ready: Countdown,
    fails: bool,
    deleting: Option<Countdown>,
    instances: Vec<Instance>,
    pools: BTreeMap<String, (String, BTreeMap<String, String>)>,
}

impl Cluster {
    fn status(&self) -> &'static str {
        if self.deleting.is_some() {
            "Deleting"
        } else if self.ready.left > 0 {
            "Creating"
        } else if self.fails {
            "Abnormal"
        } else {
            "Running"
        }
    }
}

struct Sim {
    secret_id: String,
    secret_key: Secret<String>,
    region: String,
    options: SimOptions,
    kube: OnceLock<KubeTarget>,
    owner: Arc<crate::kube::Owner>,
    faults: Arc<Mutex<Faults>>,
    clusters: Mutex<BTreeMap<String, Cluster>>,
}

impl Sim {
    fn kube(&self) -> &KubeTarget {
        self.kube
            .get_or_init(|| self.options.kube.clone().unwrap_or_else(KubeTarget::local))
    }
}

/// Starts a TKE simulator for region `ap-guangzhou` with fresh
/// credentials.
pub async fn start(options: SimOptions) -> SimHandle {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let sim = Arc::new(Sim {
        secret_id: format!("AKIDsim{}", rand_id(24)),
        secret_key: Secret::new(rand_id(32)),
        region: "ap-guangzhou".into(),
        options,
        kube: OnceLock::new(),
        owner: Arc::new(crate::kube::Owner::new(NAME)),
        faults: faults.clone(),
        clusters: Mutex::new(BTreeMap::new()),
    });
    let s = sim.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move { handle(&s, &headers, &body).await }
        }),
    );
    let (endpoint, task) = serve(app).await;
    SimHandle {
        endpoint,
        key_id: sim.secret_id.clone(),
        secret: sim.secret_key.expose().clone(),
        region: sim.region.clone(),
        faults,
        task,
        owner: sim.owner.clone(),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn answer(mut body: Value) -> Response {
    let rid = uuid::Uuid::new_v4().to_string();
    if let Some(o) = body.as_object_mut() {
        o.insert("RequestId".into(), json!(rid));
    }
    (StatusCode::OK, axum::Json(json!({"Response": body}))).into_response()
}

fn error(code: &str, message: &str) -> Response {
    answer(json!({"Error": {"Code": code, "Message": message}}))
}

// The error is the answer to send back; a simulator has no hot path.
#[allow(clippy::result_large_err)]
fn check(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let Some(auth) = tc3::parse_authorization(header(headers, "authorization")) else {
        return Err(error(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header is malformed.",
        ));
    };
    if auth.secret_id != sim.secret_id {
        return Err(error(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found.",
        ));
    }
    let Ok(timestamp) = header(headers, "x-tc-timestamp").parse::<i64>() else {
        return Err(error("MissingParameter", "X-TC-Timestamp is missing."));
    };
    if (jiff::Timestamp::now().as_second() - timestamp).abs() > 300 {
        return Err(error(
            "AuthFailure.SignatureExpire",
            "The signature has expired.",
        ));
    }
    let req = tc3::Tc3Request {
        method: "POST",
        host: header(headers, "host"),
        path: "/",
        query: &[],
        content_type: header(headers, "content-type"),
        action: header(headers, "x-tc-action"),
        payload: body,
        timestamp,
        service: "tke",
    };
    if !tc3::verify(&req, &auth, &sim.secret_key) {
        return Err(error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated.",
        ));
    }
    if header(headers, "x-tc-region") != sim.region {
        return Err(error("UnsupportedRegion", "The region is not supported."));
    }
    if header(headers, "x-tc-version") != "2018-05-25" {
        return Err(error(
            "InvalidParameterValue",
            "X-TC-Version must be 2018-05-25.",
        ));
    }
    Ok(())
}

async fn handle(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Response {
    lock(&sim.faults).requests += 1;
    if let Err(r) = check(sim, headers, body) {
        return r;
    }
    match lock(&sim.faults).take() {
        Injected::Throttle => {
            return error(
                "RequestLimitExceeded",
                "Your current request times exceeds the limit.",
            );
        }
        Injected::Canned(c) => return c.into_response(),
        Injected::None => {}
    }
    let Ok(p) = serde_json::from_slice::<Value>(body) else {
        return error("InvalidParameter", "The body is not JSON.");
    };
    let action = header(headers, "x-tc-action").to_string();
    let (resp, nodes_to_create, nodes_to_delete) = act(sim, &action, &p);
    for (name, labels) in nodes_to_create {
        sim.owner.create_node(sim.kube(), &name, &labels).await;
    }
    for name in nodes_to_delete {
        sim.owner.delete_node(sim.kube(), &name).await;
    }
    resp
}

type Effects = (
    Response,
    Vec<(String, BTreeMap<String, String>)>,
    Vec<String>,
);

fn s<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str)
}

fn not_found(id: &str) -> Response {
    error(
        "ResourceNotFound.ClusterNotFound",
        &format!("Cluster {id} is not found."),
    )
}

fn new_instance(
    id: Option<String>,
    pool: Option<String>,
    labels: BTreeMap<String, String>,
    polls: u32,
) -> Instance {
    let r = rand_id(6);
    let b = |i: usize| u8::from_str_radix(&r[i..i + 2], 16).unwrap_or(1);
    Instance {
        id: id.unwrap_or_else(|| format!("ins-{}", rand_id(8))),
        lan_ip: format!("10.{}.{}.{}", b(0), b(2), b(4).max(2)),
        pool,
        labels,
        ready: Countdown::new(polls),
        removing: None,
        node_created: false,
    }
}

fn act(sim: &Sim, action: &str, p: &Value) -> Effects {
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let polls = sim.options.polls_to_ready;
    let mut clusters = lock(&sim.clusters);
    let resp = match action {
        "CreateCluster" => {
            let basic = p.get("ClusterBasicSettings").cloned().unwrap_or(json!({}));
            let Some(name) = s(&basic, "ClusterName") else {
                return (
                    error(
                        "MissingParameter",
                        "ClusterBasicSettings.ClusterName is required.",
                    ),
                    create,
                    delete,
                );
            };
            let id = format!("cls-{}", rand_id(8));
            let mut c = Cluster {
                id: id.clone(),
                name: name.to_string(),
                version: s(&basic, "ClusterVersion").unwrap_or("1.30.0").to_string(),
                ready: Countdown::new(polls.max(1)),
                fails: lock(&sim.faults).take_fail_create(),
                deleting: None,
                instances: Vec::new(),
                pools: BTreeMap::new(),
            };
            for group in p
                .get("RunInstancesForNode")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for para in group
                    .get("RunInstancesPara")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let para: Value = para
                        .as_str()
                        .and_then(|t| serde_json::from_str(t).ok())
                        .unwrap_or(json!({}));
                    let n = para
                        .get("InstanceCount")
                        .and_then(Value::as_u64)
                        .unwrap_or(1);
                    for _ in 0..n {
                        c.instances
                            .push(new_instance(None, None, BTreeMap::new(), polls + 1));
                    }
                }
            }
            clusters.insert(id.clone(), c);
            answer(json!({"ClusterId": id}))
        }
        "DescribeClusters" => {
            let ids: Vec<String> = p
                .get("ClusterIds")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            let mut gone = Vec::new();
            let mut out = Vec::new();
            for c in clusters.values_mut() {
                if !ids.is_empty() && !ids.contains(&c.id) {
                    continue;
                }
                if let Some(d) = c.deleting.as_mut() {
                    if d.tick() {
                        gone.push(c.id.clone());
                        continue;
                    }
                } else {
                    c.ready.tick();
                }
                out.push(json!({
                    "ClusterId": c.id, "ClusterName": c.name, "ClusterVersion": c.version,
                    "ClusterStatus": c.status(), "ClusterType": "MANAGED_CLUSTER",
                    "ClusterNodeNum": c.instances.len(), "ClusterOs": "tlinux2.4x86_64",
                }));
            }
            for id in gone {
                if let Some(c) = clusters.remove(&id) {
                    delete.extend(
                        c.instances
                            .iter()
                            .filter(|i| i.node_created)
                            .map(|i| i.lan_ip.clone()),
                    );
                }
            }
            answer(json!({"TotalCount": out.len(), "Clusters": out}))
        }
        _ => match s(p, "ClusterId").and_then(|id| clusters.get_mut(id)) {
            None => not_found(s(p, "ClusterId").unwrap_or_default()),
            Some(c) => cluster_action(
                c,
                action,
                p,
                polls,
                sim.options.polls_to_gone,
                sim,
                &mut create,
                &mut delete,
            ),
        },
    };
    (resp, create, delete)
}

#[allow(clippy::too_many_arguments)]
fn cluster_action(
    c: &mut Cluster,
    action: &str,
    p: &Value,
    polls: u32,
    polls_gone: u32,
    sim: &Sim,
    create: &mut Vec<(String, BTreeMap<String, String>)>,
    delete: &mut Vec<String>,
) -> Response {
    let ids = |k: &str| -> Vec<String> {
        p.get(k)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    match action {
        "DeleteCluster" => {
            c.deleting = Some(Countdown::new(polls_gone.max(1)));
            // Its kwok nodes go now, polled to the end or not.
            for i in &mut c.instances {
                release(i, delete);
            }
            answer(json!({}))
        }
        "DescribeClusterKubeconfig" => {
            if c.status() != "Running" {
                return error(
                    "FailedOperation.ClusterState",
                    "The cluster is not running.",
                );
            }
            answer(json!({"Kubeconfig": sim.kube().kubeconfig(&c.id)}))
        }
        "DescribeClusterInstances" => {
            let mut out = Vec::new();
            let mut gone = Vec::new();
            let running = c.status() == "Running";
            for i in &mut c.instances {
                if let Some(r) = i.removing.as_mut() {
                    if r.tick() {
                        gone.push(i.id.clone());
                        continue;
                    }
                } else if running && i.ready.tick() && !i.node_created {
                    i.node_created = true;
                    create.push((i.lan_ip.clone(), i.labels.clone()));
                }
                let state = if i.removing.is_some() {
                    "deleting"
                } else if i.node_created {
                    "running"
                } else {
                    "initializing"
                };
                out.push(json!({
                    "InstanceId": i.id, "InstanceRole": "WORKER", "InstanceState": state,
                    "LanIP": i.lan_ip, "NodePoolId": i.pool.clone().unwrap_or_default(),
                    "CreatedTime": "2026-12-01T00:00:00Z", "FailedReason": "",
                }));
            }
            for id in gone {
                if let Some(pos) = c.instances.iter().position(|i| i.id == id) {
                    let i = c.instances.remove(pos);
                    if i.node_created {
                        delete.push(i.lan_ip);
                    }
                }
            }
            answer(json!({"TotalCount": out.len(), "InstanceSet": out}))
        }
        "AddExistedInstances" => {
            let ids = ids("InstanceIds");
            for id in &ids {
                c.instances
                    .push(new_instance(Some(id.clone()), None, BTreeMap::new(), polls));
            }
            answer(
                json!({"SuccInstanceIds": ids, "FailedInstanceIds": [], "TimeoutInstanceIds": [], "FailedReasons": []}),
            )
        }
        "CreateClusterNodePool" => {
            let np = format!("np-{}", rand_id(8));
            let asg: Value = s(p, "AutoScalingGroupPara")
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(json!({}));
            let n = asg
                .get("DesiredCapacity")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let labels: BTreeMap<String, String> = p
                .get("Labels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|l| Some((s(l, "Name")?.to_string(), s(l, "Value")?.to_string())))
                .collect();
            c.pools.insert(
                np.clone(),
                (s(p, "Name").unwrap_or("pool").to_string(), labels.clone()),
            );
            for _ in 0..n {
                c.instances
                    .push(new_instance(None, Some(np.clone()), labels.clone(), polls));
            }
            answer(json!({"NodePoolId": np}))
        }
        "ModifyNodePoolDesiredCapacityAboutAsg" => {
            let np = s(p, "NodePoolId").unwrap_or_default().to_string();
            let Some((_, labels)) = c.pools.get(&np).cloned() else {
                return error(
                    "ResourceNotFound.NodePoolNotFound",
                    &format!("Node pool {np} is not found."),
                );
            };
            let want = p
                .get("DesiredCapacity")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            let have: Vec<usize> = (0..c.instances.len())
                .filter(|&k| {
                    c.instances[k].pool.as_deref() == Some(np.as_str())
                        && c.instances[k].removing.is_none()
                })
                .collect();
            for _ in have.len()..want {
                c.instances
                    .push(new_instance(None, Some(np.clone()), labels.clone(), polls));
            }
            for &k in have.iter().skip(want) {
                c.instances[k].removing = Some(Countdown::new(polls_gone.max(1)));
                release(&mut c.instances[k], delete);
            }
            answer(json!({}))
        }
        "DeleteClusterInstances" => {
            let ids = ids("InstanceIds");
            let mut ok = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                match c.instances.iter_mut().find(|i| i.id == id) {
                    Some(i) => {
                        i.removing = Some(Countdown::new(polls_gone.max(1)));
                        release(i, delete);
                        ok.push(id);
                    }
                    None => missing.push(id),
                }
            }
            answer(
                json!({"SuccInstanceIds": ok, "FailedInstanceIds": [], "NotFoundInstanceIds": missing}),
            )
        }
        other => error(
            "InvalidAction",
            &format!("The action {other} is not supported by the simulator."),
        ),
    }
}

/// A removed (or deleted) instance's kwok node goes at once.
fn release(i: &mut Instance, delete: &mut Vec<String>) {
    if i.node_created {
        i.node_created = false;
        delete.push(i.lan_ip.clone());
    }
}
