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
//! ## TLS endpoints
//!
//! Besides the API server, the OCI registry and MinIO have an HTTPS
//! endpoint each ([`registry_tls()`], [`minio_tls()`]), with a certificate
//! for `127.0.0.1` and `localhost` signed by a CA of the environment's own
//! (not the cluster CA): a client that is given that CA must connect, one
//! that is not must refuse the certificate.
//!
//! ## Fault-injection instances
//!
//! A test that stops, starts or restarts a server must not do it to a
//! server other tests are using. It uses a fault-injection instance
//! instead: a server of its own, of the same kind and with the same
//! credentials ([`kubernetes_fault()`]: a second API server over the same
//! etcd; [`rabbitmq_fault()`]: a second RabbitMQ node;
//! [`postgres_fault()`]: a second PostgreSQL cluster). The accessor
//! returns an [`Exclusive`] guard: until it is dropped no other test, in
//! this process or any other (whatever the test runner), gets the same
//! instance, and `cargo xtask env up` leaves the instance alone.
//!
//! ```no_run
//! let k = kubepkg_testenv::kubernetes_fault();
//! // ... watch something through k.server ...
//! k.restart().expect("restart the fault-injection API server");
//! ```
//!
//! ```no_run
//! let pg = kubepkg_testenv::postgres();
//! assert!(pg.url.starts_with("postgres://"));
//! ```
#![warn(missing_docs)]

use serde::Deserialize;
use std::fs::{File, TryLockError};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
    /// The fault-injection API server (see [`kubernetes_fault()`]).
    pub kubernetes_fault: Option<Kubernetes>,
    /// The fault-injection RabbitMQ node (see [`rabbitmq_fault()`]).
    pub rabbitmq_fault: Option<RabbitMq>,
    /// The fault-injection PostgreSQL cluster (see [`postgres_fault()`]).
    pub postgres_fault: Option<Postgres>,
    /// The xtask binary that wrote this file; [`Exclusive`] stops and
    /// starts servers with it.
    pub xtask: Option<PathBuf>,
    /// Test tools `cargo xtask env up` installed.
    #[serde(default)]
    pub tools: Tools,
}

/// Test tools installed beside the servers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tools {
    /// schemathesis's `st` command (in a virtualenv of its own).
    pub schemathesis: Option<PathBuf>,
}

/// An HTTPS endpoint and the CA its certificate is signed by.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsEndpoint {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The CA certificate file (PEM).
    pub ca_file: PathBuf,
    /// The CA certificate, PEM.
    pub ca_pem: String,
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
    /// The HTTPS endpoint (see [`minio_tls()`]): a second MinIO server with
    /// the same credentials but storage of its own, so a bucket made over
    /// `endpoint` is not there. Absent from older env files.
    pub tls: Option<TlsEndpoint>,
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
    /// The HTTPS endpoint (see [`registry_tls()`]): the same storage and
    /// credentials, so what is pushed over `url` is there. Absent from
    /// older env files.
    pub tls: Option<TlsEndpoint>,
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

fn section<'a, T>(name: &str, s: &'a Option<T>) -> &'a T {
    match s {
        Some(v) => v,
        None => panic!("{name} is not in {}; {HOW}", env_file().display()),
    }
}

/// Panics unless something accepts TCP connections at `addr` (`host:port`).
pub fn require_tcp(server: &str, addr: &str) {
    if !accepts_tcp(addr) {
        panic!("{server} is not reachable at {addr}; {HOW} (check `cargo xtask env status`)");
    }
}

fn accepts_tcp(addr: &str) -> bool {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok())
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

/// schemathesis's `st` command; panics saying how to install it.
pub fn schemathesis() -> &'static Path {
    match &env().tools.schemathesis {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "schemathesis is not installed (no tools.schemathesis in {}); \
             `cargo xtask env up` installs it from PyPI",
            env_file().display()
        ),
    }
}

/// PostgreSQL (checked reachable).
pub fn postgres() -> &'static Postgres {
    let p = section("postgres", &env().postgres);
    require_tcp("PostgreSQL", &format!("{}:{}", p.host, p.port));
    p
}

/// The HTTPS endpoint of the OCI registry (checked reachable); the
/// credentials are the [`registry()`] ones. Panics when env.json has none.
pub fn registry_tls() -> &'static TlsEndpoint {
    let r = section("registry", &env().registry);
    let t = section("registry.tls (the registry's HTTPS endpoint)", &r.tls);
    require_tcp("the OCI registry's HTTPS endpoint", &t.host);
    t
}

