//! The Kubernetes control plane: etcd, kube-apiserver (TLS, RBAC, static
//! tokens), kube-controller-manager, kube-scheduler, and kwok simulating nodes;
//! plus a second API server over the same etcd, [`FAULT_APISERVER`], for
//! the tests that restart an API server while others use the shared one.

use super::{Ctx, pki, proc};
use crate::gobuild::{self, KUBERNETES, KUBERNETES_VERSION, KWOK};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const ETCD_PORT: u16 = 12379;
pub const ETCD_PEER_PORT: u16 = 12380;
pub const APISERVER_PORT: u16 = 16443;
const CONTROLLER_MANAGER_PORT: u16 = 16444;
const SCHEDULER_PORT: u16 = 16445;
/// The fault-injection API server: same etcd, certificates and tokens.
pub const FAULT_APISERVER: &str = "kube-apiserver-fault";
pub const FAULT_APISERVER_PORT: u16 = 16446;
const KWOK_PORT: u16 = 10250;
/// The control-plane components, in start order.
pub const COMPONENTS: &[&str] = &[
    "etcd",
    "kube-apiserver",
    FAULT_APISERVER,
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];
/// The API servers; each has a kubeconfig of its own.
const APISERVERS: &[&str] = &["kube-apiserver", FAULT_APISERVER];
/// Namespace the limited token administers (and nothing else).
pub const LIMITED_NAMESPACE: &str = "kubepkg-limited";
/// kwok-simulated nodes.
pub const NODES: &[&str] = &["kwok-node-0", "kwok-node-1", "kwok-node-2"];

/// Builds the control-plane binaries and kwok (cached).
pub fn build() -> Res {
    etcd_bin()?;
    KUBERNETES.ensure()?;
    KWOK.ensure()
}

fn etcd_bin() -> Res<PathBuf> {
    etcd_bin_vendored::etcd_bin_path()
        .map(Path::to_path_buf)
        .map_err(|e| format!("etcd: {e}"))
}

fn pki(ctx: &Ctx) -> PathBuf {
    pki::dir(ctx)
}

/// The API server's port: the shared instance, or the fault-injection one.
fn apiserver_port(name: &str) -> u16 {
    if name == FAULT_APISERVER {
        FAULT_APISERVER_PORT
    } else {
        APISERVER_PORT
    }
}

/// `https://127.0.0.1:PORT` of an API server (`kube-apiserver` or
/// [`FAULT_APISERVER`]).
fn server_of(name: &str) -> String {
    format!("https://127.0.0.1:{}", apiserver_port(name))
}

fn server() -> String {
    server_of("kube-apiserver")
}

/// CA, serving certificates, the service-account key pair, tokens, kubeconfigs.
pub fn ensure_pki(ctx: &Ctx) -> Res {
    pki::guarded(ctx, &pki::CLUSTER_CA, |dir| {
        let ossl = |args: &[&str]| {
            let mut c = Command::new("openssl");
            c.current_dir(dir).args(args);
            sh::output(&mut c)
                .map(|_| ())
                .map_err(|e| format!("generating certificates: {e}"))
        };
        pki::ensure_ca(dir, &pki::CLUSTER_CA)?;
        pki::ensure_serving(
            dir,
            &pki::CLUSTER_CA,
            "apiserver",
            "kube-apiserver",
            "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
        )?;
        pki::ensure_serving(
            dir,
            &pki::CLUSTER_CA,
            "kwok",
            "kwok",
            "IP:127.0.0.1,DNS:localhost",
        )?;
        if !dir.join("sa.pub").exists() {
            ossl(&["genrsa", "-out", "sa.key", "2048"])?;
            super::set_mode(&dir.join("sa.key"), 0o600)?;
            ossl(&["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub.tmp"])?;
            std::fs::rename(dir.join("sa.pub.tmp"), dir.join("sa.pub"))
                .map_err(|e| format!("sa.pub: {e}"))?;
        }
        let s = &ctx.secrets;
        sh::write_private(
            &dir.join("tokens.csv"),
            format!(
                "{},kubepkg-admin,kubepkg-admin,\"system:masters\"\n{},kubepkg-limited,kubepkg-limited\n",
                s.admin_token, s.limited_token
            ),
        )?;
        sh::write_private(
            &dir.join("admin-auth-header"),
            format!("Authorization: Bearer {}\n", s.admin_token),
        )?;
        for name in APISERVERS {
            sh::write_private(&kubeconfig_path_of(ctx, name), kubeconfig(ctx, name)?)?;
        }
        Ok(())
    })
}

