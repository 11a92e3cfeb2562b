//! The kubepkg tour, run by `cargo xtask demo`.
//!
//! It reads the local environment's `env.json` (written by
//! `cargo xtask env up`) and visits every server: the Kubernetes control plane
//! and its simulated nodes, MinIO, RabbitMQ, the Docker engine, the OCI
//! registry and PostgreSQL, printing what it finds. Later stages of the
//! project grow it into the tour of the platform layer.

use std::error::Error;

type Res<T = ()> = Result<T, Box<dyn Error>>;

#[tokio::main]
async fn main() -> Res {
    let env = match kubepkg_testenv::try_env() {
        Ok(e) => e,
        Err(msg) => {
            eprintln!("tour: {msg}");
            std::process::exit(2);
        }
    };
    println!(
        "kubepkg tour — local environment from {}\n",
        kubepkg_testenv::env_file().display()
    );
    let mut failed = 0;
    for (name, result) in [
        ("Kubernetes", kubernetes().await),
        ("MinIO", minio().await),
        ("RabbitMQ", rabbitmq().await),
        ("Docker", docker().await),
        ("Registry", registry().await),
        ("PostgreSQL", postgres().await),
    ] {
        if let Err(e) = result {
            failed += 1;
            println!("  {name}: FAILED: {e}");
        }
    }
    let _ = env;
    if failed > 0 {
        return Err(format!("{failed} server(s) could not be visited").into());
    }
    println!("\ntour complete");
    Ok(())
}

async fn kubernetes() -> Res {
    use k8s_openapi::api::core::v1::{Namespace, Node};
    let env = kubepkg_testenv::kubernetes();
    let kubeconfig = kube::config::Kubeconfig::read_from(&env.kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let v = client.apiserver_version().await?;
    println!("Kubernetes {} at {}", v.git_version, env.server);
    let nodes = kube::Api::<Node>::all(client.clone())
        .list(&Default::default())
        .await?;
    for n in nodes.items {
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str())
            .unwrap_or("?");
        let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let cpu = alloc
            .and_then(|a| a.get("cpu"))
            .map(|q| q.0.as_str())
            .unwrap_or("?");
        let mem = alloc
            .and_then(|a| a.get("memory"))
            .map(|q| q.0.as_str())
            .unwrap_or("?");
        println!(
            "  node {:<14} Ready={ready:<5} cpu={cpu} memory={mem}",
            n.metadata.name.unwrap_or_default()
        );
    }
    let ns = kube::Api::<Namespace>::all(client)
        .list(&Default::default())
        .await?;
    let names: Vec<String> = ns
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    println!("  namespaces: {}", names.join(", "));
    Ok(())
}

async fn minio() -> Res {
    let env = kubepkg_testenv::minio();
    let creds =
        aws_sdk_s3::config::Credentials::new(&env.access_key, &env.secret_key, None, None, "env");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(env.region.clone()))
        .endpoint_url(&env.endpoint)
        .force_path_style(true)
        .credentials_provider(creds)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let buckets = s3.list_buckets().send().await?;
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    println!(
        "MinIO at {}: {} bucket(s) {:?}",
        env.endpoint,
        names.len(),
        names
    );
    Ok(())
}

async fn rabbitmq() -> Res {
    let env = kubepkg_testenv::rabbitmq();
    let conn = lapin::Connection::connect(&env.url, lapin::ConnectionProperties::default()).await?;
    let cfg = conn.configuration();
    println!(
        "RabbitMQ at {}:{}: AMQP 0-9-1 connection open (channel max {}, frame max {}, heartbeat {}s)",
        env.host,
        env.port,
        cfg.channel_max(),
        cfg.frame_max(),
        cfg.heartbeat()
    );
    conn.close(200, "bye".into()).await?;
    Ok(())
}

async fn docker() -> Res {
    let env = kubepkg_testenv::docker();
    let docker = bollard::Docker::connect_with_unix(
        &env.socket.to_string_lossy(),
        30,
        bollard::API_DEFAULT_VERSION,
    )?
    .negotiate_version()
    .await?;
    let v = docker.version().await?;
    println!(
        "Docker engine at {}: {} (API {}, {} {})",
        env.host,
        v.version.unwrap_or_default(),
        v.api_version.unwrap_or_default(),
        v.os.unwrap_or_default(),
        v.arch.unwrap_or_default()
    );
    Ok(())
}

async fn registry() -> Res {
    let env = kubepkg_testenv::registry();
    let catalog: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v2/_catalog", env.url))
        .basic_auth(&env.username, Some(&env.password))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "OCI registry at {}: catalog {}",
        env.url, catalog["repositories"]
    );
    Ok(())
}

async fn postgres() -> Res {
    let env = kubepkg_testenv::postgres();
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname={}",
            env.host, env.port, env.username, env.password, env.database
        ),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    let row = client.query_one("SELECT version()", &[]).await?;
    let v: String = row.get(0);
    println!("PostgreSQL at {}:{}: {}", env.host, env.port, v);
    Ok(())
}
