//! Connecting, the cluster manager, import, and error mapping.

use crate::common::{TestNs, admin, admin_config, env};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kubepkg_k8s_api::manager::Added;
use kubepkg_k8s_api::{
    ClusterConfig, ClusterManager, Error, ImportOptions, ListOptions, connect, import_kubeconfig,
};
use kubepkg_util::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn every_config_source_reaches_the_server() {
    let e = env();
    let kubeconfig = std::fs::read_to_string(&e.kubeconfig).expect("read kubeconfig");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&kubeconfig);
    let configs = [
        admin_config(),
        admin_config().with_context("kubepkg-admin"),
        ClusterConfig::kubeconfig_text(kubeconfig.clone()),
        ClusterConfig::kubeconfig_base64(b64),
        ClusterConfig::token(&e.server, Some(e.ca_pem.clone()), e.admin_token.clone()),
    ];
    for cfg in configs {
        let c = connect(&cfg)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", cfg.describe()));
        let v = c
            .version()
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", cfg.describe()));
        assert_eq!(v.git_version, e.version, "{}", cfg.describe());
    }
}

#[tokio::test]
async fn tls_is_verified_by_default() {
    let e = env();
    // No CA given: the platform trust store does not know the local CA.
    // Through a counting TCP proxy, to see how often the client tries.
    let proxy = Proxy::start(0).await;
    let c = connect(&ClusterConfig::token(
        format!("https://127.0.0.1:{}", proxy.port),
        None,
        e.admin_token.clone(),
    ))
    .await
    .expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // The failure is the certificate check itself, not any transport
    // trouble: rustls did not find the local CA among the trusted roots.
    let text = err.to_string();
    assert!(
        text.contains("TLS verification of the API server's certificate failed"),
        "{text}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    // Retrying cannot make the certificate trusted: one connection only.
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1);
    proxy.stop().await;

    // The same server is trusted with its CA: the check above was about
    // the trust anchors, nothing else.
    let ok = connect(&ClusterConfig::token(
        &e.server,
        Some(e.ca_pem.clone()),
        e.admin_token.clone(),
    ))
    .await
    .expect("client");
    ok.version().await.expect("verified with the cluster CA");
}

#[tokio::test]
async fn limited_token_is_forbidden_outside_its_namespace() {
    let e = env();
    let limited = connect(&admin_config().with_context("kubepkg-limited"))
        .await
        .expect("client");
    let err = limited
        .pods("default")
        .list(&ListOptions::default())
        .await
        .expect_err("the limited user may not list pods in default");
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    assert_eq!(err.api().map(|f| f.code), Some(403));
    let err = limited
        .namespaces()
        .list(&ListOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    // Its own namespace works.
    let cms = limited.config_maps(&e.limited_namespace);
    let name = kubepkg_testenv::unique_name("lim");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.clone());
    cms.create(&cm).await.expect("create in own namespace");
    assert!(
        cms.delete(&name, &Default::default())
            .await
            .expect("delete")
    );
}

