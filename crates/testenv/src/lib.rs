//! # kubepkg-testenv
//!
//! Test support for kubepkg's integration tests: the typed contents of
//! `target/kubepkg-env/env.json`, which `cargo xtask env up` writes with every
//! endpoint and credential of the local environment of real servers.
//!
//! A test that needs a server calls the accessor for it, e.g.
//! [`minio()`]; when `env.json` is missing, or has no such section, or the
//! server does not accept a TCP connection, the accessor **panics** with a
//! message naming the server and how to start it — a test never passes
//! silently without its server.
//!
//! Point the tests at servers of your own by writing an `env.json` of the same
//! shape and setting `KUBEPKG_ENV_FILE=/path/to/env.json`.
//!
//! ```no_run
//! let pg = kubepkg_testenv::postgres();
//! assert!(pg.url.starts_with("postgres://"));
//! ```
#![warn(missing_docs)]

use serde::Deserialize;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The whole `env.json`. Every section is optional so that a partial
/// environment can be described; accessors fail on a missing one.
#[derive(Debug, Clone, Deserialize)]
pub struct Env {
    /// Format version (1).
    pub version: u32,
    /// The Kubernetes control plane.
    pub kubernetes: Option<Kubernetes>,
    /// MinIO (S3 API).
    pub minio: Option<Minio>,
    /// RabbitMQ (AMQP 0-9-1).
    pub rabbitmq: Option<RabbitMq>,
    /// The Docker engine.
    pub docker: Option<Docker>,
    /// The OCI distribution registry.
    pub registry: Option<Registry>,
    /// PostgreSQL.
    pub postgres: Option<Postgres>,
}

/// The `kubernetes` section.
#[derive(Debug, Clone, Deserialize)]
pub struct Kubernetes {
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// A kubeconfig with contexts `kubepkg-admin` (current) and `kubepkg-limited`.
    pub kubeconfig: PathBuf,
    /// The cluster CA certificate file.
    pub ca_file: PathBuf,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// Bearer token of a cluster admin (group `system:masters`).
    pub admin_token: String,
    /// Bearer token allowed to administer only `limited_namespace`.
    pub limited_token: String,
    /// The namespace the limited token may use.
    pub limited_namespace: String,
    /// Kubernetes release, e.g. `v1.35.4`.
    pub version: String,
    /// Names of the kwok-simulated nodes.
    pub nodes: Vec<String>,
    /// `kubectl` of the same release (built on demand by the benchmarks).
    pub kubectl: PathBuf,
}

/// The `minio` section.
#[derive(Debug, Clone, Deserialize)]
pub struct Minio {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Root access key.
    pub access_key: String,
    /// Root secret key.
    pub secret_key: String,
    /// Region to sign with.
    pub region: String,
}

/// The `rabbitmq` section.
#[derive(Debug, Clone, Deserialize)]
pub struct RabbitMq {
    /// `amqp://user:pass@127.0.0.1:PORT/%2f`.
    pub url: String,
    /// Host.
    pub host: String,
    /// AMQP port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Virtual host.
    pub vhost: String,
}

/// The `docker` section.
#[derive(Debug, Clone, Deserialize)]
pub struct Docker {
    /// `unix:///path/docker.sock`.
    pub host: String,
    /// The socket path.
    pub socket: PathBuf,
    /// A statically linked busybox to build `FROM scratch` images with.
    pub busybox: PathBuf,
}

/// The `registry` section.
#[derive(Debug, Clone, Deserialize)]
pub struct Registry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`, as used in image references.
    pub host: String,
    /// Basic-auth user.
    pub username: String,
    /// Basic-auth password.
    pub password: String,
}

/// The `postgres` section.
#[derive(Debug, Clone, Deserialize)]
pub struct Postgres {
    /// `postgres://user:pass@127.0.0.1:PORT/db`.
    pub url: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub username: String,
    /// Password.
    pub password: String,
    /// Database.
    pub database: String,
}

const HOW: &str = "start the local environment with `cargo xtask env up` \
                   (or point KUBEPKG_ENV_FILE at an env.json describing your own servers)";

/// Where `env.json` is read from.
pub fn env_file() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBEPKG_ENV_FILE") {
        return PathBuf::from(p);
    }
    // crates/testenv -> workspace root
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(here);
    root.join("target").join("kubepkg-env").join("env.json")
}

/// Reads `env.json` once; `Err` says what is missing and how to fix it.
pub fn try_env() -> Result<&'static Env, String> {
    static ENV: OnceLock<Result<Env, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = env_file();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}; {HOW}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is malformed: {e}; {HOW}", path.display()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The whole environment; panics with instructions when it is missing.
pub fn env() -> &'static Env {
    match try_env() {
        Ok(e) => e,
        Err(msg) => panic!("the local environment is not available: {msg}"),
    }
}

fn section<T>(name: &str, s: &'static Option<T>) -> &'static T {
    match s {
        Some(v) => v,
        None => panic!("{name} is not in {}; {HOW}", env_file().display()),
    }
}

/// Panics unless something accepts TCP connections at `addr` (`host:port`).
pub fn require_tcp(server: &str, addr: &str) {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    let ok = addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok());
    if !ok {
        panic!("{server} is not reachable at {addr}; {HOW} (check `cargo xtask env status`)");
    }
}

/// `host:port` of an `http(s)://host:port/...` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split_once('/').map(|(a, _)| a).unwrap_or(rest);
    rest.rsplit_once('@').map(|(_, a)| a).unwrap_or(rest)
}

/// The Kubernetes control plane (checked reachable).
pub fn kubernetes() -> &'static Kubernetes {
    let k = section("kubernetes", &env().kubernetes);
    require_tcp("the Kubernetes API server", authority(&k.server));
    k
}

/// MinIO (checked reachable).
pub fn minio() -> &'static Minio {
    let m = section("minio", &env().minio);
    require_tcp("MinIO", authority(&m.endpoint));
    m
}

/// RabbitMQ (checked reachable).
pub fn rabbitmq() -> &'static RabbitMq {
    let r = section("rabbitmq", &env().rabbitmq);
    require_tcp("RabbitMQ", &format!("{}:{}", r.host, r.port));
    r
}

/// The Docker engine (checked: its socket accepts connections).
pub fn docker() -> &'static Docker {
    let d = section("docker", &env().docker);
    if std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
        panic!(
            "the Docker engine is not reachable at {}; {HOW} (check `cargo xtask env status`)",
            d.socket.display()
        );
    }
    d
}

/// The OCI registry (checked reachable).
pub fn registry() -> &'static Registry {
    let r = section("registry", &env().registry);
    require_tcp("the OCI registry", &r.host);
    r
}

/// PostgreSQL (checked reachable).
pub fn postgres() -> &'static Postgres {
    let p = section("postgres", &env().postgres);
    require_tcp("PostgreSQL", &format!("{}:{}", p.host, p.port));
    p
}

/// A name unique to this process and call, for buckets, queues, namespaces…
/// (lowercase, DNS-1123 safe, starting with `prefix`).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}{:x}-{}",
        std::process::id(),
        nanos & 0xffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_strips_scheme_userinfo_and_path() {
        assert_eq!(authority("http://127.0.0.1:9000/x"), "127.0.0.1:9000");
        assert_eq!(authority("amqp://u:p@127.0.0.1:5672/%2f"), "127.0.0.1:5672");
        assert_eq!(authority("https://h:1"), "h:1");
    }

    #[test]
    fn unique_names_differ_and_are_dns_safe() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
