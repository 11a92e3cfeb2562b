//! The kwok nodes a cluster simulator creates in the real local control
//! plane never outlive what they stand for: they go when their cluster is
//! deleted (at once, whether or not the deletion is polled to the end),
//! when their node is removed, and when the simulator's handle drops; and
//! nodes whose owner is dead are swept. Every assertion reads the Node API
//! of the local control plane, selecting by the owner label
//! (`kubepkg.io/vendor-sim-owner`), never the simulator's own bookkeeping
//! alone.

use crate::conformance::vendor;
use kubepkg_k8s_api::{Client, ClusterConfig, ListOptions};
use kubepkg_platform::provider::{
    AddNodes, ClusterProvider, ClusterSpec, NodePoolSpec, PollResult, VendorOperation,
};
use kubepkg_vendor_sim::SimOptions;
use kubepkg_vendor_sim::kube::{KubeTarget, LABEL, OWNER_LABEL, sweep_stale};
use std::time::{Duration, Instant};

async fn kube() -> Client {
    let k = kubepkg_testenv::kubernetes();
    let cfg = ClusterConfig::token(&k.server, Some(k.ca_pem.clone()), k.admin_token.clone());
    Client::connect_named("kwok-cleanup-test", &cfg)
        .await
        .expect("the local control plane (cargo xtask env up)")
}

/// The names of the nodes the Node API lists with owner label `owner`.
async fn owned(client: &Client, owner: &str) -> Vec<String> {
    let mut names: Vec<String> = client
        .nodes()
        .list(&ListOptions::labels(format!("{OWNER_LABEL}={owner}")))
        .await
        .expect("list nodes")
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    names.sort();
    names
}

