//! Loads a platform config file (default: the reference `examples/kubepkg.toml`),
//! applies the `KUBEPKG_` environment overrides, validates it, and prints a
//! summary with every secret redacted.
//!
//! ```text
//! cargo run --example platform_config
//! cargo run --example platform_config -- path/to/kubepkg.yaml
//! KUBEPKG_STORE__URL=sqlite:///tmp/k.db cargo run --example platform_config
//! ```

use std::path::PathBuf;

use kubepkg::platform::PlatformConfig;
use kubepkg::storage::secret::redact_url;
use kubepkg::storage::{QueueConfig, StorageConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/kubepkg.toml"));
    let config = match PlatformConfig::load(&path) {
        Ok(config) => config,
        Err(e) => {
            // Names the setting and the file or variable it came from,
            // never the value.
            eprintln!("{}: {e}", path.display());
            std::process::exit(2);
        }
    };

    println!("config file   {}", path.display());
    println!("data_dir      {}", config.data_dir.display());
    println!("store         {}", redact_url(config.store_url().expose()));
    let ids: Vec<&str> = config.encryption.keys.keys().map(String::as_str).collect();
    println!(
        "encryption    active key {:?} of [{}]",
        config.encryption.active_key,
        ids.join(", ")
    );
    println!(
        "log           backend {}, filter {:?}, format {:?}, {} output(s)",
        config.log.backend,
        config.log.filter,
        config.log.format,
        config.log.outputs.len()
    );
    match &config.kubernetes {
        Some(cluster) => println!("kubernetes    {}", cluster.describe()),
        None => println!("kubernetes    default chain (in-cluster, $KUBECONFIG, ~/.kube/config)"),
    }
    for (name, r) in &config.registries {
        println!(
            "registry      {name}: {} {} user {:?}, password {}",
            r.kind.as_str(),
            r.url,
            r.username.as_deref().unwrap_or("-"),
            if r.password.is_some() { "set" } else { "unset" }
        );
    }
    for (name, e) in &config.engines {
        println!("engine        {name}: {}", e.resolved_host());
    }
    for (name, store) in &config.object_stores {
        let what = match store {
            StorageConfig::Memory => "memory".to_owned(),
            StorageConfig::Local(l) => format!("local {}", l.root.display()),
            StorageConfig::S3(s) => format!(
                "s3 {} ({})",
                s.endpoint.as_deref().unwrap_or("AWS_ENDPOINT_URL or AWS"),
                s.region.as_deref().unwrap_or("AWS_REGION or us-east-1")
            ),
            StorageConfig::Minio(m) => format!("minio {} as {:?}", m.endpoint, m.access_key),
        };
        println!("object store  {name}: {what}");
    }
    for (name, queue) in &config.queues {
        let what = match queue {
            QueueConfig::Memory => "memory".to_owned(),
            QueueConfig::Amqp(a) => format!("amqp {}", redact_url(a.url.expose())),
        };
        println!("queue         {name}: {what}");
    }
    for (name, p) in &config.providers {
        let at = p.endpoint.as_deref().or(p.region.as_deref()).unwrap_or("-");
        println!("provider      {name}: {} {at}", p.kind);
    }
    println!(
        "health        every {}s, timeout {}s, backoff up to {}s",
        config.health.interval_secs, config.health.timeout_secs, config.health.max_backoff_secs
    );
    println!(
        "search        {} clusters at once",
        config.search.concurrency
    );

    // The whole config is safe to log: every secret prints as [redacted].
    let debug = format!("{config:?}");
    println!(
        "\n{{:?}} is {} bytes, secrets shown as [redacted]: {}",
        debug.len(),
        debug.matches("[redacted]").count()
    );
    Ok(())
}
