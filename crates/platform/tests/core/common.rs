use kubepkg_k8s_api::k8s_openapi::api::core::v1::ServiceAccount;
use kubepkg_k8s_api::k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret as KubeSecret};
use kubepkg_k8s_api::k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kubepkg_k8s_api::{Client, ClusterConfig, DeleteOptions};
use kubepkg_platform::core::{ImportRequest, ImportSource, Platform, PlatformOptions};
use kubepkg_platform::crypto::Keyring;
use kubepkg_platform::store::Store;
use kubepkg_util::secret::Secret;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn k8s() -> &'static kubepkg_testenv::Kubernetes {
    kubepkg_testenv::kubernetes()
}

/// A platform over a fresh in-memory store, with short probe timeouts.
pub async fn platform() -> Platform {
    let _ = capture_logs();
    let keys = Keyring::new("test", Keyring::generate_key()).expect("keyring");
    let store = Store::open("sqlite::memory:", keys).await.expect("store");
    let options = PlatformOptions {
        probe_timeout: Duration::from_secs(5),
        health_interval: Duration::from_secs(2),
        max_retries: 1,
        ..PlatformOptions::default()
    };
    Platform::with_store(store, options)
        .await
        .expect("platform")
}

pub fn admin_source() -> ImportSource {
    ImportSource::KubeconfigFile {
        path: k8s().kubeconfig.clone(),
        context: None,
    }
}

/// An import of the local cluster as `name`, the default role.
pub fn import_req(name: &str) -> ImportRequest {
    ImportRequest::new(name, admin_source())
}

pub async fn admin() -> Client {
    let e = k8s();
    let cfg = ClusterConfig::token(&e.server, Some(e.ca_pem.clone()), e.admin_token.clone());
    Client::connect_named("test-admin", &cfg)
        .await
        .expect("admin client")
}

/// A platform cluster name unique to this call (short: the service
/// account carries it).
pub fn unique(prefix: &str) -> String {
    kubepkg_testenv::unique_name(prefix)
}

/// Removes what an import created in the cluster for `name`.
pub async fn cleanup(name: &str) {
    let admin = admin().await;
    let sa = format!("kubepkg-{name}");
    let del = DeleteOptions::default();
    for role in ["view", "edit", "cluster-admin", "node-reader"] {
        let _ = admin
            .cluster::<ClusterRoleBinding>()
            .delete(&format!("{sa}-{role}"), &del)
            .await;
    }
    let secrets = admin.namespaced::<KubeSecret>("kube-system");
    if let Ok(list) = secrets.list(&Default::default()).await {
        for s in list {
            let n = s.metadata.name.unwrap_or_default();
            if n.starts_with(&format!("{sa}-token")) {
                let _ = secrets.delete(&n, &del).await;
            }
        }
    }
    let _ = admin
        .namespaced::<ServiceAccount>("kube-system")
        .delete(&sa, &del)
        .await;
}

/// A namespace with `n` labelled ConfigMaps; returns its name.
pub async fn namespace_with_configmaps(prefix: &str, n: usize, label: &str) -> String {
    let admin = admin().await;
    let ns = unique(prefix);
    let obj: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
    }))
    .unwrap();
    admin
        .cluster::<Namespace>()
        .create(&obj)
        .await
        .expect("namespace");
    let cms = admin.namespaced::<ConfigMap>(&ns);
    for i in 0..n {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i:03}"), "labels": {"kubepkg-search": label}},
            "data": {"i": i.to_string()},
        }))
        .unwrap();
        cms.create(&cm).await.expect("configmap");
    }
    ns
}

pub async fn delete_namespace(ns: &str) {
    let _ = admin()
        .await
        .cluster::<Namespace>()
        .delete(ns, &DeleteOptions::default())
        .await;
}

/// Everything logged while the guard lives (on this thread: use a
/// current-thread runtime), for checking that no secret is ever logged.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}

/// Everything every test of this binary logs, from the first call on (one
/// global subscriber: scoped ones miss records of callsites first hit on
/// other threads). Secrets are searched for in all of it.
pub fn capture_logs() -> (Captured, ()) {
    static CAP: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let cap = CAP.get_or_init(|| {
        let cap = Captured::default();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(cap.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(sub).expect("one global subscriber");
        cap
    });
    (cap.clone(), ())
}

/// Panics when `secret` appears in `haystack` (plain or base64).
pub fn assert_absent(what: &str, haystack: &str, secret: &str) {
    use base64::Engine as _;
    assert!(secret.len() >= 8, "secret too short to search for");
    assert!(!haystack.contains(secret), "{what} contains a secret value");
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    assert!(
        !haystack.contains(&b64),
        "{what} contains a secret value (base64)"
    );
}

pub fn secret(s: &str) -> Secret<String> {
    Secret::new(s.to_string())
}

/// A TCP relay in front of the API server that a test can stop (every
/// connection cut, new ones refused) and resume on the same port.
pub struct Relay {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    pub async fn start(server: &str) -> Relay {
        let target = server
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        let relay = Relay {
            port,
            target,
            tasks: Arc::default(),
        };
        relay.serve(socket.listen(128).unwrap());
        relay
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub async fn resume(&self) {
        for _ in 0..50 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            if socket
                .bind(format!("127.0.0.1:{}", self.port).parse().unwrap())
                .is_ok()
            {
                self.serve(socket.listen(128).unwrap());
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("relay port {} could not be bound again", self.port);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}
