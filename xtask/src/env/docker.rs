//! The Docker engine from Debian's docker.io, on its own socket and data root.

use super::{Ctx, proc};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn socket(ctx: &Ctx) -> PathBuf {
    ctx.run.join("docker.sock")
}

pub fn start(ctx: &Ctx) -> Res {
    let st = ctx.state("docker");
    sh::mkdir(&st)?;
    let exec_root = ctx.run.join("dexec");
    sh::mkdir(&exec_root)?;
    let _ = std::fs::remove_file(socket(ctx));
    proc::spawn(
        ctx,
        "docker",
        &PathBuf::from("/usr/sbin/dockerd"),
        &[
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--bridge=none".into(),
            "--storage-driver=vfs".into(),
            "-H".into(),
            format!("unix://{}", socket(ctx).display()),
            "--data-root".into(),
            st.join("root").display().to_string(),
            "--exec-root".into(),
            exec_root.display().to_string(),
            "--pidfile".into(),
            st.join("dockerd.pid").display().to_string(),
            // The plain-http registry (the TLS one would need its CA in /etc/docker).
            format!("--insecure-registry=127.0.0.1:{}", super::registry::PORT),
        ],
        &[],
    )?;
    super::wait_healthy(Duration::from_secs(60), || health(ctx))
}

pub fn health(ctx: &Ctx) -> Result<String, String> {
    let sock = socket(ctx);
    let out = sh::output(
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "3", "--unix-socket"])
            .arg(&sock)
            .arg("http://docker/version"),
    )
    .map_err(|e| format!("GET /version on {}: {e}", sock.display()))?;
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("bad /version answer: {e}"))?;
    Ok(format!(
        "unix://{} (engine {}, API {})",
        sock.display(),
        v["Version"].as_str().unwrap_or("?"),
        v["ApiVersion"].as_str().unwrap_or("?")
    ))
}

pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "host": format!("unix://{}", socket(ctx).display()),
        "socket": socket(ctx),
        "busybox": "/bin/busybox",
    })
}
