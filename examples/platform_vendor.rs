//! The vendor flow end to end: create a cluster through a vendor adapter,
//! wait for the operation, import it with the kubeconfig the vendor hands
//! out, list its nodes (Kubernetes joined with the vendor's instance ids),
//! add nodes, delete.
//!
//! **The vendor endpoint is simulated**: a TKE API simulator
//! (`kubepkg-vendor-sim`) runs in this process on 127.0.0.1; no cloud is
//! contacted. Its clusters are the local control plane and its nodes kwok
//! nodes, so start the local environment first:
//!
//! ```sh
//! cargo xtask env up
//! cargo run --example platform_vendor
//! ```

use kubepkg::platform::core::{
    ImportRequest, ImportSource, Platform, PlatformOptions, WaitOptions,
};
use kubepkg::platform::provider::http::{AccessKeyConfig, HttpOptions};
use kubepkg::platform::provider::tke::Tke;
use kubepkg::platform::provider::{AddNodes, ClusterSpec, NodePoolSpec};
use kubepkg::platform::{Keyring, Store};
use kubepkg::util::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = kubepkg_vendor_sim::tke::start(Default::default()).await;
    println!(
        "vendor endpoint: {} (SIMULATED TKE API, not Tencent Cloud)",
        sim.endpoint
    );

    let store = Store::open(
        "sqlite::memory:",
        Keyring::new("k1", Keyring::generate_key())?,
    )
    .await?;
    let platform = Platform::with_store(store, PlatformOptions::default()).await?;
    let tke = Tke::new(AccessKeyConfig {
        endpoint: sim.endpoint.clone(),
        region: sim.region.clone(),
        key_id: sim.key_id.clone(),
        secret: Secret::new(sim.secret.clone()),
        http: HttpOptions::default(),
    })?;
    platform
        .providers()
        .insert_cluster("tke-sim", Arc::new(tke));
    let wait = WaitOptions {
        deadline: Duration::from_secs(60),
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(1),
    };

    let name = format!("demo-{}", std::process::id());
    let spec = ClusterSpec {
        name: name.clone(),
        kubernetes_version: Some("1.30.0".into()),
        node_pools: vec![NodePoolSpec {
            name: "default".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: 1,
            ..NodePoolSpec::default()
        }],
        ..ClusterSpec::default()
    };
    let op = platform.create_vendor_cluster("tke-sim", &spec).await?;
    println!(
        "create_cluster {} accepted (request id {:?})",
        op.vendor.target, op.vendor.request_id
    );
    let done = platform.wait_operation(&op, &wait).await?;
    println!("operation {} {:?}", done.id, done.state);

    let source = ImportSource::Provider {
        provider: "tke-sim".into(),
        cluster_id: op.vendor.target.clone(),
    };
    let report = platform
        .import_cluster(ImportRequest::new(&name, source))
        .await?;
    println!(
        "imported {} (Kubernetes {})",
        report.cluster.name, report.version
    );

    let add = AddNodes::New {
        pool: NodePoolSpec {
            name: "more".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: 2,
            ..NodePoolSpec::default()
        },
    };
    let added = platform.add_nodes(&name, &add).await?;
    platform.wait_operation(&added, &wait).await?;
    platform.sync_vendor_nodes(&name).await?;
    for n in platform.nodes(&name).await? {
        if let Some(id) = &n.provider_instance_id {
            println!(
                "node {} = vendor instance {id} (ready: {})",
                n.name, n.ready
            );
        }
    }

    platform.delete_cluster(&name).await?;
    println!("deleted {name} through the (simulated) vendor");
    Ok(())
}
