//! Lists an OCI registry's repositories and their tags through
//! `kubepkg::image` (the distribution backend; set `KUBEPKG_REGISTRY_KIND=harbor`
//! for Harbor).
//!
//! Credentials come from the environment:
//!
//! ```text
//! KUBEPKG_REGISTRY_URL=http://127.0.0.1:15000 KUBEPKG_REGISTRY_INSECURE=true \
//! KUBEPKG_REGISTRY_USERNAME=kubepkg KUBEPKG_REGISTRY_PASSWORD=... \
//!     cargo run --example image_registry [namespace]
//! ```
//!
//! Without `KUBEPKG_REGISTRY_URL` it uses the local environment's registry
//! (`target/kubepkg-env/env.json`, written by `cargo xtask env up`).

use futures::StreamExt;
use kubepkg::image::{RegistryConfig, connect_registry, global};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Res {
    let config = match RegistryConfig::from_env(global::REGISTRY_ENV_PREFIX)? {
        Some(c) => c,
        None => {
            let env = kubepkg_testenv::try_env()
                .map_err(|e| format!("set KUBEPKG_REGISTRY_URL (and credentials), or {e}"))?;
            let r = env
                .registry
                .as_ref()
                .ok_or("env.json has no registry section; run `cargo xtask env up`")?;
            // the local registry is plain http on loopback
            RegistryConfig::new(r.url.clone())
                .credentials(r.username.clone(), r.password.clone())
                .allow_http(true)
        }
    };
    let namespace = std::env::args().nth(1);
    let registry = connect_registry(&config)?;
    registry.check_credentials().await?;
    let info = registry.info().await?;
    println!(
        "{} registry at {} (API {})",
        info.backend,
        registry.host(),
        info.version.as_deref().unwrap_or("?")
    );

    let repos = registry.list_repositories(namespace.as_deref()).await?;
    println!("{} repositories", repos.len());
    // tags of every repository, eight requests in flight
    let mut listings = futures::stream::iter(repos)
        .map(|repo| {
            let registry = registry.clone();
            async move {
                let tags = registry.list_tags(&repo.name).await;
                (repo.name, tags)
            }
        })
        .buffered(8);
    while let Some((name, tags)) = listings.next().await {
        match tags {
            Ok(tags) if tags.is_empty() => println!("  {name}  (no tags)"),
            Ok(tags) => println!("  {name}  {}", tags.join(", ")),
            Err(e) => println!("  {name}  error: {e} [{}]", e.kind()),
        }
    }
    Ok(())
}
