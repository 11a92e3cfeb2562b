//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod http;

use std::path::Path;
use std::sync::Arc;

use kubepkg_image_api::{
    EngineConfig, ImageEngine, ImageRegistry, RegistryAuth, RegistryConfig, connect_engine,
    connect_registry,
};

/// The environment's Docker engine (panics with instructions when it is down).
pub fn engine() -> Arc<dyn ImageEngine> {
    let d = kubepkg_testenv::docker();
    connect_engine(&EngineConfig::new(d.host.clone())).expect("engine client")
}

/// The registry section of env.json.
pub fn registry_env() -> &'static kubepkg_testenv::Registry {
    kubepkg_testenv::registry()
}

/// Registry config with the environment's credentials (plain http, so `allow_http`).
pub fn registry_config() -> RegistryConfig {
    let r = registry_env();
    RegistryConfig::new(r.url.clone())
        .credentials(r.username.clone(), r.password.clone())
        .allow_http(true)
}

/// The environment's registry through the distribution backend.
pub fn registry() -> Arc<dyn ImageRegistry> {
    connect_registry(&registry_config()).expect("registry client")
}

/// Engine credentials for the environment's registry.
pub fn auth() -> RegistryAuth {
    let r = registry_env();
    RegistryAuth::basic(r.host.clone(), r.username.clone(), r.password.clone())
}

/// Writes a FROM-scratch busybox build context into `dir`.
pub fn busybox_context(dir: &Path, dockerfile: &str) {
    let busybox = &kubepkg_testenv::docker().busybox;
    std::fs::copy(busybox, dir.join("busybox")).expect("copy busybox");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
}

/// A Dockerfile printing `$GREETING` (a build arg) from busybox.
pub const GREETING_DOCKERFILE: &str = "FROM scratch\n\
COPY busybox /bin/busybox\n\
ARG GREETING=unset\n\
ENV GREETING=$GREETING\n\
CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo \\\"$GREETING from busybox\\\"\"]\n";
