//! `cargo xtask demo`: the environment up, `kubepkg-server` started on a
//! fresh SQLite store, the HTTP tour run against it, the vendor flow run
//! against simulated vendor endpoints, and the server left running with
//! its URL, token and a ready curl line printed.
//!
//! The server has no route that creates a cluster through a vendor, so the
//! vendor flow runs in a process of its own through kubepkg-platform
//! (`kubepkg-vendor-sim`'s `vendor_flow` example, which starts the
//! simulators in that process): create through the TKE adapter, wait, import
//! with the vendor's kubeconfig, nodes joined with instance ids, add nodes,
//! delete; then the namespaces of simulated Harbor, TKEStack and ACR
//! registries. xtask itself stays free of the platform's dependencies.

use crate::env;
use crate::sh::{self, Res};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn demo_dir() -> PathBuf {
    sh::workspace_root().join("target").join("kubepkg-demo")
}

/// Stops a server an earlier demo left running.
fn stop_previous(dir: &Path) {
    let pid_file = dir.join("server.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        return;
    };
    let pid = pid.trim();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    // Only a kubepkg-server process is stopped.
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if cmdline.contains("kubepkg-server") {
        eprintln!("xtask: stopping the server an earlier demo left running (pid {pid})");
        let _ = Command::new("kill").arg(pid).status();
        sh::wait_until(Duration::from_secs(35), || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
    }
    let _ = std::fs::remove_file(pid_file);
}

fn env_json() -> Res<serde_json::Value> {
    let path = sh::workspace_root()
        .join("target")
        .join("kubepkg-env")
        .join("env.json");
    serde_json::from_str(&sh::read(&path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn field<'a>(v: &'a serde_json::Value, path: &[&str]) -> Res<&'a str> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .ok_or_else(|| format!("env.json has no {}", path.join(".")))
}

/// `cargo xtask demo`.
pub fn run() -> Res {
    env::up(&[])?;
    let root = sh::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: == building kubepkg-server, the HTTP tour and the vendor flow");
    sh::run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--quiet",
        "-p",
        "kubepkg-server",
        "-p",
        "kubepkg-vendor-sim",
        "--bin",
        "kubepkg-server",
        "--example",
        "http_tour",
        "--example",
        "vendor_flow",
    ]))?;
    let dir = demo_dir();
    stop_previous(&dir);
    // A fresh store each time: the demo shows a first start.
    let _ = std::fs::remove_dir_all(&dir);
    sh::mkdir(&dir)?;
    let e = env_json()?;
    let token = format!("kpk_{}", sh::random_hex(32)?);
    let token_file = dir.join("admin-token");
    sh::write_private(&token_file, format!("{token}\n"))?;
    let key = {
        // 32 random bytes, base64 (the store's encryption key).
        let hex = sh::random_hex(32)?;
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        base64(&bytes)
    };
    let config = format!(
        r#"# Written by `cargo xtask demo`. Secrets come from the environment.
data_dir = "{data}"

[encryption]
active_key = "demo"

[log]
filter = "info"
format = "json"
outputs = [{{ type = "file", path = "{log}" }}]

[server]
listen = "127.0.0.1:0"

[registries.local]
url = "{registry}"
allow_http = true
username = "{registry_user}"

[object_stores.default]
backend = "minio"
endpoint = "{minio}"
access_key = "{minio_user}"
region = "{minio_region}"

[queues.default]
backend = "amqp"
connection_name = "kubepkg-demo"
"#,
        data = dir.join("data").display(),
        log = dir.join("server.log").display(),
        registry = field(&e, &["registry", "url"])?,
        registry_user = field(&e, &["registry", "username"])?,
        minio = field(&e, &["minio", "endpoint"])?,
        minio_user = field(&e, &["minio", "access_key"])?,
        minio_region = field(&e, &["minio", "region"])?,
    );
    let config_file = dir.join("kubepkg.toml");
    sh::write(&config_file, config)?;
    let out_file = dir.join("server.out");
    let out =
        std::fs::File::create(&out_file).map_err(|e| format!("{}: {e}", out_file.display()))?;
    let out2 = out.try_clone().map_err(|e| e.to_string())?;
    let bin = root.join("target").join("debug").join("kubepkg-server");
    let mut cmd = Command::new(&bin);
    cmd.arg("--config")
        .arg(&config_file)
        .env("KUBEPKG_SERVER__BOOTSTRAP_TOKEN", &token)
        .env("KUBEPKG_ENCRYPTION__KEYS__DEMO", &key)
        .env(
            "KUBEPKG_REGISTRIES__LOCAL__PASSWORD",
            field(&e, &["registry", "password"])?,
        )
        .env(
            "KUBEPKG_OBJECT_STORES__DEFAULT__SECRET_KEY",
            field(&e, &["minio", "secret_key"])?,
        )
        .env(
            "KUBEPKG_QUEUES__DEFAULT__URL",
            field(&e, &["rabbitmq", "url"])?,
        )
        .stdin(Stdio::null())
        .stdout(out2)
        .stderr(out);
    {
        use std::os::unix::process::CommandExt as _;
        // Its own process group: it outlives this command and a Ctrl-C here.
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    sh::write(&dir.join("server.pid"), child.id().to_string())?;
    let mut url = None;
    sh::wait_until(Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        url = text
            .lines()
            .find_map(|l| l.split("listening on ").nth(1))
            .map(|u| u.trim().to_owned());
        url.is_some() || !Path::new(&format!("/proc/{}", child.id())).exists()
    });
    let Some(url) = url else {
        return Err(format!(
            "kubepkg-server did not start; its output ({}):\n{}",
            out_file.display(),
            sh::tail(&out_file, 30)
        ));
    };
    eprintln!(
        "xtask: kubepkg-server is up at {url} (store {}, log {})",
        dir.join("data").display(),
        dir.join("server.log").display()
    );
    let tour = root
        .join("target")
        .join("debug")
        .join("examples")
        .join("http_tour");
    sh::run(
        Command::new(&tour)
            .current_dir(&root)
            .env("KUBEPKG_SERVER_URL", &url)
            .env("KUBEPKG_TOKEN_FILE", &token_file),
    )
    .map_err(|e| format!("the HTTP tour failed: {e}"))?;
    println!();
    // The flow says itself, first, that every vendor endpoint is simulated.
    println!("== The vendor flow (simulated vendor endpoints)");
    let flow = root
        .join("target")
        .join("debug")
        .join("examples")
        .join("vendor_flow");
    sh::run(Command::new(&flow).current_dir(&root))
        .map_err(|e| format!("the vendor flow failed: {e}"))?;
    println!();
    println!("The server keeps running at {url} (pid {}).", child.id());
    println!(
        "  admin token:  {} (readable by you only)",
        token_file.display()
    );
    println!("  API document: {url}/openapi.json");
    println!(
        "  try:          curl -s -H \"Authorization: Bearer $(cat {})\" {url}/clusters",
        token_file.display()
    );
    println!(
        "  a new token:  curl -s -H \"Authorization: Bearer $(cat {})\" -H 'content-type: application/json' -d '{{\"name\":\"me\",\"role\":\"viewer\"}}' {url}/tokens",
        token_file.display()
    );
    println!("  stop it:      kill {}", child.id());
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