/// The HTTPS endpoint of MinIO (checked reachable); the credentials and
/// region are the [`minio()`] ones. Panics when env.json has none.
pub fn minio_tls() -> &'static TlsEndpoint {
    let m = section("minio", &env().minio);
    let t = section("minio.tls (MinIO's HTTPS endpoint)", &m.tls);
    require_tcp("MinIO's HTTPS endpoint", &t.host);
    t
}

/// The fault-injection API server, held exclusively (see [`Exclusive`]):
/// the same cluster as [`kubernetes()`] (one etcd, one CA, the same
/// tokens, nodes and namespaces), another server URL and kubeconfig.
/// Waits while another test holds it; once held, started if a test before
/// left it stopped, and checked reachable.
pub fn kubernetes_fault() -> Exclusive<Kubernetes> {
    let k = section("kubernetes_fault", &env().kubernetes_fault);
    let g = Exclusive::acquire("kube-apiserver-fault", k);
    g.require_up("the fault-injection API server", authority(&k.server));
    g
}

/// The fault-injection RabbitMQ node, held exclusively (see
/// [`Exclusive`]): the same credentials as [`rabbitmq()`], a broker of its
/// own. Waits while another test holds it; once held, started if a test
/// before left it stopped, and checked reachable.
pub fn rabbitmq_fault() -> Exclusive<RabbitMq> {
    let r = section("rabbitmq_fault", &env().rabbitmq_fault);
    let g = Exclusive::acquire("rabbitmq-fault", r);
    g.require_up(
        "the fault-injection RabbitMQ node",
        &format!("{}:{}", r.host, r.port),
    );
    g
}

/// The fault-injection PostgreSQL cluster, held exclusively (see
/// [`Exclusive`]): the same program, user and credentials as
/// [`postgres()`], a cluster and port of its own, for tests that stop or
/// restart the database. Waits while another test holds it; once held,
/// started if a test before left it stopped, and checked reachable.
pub fn postgres_fault() -> Exclusive<Postgres> {
    let p = section("postgres_fault", &env().postgres_fault);
    let g = Exclusive::acquire("postgres-fault", p);
    g.require_up(
        "the fault-injection PostgreSQL cluster",
        &format!("{}:{}", p.host, p.port),
    );
    g
}

/// How long [`Exclusive`] waits for another test to let go of a server.
const EXCLUSIVE_WAIT: Duration = Duration::from_secs(900);

/// Exclusive use of a fault-injection instance: a test may stop, start
/// and restart the server while it holds this. Dereferences to the
/// server's section of env.json.
///
/// Exclusion is an advisory lock on a file beside env.json
/// (`locks/<server>.test.lock`), which the operating system releases when
/// the guard is dropped or its process dies; so it holds across threads
/// and processes alike. Hold one guard per server per test: asking for the
/// same server again before dropping the first guard waits for itself, and
/// fails after a while naming the holder.
pub struct Exclusive<T: 'static> {
    server: &'static str,
    value: &'static T,
    _lock: File,
}

impl<T> std::ops::Deref for Exclusive<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Exclusive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exclusive")
            .field("server", &self.server)
            .field("value", self.value)
            .finish()
    }
}

/// The lock file of a server, beside the env file `env_file`.
pub fn test_lock_file(env_file: &Path, server: &str) -> PathBuf {
    env_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("locks")
        .join(format!("{server}.test.lock"))
}

impl<T> Exclusive<T> {
    fn acquire(server: &'static str, value: &'static T) -> Self {
        let path = test_lock_file(&env_file(), server);
        match lock_file(&path, EXCLUSIVE_WAIT) {
            Ok(f) => Exclusive {
                server,
                value,
                _lock: f,
            },
            Err(e) => panic!("cannot hold {server} for this test alone: {e}"),
        }
    }

    /// A test that stopped the instance and then failed leaves it down for
    /// the next holder, who may start it: nobody else uses it.
    fn require_up(&self, what: &str, addr: &str) {
        if !accepts_tcp(addr) {
            eprintln!(
                "{} is down (a test before this one may have stopped it); starting it",
                self.server
            );
            if let Err(e) = self.start() {
                panic!("{what} is not reachable at {addr} and could not be started: {e}");
            }
        }
        require_tcp(what, addr);
    }

