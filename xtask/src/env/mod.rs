//! `cargo xtask env ...`: the local environment of real servers.
//!
//! Every server listens on 127.0.0.1 only. State (data, logs, pid files,
//! certificates) lives under `target/kubepkg-env/`; sockets, and the state
//! of servers that run as another user (PostgreSQL), under a short
//! `/tmp/kubepkg-<id>/` directory that such a user can enter wherever the
//! clone is (unix socket paths are length-limited, too); builds and
//! downloads are cached under `~/.cache/kubepkg/` and survive `down`.

mod docker;
mod kubernetes;
mod lock;
mod packages;
mod pki;
mod postgres;
mod proc;
mod pytools;
mod rabbitmq;
mod registry;
mod storage;
mod users;

use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Servers that run as a user other than the one running xtask, with that
/// user. Their state lives in [`Ctx::other_user_state`]; `env check-users`
/// (a step of `cargo xtask test`) starts each from a clone under a 0700
/// directory and fails when a running server has processes of a user that
/// is not listed here.
pub const OTHER_USERS: &[(&str, &str)] = &[
    ("postgres", postgres::OS_USER),
    ("postgres-fault", postgres::OS_USER),
];

/// Every server, in start order. `up` starts each as soon as the servers
/// it [`needs`] are up (the rest in parallel); `down` stops them in reverse.
pub const SERVICES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-apiserver-fault",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "minio",
    "minio-tls",
    "rabbitmq",
    "rabbitmq-fault",
    "docker",
    "registry",
    "registry-tls",
    "postgres",
    "postgres-fault",
];

/// The servers that [`needs`] `name`: `down` stops them first.
fn needed_by(name: &str) -> &'static [&'static str] {
    match name {
        "etcd" => &["kube-apiserver", "kube-apiserver-fault"],
        "kube-apiserver" => &["kube-controller-manager", "kube-scheduler", "kwok"],
        _ => &[],
    }
}

/// Fault-injection instances: servers of their own that the tests which
/// stop or restart a server use, so that no other test meets the outage.
/// A test holds one through `kubepkg-testenv`, which takes its test lock
/// (see `lock.rs`); `env up` leaves a server alone while that is held.
pub const FAULT_INSTANCES: &[(&str, &str)] = &[
    ("kube-apiserver-fault", "kube-apiserver"),
    ("rabbitmq-fault", "rabbitmq"),
    ("postgres-fault", "postgres"),
];

/// The servers that must be up before `name` starts.
pub fn needs(name: &str) -> &'static [&'static str] {
    match name {
        "kube-apiserver" | "kube-apiserver-fault" => &["etcd"],
        "kube-controller-manager" | "kube-scheduler" | "kwok" => &["kube-apiserver"],
        _ => &[],
    }
}

/// Where things live.
#[derive(Clone)]
pub struct Ctx {
    /// `target/kubepkg-env`
    pub root: PathBuf,
    /// `/tmp/kubepkg-<id>`: sockets and other short paths.
    pub run: PathBuf,
    /// Generated credentials, stable while the state exists.
    pub secrets: Secrets,
}

/// Credentials generated on the first `up` and kept until `down`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Secrets {
    pub admin_token: String,
    pub limited_token: String,
    pub minio_access_key: String,
    pub minio_secret_key: String,
    pub rabbitmq_password: String,
    pub registry_password: String,
    pub registry_http_secret: String,
    pub postgres_password: String,
}

impl Ctx {
    /// Paths of this checkout without touching the disk.
    pub fn paths() -> (PathBuf, PathBuf) {
        Self::paths_for(&sh::workspace_root())
    }

    /// `(target/kubepkg-env, /tmp/kubepkg-<id>)` of the checkout at `ws`; the
    /// id is a hash of the checkout's path, so two clones never share one.
    pub fn paths_for(ws: &Path) -> (PathBuf, PathBuf) {
        let root = ws.join("target").join("kubepkg-env");
        let mut h: u64 = 0xcbf29ce484222325;
        for b in ws.to_string_lossy().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        let run = PathBuf::from(format!("/tmp/kubepkg-{:08x}", h as u32));
        (root, run)
    }

    /// Loads the context, generating secrets the first time.
    pub fn load() -> Res<Ctx> {
        Self::load_at(&sh::workspace_root())
    }