/// Waits (polling the Node API, at most 20 s) until the nodes of `owner`
/// are exactly `want`.
async fn until_owned(client: &Client, owner: &str, want: &[String]) {
    let mut want = want.to_vec();
    want.sort();
    let start = Instant::now();
    loop {
        let have = owned(client, owner).await;
        if have == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "owner {owner}: the Node API lists {have:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn done(p: &dyn ClusterProvider, op: &VendorOperation) {
    let start = Instant::now();
    loop {
        match p.poll(op).await.expect("poll") {
            PollResult::Succeeded => return,
            PollResult::Running if start.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => panic!("{} ended {other:?}", op.kind),
        }
    }
}

/// Lists the vendor's nodes (which is what moves some simulators' nodes
/// along) until the simulator has made `n` kwok nodes; returns their names.
async fn until_made(v: &crate::conformance::Vendor, id: &str, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        v.good.list_nodes(id).await.expect("vendor nodes");
        let names = v.sim.kwok_nodes();
        if names.len() == n {
            return names;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the simulator made {names:?}, expected {n} nodes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spec(name: &str, nodes: u32) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        kubernetes_version: Some("1.30.0".into()),
        node_pools: vec![NodePoolSpec {
            name: "first".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: nodes,
            ..NodePoolSpec::default()
        }],
        ..ClusterSpec::default()
    }
}

/// A running cluster with `nodes` kwok nodes, their names checked against
/// the Node API.
async fn running_cluster(
    v: &crate::conformance::Vendor,
    client: &Client,
    nodes: u32,
) -> (String, Vec<String>) {
    let op = v
        .good
        .create_cluster(&spec(&crate::common::unique("kwok"), nodes))
        .await
        .expect("create");
    done(&*v.good, &op).await;
    let names = until_made(v, &op.target, nodes as usize).await;
    until_owned(client, v.sim.owner_id(), &names).await;
    // Every one is marked as simulated and tainted.
    for n in client
        .nodes()
        .list(&ListOptions::labels(format!(
            "{OWNER_LABEL}={}",
            v.sim.owner_id()
        )))
        .await
        .expect("list")
    {
        let labels = n.metadata.labels.unwrap_or_default();
        assert!(labels.contains_key(LABEL), "{labels:?}");
        let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
        assert!(
            taints
                .iter()
                .any(|t| t.key == LABEL && t.effect == "NoSchedule")
        );
    }
    (op.target, names)
}

async fn deleted_with_their_cluster(kind: &str) {
    let client = kube().await;
    let v = vendor(kind, SimOptions::default()).await;
    let (id, _) = running_cluster(&v, &client, 2).await;
    // The deletion is accepted, not polled: the nodes go anyway.
    v.good.delete_cluster(&id).await.expect("delete");
    until_owned(&client, v.sim.owner_id(), &[]).await;
    assert!(v.sim.kwok_nodes().is_empty());
}

async fn removed_nodes_go_at_once(kind: &str) {
    let client = kube().await;
    let v = vendor(kind, SimOptions::default()).await;
    let (id, _) = running_cluster(&v, &client, 1).await;
    // Two more, in a pool of their own.
    let add = AddNodes::New {
        pool: NodePoolSpec {
            name: "more".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: 2,
            ..NodePoolSpec::default()
        },
    };
    let op = v.good.add_nodes(&id, &add).await.expect("add");
    done(&*v.good, &op).await;
    let three = until_made(&v, &id, 3).await;
    until_owned(&client, v.sim.owner_id(), &three).await;
    // Remove one by its vendor instance id.
    let node = v
        .good
        .list_nodes(&id)
        .await
        .expect("vendor nodes")
        .into_iter()
        .find(|n| n.node_name.is_some())
        .expect("a registered node");
    let gone = node.node_name.clone().expect("name");
    v.good
        .remove_nodes(&id, std::slice::from_ref(&node.instance_id))
        .await
        .expect("remove");
    let rest: Vec<String> = three.into_iter().filter(|n| *n != gone).collect();
    until_owned(&client, v.sim.owner_id(), &rest).await;
    v.good.delete_cluster(&id).await.expect("delete");
    until_owned(&client, v.sim.owner_id(), &[]).await;
}

async fn the_rest_go_when_the_handle_drops(kind: &str) {
    let client = kube().await;
    let v = vendor(kind, SimOptions::default()).await;
    let (_id, names) = running_cluster(&v, &client, 2).await;
    let owner = v.sim.owner_id().to_string();
    assert_eq!(owned(&client, &owner).await.len(), names.len());
    // The cluster is never deleted: dropping the simulator removes its nodes.
    drop(v);
    until_owned(&client, &owner, &[]).await;
}

macro_rules! kwok_cleanup {
    ($($vendor:ident),*) => {
        $(mod $vendor {
            #[tokio::test]
            async fn deleted_with_their_cluster() { super::deleted_with_their_cluster(stringify!($vendor)).await }
            #[tokio::test]
            async fn removed_nodes_go_at_once() { super::removed_nodes_go_at_once(stringify!($vendor)).await }
            #[tokio::test]
            async fn the_rest_go_when_the_handle_drops() { super::the_rest_go_when_the_handle_drops(stringify!($vendor)).await }
        })*
    };
}

kwok_cleanup!(tke, ack, rancher);

#[tokio::test]
async fn nodes_of_a_dead_owner_are_swept_and_a_live_owners_kept() {
    let client = kube().await;
    let target = KubeTarget::local();
    // An owner whose process is gone (pid 0 never runs a simulator) and
    // one that is alive.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dead = format!("noboot-0-0-{nanos:x}");
    let dead_node = crate::common::unique("kwok-dead");
    target
        .create_node(&dead_node, "tke", &dead, &Default::default())
        .await;
    until_owned(&client, &dead, std::slice::from_ref(&dead_node)).await;
    let v = vendor("tke", SimOptions::default()).await;
    let (id, live) = running_cluster(&v, &client, 1).await;
    let swept = sweep_stale(&target).await;
    assert!(swept.contains(&dead_node), "{swept:?}");
    assert!(!swept.iter().any(|n| live.contains(n)), "{swept:?}");
    until_owned(&client, &dead, &[]).await;
    until_owned(&client, v.sim.owner_id(), &live).await;
    v.good.delete_cluster(&id).await.expect("delete");
    until_owned(&client, v.sim.owner_id(), &[]).await;
}
