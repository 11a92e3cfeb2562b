//! Serving HTTPS directly from `server.tls_cert` / `server.tls_key`.

use crate::common::Server;
use std::process::Command;

/// A self-signed certificate for 127.0.0.1 made with openssl: (cert, key).
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian's openssl package) makes a test certificate");
    assert!(status.status.success(), "openssl: {status:?}");
    (cert.display().to_string(), key.display().to_string())
}

#[tokio::test]
async fn the_server_serves_https_that_clients_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path());
    let mut server = Server::start_env(
        "",
        None,
        &[
            ("KUBEPKG_SERVER__TLS_CERT", cert.clone()),
            ("KUBEPKG_SERVER__TLS_KEY", key.clone()),
        ],
    );
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    // A client that trusts nothing extra refuses the certificate.
    let plain = reqwest::Client::new();
    let err = plain
        .get(server.url("/healthz"))
        .send()
        .await
        .expect_err("an unknown certificate is refused");
    assert!(err.is_connect(), "{err:?}");
    // One given the certificate gets answers, authenticated ones too.
    let pem = std::fs::read(&cert).expect("read the certificate");
    server.http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .build()
        .expect("client");
    let (status, v) = server.admin(reqwest::Method::GET, "/clusters", None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{v}");
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let http_url = server.url("/healthz").replacen("https://", "http://", 1);
    assert!(plain.get(http_url).send().await.is_err());
    server.kill();
}

#[test]
fn a_key_that_is_not_a_key_stops_the_server_with_the_setting_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _) = self_signed(dir.path());
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a key").expect("write");
    let config = dir.path().join("kubepkg.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[encryption]\nactive_key = \"k1\"\nkeys = {{ k1 = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\" }}\n[server]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{cert}\"\ntls_key = \"{}\"\n",
            dir.path().display(),
            bogus.display()
        ),
    )
    .expect("write the config");
    let out = Command::new(env!("CARGO_BIN_EXE_kubepkg-server"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run kubepkg-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.tls_key"), "{stderr}");
    assert!(
        !stderr.contains("not a key"),
        "the file's contents leaked: {stderr}"
    );
}
