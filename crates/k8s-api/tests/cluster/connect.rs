//! Connecting, the cluster manager, import, and error mapping.

use crate::common::{TestNs, admin, admin_config, env};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kubepkg_k8s_api::manager::Added;
use kubepkg_k8s_api::{
    ClusterConfig, ClusterManager, Error, ImportOptions, ListOptions, connect, import_kubeconfig,
};
use kubepkg_util::ErrorKind;
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
    let c = connect(&ClusterConfig::token(
        &e.server,
        None,
        e.admin_token.clone(),
    ))
    .await
    .expect("client");
    let err = c.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
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
async fn import_rejects_a_malformed_kubeconfig() {
    let err = import_kubeconfig("clusters: [ {", &ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}