/// The kubeconfig written for users and tests.
pub fn kubeconfig_path(ctx: &Ctx) -> PathBuf {
    kubeconfig_path_of(ctx, "kube-apiserver")
}

/// The kubeconfig of one API server: `kubeconfig`, or `kubeconfig-fault`
/// for [`FAULT_APISERVER`] (the same users and contexts).
fn kubeconfig_path_of(ctx: &Ctx, name: &str) -> PathBuf {
    if name == FAULT_APISERVER {
        ctx.root.join("kubeconfig-fault")
    } else {
        ctx.root.join("kubeconfig")
    }
}

fn kubeconfig(ctx: &Ctx, name: &str) -> Res<String> {
    let ca = sh::read(&pki(ctx).join("ca.crt"))?;
    let ca64 = base64(ca.as_bytes());
    Ok(format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubepkg-local
  cluster:
    server: {server}
    certificate-authority-data: {ca64}
users:
- name: kubepkg-admin
  user:
    token: {admin}
- name: kubepkg-limited
  user:
    token: {limited}
contexts:
- name: kubepkg-admin
  context:
    cluster: kubepkg-local
    user: kubepkg-admin
- name: kubepkg-limited
  context:
    cluster: kubepkg-local
    user: kubepkg-limited
    namespace: {ns}
current-context: kubepkg-admin
",
        server = server_of(name),
        admin = ctx.secrets.admin_token,
        limited = ctx.secrets.limited_token,
        ns = LIMITED_NAMESPACE,
    ))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
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

fn args(list: &[String]) -> Vec<String> {
    list.to_vec()
}

