//! MinIO, built from its Go module.

use super::{Ctx, proc};
use crate::gobuild::MINIO;
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::time::Duration;

pub const PORT: u16 = 19000;
const CONSOLE_PORT: u16 = 19001;

pub fn build() -> Res {
    MINIO.ensure()
}

fn endpoint() -> String {
    format!("http://127.0.0.1:{PORT}")
}

pub fn start(ctx: &Ctx) -> Res {
    let data = ctx.state("minio").join("data");
    sh::mkdir(&data)?;
    let s = &ctx.secrets;
    proc::spawn(
        ctx,
        "minio",
        &MINIO.bin("minio"),
        &[
            "server".into(),
            "--quiet".into(),
            "--address".into(),
            format!("127.0.0.1:{PORT}"),
            "--console-address".into(),
            format!("127.0.0.1:{CONSOLE_PORT}"),
            data.display().to_string(),
        ],
        &[
            ("MINIO_ROOT_USER", s.minio_access_key.clone()),
            ("MINIO_ROOT_PASSWORD", s.minio_secret_key.clone()),
            ("MINIO_BROWSER", "off".into()),
            ("MINIO_UPDATE", "off".into()),
            ("MINIO_CI_CD", "1".into()),
        ],
    )?;
    super::wait_healthy(Duration::from_secs(60), || health(ctx))
}

pub fn health(_ctx: &Ctx) -> Result<String, String> {
    let code = sh::http_status(&format!("{}/minio/health/ready", endpoint()), &[]);
    if code == 200 {
        Ok(endpoint())
    } else {
        Err(format!("GET {}/minio/health/ready gave {code}", endpoint()))
    }
}

pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "endpoint": endpoint(),
        "access_key": ctx.secrets.minio_access_key,
        "secret_key": ctx.secrets.minio_secret_key,
        "region": "us-east-1",
    })
}