    /// [`Ctx::load`] for the checkout at `ws`.
    pub fn load_at(ws: &Path) -> Res<Ctx> {
        let (root, run) = Self::paths_for(ws);
        sh::mkdir(&root)?;
        make_run_dir(&run)?;
        let sfile = root.join("secrets.json");
        let secrets = match std::fs::read_to_string(&sfile) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| format!("{}: {e}", sfile.display()))?,
            Err(_) => {
                let s = Secrets {
                    admin_token: sh::random_hex(24)?,
                    limited_token: sh::random_hex(24)?,
                    minio_access_key: format!("kubepkg{}", sh::random_hex(6)?),
                    minio_secret_key: sh::random_hex(20)?,
                    rabbitmq_password: sh::random_hex(16)?,
                    registry_password: sh::random_hex(16)?,
                    registry_http_secret: sh::random_hex(16)?,
                    postgres_password: sh::random_hex(16)?,
                };
                let text = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
                sh::write_private(&sfile, text)?;
                s
            }
        };
        Ok(Ctx { root, run, secrets })
    }

    /// State directory of one server.
    pub fn state(&self, name: &str) -> PathBuf {
        self.root.join("state").join(name)
    }

    /// State directory of a server that runs as another user (see
    /// [`OTHER_USERS`]). It lives under `run`, outside the checkout, because
    /// that user may not be able to enter the checkout: a clone under `/root`
    /// or in a `mktemp -d` directory is open to root only.
    pub fn other_user_state(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    /// Log file of one server. Servers that run as another user get it as an
    /// open file descriptor, never by path.
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }
}

/// Creates `/tmp/kubepkg-<id>` and makes sure it is ours: a directory (not a
/// symlink) owned by this process's user, which other users may traverse
/// but not list or write. `/tmp` is world-writable and the name predictable,
/// so a directory someone else made first is refused rather than used.
fn make_run_dir(run: &Path) -> Res {
    use std::os::unix::fs::MetadataExt;
    sh::mkdir(run)?;
    let meta = std::fs::symlink_metadata(run).map_err(|e| format!("{}: {e}", run.display()))?;
    let me = sh::euid()?;
    if !meta.is_dir() || meta.uid() != me {
        return Err(format!(
            "{} is not a directory owned by uid {me}; remove it and retry",
            run.display()
        ));
    }
    set_mode(run, 0o711)
}

/// Polls a health check until it passes; the error is its last answer.
pub fn wait_healthy(
    limit: std::time::Duration,
    mut check: impl FnMut() -> Result<String, String>,
) -> Res {
    let mut last = String::from("no answer yet");
    if sh::wait_until(limit, || match check() {
        Ok(_) => true,
        Err(e) => {
            last = e;
            false
        }
    }) {
        Ok(())
    } else {
        Err(last)
    }
}

/// chmod.
pub fn set_mode(p: &std::path::Path, mode: u32) -> Res {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", p.display()))
}

/// Entry point of `cargo xtask env`.
pub fn command(args: &[&str]) -> Res {
    match args {
        ["up", names @ ..] => up(names),
        ["down"] => down(),
        ["status"] => status(),
        ["build"] => build_all(),
        ["start", name] => one(name, Action::Start),
        ["stop", name] => one(name, Action::Stop),
        ["restart", name] => one(name, Action::Restart),
        ["check-users"] => check_users(),
        _ => Err("usage: cargo xtask env up [NAME...] | down | status | build | start NAME | stop NAME | restart NAME | check-users".into()),
    }
}

enum Action {
    Start,
    Stop,
    Restart,
}

fn check_name(name: &str) -> Res {
    if SERVICES.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "unknown server {name:?}; known: {}",
            SERVICES.join(", ")
        ))
    }
}

/// Health of one server: `Ok(detail)` when it answers a real request.
fn health(ctx: &Ctx, name: &str) -> Result<String, String> {
    match name {
        n if kubernetes::COMPONENTS.contains(&n) => kubernetes::health(ctx, name),
        n if storage::SERVERS.contains(&n) => storage::health(ctx, name),
        n if registry::SERVERS.contains(&n) => registry::health(ctx, name),
        "rabbitmq" | "rabbitmq-fault" => rabbitmq::node(name)?.health(),
        "docker" => docker::health(ctx),
        "postgres" => postgres::health(ctx),
        "postgres-fault" => postgres::Cluster::fault(ctx).health(),
        other => Err(format!("unknown server {other}")),
    }
}