/// Starts one control-plane component and waits until it is healthy.
pub fn start(ctx: &Ctx, name: &str) -> Res {
    ensure_pki(ctx)?;
    let p = pki(ctx);
    let ps = |f: &str| p.join(f).display().to_string();
    let kc = kubeconfig_path(ctx).display().to_string();
    let (bin, argv): (PathBuf, Vec<String>) = match name {
        "etcd" => {
            let data = ctx.state("etcd");
            sh::mkdir(&data)?;
            (
                etcd_bin()?,
                args(&[
                    "--name=kubepkg".into(),
                    format!("--data-dir={}", data.display()),
                    format!("--listen-client-urls=http://127.0.0.1:{ETCD_PORT}"),
                    format!("--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}"),
                    format!("--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}"),
                    format!("--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}"),
                    format!("--initial-cluster=kubepkg=http://127.0.0.1:{ETCD_PEER_PORT}"),
                    "--listen-metrics-urls=".into(),
                    "--quota-backend-bytes=4294967296".into(),
                    "--unsafe-no-fsync=true".into(),
                    "--log-level=warn".into(),
                ]),
            )
        }
        "kube-apiserver" | FAULT_APISERVER => (
            KUBERNETES.bin("kube-apiserver"),
            args(&[
                format!("--etcd-servers=http://127.0.0.1:{ETCD_PORT}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                "--endpoint-reconciler-type=none".into(),
                format!("--secure-port={}", apiserver_port(name)),
                format!("--tls-cert-file={}", ps("apiserver.crt")),
                format!("--tls-private-key-file={}", ps("apiserver.key")),
                format!("--client-ca-file={}", ps("ca.crt")),
                format!("--token-auth-file={}", ps("tokens.csv")),
                "--authorization-mode=RBAC".into(),
                "--anonymous-auth=false".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", ps("sa.pub")),
                format!("--service-account-signing-key-file={}", ps("sa.key")),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--allow-privileged=true".into(),
                "--kubelet-preferred-address-types=InternalIP".into(),
                format!("--kubelet-certificate-authority={}", ps("ca.crt")),
                "--profiling=false".into(),
                "--max-requests-inflight=1000".into(),
                "--max-mutating-requests-inflight=500".into(),
                "--v=1".into(),
            ]),
        ),
        "kube-controller-manager" => (
            KUBERNETES.bin("kube-controller-manager"),
            args(&[
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={CONTROLLER_MANAGER_PORT}"),
                "--leader-elect=false".into(),
                format!("--service-account-private-key-file={}", ps("sa.key")),
                format!("--root-ca-file={}", ps("ca.crt")),
                format!("--cluster-signing-cert-file={}", ps("ca.crt")),
                format!("--cluster-signing-key-file={}", ps("ca.key")),
                "--use-service-account-credentials=false".into(),
                "--kube-api-qps=200".into(),
                "--kube-api-burst=400".into(),
                "--v=1".into(),
            ]),
        ),
        "kube-scheduler" => (
            KUBERNETES.bin("kube-scheduler"),
            args(&[
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={SCHEDULER_PORT}"),
                "--leader-elect=false".into(),
                "--kube-api-qps=200".into(),
                "--kube-api-burst=400".into(),
                "--v=1".into(),
            ]),
        ),
        "kwok" => (
            KWOK.bin("kwok"),
            args(&[
                format!("--kubeconfig={kc}"),
                format!("--config={}", ctx.state("kwok").join("kwok.yaml").display()),
                "--manage-all-nodes=false".into(),
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
                "--cidr=10.244.0.1/16".into(),
                "--node-ip=127.0.0.1".into(),
                format!("--node-port={KWOK_PORT}"),
                format!("--server-address=127.0.0.1:{KWOK_PORT}"),
                format!("--tls-cert-file={}", ps("kwok.crt")),
                format!("--tls-private-key-file={}", ps("kwok.key")),
                "--node-lease-duration-seconds=40".into(),
            ]),
        ),
        other => return Err(format!("unknown control-plane component {other}")),
    };
    let mut argv = argv;
    if name == FAULT_APISERVER {
        // An API server's identity lease is named after the host, so two on
        // one host would take turns overwriting one lease (and log a
        // conflict every 10 s each). The identity serves only alpha
        // features, so the fault-injection instance goes without.
        argv.push("--feature-gates=APIServerIdentity=false".into());
    }
    if name == "kwok" {
        // Always rewritten, so a changed configuration applies on restart.
        sh::write(&ctx.state("kwok").join("kwok.yaml"), kwok_config())?;
    }
    proc::spawn(ctx, name, &bin, &argv, &[])?;
    let limit = Duration::from_secs(if APISERVERS.contains(&name) { 120 } else { 60 });
    let mut last = String::new();
    let mut exited = false;
    sh::wait_until(limit, || match health(ctx, name) {
        Ok(_) => true,
        Err(e) => {
            last = e;
            // Stop waiting early when the process is gone.
            exited = proc::alive_pid(ctx, name).is_none();
            exited
        }
    });
    if exited {
        Err(format!("the process exited ({last})"))
    } else if health(ctx, name).is_ok() {
        Ok(())
    } else {
        Err(format!("not healthy after {limit:?}: {last}"))
    }
}

/// kwok's configuration: default options, plus container logs for every
/// simulated pod (served by kwok's kubelet API on 127.0.0.1:10250, so the API
/// server's `pods/log` works) from fixture files in CRI log format; and, for
/// pods of the namespace `kubepkg-exec-test` only, exec (run on this host as
/// user nobody in /tmp) and port-forward (pod port 8080 to 127.0.0.1:17893).
fn kwok_config() -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("crates/k8s-api/tests/fixtures");
    format!(
        "kind: KwokConfiguration\n\
         apiVersion: config.kwok.x-k8s.io/v1alpha1\n\
         options: {{}}\n\
         ---\n\
         kind: ClusterLogs\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         metadata:\n  name: kubepkg-all-pods\n\
         spec:\n  logs:\n  - containers: []\n    logsFile: {}\n    previousLogsFile: {}\n    follow: true\n\
         ---\n\
         kind: ClusterExec\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         metadata:\n  name: kubepkg-exec-test\n\
         spec:\n  selector:\n    matchNamespaces: [kubepkg-exec-test]\n  execs:\n  - containers: []\n    local:\n      workDir: /tmp\n      securityContext:\n        runAsUser: 65534\n        runAsGroup: 65534\n\
         ---\n\
         kind: ClusterPortForward\n\
         apiVersion: kwok.x-k8s.io/v1alpha1\n\
         metadata:\n  name: kubepkg-exec-test\n\
         spec:\n  selector:\n    matchNamespaces: [kubepkg-exec-test]\n  forwards:\n  - ports: [8080]\n    target:\n      port: 17893\n      address: 127.0.0.1\n",
        fixtures.join("kwok-pod.log").display(),
        fixtures.join("kwok-pod-previous.log").display(),
    )
}

