//! Import a cluster into the platform, check its health, and search across
//! clusters.
//!
//! ```sh
//! cargo run --example platform_import            # the local environment's cluster
//! KUBECONFIG=~/.kube/config cargo run --example platform_import
//! ```
//!
//! It uses an in-memory store, imports the cluster of `$KUBECONFIG` (or of
//! the local environment, `cargo xtask env up`) twice under two names —
//! each with a dedicated `edit` service account, so only that account's
//! token is stored — prints what the stored credential may do and the
//! health conditions, lists every node of both through one search, and
//! removes both clusters again.

use kubepkg::platform::core::{ImportRequest, ImportSource, SearchQuery};
use kubepkg::platform::{Keyring, Platform, PlatformOptions, Store};
use std::error::Error;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let kubeconfig = match std::env::var_os("KUBECONFIG") {
        Some(p) => PathBuf::from(p),
        None => kubepkg_testenv::kubernetes().kubeconfig.clone(),
    };
    let store = Store::open(
        "sqlite::memory:",
        Keyring::new("k1", Keyring::generate_key())?,
    )
    .await?;
    let platform = Platform::with_store(store, PlatformOptions::default()).await?;

    for (name, env) in [("example-prod", "prod"), ("example-staging", "staging")] {
        let source = ImportSource::KubeconfigFile {
            path: kubeconfig.clone(),
            context: None,
        };
        let report = platform
            .import_cluster(ImportRequest::new(name, source).label("env", env))
            .await?;
        println!(
            "{name}: {} at {}, credential of {}",
            report.version,
            report.cluster.api_server,
            report
                .service_account
                .as_deref()
                .unwrap_or("the given user")
        );
        for c in &report.access.checks {
            let group = if c.group.is_empty() { "core" } else { &c.group };
            println!("  may {} {group}/{}: {}", c.verb, c.resource, c.allowed);
        }
    }

    let health = platform.check_health("example-prod").await?;
    for c in &health.conditions {
        println!("example-prod {:?}: {:?} ({})", c.type_, c.status, c.message);
    }

    let page = platform
        .search(&SearchQuery::new("v1", "Node").cluster_selector("env in (prod,staging)"))
        .await?;
    for item in &page.items {
        println!(
            "node {} in {}",
            item.object.metadata.name.as_deref().unwrap_or("?"),
            item.cluster
        );
    }
    for e in &page.errors {
        println!("cluster {} failed: {}", e.cluster, e.message);
    }

    for name in ["example-prod", "example-staging"] {
        platform.delete_cluster(name).await?;
    }
    Ok(())
}
