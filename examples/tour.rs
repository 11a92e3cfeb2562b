//! The kubepkg tour, run by `cargo xtask demo`.
//!
//! It reads the local environment's `env.json` (written by
//! `cargo xtask env up`) and drives every server through the kubepkg crates:
//!
//! 1. logging: one `kubepkg::log::init` for tracing, slog and log;
//! 2. Kubernetes: a `ClusterManager` entry probed once, the cluster overview,
//!    a multi-document bundle applied with server-side apply (one bad
//!    document reported, the rest applied), the rollout followed to
//!    completion on kwok's simulated nodes, events newest first, and the
//!    bundle deleted again;
//! 3. object storage on MinIO: bucket, put, list, ranged get, presigned URL;
//! 4. the message queue on RabbitMQ: confirmed publish, consume and ack;
//! 5. the Docker engine and the OCI registry: build a `FROM scratch` image,
//!    run it, push it, list it in the registry, delete it by digest;
//! 6. the platform on a PostgreSQL store: the local cluster imported
//!    under two names with a least-privilege service account each, what the
//!    stored credential may do, health conditions, one search across both
//!    names, and the clusters removed again.

use std::error::Error;
use std::time::Duration;

use futures::StreamExt;

type Res<T = ()> = Result<T, Box<dyn Error>>;

#[tokio::main]
async fn main() -> Res {
    if let Err(msg) = kubepkg_testenv::try_env() {
        eprintln!("tour: {msg}");
        std::process::exit(2);
    }
    // Human-readable logs on stderr; kube's, lapin's and bollard's own
    // records go through the same pipeline.
    let log = kubepkg::log::LogConfig {
        filter: "warn".into(),
        ..Default::default()
    };
    let _guard = kubepkg::log::init(&log)?;

    println!(
        "kubepkg tour — local environment from {}\n",
        kubepkg_testenv::env_file().display()
    );
    let mut failed = Vec::new();
    let mut visit = |name: &'static str, result: Res| {
        if let Err(e) = result {
            println!("  {name}: FAILED: {e}");
            failed.push(name);
        }
        println!();
    };
    visit("Kubernetes", kubernetes().await);
    visit("Object storage", storage().await);
    visit("Message queue", queue().await);
    visit("Images", images().await);
    visit("Platform", platform().await);
    if !failed.is_empty() {
        return Err(format!("tour failed at: {}", failed.join(", ")).into());
    }
    println!("tour complete");
    Ok(())
}

async fn kubernetes() -> Res {
    use kubepkg::k8s::{ApplyOptions, ClusterConfig, ClusterManager, Outcome, events::EventApi};

    let env = kubepkg_testenv::kubernetes();
    println!("== Kubernetes");
    let clusters = ClusterManager::new();
    clusters
        .add("local", ClusterConfig::kubeconfig_file(&env.kubeconfig))
        .await?;
    let client = clusters.get("local").await?;

    let o = client.overview().await?;
    println!(
        "cluster 'local': Kubernetes {} ({}), {}/{} nodes ready, {} namespaces",
        o.version,
        o.platform,
        o.ready_nodes,
        o.nodes.len(),
        o.namespaces.len()
    );
    for n in &o.nodes {
        println!(
            "  node {:<12} ready={:<5} cpu {} of {} requested, memory {} of {}",
            n.name,
            n.ready,
            n.requested_cpu,
            n.allocatable_cpu,
            n.requested_memory,
            n.allocatable_memory
        );
    }

    let ns = kubepkg_testenv::unique_name("tour");
    let bundle = format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  greeting: hello from kubepkg
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources:
          requests: {{cpu: 250m, memory: 64Mi}}
---
apiVersion: v1
kind: NoSuchKind
metadata:
  name: oops
  namespace: {ns}
"#
    );
    let opts = ApplyOptions {
        bundle: Some("tour".into()),
        ..Default::default()
    };
    let report = client.apply(&bundle, &opts).await;
    println!("apply of a 4-document bundle:");
    for r in &report.results {
        match &r.result {
            Ok(outcome) => println!("  doc {} {}/{}: {outcome:?}", r.index, r.kind, r.name),
            Err(e) => println!(
                "  doc {} {}/{}: error ({}): {e}",
                r.index,
                r.kind,
                r.name,
                e.kind()
            ),
        }
    }
    let created = report.count(Outcome::Created);
    if created != 3 {
        return Err(format!("expected 3 objects created, got {created}").into());
    }

    let deployments = client.deployments(&ns);
    let mut status = deployments.rollout_status("web").await?;
    for _ in 0..120 {
        if status.complete {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        status = deployments.rollout_status("web").await?;
    }
    println!(
        "rollout of web: {}/{} ready, {} available, complete={}",
        status.ready, status.desired, status.available, status.complete
    );
    let pods = deployments.pods_of("web").await?;
    for p in &pods {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        println!(
            "  pod {:<28} {phase:<8} on {node}",
            p.metadata.name.clone().unwrap_or_default()
        );
    }
    let events = client.namespace_events(&ns, EventApi::CoreV1).await?;
    println!("newest events in {ns}:");
    for e in events.iter().take(5) {
        println!(
            "  {:<8} {:<18} {}/{}: {}",
            e.type_, e.reason, e.object_kind, e.object_name, e.message
        );
    }

    let deleted = client.delete_bundle(&bundle, &opts).await;
    println!(
        "bundle deleted: {} object(s) removed, {} failure(s) (the unknown kind)",
        deleted.count(Outcome::Deleted),
        deleted.failures().count()
    );
    if !status.complete {
        return Err("the rollout did not complete".into());
    }
    Ok(())
}

