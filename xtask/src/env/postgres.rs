//! A throw-away PostgreSQL cluster from Debian's postgresql, on its own port.
//!
//! The server runs as the `postgres` user, who may be unable to enter the
//! clone (one under `/root` or in a `mktemp -d` directory is root's alone).
//! So everything that user opens by path (the data directory, the unix
//! socket, the password file `initdb` reads) is in a directory of its own
//! outside the clone, [`Ctx::other_user_state`], owned by it with mode 0700;
//! its commands run with that directory as their working directory; and the
//! log stays with the other logs in `target/kubepkg-env/logs/`, handed to the
//! server as an open file rather than a path.

use super::{Ctx, packages};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const PORT: u16 = 15433;
/// The fault-injection cluster's port (`postgres-fault`: tests stop and
/// restart it; nothing else uses it).
pub const FAULT_PORT: u16 = 15434;
/// The operating-system user the server runs as.
pub const OS_USER: &str = "postgres";
const USER: &str = "kubepkg";
pub const DB: &str = "kubepkg";

/// One cluster: where it lives and where it listens.
pub struct Cluster {
    /// Owned by [`OS_USER`], mode 0700: `data/`, the socket, and the
    /// password file while `initdb` runs.
    pub dir: PathBuf,
    pub port: u16,
    /// Opened by xtask and passed to the server as its stdout and stderr.
    pub log: PathBuf,
    password: String,
}

impl Cluster {
    /// The environment's cluster.
    pub fn of(ctx: &Ctx) -> Cluster {
        Self::on_port(ctx, PORT)
    }

    /// The fault-injection cluster: the same program, user and secrets,
    /// with a state directory, log and port of its own.
    pub fn fault(ctx: &Ctx) -> Cluster {
        Cluster {
            dir: ctx.other_user_state("postgres-fault"),
            port: FAULT_PORT,
            log: ctx.log("postgres-fault"),
            password: ctx.secrets.postgres_password.clone(),
        }
    }

    /// A cluster with the environment's layout and secrets on another port.
    pub fn on_port(ctx: &Ctx, port: u16) -> Cluster {
        Cluster {
            dir: ctx.other_user_state("postgres"),
            port,
            log: ctx.log("postgres"),
            password: ctx.secrets.postgres_password.clone(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, bin: &str) -> Res<Command> {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--"])
            .arg(packages::postgres_bin()?.join(bin))
            .current_dir(&self.dir);
        Ok(c)
    }

    /// initdb on first use, `pg_ctl start`, the database; then a query.
    pub fn start(&self) -> Res {
        let (uid, gid) = sh::user_ids(OS_USER)?;
        own_dir(&self.dir, uid, gid)?;
        let data = self.data();
        if !data.join("PG_VERSION").exists() {
            let pw = self.dir.join("pwfile");
            write_owned(&pw, &self.password, uid, gid)?;
            let mut c = self.as_postgres("initdb")?;
            c.arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    USER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                ])
                .arg(format!("--pwfile={}", pw.display()));
            let r = sh::output(&mut c).map_err(|e| format!("initdb: {e}"));
            let _ = std::fs::remove_file(&pw);
            r?;
        }
        let log = open_log(&self.log)?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut c = self.as_postgres("pg_ctl")?;
        c.arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
                self.port,
                self.dir.display()
            ))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        sh::run(&mut c).map_err(|e| format!("pg_ctl start: {e}"))?;
        // The database itself (CREATE DATABASE is not idempotent: check first).
        let exists = self.psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{DB}'"),
        )?;
        if exists.trim() != "1" {
            self.psql("postgres", &format!("CREATE DATABASE {DB} OWNER {USER}"))?;
        }
        self.health().map(|_| ())
    }

    /// `pg_ctl stop` when a postmaster pid file is there.
    pub fn stop(&self) -> Res {
        let data = self.data();
        if !data.join("postmaster.pid").exists() {
            return Ok(());
        }
        let mut c = self.as_postgres("pg_ctl")?;
        c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
        sh::output(&mut c)
            .map(|_| ())
            .map_err(|e| format!("pg_ctl stop: {e}"))
    }

    /// The postmaster's pid, from its pid file, if it is alive.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid = text.lines().next()?.trim().parse().ok()?;
        super::proc::is_alive(pid).then_some(pid)
    }

    /// One statement over TCP as the cluster's superuser; the password
    /// goes through the environment, not the command line.
    pub fn psql(&self, db: &str, sql: &str) -> Res<String> {
        sh::output(
            Command::new("psql")
                .env("PGPASSWORD", &self.password)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    USER,
                    "-d",
                    db,
                    "-tAc",
                    sql,
                ]),
        )
    }

    pub fn health(&self) -> Result<String, String> {
        let v = self.psql(DB, "SHOW server_version")?;
        Ok(format!(
            "postgres://127.0.0.1:{}/{DB} (PostgreSQL {})",
            self.port,
            v.trim()
        ))
    }
}

/// Creates `dir` (not a symlink) owned by `uid:gid` with mode 0700.
fn own_dir(dir: &Path, uid: u32, gid: u32) -> Res {
    sh::mkdir(dir)?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    super::set_mode(dir, 0o700)
}

/// Writes a file only `uid` can read: mode 0600 and owned by it before the
/// contents go in.
fn write_owned(p: &Path, contents: &str, uid: u32, gid: u32) -> Res {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(p);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| format!("creating {}: {e}", p.display()))?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", p.display()))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| format!("writing {}: {e}", p.display()))
}

fn open_log(p: &Path) -> Res<std::fs::File> {
    if let Some(d) = p.parent() {
        sh::mkdir(d)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| format!("opening {}: {e}", p.display()))
}

/// Where an older xtask kept the cluster: inside the clone. A server still
/// running from there is stopped (and its state removed) by [`stop`].
fn legacy(ctx: &Ctx) -> Cluster {
    Cluster {
        dir: ctx.state("postgres"),
        ..Cluster::of(ctx)
    }
}

pub fn start(ctx: &Ctx) -> Res {
    Cluster::of(ctx).start()
}

pub fn stop(ctx: &Ctx) -> Res {
    let old = legacy(ctx);
    if old.dir.exists() {
        old.stop()?;
        std::fs::remove_dir_all(&old.dir)
            .map_err(|e| format!("removing {}: {e}", old.dir.display()))?;
    }
    Cluster::of(ctx).stop()
}

/// The running postmaster of the environment, wherever it was started from.
pub fn pid(ctx: &Ctx) -> Option<u32> {
    Cluster::of(ctx).pid().or_else(|| legacy(ctx).pid())
}

pub fn health(ctx: &Ctx) -> Result<String, String> {
    Cluster::of(ctx).health()
}

/// The env.json section of the cluster on `port` ([`PORT`] or
/// [`FAULT_PORT`]).
pub fn env_section(ctx: &Ctx, port: u16) -> Value {
    json!({
        "url": format!("postgres://{USER}:{}@127.0.0.1:{port}/{DB}", ctx.secrets.postgres_password),
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password": ctx.secrets.postgres_password,
        "database": DB,
    })
}