/// curl against the shared API server with the admin token.
fn api(ctx: &Ctx, method: &str, path: &str, body: Option<&Value>) -> Res<(u16, String)> {
    api_at(ctx, &server(), method, path, body)
}

/// curl against the API server at `base` with the admin token.
fn api_at(
    ctx: &Ctx,
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Res<(u16, String)> {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "10",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ])
    .arg("--cacert")
    .arg(pki(ctx).join("ca.crt"))
    // The token is read from a file so it never shows in a command line or error.
    .arg("-H")
    .arg(format!("@{}", pki(ctx).join("admin-auth-header").display()))
    .args([
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json",
    ]);
    if let Some(b) = body {
        c.args(["--data-binary", &b.to_string()]);
    }
    c.arg(format!("{base}{path}"));
    let out = sh::output(&mut c).map_err(|e| {
        // Keep only curl's own message: the command line is long and not useful.
        let msg = e
            .rsplit_once("failed with")
            .map(|(_, m)| m.to_string())
            .unwrap_or(e);
        format!("{method} {base}{path}:{msg}")
    })?;
    let (text, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let code: u16 = code.trim().parse().unwrap_or(0);
    Ok((code, text.to_string()))
}

/// Health of one component.
pub fn health(ctx: &Ctx, name: &str) -> Result<String, String> {
    match name {
        "etcd" => {
            let code = sh::http_status(&format!("http://127.0.0.1:{ETCD_PORT}/health"), &[]);
            if code == 200 {
                Ok(format!("http://127.0.0.1:{ETCD_PORT}"))
            } else {
                Err(format!("GET /health on 127.0.0.1:{ETCD_PORT} gave {code}"))
            }
        }
        "kube-apiserver" | FAULT_APISERVER => {
            let base = server_of(name);
            let (code, _) = api_at(ctx, &base, "GET", "/readyz", None)?;
            if code != 200 {
                return Err(format!("GET {base}/readyz gave {code}"));
            }
            let (_, body) = api_at(ctx, &base, "GET", "/version", None)?;
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            Ok(format!(
                "{base} {}",
                v["gitVersion"].as_str().unwrap_or("?")
            ))
        }
        "kube-controller-manager" | "kube-scheduler" => {
            let port = if name == "kube-scheduler" {
                SCHEDULER_PORT
            } else {
                CONTROLLER_MANAGER_PORT
            };
            // These serve a self-signed certificate of their own.
            let code = sh::http_status(&format!("https://127.0.0.1:{port}/healthz"), &["-k"]);
            if code == 200 {
                Ok(format!("healthz on 127.0.0.1:{port}"))
            } else {
                Err(format!("GET https://127.0.0.1:{port}/healthz gave {code}"))
            }
        }
        "kwok" => {
            let code = sh::http_status(&format!("https://127.0.0.1:{KWOK_PORT}/healthz"), &["-k"]);
            if code != 200 {
                return Err(format!(
                    "GET https://127.0.0.1:{KWOK_PORT}/healthz gave {code}"
                ));
            }
            let ready = ready_nodes(ctx).unwrap_or_default();
            Ok(format!(
                "{} of {} simulated nodes Ready",
                ready.len(),
                NODES.len()
            ))
        }
        other => Err(format!("unknown component {other}")),
    }
}

