//! A real `kubepkg-server` process for the tests: its own config file (a
//! SQLite store in a temporary directory, the local environment's MinIO,
//! RabbitMQ and OCI registry), a known bootstrap admin token, JSON logs in
//! a file, and a `reqwest` client.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Server {
    child: Child,
    pub base: String,
    /// The instance id it printed (its name in the store's probe leases).
    pub instance: String,
    config: PathBuf,
    env: Vec<(String, String)>,
    pub admin: String,
    pub http: reqwest::Client,
    pub log_file: PathBuf,
    pub output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A strong random-looking admin token for the server's bootstrap.
pub fn admin_token() -> String {
    format!("kpk_test_{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{n:032x}{:08x}", std::process::id())
}

impl Server {
    /// Starts a server with the local environment's backends.
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// Starts a server; `extra` is appended to its config file.
    pub fn start_with(extra: &str) -> Server {
        Server::start_on(extra, None)
    }

    /// Starts a server; `extra` is appended to its config file (a
    /// `[health]` table there replaces the default one), and
    /// `admin` is a bootstrap token an earlier instance on the same store
    /// already created (None: a new one).
    pub fn start_on(extra: &str, admin: Option<&str>) -> Server {
        Server::start_env(extra, admin, &[])
    }

    /// As [`Self::start_on`], with extra environment variables (the
    /// `KUBEPKG_SECTION__KEY` overrides of settings in the base file).
    pub fn start_env(extra: &str, admin: Option<&str>, env: &[(&str, String)]) -> Server {
        let minio = kubepkg_testenv::minio();
        let registry = kubepkg_testenv::registry();
        kubepkg_testenv::require_tcp("MinIO", minio.endpoint.trim_start_matches("http://"));
        let dir = tempfile::tempdir().expect("tempdir");
        let log_file = dir.path().join("server.log");
        let text = format!(
            r#"
data_dir = "{data_dir}"

[encryption]
active_key = "k1"
keys = {{ k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }}

[log]
filter = "info,kubepkg=debug"
format = "json"
outputs = [{{ type = "file", path = "{log_file}" }}]

[server]
listen = "127.0.0.1:0"
body_limit_bytes = 65536
request_timeout_secs = 60

{health}
[registries.local]
url = "{registry_url}"
allow_http = true
username = "{registry_user}"

[object_stores.default]
backend = "minio"
endpoint = "{minio_endpoint}"
access_key = "{minio_user}"
region = "{minio_region}"

[queues.default]
backend = "amqp"
connection_name = "kubepkg-server-test"
{extra}
"#,
            // `extra` may bring its own [health] table.
            health = if extra.contains("[health]") {
                ""
            } else {
                "[health]\ninterval_secs = 30\n"
            },
            data_dir = dir.path().display(),
            log_file = log_file.display(),
            registry_url = registry.url,
            registry_user = registry.username,
            minio_endpoint = minio.endpoint,
            minio_user = minio.access_key,
            minio_region = minio.region,
        );
        let config = dir.path().join("kubepkg.toml");
        std::fs::write(&config, text).expect("write the config");
        let admin = admin.map_or_else(admin_token, str::to_owned);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let (child, instance, base, output) = spawn(&config, &admin, &env);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        Server {
            child,
            config,
            env,
            base,
            instance,
            admin,
            http,
            log_file,
            output,
            _dir: dir,
        }
    }

    /// Kills the process with SIGKILL (no shutdown at all) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same config and store after
    /// [`Self::kill`] (a new port and instance id).
    pub fn restart(&mut self) {
        self.kill();
        let (child, instance, base, output) = spawn(&self.config, &self.admin, &self.env);
        self.child = child;
        self.instance = instance;
        self.base = base;
        self.output = output;
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; its status, or None after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `token` (None: no Authorization header).
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let b = self.http.request(method, self.url(path));
        match token {
            Some(t) => b.bearer_auth(t),
            None => b,
        }
    }

    /// Sends and returns status and JSON body (the envelope).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = self.req(method, path, token);
        if let Some(v) = body {
            b = b.json(&v);
        }
        send(b).await
    }

    /// As the admin.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.admin.clone();
        self.call(method, path, Some(&token), body).await
    }

    /// Creates a token; returns its secret.
    pub async fn token(&self, name: &str, role: &str, clusters: Option<Vec<&str>>) -> String {
        let mut body = serde_json::json!({"name": name, "role": role});
        if let Some(c) = clusters {
            body["clusters"] = serde_json::json!(c);
        }
        let (status, v) = self.admin(Method::POST, "/tokens", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["data"]["secret"].as_str().expect("secret").to_owned()
    }

    /// Imports the local control plane as `name` (admin token source).
    pub async fn import_local(&self, name: &str) -> Value {
        let k8s = kubepkg_testenv::kubernetes();
        let (status, v) = self
            .admin(
                Method::POST,
                "/clusters",
                Some(serde_json::json!({
                    "name": name,
                    "labels": {"env": "test"},
                    "role": "cluster_admin",
                    "source": {
                        "source": "token",
                        "server": k8s.server,
                        "ca_pem": k8s.ca_pem,
                        "token": k8s.admin_token,
                    }
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "import {name}: {v}");
        v
    }

    /// Everything the server wrote: output and log file.
    pub fn all_output(&self) -> String {
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        format!("{}\n{log}", self.output.lock().unwrap())
    }
}

/// Starts the server binary on `config` with bootstrap token `admin`;
/// returns once it prints where it listens.
fn spawn(
    config: &std::path::Path,
    admin: &str,
    env: &[(String, String)],
) -> (Child, String, String, Arc<Mutex<String>>) {
    let registry = kubepkg_testenv::registry();
    let minio = kubepkg_testenv::minio();
    let rabbit = kubepkg_testenv::rabbitmq();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubepkg-server"))
        .arg("--config")
        .arg(config)
        .env("KUBEPKG_SERVER__BOOTSTRAP_TOKEN", admin)
        .env("KUBEPKG_REGISTRIES__LOCAL__PASSWORD", &registry.password)
        .env(
            "KUBEPKG_OBJECT_STORES__DEFAULT__SECRET_KEY",
            &minio.secret_key,
        )
        .env("KUBEPKG_QUEUES__DEFAULT__URL", &rabbit.url)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubepkg-server");
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let out = output.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                out.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some((head, addr)) = line.split_once(" listening on ") {
                    let instance = head.rsplit(' ').next().unwrap_or("").to_owned();
                    let _ = tx.send((instance, addr.trim().to_owned()));
                }
            }
        });
    }
    let (instance, base) = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(b) => b,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "kubepkg-server did not start listening within 60 s; its output:\n{}",
                output.lock().unwrap()
            );
        }
    };
    (child, instance, base, output)
}

pub async fn send(b: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = b.send().await.expect("the server answers");
    let status = resp.status();
    let text = resp.text().await.expect("a body");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text:?}"));
    (status, v)
}

/// Asserts an error envelope: status, a code of that status, a message.
pub fn assert_error(status: StatusCode, v: &Value, want: u16, what: &str) {
    assert_eq!(status.as_u16(), want, "{what}: {v}");
    let code = v["code"].as_u64().unwrap_or(0);
    assert_eq!(
        code / 100,
        u64::from(want),
        "{what}: code {code} for status {want}: {v}"
    );
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: a message: {v}"
    );
    assert!(v.get("data").is_none(), "{what}: no data on errors: {v}");
}
