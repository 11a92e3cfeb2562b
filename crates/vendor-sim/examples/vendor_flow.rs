//! The vendor flow of `cargo xtask demo`, end to end through
//! kubepkg-platform, against **simulated** vendor endpoints: the
//! simulators of this crate, started in this process on 127.0.0.1. No
//! vendor cloud is contacted. A simulated cluster is the local control
//! plane and its nodes are kwok nodes there, so the local environment must
//! be up:
//!
//! ```sh
//! cargo xtask env up
//! cargo run -p kubepkg-vendor-sim --example vendor_flow
//! ```
//!
//! Steps: create a cluster through the TKE adapter, wait for the
//! operation, import the cluster with the kubeconfig the vendor hands out,
//! list its nodes (Kubernetes joined with the vendor's instance ids), add
//! a node pool, delete the cluster; then list the namespaces of three
//! simulated registries (Harbor, TKEStack, ACR) through their adapters.

use kubepkg_platform::config::ProviderSettings;
use kubepkg_platform::core::{ImportRequest, ImportSource, NodeView, Platform, PlatformOptions};
use kubepkg_platform::core::{TrackedOperation, WaitOptions};
use kubepkg_platform::crypto::Keyring;
use kubepkg_platform::provider::http::{AccessKeyConfig, HttpOptions};
use kubepkg_platform::provider::registry::Built;
use kubepkg_platform::provider::tke::Tke;
use kubepkg_platform::provider::tkestack::{TkeStack, TkeStackConfig};
use kubepkg_platform::provider::{
    AddNodes, ClusterProvider, ClusterSpec, NodePoolSpec, RegistryProvider, Visibility,
};
use kubepkg_platform::store::Store;
use kubepkg_util::secret::Secret;
use kubepkg_vendor_sim::{SimHandle, SimOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn step(n: u32, text: &str) {
    println!("[vendor {n}] {text}");
}

fn access_key(sim: &SimHandle) -> AccessKeyConfig {
    AccessKeyConfig {
        endpoint: sim.endpoint.clone(),
        region: sim.region.clone(),
        key_id: sim.key_id.clone(),
        secret: Secret::new(sim.secret.clone()),
        http: HttpOptions::default(),
    }
}

/// Syncs the vendor's instance ids and lists the nodes through Kubernetes
/// until `n` are joined with an instance id and Ready (at most 60 s).
async fn joined(platform: &Platform, cluster: &str, n: usize) -> Res<Vec<NodeView>> {
    let start = Instant::now();
    loop {
        platform.sync_vendor_nodes(cluster).await?;
        let nodes: Vec<NodeView> = platform
            .nodes(cluster)
            .await?
            .into_iter()
            .filter(|v| v.provider_instance_id.is_some())
            .collect();
        if nodes.len() == n && nodes.iter().all(|v| v.ready) {
            return Ok(nodes);
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("{n} joined, ready nodes did not appear in 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_nodes(nodes: &[NodeView]) {
    println!(
        "    {:<16} {:<22} {:<10} {:<6}",
        "NODE", "VENDOR INSTANCE", "POOL", "READY"
    );
    for n in nodes {
        println!(
            "    {:<16} {:<22} {:<10} {:<6}",
            n.name,
            n.provider_instance_id.as_deref().unwrap_or("-"),
            n.node_pool.as_deref().unwrap_or("-"),
            n.ready
        );
    }
}

async fn wait(platform: &Platform, op: &TrackedOperation, what: &str) -> Res {
    let options = WaitOptions {
        deadline: Duration::from_secs(60),
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(1),
    };
    let start = Instant::now();
    let done = platform.wait_operation(op, &options).await?;
    println!(
        "    operation {} ({what}) {:?} after {} ms of polling",
        done.id,
        done.state,
        start.elapsed().as_millis()
    );
    Ok(())
}

/// Deletes what importing `name` left in the local control plane (the
/// scoped service account, its token secrets and bindings: unregistering
/// a cluster leaves them, as the stored credential cannot delete itself).
async fn remove_import_leftovers(name: &str) -> Res {
    use kubepkg_k8s_api::k8s_openapi::api::core::v1::{Secret as KubeSecret, ServiceAccount};
    use kubepkg_k8s_api::k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use kubepkg_k8s_api::{Client, ClusterConfig, DeleteOptions};
    let k = kubepkg_vendor_sim::kube::KubeTarget::local();
    let admin = Client::connect_named(
        "vendor-demo-cleanup",
        &ClusterConfig::token(&k.server, Some(k.ca_pem.clone()), k.token.clone()),
    )
    .await?;
    let sa = format!("kubepkg-{name}");
    let del = DeleteOptions::default();
    for role in ["view", "edit", "cluster-admin", "node-reader"] {
        let _ = admin
            .cluster::<ClusterRoleBinding>()
            .delete(&format!("{sa}-{role}"), &del)
            .await;
    }
    let secrets = admin.namespaced::<KubeSecret>("kube-system");
    for s in secrets.list(&Default::default()).await? {
        let n = s.metadata.name.unwrap_or_default();
        if n.starts_with(&format!("{sa}-token")) {
            let _ = secrets.delete(&n, &del).await;
        }
    }
    let _ = admin
        .namespaced::<ServiceAccount>("kube-system")
        .delete(&sa, &del)
        .await;
    Ok(())
}

async fn cluster_flow() -> Res {
    let sim = kubepkg_vendor_sim::tke::start(SimOptions::default()).await;
    step(
        1,
        &format!(
            "a SIMULATED Tencent Cloud TKE API (API 3.0, every request's TC3 signature checked) \
             listens at {}; not Tencent Cloud",
            sim.endpoint
        ),
    );
    let store = Store::open(
        "sqlite::memory:",
        Keyring::new("demo", Keyring::generate_key())?,
    )
    .await?;
    let platform = Platform::with_store(store, PlatformOptions::default()).await?;
    let tke: Arc<dyn ClusterProvider> = Arc::new(Tke::new(access_key(&sim))?);
    platform.providers().insert_cluster("tke-sim", tke.clone());

    let name = "vendor-demo".to_string();
    // What an interrupted earlier run may have left.
    remove_import_leftovers(&name).await?;
    let spec = ClusterSpec {
        name: name.clone(),
        kubernetes_version: Some("1.30.0".into()),
        node_pools: vec![NodePoolSpec {
            name: "first".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: 1,
            ..NodePoolSpec::default()
        }],
        ..ClusterSpec::default()
    };
    let op = platform.create_vendor_cluster("tke-sim", &spec).await?;
    step(
        2,
        &format!(
            "CreateCluster {name}: the vendor accepted it as {} (request id {})",
            op.vendor.target,
            op.vendor.request_id.as_deref().unwrap_or("-")
        ),
    );
    step(
        3,
        "waiting for the operation (polled with backoff, recorded in the store)",
    );
    wait(&platform, &op, "create_cluster").await?;

    let report = platform
        .import_cluster(ImportRequest::new(
            &name,
            ImportSource::Provider {
                provider: "tke-sim".into(),
                cluster_id: op.vendor.target.clone(),
            },
        ))
        .await?;
    step(
        4,
        &format!(
            "imported {} with the kubeconfig the vendor handed out (Kubernetes {}; a scoped \
             service account stored, not the admin credential)",
            report.cluster.name, report.version
        ),
    );
    step(
        5,
        "nodes through Kubernetes, joined with the vendor's instance ids:",
    );
    print_nodes(&joined(&platform, &name, 1).await?);

    let add = platform
        .add_nodes(
            &name,
            &AddNodes::New {
                pool: NodePoolSpec {
                    name: "more".into(),
                    instance_type: "S5.MEDIUM4".into(),
                    count: 2,
                    ..NodePoolSpec::default()
                },
            },
        )
        .await?;
    step(6, "adding a node pool of 2 through the vendor");
    wait(&platform, &add, "add_nodes").await?;
    print_nodes(&joined(&platform, &name, 3).await?);

    platform.delete_cluster(&name).await?;
    let start = Instant::now();
    loop {
        match tke.describe_cluster(&op.vendor.target).await {
            Err(e) if e.kind() == kubepkg_util::ErrorKind::NotFound => break,
            _ if start.elapsed() > Duration::from_secs(30) => {
                return Err("the vendor still lists the deleted cluster".into());
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    if !sim.kwok_nodes().is_empty() {
        return Err(format!("kwok nodes left behind: {:?}", sim.kwok_nodes()).into());
    }
    remove_import_leftovers(&name).await?;
    step(
        7,
        &format!(
            "deleted {name} through the vendor; the vendor no longer lists {} and its kwok \
             nodes are gone",
            op.vendor.target
        ),
    );
    Ok(())
}

async fn registries() -> Res {
    let harbor_sim = kubepkg_vendor_sim::harbor::start(SimOptions::default()).await;
    let tkestack_sim = kubepkg_vendor_sim::tkestack::start(SimOptions::default()).await;
    let acr_sim = kubepkg_vendor_sim::acr::start(SimOptions::default()).await;
    let mut settings = ProviderSettings::default();
    settings.kind = "harbor".into();
    settings.endpoint = Some(harbor_sim.endpoint.clone());
    settings.username = Some(harbor_sim.key_id.clone());
    settings.password = Some(Secret::new(harbor_sim.secret.clone()));
    settings.options.insert("allow_http".into(), "true".into());
    let harbor = match kubepkg_platform::provider::harbor::build("harbor-sim", &settings)? {
        Built::Registry(r) => r,
        _ => return Err("the harbor kind builds a registry provider".into()),
    };
    let tkestack: Arc<dyn RegistryProvider> = Arc::new(TkeStack::new(TkeStackConfig {
        endpoint: tkestack_sim.endpoint.clone(),
        token: Secret::new(tkestack_sim.secret.clone()),
        tenant_id: Some("default".into()),
        http: HttpOptions::default(),
    })?);
    let acr: Arc<dyn RegistryProvider> = Arc::new(kubepkg_platform::provider::acr::Acr::new(
        access_key(&acr_sim),
        None,
    )?);
    let all = [
        ("Harbor REST API v2.0", &harbor_sim, harbor),
        ("TKEStack registry.tkestack.io/v1", &tkestack_sim, tkestack),
        ("Alibaba Cloud ACR 2018-12-01", &acr_sim, acr),
    ];
    for (n, (label, sim, registry)) in (8..).zip(all) {
        registry
            .create_namespace("demo-public", Visibility::Public)
            .await?;
        registry
            .create_namespace("demo-private", Visibility::Private)
            .await?;
        sim.push_image("demo-public/app", "v1");
        sim.push_image("demo-public/app", "v2");
        step(
            n,
            &format!(
                "namespaces of a SIMULATED {label} at {}, listed through the {} adapter:",
                sim.endpoint,
                registry.kind()
            ),
        );
        for ns in registry.list_namespaces().await? {
            println!(
                "    {:<14} {:<8} {} repositories",
                ns.name,
                format!("{:?}", ns.visibility).to_lowercase(),
                ns.repository_count
                    .map_or_else(|| "?".to_string(), |c| c.to_string())
            );
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res {
    println!(
        "Every vendor endpoint below is SIMULATED: kubepkg-vendor-sim's simulators, in this \
         process on 127.0.0.1, checking every request's signature or key; no vendor cloud is \
         contacted. A simulated cluster is the local control plane, its nodes kwok nodes."
    );
    cluster_flow().await?;
    registries().await?;
    println!("== vendor flow done");
    Ok(())
}
