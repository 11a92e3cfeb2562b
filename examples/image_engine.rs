//! Talks to a Docker engine through `kubepkg::image`: prints its version,
//! builds a `FROM scratch` image around a static busybox, runs it without a
//! network and prints what it says, then removes it.
//!
//! ```text
//! DOCKER_HOST=unix:///var/run/docker.sock KUBEPKG_BUSYBOX=/bin/busybox \
//!     cargo run --example image_engine
//! ```
//!
//! Without `DOCKER_HOST` it uses the local environment's engine
//! (`target/kubepkg-env/env.json`, written by `cargo xtask env up`).

use futures::StreamExt;
use kubepkg::image::engine::{BuildContext, BuildOptions, ContainerSpec};
use kubepkg::image::{EngineConfig, ProgressEvent, connect_engine};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Res {
    let local = kubepkg_testenv::try_env()
        .ok()
        .and_then(|e| e.docker.clone());
    let config = if std::env::var_os("DOCKER_HOST").is_some() {
        EngineConfig::from_env()
    } else if let Some(d) = &local {
        EngineConfig::new(d.host.clone())
    } else {
        EngineConfig::from_env()
    };
    let busybox = std::env::var_os("KUBEPKG_BUSYBOX")
        .map(std::path::PathBuf::from)
        .or_else(|| local.as_ref().map(|d| d.busybox.clone()))
        .unwrap_or_else(|| "/bin/busybox".into());

    let engine = connect_engine(&config)?;
    let v = engine.version().await?;
    println!(
        "engine {} on {}/{} (API {}, negotiated {})",
        v.version, v.os, v.arch, v.api_version, v.negotiated_api_version
    );

    // The build context: a Dockerfile and the busybox binary.
    let dir = std::env::temp_dir().join(format!("kubepkg-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(&busybox, dir.join("busybox"))
        .map_err(|e| format!("copy {}: {e} (set KUBEPKG_BUSYBOX)", busybox.display()))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nARG WHO=world\nENV WHO=$WHO\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo hello, $WHO; /bin/busybox uname -sm\"]\n",
    )?;
    let tag = format!("kubepkg-example:{}", std::process::id());
    let mut build = engine.build_stream(
        BuildContext::Directory(dir.clone()),
        BuildOptions::tagged(&tag).build_arg("WHO", "kubepkg"),
    );
    let mut id = None;
    while let Some(event) = build.next().await {
        match event? {
            ProgressEvent::Log { text } => print!("{text}"),
            ProgressEvent::Built { image_id } => id = Some(image_id),
            _ => {}
        }
    }
    println!("built {tag} = {}", id.as_deref().unwrap_or("?"));

    // The daemon may have no bridge network: run with none.
    let out = engine
        .run(&ContainerSpec::new(&tag, Vec::<String>::new()).network_mode("none"))
        .await?;
    println!("exit {}; output:\n{}", out.exit_code, out.stdout.trim_end());

    engine.remove_image(&tag, true).await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