#[tokio::test]
async fn wrong_token_is_unauthorized() {
    let e = env();
    let c = connect(&ClusterConfig::token(
        &e.server,
        Some(e.ca_pem.clone()),
        "not-a-token",
    ))
    .await
    .expect("client");
    let err = c
        .pods("default")
        .list(&ListOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

#[tokio::test]
async fn api_failures_map_to_kinds() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-err").await;
    let cms = c.config_maps(&ns.name);

    let err = cms.get("does-not-exist").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(cms.get_opt("does-not-exist").await.expect("get_opt"), None);

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("twice".into());
    let created = cms.create(&cm).await.expect("create");
    let err = cms.create(&cm).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

    // A stale resourceVersion loses: Conflict.
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "1".to_string())].into());
    cms.replace(&fresh).await.expect("first replace");
    let mut stale = created;
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let err = cms.replace(&stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // Invalid name: 422 with the server's causes, nothing created.
    let mut bad = ConfigMap::default();
    bad.metadata.name = Some("Bad_Name".into());
    let err = cms.create(&bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(
        err.causes().iter().any(|c| c.field == "metadata.name"),
        "causes: {:?}",
        err.causes()
    );
    // Names that cannot be a path segment never leave the process.
    let err = cms.get("a/b").await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let names: Vec<String> = cms
        .list(&ListOptions::default())
        .await
        .expect("list")
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(names.iter().all(|n| n != "Bad_Name"));
}

#[tokio::test]
async fn unreachable_server_is_unavailable_not_a_panic() {
    let e = env();
    let m = ClusterManager::new().with_probe_timeout(Duration::from_secs(5));
    let down = ClusterConfig::token("https://127.0.0.1:1", Some(e.ca_pem.clone()), "x")
        .with_max_retries(1);
    let err = m.add("down", down).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    // Still registered: a later get tries again and fails the same way.
    assert_eq!(m.names(), vec!["down".to_string()]);
    assert_eq!(
        m.get("down").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(m.get("nope").await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn manager_caches_rebuilds_and_fans_out() {
    let e = env();
    let m = ClusterManager::new();
    assert_eq!(m.add("a", admin_config()).await.expect("add a"), Added::New);
    assert_eq!(m.builds(), 1);
    assert_eq!(
        m.add("a", admin_config()).await.expect("re-add"),
        Added::Unchanged
    );
    let c1 = m.get("a").await.expect("get");
    let _c2 = m.get("a").await.expect("get again");
    assert_eq!(m.builds(), 1, "get must be a cache hit");
    assert_eq!(
        m.version("a").map(|v| v.git_version),
        Some(e.version.clone())
    );
    assert_eq!(c1.name(), "a");

    // A changed config rebuilds.
    let token_cfg = ClusterConfig::token(&e.server, Some(e.ca_pem.clone()), e.admin_token.clone());
    assert_eq!(
        m.add("a", token_cfg).await.expect("replace"),
        Added::Replaced
    );
    assert_eq!(m.builds(), 2);

    // A broken client is rebuilt on the next get.
    m.mark_broken("a");
    m.get("a").await.expect("rebuilt");
    assert_eq!(m.builds(), 3);
    m.check("a").await.expect("probe");

    // Fan-out: one cluster down never fails the others.
    m.add("b", admin_config()).await.expect("add b");
    let down = ClusterConfig::token("https://127.0.0.1:1", Some(e.ca_pem.clone()), "x")
        .with_max_retries(0);
    let _ = m.add("down", down).await;
    let results = m
        .fan_out(4, |c| async move {
            let pods: Vec<Pod> = c.pods("kube-system").list(&ListOptions::default()).await?;
            Ok::<_, Error>((c.name().to_string(), pods.len()))
        })
        .await;
    assert_eq!(results.len(), 3);
    assert_eq!(results["a"].as_ref().expect("a").0, "a");
    assert!(results["b"].is_ok());
    assert_eq!(
        results["down"].as_ref().unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert!(m.remove("down"));
}

#[tokio::test]
async fn import_creates_a_service_account_token_that_works() {
    let e = env();
    let kubeconfig = std::fs::read_to_string(&e.kubeconfig).expect("read kubeconfig");
    let sa = kubepkg_testenv::unique_name("kp-import");
    let opts = ImportOptions {
        service_account: sa.clone(),
        cluster_role: "view".into(),
        ..Default::default()
    };
    let imported = import_kubeconfig(&kubeconfig, &opts).await.expect("import");
    assert_eq!(imported.server, e.server);
    assert_eq!(imported.version, e.version);
    assert!(
        imported
            .ca_pem
            .as_deref()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    assert!(!format!("{imported:?}").contains(imported.token.expose().as_str()));
    // The token can read (view) but not write.
    let c = connect(&imported.to_config()).await.expect("client");
    c.pods("kube-system")
        .list(&ListOptions::default())
        .await
        .expect("view may list");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("nope".into());
    let err = c.config_maps("default").create(&cm).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    // Importing again reuses the same account and token.
    let again = import_kubeconfig(&kubeconfig, &opts)
        .await
        .expect("import again");
    assert_eq!(again.token.expose(), imported.token.expose());
    // Clean up.
    let admin = admin().await;
    admin
        .service_accounts("kube-system")
        .delete(&sa, &Default::default())
        .await
        .expect("delete sa");
    admin
        .secrets("kube-system")
        .delete(&format!("{sa}-token"))
        .await
        .expect("delete secret");
    admin
        .cluster_role_bindings()
        .delete(&format!("{sa}-view"), &Default::default())
        .await
        .expect("delete binding");
}

#[tokio::test]
async fn import_never_takes_a_token_from_a_secret_that_is_not_the_accounts_own() {
    use k8s_openapi::api::core::v1::Secret as KubeSecret;
    let e = env();
    let kubeconfig = std::fs::read_to_string(&e.kubeconfig).expect("read kubeconfig");
    let admin = admin().await;
    let secrets = admin.namespaced::<KubeSecret>("kube-system");
    let fake = "fake-token-planted-Jx7";
    // An Opaque Secret with a token key, and the token Secret of another
    // account (`default`, filled in by the token controller), each under
    // the name import would use.
    let planted = [
        (
            "kp-imp-opaque",
            serde_json::json!({"type": "Opaque", "stringData": {"token": fake}}),
            "Opaque",
        ),
        (
            "kp-imp-foreign",
            serde_json::json!({
                "type": "kubernetes.io/service-account-token",
                "metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}},
            }),
            "\"default\"",
        ),
    ];
    for (prefix, shape, why) in planted {
        let sa = kubepkg_testenv::unique_name(prefix);
        let name = format!("{sa}-token");
        let mut obj = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "kube-system"},
        });
        if let Some(a) = shape["metadata"].get("annotations") {
            obj["metadata"]["annotations"] = a.clone();
        }
        obj["type"] = shape["type"].clone();
        if let Some(d) = shape.get("stringData") {
            obj["stringData"] = d.clone();
        }
        let planted: KubeSecret = serde_json::from_value(obj).expect("secret json");
        secrets.create(&planted).await.expect("plant the secret");
        let opts = ImportOptions {
            service_account: sa.clone(),
            cluster_role: "view".into(),
            token_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let err = import_kubeconfig(&kubeconfig, &opts).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("kube-system/{name}")), "{text}");
        assert!(text.contains(why), "{text}");
        assert!(!text.contains(fake) && !format!("{err:?}").contains(fake));
        // Nothing was created on the way to the refusal.
        assert!(
            admin
                .service_accounts("kube-system")
                .get_opt(&sa)
                .await
                .expect("get sa")
                .is_none(),
            "the service account was created anyway"
        );
        assert!(
            admin
                .cluster_role_bindings()
                .get_opt(&format!("{sa}-view"))
                .await
                .expect("get binding")
                .is_none()
        );
        secrets
            .delete(&name, &Default::default())
            .await
            .expect("delete the planted secret");
    }
}

#[tokio::test]
async fn import_rejects_a_malformed_kubeconfig() {
    let err = import_kubeconfig("clusters: [ {", &ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    // A pasted token in a broken kubeconfig never shows in the error.
    let e = env();
    let broken = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: {}}}\n\
         users:\n- name: u\n  user: {}\n",
        e.server, e.admin_token
    );
    let err = import_kubeconfig(&broken, &ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("line 8"), "{err}");
    assert!(!err.to_string().contains(&e.admin_token), "{err}");
    assert!(!format!("{err:?}").contains(&e.admin_token), "{err:?}");
}

