//! An OCI registry: Debian's docker-registry (CNCF Distribution) with htpasswd
//! basic auth and deletes enabled.

use super::{Ctx, proc};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub const PORT: u16 = 15000;
const USER: &str = "kubepkg";

pub fn start(ctx: &Ctx) -> Res {
    let st = ctx.state("registry");
    sh::mkdir(&st.join("data"))?;
    let htpasswd = sh::output(Command::new("htpasswd").args([
        "-Bbn",
        USER,
        &ctx.secrets.registry_password,
    ]))
    .map_err(|_| "htpasswd -Bbn (creating the registry's password file) failed".to_string())?;
    sh::write(&st.join("htpasswd"), htpasswd)?;
    let config = st.join("config.yml");
    sh::write(
        &config,
        format!(
            "version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{PORT}
  secret: {secret}
auth:
  htpasswd:
    realm: kubepkg-registry
    path: {htpasswd}
",
            data = st.join("data").display(),
            secret = ctx.secrets.registry_http_secret,
            htpasswd = st.join("htpasswd").display(),
        ),
    )?;
    proc::spawn(
        ctx,
        "registry",
        &PathBuf::from("/usr/bin/docker-registry"),
        &["serve".into(), config.display().to_string()],
        &[],
    )?;
    super::wait_healthy(Duration::from_secs(30), || health(ctx))
}

pub fn health(ctx: &Ctx) -> Result<String, String> {
    let url = format!("http://127.0.0.1:{PORT}/v2/");
    let anon = sh::http_status(&url, &[]);
    let authed = sh::http_status(
        &url,
        &["-u", &format!("{USER}:{}", ctx.secrets.registry_password)],
    );
    if anon == 401 && authed == 200 {
        Ok(format!("http://127.0.0.1:{PORT} (htpasswd auth)"))
    } else {
        Err(format!(
            "GET {url} gave {anon} without and {authed} with credentials (want 401 / 200)"
        ))
    }
}

pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "url": format!("http://127.0.0.1:{PORT}"),
        "host": format!("127.0.0.1:{PORT}"),
        "username": USER,
        "password": ctx.secrets.registry_password,
    })
}
