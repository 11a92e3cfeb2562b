//! An OCI registry: Debian's docker-registry (CNCF Distribution) with htpasswd
//! basic auth and deletes enabled, as two servers over one storage
//! directory and one password file: `registry` over plain HTTP and
//! `registry-tls` over HTTPS (a certificate signed by the services CA, see
//! `pki.rs`). Distribution keeps no state outside its storage, so what one
//! pushes the other serves.

use super::{Ctx, pki, proc};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub const PORT: u16 = 15000;
pub const TLS_PORT: u16 = 15443;
const USER: &str = "kubepkg";
/// The server names.
pub const SERVERS: &[&str] = &["registry", "registry-tls"];

fn tls(name: &str) -> bool {
    name == "registry-tls"
}

fn port(name: &str) -> u16 {
    if tls(name) { TLS_PORT } else { PORT }
}

fn url(name: &str) -> String {
    let scheme = if tls(name) { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{}", port(name))
}

/// Storage, password file and the health check's auth header: shared by
/// both servers.
fn shared(ctx: &Ctx) -> PathBuf {
    ctx.state("registry")
}

fn config(ctx: &Ctx, name: &str) -> String {
    let st = shared(ctx);
    let tls = if tls(name) {
        let (crt, key) = pki::service_cert(ctx, "registry");
        format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            crt.display(),
            key.display()
        )
    } else {
        String::new()
    };
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
  addr: 127.0.0.1:{port}
  secret: {secret}
{tls}auth:
  htpasswd:
    realm: kubepkg-registry
    path: {htpasswd}
",
        data = st.join("data").display(),
        port = port(name),
        secret = ctx.secrets.registry_http_secret,
        htpasswd = st.join("htpasswd").display(),
    )
}

pub fn start(ctx: &Ctx, name: &str) -> Res {
    let st = shared(ctx);
    sh::mkdir(&st.join("data"))?;
    // The password goes to htpasswd on its standard input, not its command line.
    let mut c = Command::new("htpasswd");
    c.args(["-niB", USER]);
    let htpasswd = sh::output_with_input(&mut c, &ctx.secrets.registry_password)
        .map_err(|_| "htpasswd -niB (creating the registry's password file) failed".to_string())?;
    sh::write_private(&st.join("htpasswd"), htpasswd)?;
    if tls(name) {
        pki::ensure_services(ctx)?;
    }
    let conf = ctx.state(name).join("config.yml");
    sh::write_private(&conf, config(ctx, name))?;
    proc::spawn(
        ctx,
        name,
        &PathBuf::from("/usr/bin/docker-registry"),
        &["serve".into(), conf.display().to_string()],
        &[],
    )?;
    super::wait_healthy(Duration::from_secs(30), || health(ctx, name))
}

/// A curl header file with the registry's basic credentials, so they never
/// show in a command line. Made on first use, so that the health check
/// works on a registry an older xtask started.
fn auth_header(ctx: &Ctx) -> Res<PathBuf> {
    let p = shared(ctx).join("auth-header");
    let want = basic_auth_header(ctx);
    if sh::read(&p).ok().as_deref() != Some(want.as_str()) {
        sh::write_private(&p, want)?;
    }
    Ok(p)
}

fn basic_auth_header(ctx: &Ctx) -> String {
    let pair = format!("{USER}:{}", ctx.secrets.registry_password);
    format!(
        "Authorization: Basic {}\n",
        super::kubernetes::base64(pair.as_bytes())
    )
}

/// `/v2/` answers 401 without and 200 with credentials; over HTTPS with
/// the certificate verified against the services CA.
pub fn health(ctx: &Ctx, name: &str) -> Result<String, String> {
    let url = format!("{}/v2/", url(name));
    let header = format!("@{}", auth_header(ctx)?.display());
    let (anon, authed) = if tls(name) {
        let ca = pki::services_ca(ctx);
        (
            sh::https_status(&url, &ca, &[])?,
            sh::https_status(&url, &ca, &["-H", &header])?,
        )
    } else {
        (
            sh::http_status(&url, &[]),
            sh::http_status(&url, &["-H", &header]),
        )
    };
    if anon == 401 && authed == 200 {
        let how = if tls(name) {
            ", verified against the services CA"
        } else {
            ""
        };
        Ok(format!("{} (htpasswd auth{how})", self::url(name)))
    } else {
        Err(format!(
            "GET {url} gave {anon} without and {authed} with credentials (want 401 / 200)"
        ))
    }
}

/// The `registry` section, with the HTTPS server under `tls`.
pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "url": url("registry"),
        "host": format!("127.0.0.1:{PORT}"),
        "username": USER,
        "password": ctx.secrets.registry_password,
        "tls": super::tls_section(ctx, &url("registry-tls")),
    })
}
