//! Security warnings, captured from `tracing`: TLS verification switched
//! off (by the config or by the kubeconfig), and a credential configured
//! for a plain-http server. None of them may carry the credential itself.
//!
//! The binary installs one global subscriber writing into a buffer; each
//! test looks only at the lines naming its own server address.

use kubepkg_k8s_api::{ClusterConfig, connect};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Buffer;

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Buffer)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

/// The captured lines that mention `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    let log = LOG.lock().expect("log buffer");
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

fn warnings_with(marker: &str) -> Vec<String> {
    lines_with(marker)
        .into_iter()
        .filter(|l| l.contains("WARN"))
        .collect()
}

fn kubeconfig(server: &str, cluster_extra: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{cluster_extra}\
         users:\n- name: u\n  user:\n{user}\
         contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    )
}

#[tokio::test]
async fn a_token_for_a_plain_http_server_is_warned_about_without_the_token() {
    capture();
    let server = "http://127.0.0.1:17301";
    connect(&ClusterConfig::token(server, None, "tok-Zq81-secret"))
        .await
        .expect("client");
    let warnings = warnings_with("127.0.0.1:17301");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("plain-http"), "{warnings:?}");
    assert!(warnings[0].contains("bearer token"), "{warnings:?}");
    assert!(
        !String::from_utf8_lossy(&LOG.lock().expect("log")).contains("Zq81"),
        "the token was logged"
    );
}

#[tokio::test]
async fn basic_auth_and_token_files_over_http_are_warned_about_too() {
    capture();
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok-Yp42").expect("write token");
    let basic = kubeconfig(
        "http://127.0.0.1:17302",
        "",
        "    username: admin\n    password: pw-Xr93\n",
    );
    let file = kubeconfig(
        "http://127.0.0.1:17303",
        "",
        &format!("    tokenFile: {:?}\n", token_file),
    );
    ClusterConfig::kubeconfig_text(basic)
        .to_kube_config()
        .await
        .expect("resolves");
    ClusterConfig::kubeconfig_text(file)
        .to_kube_config()
        .await
        .expect("resolves");
    let w = warnings_with("127.0.0.1:17302");
    assert!(
        w.len() == 1 && w[0].contains("basic auth") && w[0].contains("plain-http"),
        "{w:?}"
    );
    let w = warnings_with("127.0.0.1:17303");
    assert!(w.len() == 1 && w[0].contains("bearer token"), "{w:?}");
    let all = String::from_utf8_lossy(&LOG.lock().expect("log")).into_owned();
    assert!(!all.contains("Xr93") && !all.contains("Yp42"), "{all}");
}

#[tokio::test]
async fn https_or_no_credential_is_not_warned_about() {
    capture();
    connect(&ClusterConfig::token(
        "https://127.0.0.1:17304",
        None,
        "tok",
    ))
    .await
    .expect("client");
    // Plain http without any credential (a local proxy, say) is fine.
    let anonymous = kubeconfig("http://127.0.0.1:17305", "", "    {}\n");
    ClusterConfig::kubeconfig_text(anonymous)
        .to_kube_config()
        .await
        .expect("resolves");
    assert_eq!(warnings_with("127.0.0.1:17304"), Vec::<String>::new());
    assert_eq!(warnings_with("127.0.0.1:17305"), Vec::<String>::new());
}

#[tokio::test]
async fn switching_tls_verification_off_is_warned_about() {
    capture();
    // By the config…
    let mut cfg = ClusterConfig::token("https://127.0.0.1:17306", None, "tok-Wd55");
    cfg.insecure_skip_tls_verify = true;
    connect(&cfg).await.expect("client");
    let w = warnings_with("127.0.0.1:17306");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("TLS verification of the API server is switched off"),
        "{w:?}"
    );
    // …or by the kubeconfig.
    let insecure = kubeconfig(
        "https://127.0.0.1:17307",
        "    insecure-skip-tls-verify: true\n",
        "    token: tok-Wd55\n",
    );
    ClusterConfig::kubeconfig_text(insecure)
        .to_kube_config()
        .await
        .expect("resolves");
    let w = warnings_with("127.0.0.1:17307");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("kubeconfig switches TLS verification"),
        "{w:?}"
    );
    // Verification on: no warning.
    let verified = kubeconfig(
        "https://127.0.0.1:17308",
        "    insecure-skip-tls-verify: false\n",
        "    token: tok-Wd55\n",
    );
    ClusterConfig::kubeconfig_text(verified)
        .to_kube_config()
        .await
        .expect("resolves");
    assert_eq!(warnings_with("127.0.0.1:17308"), Vec::<String>::new());
    assert!(!String::from_utf8_lossy(&LOG.lock().expect("log")).contains("Wd55"));
}

#[tokio::test]
async fn user_info_in_a_server_url_is_not_logged() {
    capture();
    let cfg = ClusterConfig::token("http://ops:pw-Vb17@127.0.0.1:17309", None, "tok");
    connect(&cfg).await.expect("client");
    let w = warnings_with("127.0.0.1:17309");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(!String::from_utf8_lossy(&LOG.lock().expect("log")).contains("Vb17"));
}

#[tokio::test]
async fn an_unverified_client_still_reaches_the_real_server_and_says_so() {
    capture();
    let e = kubepkg_testenv::kubernetes();
    // No CA at all: only switching verification off lets this through.
    let mut cfg = ClusterConfig::token(&e.server, None, e.admin_token.clone());
    cfg.insecure_skip_tls_verify = true;
    let c = connect(&cfg).await.expect("client");
    let v = c.version().await.expect("version without verification");
    assert_eq!(v.git_version, e.version);
    let host = e
        .server
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let w = warnings_with(host);
    assert!(
        w.iter()
            .any(|l| l.contains("TLS verification of the API server is switched off")),
        "{w:?}"
    );
}
