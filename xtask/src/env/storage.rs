//! MinIO, built from its Go module: `minio` over plain HTTP and
//! `minio-tls` over HTTPS.
//!
//! A MinIO server given `--certs-dir` serves only TLS on its port, and it
//! locks its data directory, so the HTTPS endpoint is a second server with
//! a data directory of its own (same credentials, its own buckets) and a
//! certificate signed by the services CA (see `pki.rs`).

use super::{Ctx, pki, proc};
use crate::gobuild::MINIO;
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::time::Duration;

pub const PORT: u16 = 19000;
const CONSOLE_PORT: u16 = 19001;
pub const TLS_PORT: u16 = 19443;
const TLS_CONSOLE_PORT: u16 = 19444;
/// The server names.
pub const SERVERS: &[&str] = &["minio", "minio-tls"];

pub fn build() -> Res {
    MINIO.ensure()
}

fn tls(name: &str) -> bool {
    name == "minio-tls"
}

fn ports(name: &str) -> (u16, u16) {
    if tls(name) {
        (TLS_PORT, TLS_CONSOLE_PORT)
    } else {
        (PORT, CONSOLE_PORT)
    }
}

fn endpoint(name: &str) -> String {
    let (port, _) = ports(name);
    let scheme = if tls(name) { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}")
}

pub fn start(ctx: &Ctx, name: &str) -> Res {
    let st = ctx.state(name);
    let data = st.join("data");
    sh::mkdir(&data)?;
    let (port, console) = ports(name);
    let mut argv = vec!["server".to_string(), "--quiet".into()];
    if tls(name) {
        // MinIO wants the pair as public.crt / private.key, and trusts
        // the CAs in CAs/ for its calls to itself.
        pki::ensure_services(ctx)?;
        let certs = st.join("certs");
        let (crt, key) = pki::service_cert(ctx, "minio");
        sh::write(&certs.join("public.crt"), sh::read(&crt)?)?;
        sh::write_private(&certs.join("private.key"), sh::read(&key)?)?;
        sh::write(
            &certs.join("CAs").join("services-ca.crt"),
            sh::read(&pki::services_ca(ctx))?,
        )?;
        argv.extend(["--certs-dir".into(), certs.display().to_string()]);
    }
    argv.extend([
        "--address".into(),
        format!("127.0.0.1:{port}"),
        "--console-address".into(),
        format!("127.0.0.1:{console}"),
        data.display().to_string(),
    ]);
    let s = &ctx.secrets;
    proc::spawn(
        ctx,
        name,
        &MINIO.bin("minio"),
        &argv,
        &[
            ("MINIO_ROOT_USER", s.minio_access_key.clone()),
            ("MINIO_ROOT_PASSWORD", s.minio_secret_key.clone()),
            ("MINIO_BROWSER", "off".into()),
            ("MINIO_UPDATE", "off".into()),
            ("MINIO_CI_CD", "1".into()),
        ],
    )?;
    super::wait_healthy(Duration::from_secs(60), || health(ctx, name))
}

/// The readiness probe; over HTTPS, with the certificate verified against
/// the services CA.
pub fn health(ctx: &Ctx, name: &str) -> Result<String, String> {
    let url = format!("{}/minio/health/ready", endpoint(name));
    let code = if tls(name) {
        sh::https_status(&url, &pki::services_ca(ctx), &[])?
    } else {
        sh::http_status(&url, &[])
    };
    if code == 200 {
        Ok(if tls(name) {
            format!("{} (verified against the services CA)", endpoint(name))
        } else {
            endpoint(name)
        })
    } else {
        Err(format!("GET {url} gave {code}"))
    }
}

/// The `minio` section, with the HTTPS server under `tls`.
pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "endpoint": endpoint("minio"),
        "access_key": ctx.secrets.minio_access_key,
        "secret_key": ctx.secrets.minio_secret_key,
        "region": "us-east-1",
        "tls": super::tls_section(ctx, &endpoint("minio-tls")),
    })
}