/// A one-context kubeconfig for the local API server (CA by file) whose
/// user entry is `user`.
fn kubeconfig_for_user(user: serde_json::Value) -> String {
    let e = env();
    serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": e.server, "certificate-authority": e.ca_file}}],
        "users": [{"name": "someone", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "local", "user": "someone"}}],
        "current-context": "ctx"
    })
    .to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[tokio::test]
async fn kubeconfig_user_with_a_token_file() {
    let e = env();
    let dir = tempfile::tempdir().expect("tempdir");
    // No trailing newline: kube keeps re-reading such a file as it rotates.
    write(&dir.path().join("token"), &e.admin_token);
    // A relative tokenFile resolves against the kubeconfig's directory.
    let kubeconfig = dir.path().join("config");
    write(
        &kubeconfig,
        &kubeconfig_for_user(serde_json::json!({"tokenFile": "token"})),
    );
    let c = connect(&ClusterConfig::kubeconfig_file(&kubeconfig))
        .await
        .expect("client");
    let v = c.version().await.expect("version through the token file");
    assert_eq!(v.git_version, e.version);
    c.pods("kube-system")
        .list(&ListOptions::default())
        .await
        .expect("the admin token may list pods");

    // What `echo "$TOKEN" > token` writes: kube 5 would send the newline
    // (invalid in a header, every request failing); like client-go,
    // kubepkg trims it. Also CRLF and surrounding blanks.
    for (name, content) in [
        ("echoed", format!("{}\n", e.admin_token)),
        ("crlf", format!("{}\r\n", e.admin_token)),
        ("padded", format!("  {}\n\n", e.admin_token)),
    ] {
        write(&dir.path().join(name), &content);
        let kubeconfig = dir.path().join(format!("{name}-config"));
        write(
            &kubeconfig,
            &kubeconfig_for_user(serde_json::json!({ "tokenFile": name })),
        );
        let c = connect(&ClusterConfig::kubeconfig_file(&kubeconfig))
            .await
            .unwrap_or_else(|err| panic!("{name}: client: {err}"));
        let v = c
            .version()
            .await
            .unwrap_or_else(|err| panic!("{name}: version through the token file: {err}"));
        assert_eq!(v.git_version, e.version, "{name}");
        c.pods("kube-system")
            .list(&ListOptions::default())
            .await
            .unwrap_or_else(|err| panic!("{name}: the admin token may list pods: {err}"));
        // The cluster manager probes it fine too.
        let m = ClusterManager::new();
        assert_eq!(
            m.add(name, ClusterConfig::kubeconfig_file(&kubeconfig))
                .await
                .unwrap_or_else(|err| panic!("{name}: manager: {err}")),
            Added::New
        );
    }

    // A token file whose content cannot be a header even trimmed: a
    // configuration error when the client is built, the token not shown.
    write(&dir.path().join("garbled"), "abc\ndef-Zq9\n");
    let garbled = dir.path().join("garbled-config");
    write(
        &garbled,
        &kubeconfig_for_user(serde_json::json!({"tokenFile": "garbled"})),
    );
    let err = connect(&ClusterConfig::kubeconfig_file(&garbled))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(!err.to_string().contains("def-Zq9"), "{err}");

    // A token file holding a wrong token: Unauthorized.
    write(&dir.path().join("wrong"), "not-a-token");
    let wrong = dir.path().join("wrong-config");
    write(
        &wrong,
        &kubeconfig_for_user(serde_json::json!({"tokenFile": "wrong"})),
    );
    let c = connect(&ClusterConfig::kubeconfig_file(&wrong))
        .await
        .expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    // A token file that does not exist is a configuration error, not a panic.
    let missing = dir.path().join("missing-config");
    write(
        &missing,
        &kubeconfig_for_user(serde_json::json!({"tokenFile": "no-such-token"})),
    );
    let err = match connect(&ClusterConfig::kubeconfig_file(&missing)).await {
        Ok(c) => c.version().await.expect_err("no token, no access"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}

#[tokio::test]
async fn inline_tokens_are_trimmed_and_unsendable_ones_are_configuration_errors() {
    let e = env();
    // A YAML block scalar (`token: |`) ends in a newline: trimmed, it works.
    let kubeconfig =
        kubeconfig_for_user(serde_json::json!({"token": format!("{}\n", e.admin_token)}));
    let c = connect(&ClusterConfig::kubeconfig_text(kubeconfig))
        .await
        .expect("client");
    let v = c.version().await.expect("version with the trimmed token");
    assert_eq!(v.git_version, e.version);

    // A newline inside cannot be sent: kube would panic building the
    // client; kubepkg refuses the config instead.
    let kubeconfig =
        kubeconfig_for_user(serde_json::json!({"token": format!("{}\nQz7-x", e.admin_token)}));
    let err = connect(&ClusterConfig::kubeconfig_text(kubeconfig))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(!err.to_string().contains("Qz7-x"), "{err}");
}

#[tokio::test]
async fn an_unsendable_refreshed_token_is_a_configuration_error_not_unavailable() {
    let e = env();
    let dir = tempfile::tempdir().expect("tempdir");
    // An exec plugin whose token expires is refreshed by kube per request,
    // and checked only then: a newline in it makes every request fail in
    // kube's auth layer ("invalid bearer token: failed to parse header
    // value") before anything is sent. That is the configuration's fault:
    // Invalid, not Unavailable, so the cluster manager does not take the
    // cluster for down and rebuild its client forever.
    let cfg = exec_status_config(
        dir.path(),
        "newline",
        serde_json::json!({"token": format!("{}\n", e.admin_token),
                           "expirationTimestamp": "2099-01-01T00:00:00Z"}),
    );
    let c = connect(&cfg).await.expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("invalid bearer token"), "{err}");
    assert!(!err.to_string().contains(&e.admin_token), "{err}");

    // The manager's probe reports it as such (it used to be Unavailable:
    // "the cluster is down").
    let m = ClusterManager::new();
    let err = m.add("bad-token", cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("invalid bearer token"), "{err}");
}

#[tokio::test]
async fn an_unsendable_fixed_exec_token_is_a_configuration_error_not_a_panic() {
    let e = env();
    let dir = tempfile::tempdir().expect("tempdir");
    // Without an expiry kube reads the plugin's token once, while the
    // client is built, and its header layer would panic on the newline.
    let cfg = exec_status_config(
        dir.path(),
        "fixed",
        serde_json::json!({"token": format!("{}\n", e.admin_token)}),
    );
    let err = connect(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(!err.to_string().contains(&e.admin_token), "{err}");
    let m = ClusterManager::new();
    let err = m.add("fixed-bad-token", cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}

/// A config whose user is an exec plugin (`/bin/sh <dir>/<name>.sh`)
/// printing an ExecCredential with `status`.
fn exec_status_config(dir: &Path, name: &str, status: serde_json::Value) -> ClusterConfig {
    let script = dir.join(format!("{name}.sh"));
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    });
    write(
        &script,
        &format!("#!/bin/sh\ncat <<'EOF'\n{credential}\nEOF\n"),
    );
    ClusterConfig::kubeconfig_text(kubeconfig_for_user(serde_json::json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "/bin/sh", "args": [script], "interactiveMode": "Never"
    }})))
}