async fn storage() -> Res {
    use kubepkg::storage::config::{MinioConfig, StorageConfig, connect};
    use kubepkg::storage::object::{ListOptions, PutOptions};

    let m = kubepkg_testenv::minio();
    println!("== Object storage (MinIO at {})", m.endpoint);
    let store = connect(&StorageConfig::Minio(MinioConfig {
        endpoint: m.endpoint.clone(),
        access_key: m.access_key.clone(),
        secret_key: m.secret_key.clone().into(),
        region: m.region.clone(),
        ..Default::default()
    }))?;
    let bucket = kubepkg_testenv::unique_name("tour");
    store.create_bucket(&bucket).await?;
    for (key, body) in [
        ("reports/2026/11.csv", "a,b\n1,2\n"),
        ("reports/2026/12.csv", "a,b\n3,4\n"),
        ("readme.txt", "kubepkg tour"),
    ] {
        let put = store
            .put_object(
                &bucket,
                key,
                kubepkg::storage::Bytes::from(body),
                &PutOptions::default(),
            )
            .await?;
        println!("  put {key:<22} etag {}", put.etag);
    }
    let mut pages = store.list_objects(
        &bucket,
        &ListOptions {
            prefix: "reports/".into(),
            ..Default::default()
        },
    );
    while let Some(page) = pages.next().await {
        for o in page?.objects {
            println!("  listed {} ({} bytes)", o.key, o.size);
        }
    }
    let range = store
        .get_range(
            &bucket,
            "readme.txt",
            kubepkg::storage::object::ByteRange::new(0, 6),
        )
        .await?;
    println!(
        "  bytes 0..=6 of readme.txt: {:?}",
        String::from_utf8_lossy(&range)
    );
    let url = store
        .presign_get(&bucket, "readme.txt", Duration::from_secs(300))
        .await?;
    println!("  presigned GET: {}…", &url[..url.len().min(72)]);
    let keys = vec![
        "reports/2026/11.csv".to_string(),
        "reports/2026/12.csv".into(),
        "readme.txt".into(),
    ];
    store.delete_objects(&bucket, &keys).await?;
    store.delete_bucket(&bucket).await?;
    println!("  bucket {bucket} removed");
    Ok(())
}

async fn queue() -> Res {
    use kubepkg::storage::config::{AmqpConfig, QueueConfig, connect_queue};
    use kubepkg::storage::mq::{ConsumeOptions, Message, QueueSpec};

    let r = kubepkg_testenv::rabbitmq();
    println!("== Message queue (RabbitMQ at {}:{})", r.host, r.port);
    let mq = connect_queue(&QueueConfig::Amqp(AmqpConfig::new(r.url.clone())))?;
    let q = kubepkg_testenv::unique_name("tour");
    mq.declare_queue(&QueueSpec::new(&q)).await?;
    for i in 1..=3 {
        mq.publish("", &q, &Message::new(format!("build #{i}")))
            .await?;
    }
    println!("  3 persistent messages published, each confirmed by the broker");
    let mut consumer = mq.consume(&q, &ConsumeOptions::prefetch(2)).await?;
    for _ in 0..3 {
        let d = consumer.next().await.ok_or("consumer ended early")??;
        println!(
            "  consumed {:?} and acked",
            String::from_utf8_lossy(&d.message.body)
        );
        d.ack().await?;
    }
    drop(consumer);
    mq.delete_queue(&q).await?;
    Ok(())
}