    /// The server's name for `cargo xtask env stop|start|restart`.
    pub fn server(&self) -> &'static str {
        self.server
    }

    /// `cargo xtask env stop SERVER`.
    pub fn stop(&self) -> Result<(), String> {
        self.xtask("stop")
    }

    /// `cargo xtask env start SERVER` (returns once it is healthy).
    pub fn start(&self) -> Result<(), String> {
        self.xtask("start")
    }

    /// `cargo xtask env restart SERVER` (returns once it is healthy).
    pub fn restart(&self) -> Result<(), String> {
        self.xtask("restart")
    }

    /// Runs the xtask binary that wrote env.json (no cargo, so no wait
    /// for the build lock).
    fn xtask(&self, action: &str) -> Result<(), String> {
        let bin = env().xtask.as_ref().ok_or_else(|| {
            format!(
                "{} names no xtask binary, so this test cannot {action} {}; {HOW}",
                env_file().display(),
                self.server
            )
        })?;
        let out = std::process::Command::new(bin)
            .args(["env", action, self.server])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}; {HOW}", bin.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`xtask env {action} {}` failed with {}: {}",
                self.server,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Locks `path` (creating it), waiting up to `wait` for the holder; then
/// notes in it who holds it (pid and thread, which under `cargo test` is
/// the test's name) for `cargo xtask env status` and for other waiters.
fn lock_file(path: &Path, wait: Duration) -> Result<File, String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("opening {}: {e}", path.display()))
    };
    let mut f = open()?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path).unwrap_or_default();
                let holder = holder.trim();
                if start.elapsed() >= wait {
                    return Err(format!(
                        "{} is still held after {wait:?} by {holder}",
                        path.display()
                    ));
                }
                if !told {
                    eprintln!("waiting for {} (held by {holder})", path.display());
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("locking {}: {e}", path.display()));
            }
        }
    }
    let me = std::thread::current();
    let note = format!(
        "pid {} ({})\n",
        std::process::id(),
        me.name().unwrap_or("unnamed thread")
    );
    // Only the holder writes the note; a failure to write it is harmless.
    let _ = f.set_len(0).and_then(|_| f.write_all(note.as_bytes()));
    Ok(f)
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

    const OLD_ENV: &str = r#"{"version": 1,
        "minio": {"endpoint": "http://127.0.0.1:19000", "access_key": "a", "secret_key": "s", "region": "us-east-1"},
        "registry": {"url": "http://127.0.0.1:15000", "host": "127.0.0.1:15000", "username": "u", "password": "p"}}"#;

    #[test]
    fn older_env_files_still_parse_and_lack_the_new_endpoints() {
        let e: Env = serde_json::from_str(OLD_ENV).unwrap();
        assert!(e.minio.as_ref().unwrap().tls.is_none());
        assert!(e.registry.as_ref().unwrap().tls.is_none());
        assert!(e.kubernetes_fault.is_none() && e.rabbitmq_fault.is_none() && e.xtask.is_none());
        assert!(e.postgres_fault.is_none());
    }

    #[test]
    fn a_missing_tls_endpoint_fails_with_how_to_start_it() {
        let e: Env = serde_json::from_str(OLD_ENV).unwrap();
        let r = e.registry.unwrap();
        let msg = std::panic::catch_unwind(|| {
            section("registry.tls (the registry's HTTPS endpoint)", &r.tls);
        })
        .unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("registry.tls"), "{msg}");
        assert!(msg.contains("cargo xtask env up"), "{msg}");
    }

    #[test]
    fn tls_endpoints_parse() {
        let e: Env = serde_json::from_str(
            r#"{"version": 1, "registry": {"url": "http://127.0.0.1:15000", "host": "127.0.0.1:15000",
                "username": "u", "password": "p",
                "tls": {"url": "https://127.0.0.1:15443", "host": "127.0.0.1:15443",
                        "ca_file": "/x/services-ca.crt", "ca_pem": "-----BEGIN CERTIFICATE-----"}}}"#,
        )
        .unwrap();
        let t = e.registry.unwrap().tls.unwrap();
        assert_eq!(authority(&t.url), t.host);
        assert!(t.ca_pem.starts_with("-----BEGIN"));
    }

    #[test]
    fn the_test_lock_excludes_other_holders_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("testenv-lock-{}", std::process::id()));
        let path = test_lock_file(&dir.join("env.json"), "rabbitmq-fault");
        assert_eq!(path, dir.join("locks").join("rabbitmq-fault.test.lock"));
        let held = lock_file(&path, Duration::ZERO).unwrap();
        // A second open file conflicts, in this process as in another.
        let e = lock_file(&path, Duration::from_millis(300)).unwrap_err();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("the_test_lock_excludes_other_holders"), "{e}");
        drop(held);
        let again = lock_file(&path, Duration::ZERO).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
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