/// An exec credential plugin: `/bin/sh <dir>/<name>.sh`, printing an
/// ExecCredential with `token` and saving `$KUBERNETES_EXEC_INFO` to
/// `<dir>/<name>.info`. Run through `sh` rather than executed, so a
/// just-written file can never be "text file busy".
fn exec_user(dir: &Path, name: &str, token: &str) -> serde_json::Value {
    let script = dir.join(format!("{name}.sh"));
    let info = dir.join(format!("{name}.info"));
    write(
        &script,
        &format!(
            "#!/bin/sh\n\
             printf '%s' \"$KUBERNETES_EXEC_INFO\" > '{}'\n\
             cat <<'EOF'\n\
             {{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}\n\
             EOF\n",
            info.display()
        ),
    );
    serde_json::json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "/bin/sh",
        "args": [script],
        "interactiveMode": "Never",
        "provideClusterInfo": false
    }})
}

#[tokio::test]
async fn kubeconfig_user_with_an_exec_credential_plugin() {
    let e = env();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("config");
    write(
        &good,
        &kubeconfig_for_user(exec_user(dir.path(), "good", &e.admin_token)),
    );
    let c = connect(&ClusterConfig::kubeconfig_file(&good))
        .await
        .expect("client");
    let v = c.version().await.expect("version through the exec plugin");
    assert_eq!(v.git_version, e.version);
    c.pods("kube-system")
        .list(&ListOptions::default())
        .await
        .expect("the plugin's token may list pods");
    // The plugin was told the API version and that it may not prompt.
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("good.info")).expect("exec info written"),
    )
    .expect("exec info is JSON");
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["spec"]["interactive"], false, "{info}");

    // The plugin hands out a wrong token: Unauthorized.
    let bad = dir.path().join("bad-config");
    write(
        &bad,
        &kubeconfig_for_user(exec_user(dir.path(), "bad", "not-a-token")),
    );
    let c = connect(&ClusterConfig::kubeconfig_file(&bad))
        .await
        .expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let err = c
        .pods("default")
        .list(&ListOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    // A plugin that fails is a configuration error naming authentication.
    let failing = dir.path().join("failing-config");
    let script = dir.path().join("fail.sh");
    write(
        &script,
        "#!/bin/sh\necho 'no credentials here' >&2\nexit 3\n",
    );
    write(
        &failing,
        &kubeconfig_for_user(serde_json::json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "/bin/sh", "args": [script], "interactiveMode": "Never"
        }})),
    );
    let err = match connect(&ClusterConfig::kubeconfig_file(&failing)).await {
        Ok(c) => c
            .version()
            .await
            .expect_err("a failing plugin gives no access"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("authentication"), "{err}");
}

