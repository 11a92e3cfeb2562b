//! The routes of ACK clusters, node pools and nodes (paths and fields as
//! in `alibabacloud-go/cs-20151215`), each answering with the kwok nodes
//! to create and delete once the state lock is released.

use super::tasks::{Effect, advance, apply_effect, task};
use super::{Cluster, Node, Sim, error, ok, s};
use crate::kube::KubeTarget;
use crate::server::{lock, rand_id};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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

pub(super) type Routed = (Response, Vec<Node>, Vec<String>);

pub(super) fn route(sim: &Sim, m: &str, segs: &[&str], p: &Value) -> Routed {
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