async fn images() -> Res {
    use kubepkg::image::{
        ArtifactRef, BuildContext, BuildOptions, ContainerSpec, EngineConfig, RegistryAuth,
        RegistryConfig, connect_engine, connect_registry,
    };

    let d = kubepkg_testenv::docker();
    let reg = kubepkg_testenv::registry();
    println!(
        "== Images (Docker engine at {}, registry at {})",
        d.host, reg.url
    );
    let engine = connect_engine(&EngineConfig::new(d.host.clone()))?;
    let v = engine.version().await?;
    println!(
        "  engine {} (API {}, negotiated {})",
        v.version, v.api_version, v.negotiated_api_version
    );

    let dir = std::env::temp_dir().join(kubepkg_testenv::unique_name("tour-image"));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(&d.busybox, dir.join("busybox"))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"echo\", \"hello from a FROM scratch image\"]\n",
    )?;
    let repo = format!("tour/{}", kubepkg_testenv::unique_name("hello"));
    let reference = format!("{}/{repo}:v1", reg.host);
    let mut build = engine.build_stream(
        BuildContext::Directory(dir.clone()),
        BuildOptions::tagged(&reference),
    );
    while let Some(event) = build.next().await {
        event?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let out = engine
        .run(&ContainerSpec::new(&reference, Vec::<String>::new()).network_mode("none"))
        .await?;
    println!(
        "  built and ran {reference}: exit {}, output {:?}",
        out.exit_code,
        out.stdout.trim()
    );

    let reg_cfg = RegistryConfig::new(reg.url.clone())
        .credentials(reg.username.clone(), reg.password.clone())
        .allow_http(true);
    let pushed = engine
        .push(
            &reference,
            Some(&RegistryAuth::from_registry_config(&reg_cfg)?),
        )
        .await?;
    println!("  pushed {} ({} bytes)", pushed.digest, pushed.size);

    let registry = connect_registry(&reg_cfg)?;
    registry.check_credentials().await?;
    let artifacts = registry.list_artifacts(&repo).await?;
    for a in &artifacts {
        println!(
            "  registry lists {}@{} tags {:?}, {} bytes",
            a.repository, a.digest, a.tags, a.size
        );
    }
    if !artifacts.iter().any(|a| a.digest == pushed.digest) {
        return Err("the pushed digest is not in the registry".into());
    }
    registry
        .delete_artifact(&repo, &ArtifactRef::Digest(pushed.digest.clone()))
        .await?;
    engine.remove_image(&reference, true).await?;
    println!(
        "  deleted {repo}@{} from the registry and the engine",
        pushed.digest
    );
    Ok(())
}

async fn platform() -> Res {
    use kubepkg::platform::core::{ImportRequest, ImportSource, SearchQuery};
    use kubepkg::platform::crypto::Keyring;
    use kubepkg::platform::store::{Store, StoreOptions};
    use kubepkg::platform::{Platform, PlatformOptions};

    let pg = kubepkg_testenv::postgres();
    let k8s = kubepkg_testenv::kubernetes();
    println!("== Platform on PostgreSQL at {}:{}", pg.host, pg.port);
    // A schema of its own, so the tour never touches other data.
    let schema = "kubepkg_tour".to_string();
    let keys = Keyring::new("tour", Keyring::generate_key())?;
    let store = Store::open_with(
        &pg.url,
        keys,
        StoreOptions {
            postgres_schema: Some(schema.clone()),
            ..StoreOptions::default()
        },
    )
    .await?;
    let platform = Platform::with_store(store, PlatformOptions::default()).await?;
    let names = ["tour-east", "tour-west"];
    // Left over from an interrupted run?
    for name in names {
        let _ = platform.delete_cluster(name).await;
    }
    let result = async {
        for (name, region) in names.iter().zip(["east", "west"]) {
            let report = platform
                .import_cluster(
                    ImportRequest::new(
                        *name,
                        ImportSource::KubeconfigFile {
                            path: k8s.kubeconfig.clone(),
                            context: None,
                        },
                    )
                    .label("region", region),
                )
                .await?;
            let a = &report.access;
            println!(
                "  imported {name} ({}), stored credential: {} — list pods {}, create deployments {}, delete namespaces {}",
                report.version,
                report.service_account.as_deref().unwrap_or("as given"),
                a.allows("list", "", "pods"),
                a.allows("create", "apps", "deployments"),
                a.allows("delete", "", "namespaces"),
            );
        }
        let health = platform.check_health(names[0]).await?;
        let conditions: Vec<String> = health
            .conditions
            .iter()
            .map(|c| format!("{:?}={:?}", c.type_, c.status))
            .collect();
        println!("  health of {}: {}", names[0], conditions.join(" "));
        let page = platform
            .search(&SearchQuery::new("v1", "Node").limit(10))
            .await?;
        for item in &page.items {
            println!(
                "  search: {} / {}",
                item.cluster,
                item.object.metadata.name.as_deref().unwrap_or("?")
            );
        }
        Ok::<(), Box<dyn Error>>(())
    }
    .await;
    for name in names {
        let _ = platform.delete_cluster(name).await;
    }
    result?;
    println!("  clusters removed from the store (schema {schema})");
    Ok(())
}