/// A TCP proxy to the real API server that the test can stop (closing
/// every connection) and start again on the same port.
struct Proxy {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let upstream = env()
            .server
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind the test proxy on 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().expect("local addr").port();
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (c, a) = (conns.clone(), accepted.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().expect("conns").push(task);
            }
        });
        Proxy {
            port,
            accept,
            conns,
            accepted,
        }
    }

    /// Stops listening and closes every proxied connection.
    async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let conns: Vec<_> = std::mem::take(&mut *self.conns.lock().expect("conns"));
        for c in conns {
            c.abort();
            let _ = c.await;
        }
    }
}

#[tokio::test]
async fn check_marks_an_unreachable_cluster_broken_and_get_rebuilds_it() {
    let e = env();
    let proxy = Proxy::start(0).await;
    let port = proxy.port;
    let through_proxy = ClusterConfig::token(
        format!("https://127.0.0.1:{port}"),
        Some(e.ca_pem.clone()),
        e.admin_token.clone(),
    )
    .with_max_retries(0);
    let m = ClusterManager::new().with_probe_timeout(Duration::from_secs(5));
    assert_eq!(
        m.add("proxied", through_proxy).await.expect("add"),
        Added::New
    );
    assert_eq!(m.builds(), 1);
    let info = m.check("proxied").await.expect("healthy through the proxy");
    assert_eq!(info.git_version, e.version);
    assert!(
        proxy.accepted.load(Ordering::SeqCst) >= 1,
        "traffic went through the proxy"
    );

    // The server becomes unreachable: check says Unavailable and marks the client broken.
    proxy.stop().await;
    let err = m.check("proxied").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(m.version("proxied"), None, "the client is marked broken");
    assert_eq!(m.builds(), 1, "check itself does not rebuild");

    // Reachable again: the next get rebuilds (once), later gets are cache hits.
    let proxy = Proxy::start(port).await;
    let c = m.get("proxied").await.expect("rebuilt");
    assert_eq!(m.builds(), 2);
    assert_eq!(c.version().await.expect("version").git_version, e.version);
    m.check("proxied").await.expect("healthy again");
    m.get("proxied").await.expect("cached");
    assert_eq!(m.builds(), 2);
    assert_eq!(
        m.version("proxied").map(|v| v.git_version),
        Some(e.version.clone())
    );
    proxy.stop().await;
}

#[tokio::test]
async fn fan_out_never_exceeds_its_concurrency() {
    let e = env();
    let m = ClusterManager::new();
    for i in 0..6 {
        m.add(&format!("c{i}"), admin_config()).await.expect("add");
    }
    for (concurrency, expected) in [(2, 2), (0, 1), (10, 6)] {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let results = m
            .fan_out(concurrency, |c| {
                let in_flight = in_flight.clone();
                let peak = peak.clone();
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    let v = c.version().await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    v.map(|v| (c.name().to_string(), v.git_version))
                }
            })
            .await;
        assert_eq!(results.len(), 6);
        for (name, r) in &results {
            let (seen, version) = r.as_ref().unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(seen, name);
            assert_eq!(version, &e.version);
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            expected,
            "peak in-flight calls with concurrency {concurrency}"
        );
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }
    assert_eq!(m.builds(), 6, "fan-out reuses the cached clients");
}
