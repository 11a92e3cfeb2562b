//! A throw-away PostgreSQL cluster from Debian's postgresql, on its own port.

use super::{Ctx, packages};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::process::Command;

pub const PORT: u16 = 15433;
const USER: &str = "kubepkg";
const DB: &str = "kubepkg";

fn as_postgres(bin: &str) -> Res<Command> {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"])
        .arg(packages::postgres_bin()?.join(bin));
    Ok(c)
}

fn data(ctx: &Ctx) -> std::path::PathBuf {
    ctx.state("postgres").join("data")
}

pub fn start(ctx: &Ctx) -> Res {
    let st = ctx.state("postgres");
    let data = data(ctx);
    sh::mkdir(&st)?;
    let chown = |p: &std::path::Path| {
        sh::run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(p),
        )
    };
    if !data.join("PG_VERSION").exists() {
        let pw = st.join("pwfile");
        sh::write(&pw, &ctx.secrets.postgres_password)?;
        chown(&st)?;
        let mut c = as_postgres("initdb")?;
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
        sh::output(&mut c).map_err(|e| format!("initdb: {e}"))?;
        let _ = std::fs::remove_file(&pw);
    }
    chown(&st)?;
    let log = ctx.log("postgres");
    if let Some(d) = log.parent() {
        sh::mkdir(d)?;
    }
    sh::write(&log, "")?;
    chown(&log)?;
    let mut c = as_postgres("pg_ctl")?;
    c.arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "60", "-o"])
        .arg(format!(
            "-p {PORT} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            st.display()
        ))
        .arg("start");
    sh::output(&mut c).map_err(|e| format!("pg_ctl start: {e}"))?;
    // The database itself (CREATE DATABASE is not idempotent: check first).
    let exists = psql(
        ctx,
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{DB}'"),
    )?;
    if exists.trim() != "1" {
        psql(
            ctx,
            "postgres",
            &format!("CREATE DATABASE {DB} OWNER {USER}"),
        )?;
    }
    health(ctx).map(|_| ())
}

fn psql(ctx: &Ctx, db: &str, sql: &str) -> Res<String> {
    sh::output(
        Command::new("psql")
            .env("PGPASSWORD", &ctx.secrets.postgres_password)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &PORT.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-tAc",
                sql,
            ]),
    )
}

pub fn stop(ctx: &Ctx) -> Res {
    let data = data(ctx);
    if !data.join("postmaster.pid").exists() {
        return Ok(());
    }
    let mut c = as_postgres("pg_ctl")?;
    c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
    sh::output(&mut c)
        .map(|_| ())
        .map_err(|e| format!("pg_ctl stop: {e}"))
}

pub fn health(ctx: &Ctx) -> Result<String, String> {
    let v = psql(ctx, DB, "SHOW server_version")?;
    Ok(format!(
        "postgres://127.0.0.1:{PORT}/{DB} (PostgreSQL {})",
        v.trim()
    ))
}

pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "url": format!("postgres://{USER}:{}@127.0.0.1:{PORT}/{DB}", ctx.secrets.postgres_password),
        "host": "127.0.0.1",
        "port": PORT,
        "username": USER,
        "password": ctx.secrets.postgres_password,
        "database": DB,
    })
}