fn ready_nodes(ctx: &Ctx) -> Res<Vec<String>> {
    let (code, body) = api(ctx, "GET", "/api/v1/nodes", None)?;
    if code != 200 {
        return Err(format!("listing nodes gave {code}"));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for n in v["items"].as_array().cloned().unwrap_or_default() {
        let ready = n["status"]["conditions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .unwrap_or(false);
        if ready {
            out.push(n["metadata"]["name"].as_str().unwrap_or("").to_string());
        }
    }
    Ok(out)
}

fn create(ctx: &Ctx, path: &str, obj: Value) -> Res {
    let (code, body) = api(ctx, "POST", path, Some(&obj))?;
    match code {
        200 | 201 | 202 | 409 => Ok(()),
        _ => Err(format!("POST {path} gave {code}: {body}")),
    }
}

/// Simulated nodes, the limited namespace and its RoleBinding. Idempotent.
pub fn setup(ctx: &Ctx) -> Res {
    for node in NODES {
        create(
            ctx,
            "/api/v1/nodes",
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": node,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": node,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/role": "agent",
                        "node-role.kubernetes.io/agent": ""
                    }
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake", "kubeProxyVersion": "fake"}
                }
            }),
        )?;
    }
    create(
        ctx,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LIMITED_NAMESPACE}}),
    )?;
    create(
        ctx,
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{LIMITED_NAMESPACE}/rolebindings"),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "kubepkg-limited-admin", "namespace": LIMITED_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubepkg-limited"}]
        }),
    )?;
    let mut ready = Vec::new();
    let ok = sh::wait_until(Duration::from_secs(60), || {
        ready = ready_nodes(ctx).unwrap_or_default();
        NODES.iter().all(|n| ready.iter().any(|r| r == n))
    });
    if !ok {
        return Err(format!(
            "kwok: simulated nodes not Ready after 60s (ready: {ready:?}); log {}",
            ctx.log("kwok").display()
        ));
    }
    // The default service account must exist before pods can be created.
    sh::wait_until(Duration::from_secs(30), || {
        api(
            ctx,
            "GET",
            "/api/v1/namespaces/default/serviceaccounts/default",
            None,
        )
        .map(|(c, _)| c == 200)
        .unwrap_or(false)
    });
    Ok(())
}

/// The `kubernetes` section of env.json (`kube-apiserver`), or the
/// `kubernetes_fault` one ([`FAULT_APISERVER`]): the same shape, cluster,
/// CA and tokens, another server and kubeconfig.
pub fn env_section(ctx: &Ctx, name: &str) -> Res<Value> {
    Ok(json!({
        "server": server_of(name),
        "kubeconfig": kubeconfig_path_of(ctx, name),
        "ca_file": pki(ctx).join("ca.crt"),
        "ca_pem": sh::read(&pki(ctx).join("ca.crt")).unwrap_or_default(),
        "admin_token": ctx.secrets.admin_token,
        "limited_token": ctx.secrets.limited_token,
        "limited_namespace": LIMITED_NAMESPACE,
        "version": KUBERNETES_VERSION,
        "nodes": NODES,
        "etcd": format!("http://127.0.0.1:{ETCD_PORT}"),
        "kubectl": gobuild::KUBECTL.bin("kubectl"),
    }))
}
