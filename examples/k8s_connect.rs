//! Connect to a cluster and print an overview.
//!
//! Uses the default chain (in-cluster, `$KUBECONFIG`, `~/.kube/config`), so
//! against the local environment:
//!
//! ```text
//! KUBECONFIG=target/kubepkg-env/kubeconfig cargo run --example k8s_connect
//! ```
//!
//! It also registers two named clusters (both from the same kubeconfig, the
//! second through its `kubepkg-limited` context when present) in a
//! `ClusterManager` and fans one call out over them.

use kubepkg::k8s::{ClusterConfig, ClusterManager, Error, ListOptions, global};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = global::client().await?;
    let o = client.overview().await?;
    println!(
        "server {} ({}) at {}",
        o.version,
        o.platform,
        client.server()
    );
    println!("nodes: {} ready of {}", o.ready_nodes, o.nodes.len());
    for n in &o.nodes {
        println!(
            "  {:<16} ready={:<5} cpu {}/{}  memory {}/{}  pods {}",
            n.name,
            n.ready,
            n.requested_cpu,
            n.allocatable_cpu,
            n.requested_memory,
            n.allocatable_memory,
            n.pods
        );
    }
    println!("namespaces: {}", o.namespaces.join(", "));
    println!("pods by phase: {:?}", o.pods_by_phase);
    println!("metrics-server: {:?}", o.metrics);

    // Named clusters, built once and probed once; a fan-out over all of them.
    let manager = ClusterManager::new();
    manager.add("admin", ClusterConfig::default_chain()).await?;
    if let Err(e) = manager
        .add(
            "limited",
            ClusterConfig::default_chain().with_context("kubepkg-limited"),
        )
        .await
    {
        println!("(no second context: {e})");
    }
    let results = manager
        .fan_out(4, |c| async move {
            let pods = c.pods("default").list(&ListOptions::default()).await?;
            Ok::<_, Error>(pods.len())
        })
        .await;
    for (name, r) in results {
        match r {
            Ok(n) => println!("cluster {name}: {n} pods in default"),
            Err(e) => println!("cluster {name}: {} ({e})", e.kind()),
        }
    }
    Ok(())
}