fn start(ctx: &Ctx, name: &str) -> Res {
    match name {
        n if kubernetes::COMPONENTS.contains(&n) => kubernetes::start(ctx, name),
        n if storage::SERVERS.contains(&n) => storage::start(ctx, name),
        n if registry::SERVERS.contains(&n) => registry::start(ctx, name),
        "rabbitmq" | "rabbitmq-fault" => rabbitmq::node(name)?.start(ctx),
        "docker" => docker::start(ctx),
        "postgres" => postgres::start(ctx),
        "postgres-fault" => postgres::Cluster::fault(ctx).start(),
        other => Err(format!("unknown server {other}")),
    }
}

/// Stops a server; done when it no longer answers its health check, so a
/// test that stops a server meets it down.
fn stop(ctx: &Ctx, name: &str) -> Res {
    match name {
        "rabbitmq" | "rabbitmq-fault" => rabbitmq::node(name)?.stop(ctx),
        "postgres" => postgres::stop(ctx),
        "postgres-fault" => postgres::Cluster::fault(ctx).stop(),
        other => proc::stop(ctx, other),
    }?;
    if sh::wait_until(std::time::Duration::from_secs(10), || {
        health(ctx, name).is_err()
    }) {
        Ok(())
    } else {
        Err(format!(
            "{name} still answers after it was stopped (a process that is not ours?)"
        ))
    }
}

/// Starts one server unless it is already healthy; waits until it is.
/// The caller holds the server's lock ([`lock::server_lock`]).
fn ensure(ctx: &Ctx, name: &str) -> Res {
    if health(ctx, name).is_ok() {
        eprintln!("xtask: {name:<24} already up");
        return Ok(());
    }
    // A process that is there but does not answer is restarted.
    let _ = stop(ctx, name);
    let t = Instant::now();
    start(ctx, name).map_err(|e| {
        format!(
            "{name} did not start: {e}\n  log: {}\n{}",
            ctx.log(name).display(),
            sh::tail(&ctx.log(name), 15)
        )
    })?;
    eprintln!("xtask: {name:<24} up in {:.1?}", t.elapsed());
    Ok(())
}

fn build_all() -> Res {
    build_for(SERVICES)
}

/// Installs and builds what the named servers need.
fn build_for(names: &[&str]) -> Res {
    packages::ensure()?;
    if names.iter().any(|n| kubernetes::COMPONENTS.contains(n)) {
        kubernetes::build()?;
    }
    if names.iter().any(|n| storage::SERVERS.contains(n)) {
        storage::build()?;
    }
    Ok(())
}

/// A test holds this server (see [`FAULT_INSTANCES`]): who, if so.
pub(crate) fn held_by_test(ctx: &Ctx, name: &str) -> Option<String> {
    FAULT_INSTANCES
        .iter()
        .any(|(f, _)| *f == name)
        .then(|| lock::holder(&lock::test_lock(ctx, name)))
        .flatten()
}

/// [`ensure`] under the server's lock, unless a test holds the server.
fn ensure_locked(ctx: &Ctx, name: &str) -> Res {
    let _l = lock::exclusive(&lock::server_lock(ctx, name))?;
    if let Some(who) = held_by_test(ctx, name) {
        eprintln!("xtask: {name:<24} in use by a fault test ({who}); left alone");
        return Ok(());
    }
    ensure(ctx, name)
}

