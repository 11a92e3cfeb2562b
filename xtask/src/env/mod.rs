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
mod packages;
mod postgres;
mod proc;
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
pub const OTHER_USERS: &[(&str, &str)] = &[("postgres", postgres::OS_USER)];

/// Every server, in start order. `down` stops them in reverse.
pub const SERVICES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "minio",
    "rabbitmq",
    "docker",
    "registry",
    "postgres",
];

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
                sh::write(&sfile, text)?;
                set_mode(&sfile, 0o600)?;
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
        "minio" => storage::health(ctx),
        "rabbitmq" => rabbitmq::health(ctx),
        "docker" => docker::health(ctx),
        "registry" => registry::health(ctx),
        "postgres" => postgres::health(ctx),
        other => Err(format!("unknown server {other}")),
    }
}

fn start(ctx: &Ctx, name: &str) -> Res {
    match name {
        n if kubernetes::COMPONENTS.contains(&n) => kubernetes::start(ctx, name),
        "minio" => storage::start(ctx),
        "rabbitmq" => rabbitmq::start(ctx),
        "docker" => docker::start(ctx),
        "registry" => registry::start(ctx),
        "postgres" => postgres::start(ctx),
        other => Err(format!("unknown server {other}")),
    }
}

fn stop(ctx: &Ctx, name: &str) -> Res {
    match name {
        "rabbitmq" => rabbitmq::stop(ctx),
        "postgres" => postgres::stop(ctx),
        other => proc::stop(ctx, other),
    }
}

/// Starts one server unless it is already healthy; waits until it is.
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
    if names.contains(&"minio") {
        storage::build()?;
    }
    Ok(())
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
    let ctx = Ctx::load()?;
    for name in &wanted {
        ensure(&ctx, name)?;
    }
    if wanted.contains(&"kwok") {
        kubernetes::setup(&ctx)?;
    }
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
        match health(&ctx, name) {
            Ok(detail) => println!("{name:<24} healthy   {detail}"),
            Err(why) => {
                println!(
                    "{name:<24} DOWN      {why} (log: {})",
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
        for name in SERVICES.iter().rev() {
            if let Err(e) = stop(&ctx, name) {
                eprintln!("xtask: stopping {name}: {e}");
            }
        }
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

fn write_env_json(ctx: &Ctx) -> Res {
    let v: Value = json!({
        "version": 1,
        "kubernetes": kubernetes::env_section(ctx)?,
        "minio": storage::env_section(ctx),
        "rabbitmq": rabbitmq::env_section(ctx),
        "docker": docker::env_section(ctx),
        "registry": registry::env_section(ctx),
        "postgres": postgres::env_section(ctx),
    });
    let p = ctx.root.join("env.json");
    sh::write(
        &p,
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?,
    )?;
    set_mode(&p, 0o600)
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
    fn every_other_user_server_is_a_server() {
        for (name, _) in OTHER_USERS {
            assert!(SERVICES.contains(name), "{name}");
        }
    }
}