/// Starts `wanted` (in [`SERVICES`] order), each in a thread of its own as
/// soon as those of its [`needs`] that are wanted too are up. A server
/// whose need failed is not started. Every failure is reported.
fn ensure_all(ctx: &Ctx, wanted: &[&'static str]) -> Res {
    in_parallel(wanted, needs, |name| {
        ensure_locked(ctx, name)?;
        if name == "kwok" {
            // Nodes, namespace and RBAC, while the rest is still starting.
            kubernetes::setup(ctx)?;
        }
        Ok(())
    })
}

/// Runs `f` for each of `names` in a thread of its own, once `f` has
/// succeeded for those of its `needs` that are in `names`.
fn in_parallel(
    names: &[&'static str],
    needs: fn(&str) -> &'static [&'static str],
    f: impl Fn(&'static str) -> Res + Sync,
) -> Res {
    let wanted = names;
    let f = &f;
    use std::collections::HashMap;
    use std::sync::{Condvar, Mutex};
    let done: Mutex<HashMap<&str, bool>> = Mutex::new(HashMap::new());
    let cv = Condvar::new();
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for &name in wanted {
            let (done, cv, errors) = (&done, &cv, &errors);
            s.spawn(move || {
                let deps: Vec<&str> = needs(name)
                    .iter()
                    .copied()
                    .filter(|d| wanted.contains(d))
                    .collect();
                let mut map = done.lock().unwrap_or_else(|p| p.into_inner());
                while !deps.iter().all(|d| map.contains_key(d)) {
                    map = cv.wait(map).unwrap_or_else(|p| p.into_inner());
                }
                let failed: Vec<&str> = deps.iter().copied().filter(|d| !map[d]).collect();
                drop(map);
                let r = if failed.is_empty() {
                    // A panic must still mark the server done, or what
                    // needs it would wait for ever.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(name)))
                        .unwrap_or_else(|_| Err(format!("{name}: xtask panicked")))
                } else {
                    Err(format!(
                        "{name} not started: it needs {}",
                        failed.join(", ")
                    ))
                };
                let ok = r.is_ok();
                if let Err(e) = r {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                }
                done.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name, ok);
                cv.notify_all();
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// `env up`: install / build what is missing, start what is not healthy, write env.json.
pub fn up(names: &[&str]) -> Res {
    for n in names {
        check_name(n)?;
    }
    let t = Instant::now();
    let wanted: Vec<&str> = if names.is_empty() {
        SERVICES.to_vec()
    } else {
        SERVICES
            .iter()
            .copied()
            .filter(|s| names.contains(s))
            .collect()
    };
    build_for(&wanted)?;
    if names.is_empty() {
        // Test tools beside the servers: only a whole `env up` installs them.
        pytools::ensure()?;
    }
    let ctx = Ctx::load()?;
    ensure_all(&ctx, &wanted)?;
    write_env_json(&ctx)?;
    eprintln!(
        "xtask: environment up in {:.1?}; endpoints and credentials in {}",
        t.elapsed(),
        ctx.root.join("env.json").display()
    );
    Ok(())
}

fn one(name: &str, action: Action) -> Res {
    check_name(name)?;
    if !matches!(action, Action::Stop) {
        build_for(&[name])?;
    }
    let ctx = Ctx::load()?;
    let _l = lock::exclusive(&lock::server_lock(&ctx, name))?;
    match action {
        Action::Stop => {
            stop(&ctx, name)?;
            eprintln!("xtask: {name} stopped");
        }
        Action::Start => ensure(&ctx, name)?,
        Action::Restart => {
            stop(&ctx, name)?;
            ensure(&ctx, name)?;
        }
    }
    Ok(())
}

/// `env check-users`: servers that run as another user work from a clone
/// under a 0700 directory (see `users.rs`).
pub fn check_users() -> Res {
    users::check()
}

/// `env status`: one line per server; fails when any is unhealthy.
pub fn status() -> Res {
    let (root, _) = Ctx::paths();
    if !root.join("secrets.json").exists() {
        return Err("the environment is not up (no state); run `cargo xtask env up`".into());
    }
    let ctx = Ctx::load()?;
    let mut bad = Vec::new();
    for name in SERVICES {
        let held = held_by_test(&ctx, name)
            .map(|who| format!(" [in use by a fault test: {who}]"))
            .unwrap_or_default();
        match health(&ctx, name) {
            Ok(detail) => println!("{name:<24} healthy   {detail}{held}"),
            Err(why) => {
                println!(
                    "{name:<24} DOWN      {why} (log: {}){held}",
                    ctx.log(name).display()
                );
                bad.push(*name);
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("not healthy: {}", bad.join(", ")))
    }
}

/// `env down`: stop everything, remove all state. Idempotent.
pub fn down() -> Res {
    let (root, run) = Ctx::paths();
    if root.join("secrets.json").exists() {
        let ctx = Ctx::load()?;
        // Each server once those that need it are stopped.
        let _ = in_parallel(SERVICES, needed_by, |name| {
            if let Err(e) = stop(&ctx, name) {
                eprintln!("xtask: stopping {name}: {e}");
            }
            Ok(())
        });
        // After both RabbitMQ nodes: epmd refuses to stop while one is registered.
        rabbitmq::stop_epmd();
    }
    // Processes whose pid files were lost are found by their state paths.
    proc::kill_strays(&root, &run);
    for p in [&root, &run] {
        if p.exists() {
            std::fs::remove_dir_all(p).map_err(|e| format!("removing {}: {e}", p.display()))?;
        }
    }
    eprintln!("xtask: environment down; state removed");
    Ok(())
}

/// The `tls` part of a section: an HTTPS endpoint and the CA that signed
/// its certificate.
fn tls_section(ctx: &Ctx, url: &str) -> Value {
    let ca = pki::services_ca(ctx);
    let host = url.split_once("://").map(|(_, h)| h).unwrap_or(url);
    json!({
        "url": url,
        "host": host,
        "ca_file": ca,
        "ca_pem": sh::read(&ca).unwrap_or_default(),
    })
}

/// The contents of env.json (the shapes `kubepkg-testenv` reads).
fn env_json(ctx: &Ctx) -> Res<Value> {
    Ok(json!({
        "version": 1,
        "kubernetes": kubernetes::env_section(ctx, "kube-apiserver")?,
        "kubernetes_fault": kubernetes::env_section(ctx, kubernetes::FAULT_APISERVER)?,
        "minio": storage::env_section(ctx),
        "rabbitmq": rabbitmq::MAIN.env_section(ctx),
        "rabbitmq_fault": rabbitmq::FAULT.env_section(ctx),
        "docker": docker::env_section(ctx),
        "registry": registry::env_section(ctx),
        "postgres": postgres::env_section(ctx, postgres::PORT),
        "postgres_fault": postgres::env_section(ctx, postgres::FAULT_PORT),
        // Tests stop and start their fault instances with this binary.
        "xtask": std::env::current_exe().ok(),
        "tools": { "schemathesis": pytools::schemathesis() },
    }))
}

fn write_env_json(ctx: &Ctx) -> Res {
    let v = env_json(ctx)?;
    sh::write_private(
        &ctx.root.join("env.json"),
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_for(ws: &str) -> Ctx {
        let (root, run) = Ctx::paths_for(Path::new(ws));
        let s = String::new;
        Ctx {
            root,
            run,
            secrets: Secrets {
                admin_token: s(),
                limited_token: s(),
                minio_access_key: s(),
                minio_secret_key: s(),
                rabbitmq_password: s(),
                registry_password: s(),
                registry_http_secret: s(),
                postgres_password: s(),
            },
        }
    }

    #[test]
    fn other_users_state_is_outside_the_clone() {
        let ws = "/root/private/kubepkg";
        let ctx = ctx_for(ws);
        assert!(ctx.root.starts_with(ws));
        for (name, _) in OTHER_USERS {
            let dir = ctx.other_user_state(name);
            assert!(!dir.starts_with("/root"), "{}", dir.display());
            assert!(dir.starts_with(&ctx.run));
            let pg = postgres::Cluster::of(&ctx);
            // Room for the socket name within the 107 bytes of sun_path.
            assert!(pg.dir.join(".s.PGSQL.65535").as_os_str().len() < 100);
        }
    }

    #[test]
    fn each_clone_has_its_own_run_dir() {
        let a = Ctx::paths_for(Path::new("/tmp/tmp.a/kubepkg"));
        let b = Ctx::paths_for(Path::new("/tmp/tmp.b/kubepkg"));
        assert_ne!(a.1, b.1);
        assert_eq!(a, Ctx::paths_for(Path::new("/tmp/tmp.a/kubepkg")));
    }

    #[test]
    fn env_json_is_what_testenv_reads() {
        let ctx = ctx_for("/tmp/nowhere/kubepkg");
        let v = env_json(&ctx).unwrap();
        let e: kubepkg_testenv::Env = serde_json::from_value(v).unwrap();
        let (k, kf) = (e.kubernetes.unwrap(), e.kubernetes_fault.unwrap());
        assert_ne!(k.server, kf.server);
        assert_ne!(k.kubeconfig, kf.kubeconfig);
        assert_eq!((&k.ca_file, &k.nodes), (&kf.ca_file, &kf.nodes));
        let (r, rf) = (e.rabbitmq.unwrap(), e.rabbitmq_fault.unwrap());
        assert_ne!(r.port, rf.port);
        assert_eq!(r.username, rf.username);
        let reg = e.registry.unwrap();
        let rt = reg.tls.unwrap();
        assert!(reg.url.starts_with("http://"));
        assert!(rt.url.starts_with("https://127.0.0.1:"), "{}", rt.url);
        assert_eq!(rt.url, format!("https://{}", rt.host));
        let m = e.minio.unwrap();
        let mt = m.tls.unwrap();
        assert!(m.endpoint.starts_with("http://"));
        assert!(mt.url.starts_with("https://127.0.0.1:"), "{}", mt.url);
        assert_eq!(rt.ca_file, mt.ca_file);
        assert_ne!(
            rt.ca_file, k.ca_file,
            "the services CA is not the cluster CA"
        );
        assert!(e.xtask.is_some());
    }

    #[test]
    fn every_server_has_a_port_of_its_own() {
        let ports = [
            kubernetes::ETCD_PORT,
            kubernetes::ETCD_PEER_PORT,
            kubernetes::APISERVER_PORT,
            kubernetes::FAULT_APISERVER_PORT,
            storage::PORT,
            storage::TLS_PORT,
            rabbitmq::MAIN.port,
            rabbitmq::MAIN.dist_port,
            rabbitmq::FAULT.port,
            rabbitmq::FAULT.dist_port,
            registry::PORT,
            registry::TLS_PORT,
            postgres::PORT,
            postgres::FAULT_PORT,
        ];
        for (i, p) in ports.iter().enumerate() {
            assert!(!ports[i + 1..].contains(p), "port {p} used twice");
        }
    }

    #[test]
    fn needs_come_first_and_name_servers() {
        for (i, name) in SERVICES.iter().enumerate() {
            for need in needs(name) {
                let j = SERVICES.iter().position(|s| s == need);
                assert!(j.is_some_and(|j| j < i), "{name} needs {need}");
            }
        }
    }

    #[test]
    fn needed_by_is_the_inverse_of_needs() {
        for a in SERVICES {
            for b in SERVICES {
                assert_eq!(needs(a).contains(b), needed_by(b).contains(a), "{a} / {b}");
            }
        }
    }

    #[test]
    fn fault_instances_are_servers_with_a_shared_twin() {
        for (fault, twin) in FAULT_INSTANCES {
            assert!(SERVICES.contains(fault), "{fault}");
            assert!(SERVICES.contains(twin), "{twin}");
            assert_eq!(needs(fault), needs(twin));
            // Nothing else waits for a server that tests stop on purpose.
            assert!(SERVICES.iter().all(|s| !needs(s).contains(fault)));
        }
    }

    #[test]
    fn the_test_lock_is_where_testenv_takes_it() {
        let ctx = ctx_for("/tmp/nowhere/kubepkg");
        for (fault, _) in FAULT_INSTANCES {
            assert_eq!(
                lock::test_lock(&ctx, fault),
                kubepkg_testenv::test_lock_file(&ctx.root.join("env.json"), fault)
            );
        }
    }

    #[test]
    fn up_starts_each_server_after_its_needs_and_the_rest_at_once() {
        use std::sync::Mutex;
        let log: Mutex<Vec<(&str, &str)>> = Mutex::new(Vec::new());
        let r = in_parallel(SERVICES, needs, |name| {
            log.lock().unwrap().push(("start", name));
            std::thread::sleep(std::time::Duration::from_millis(100));
            log.lock().unwrap().push(("done", name));
            match name {
                "kube-apiserver" => Err("kube-apiserver: boom".into()),
                "kube-apiserver-fault" => panic!("a bug"),
                _ => Ok(()),
            }
        });
        let e = r.unwrap_err();
        let log = log.into_inner().unwrap();
        let at = |ev: &str, n: &str| log.iter().position(|x| *x == (ev, n));
        // What needs the failed server is not started, and says why.
        for n in ["kube-controller-manager", "kube-scheduler", "kwok"] {
            assert_eq!(at("start", n), None, "{n}");
            assert!(
                e.contains(&format!("{n} not started: it needs kube-apiserver")),
                "{e}"
            );
        }
        assert!(e.contains("kube-apiserver: boom"), "{e}");
        assert!(e.contains("kube-apiserver-fault: xtask panicked"), "{e}");
        // Needs are up first; everything else started in parallel.
        assert!(at("done", "etcd") < at("start", "kube-apiserver-fault"));
        assert!(at("start", "postgres") < at("done", "etcd"));
        assert_eq!(log.len(), 2 * (SERVICES.len() - 3));
    }

    #[test]
    fn every_other_user_server_is_a_server() {
        for (name, _) in OTHER_USERS {
            assert!(SERVICES.contains(name), "{name}");
        }
    }
}
