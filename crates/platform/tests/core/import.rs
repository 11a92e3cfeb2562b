use crate::common::*;
use kubepkg_k8s_api::k8s_openapi::api::apps::v1::Deployment;
use kubepkg_k8s_api::k8s_openapi::api::core::v1::{Namespace, Pod};
use kubepkg_k8s_api::{ClusterSource, DeleteOptions, ListOptions};
use kubepkg_platform::core::{ImportRequest, ImportRole, ImportSource};
use kubepkg_platform::store::{CredentialKind, CredentialOwner};
use kubepkg_util::ErrorKind;

async fn stored_token(p: &kubepkg_platform::Platform, name: &str) -> String {
    let cred = p
        .store()
        .credential(&CredentialOwner::Cluster(name.into()))
        .await
        .expect("credential");
    assert_eq!(cred.info.kind, CredentialKind::Token);
    let source: ClusterSource = serde_json::from_str(cred.secret.expose()).expect("source");
    match source {
        ClusterSource::Token { token, .. } => token.expose().clone(),
        other => panic!("stored a {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn import_stores_only_a_scoped_service_account_token() {
    let (logs, ()) = capture_logs();
    let p = platform().await;
    let name = unique("imp");
    let report = p
        .import_cluster(import_req(&name).label("env", "test"))
        .await
        .expect("import");
    assert_eq!(report.version, k8s().version);
    assert_eq!(
        report.service_account.as_deref(),
        Some(format!("kube-system/kubepkg-{name}").as_str())
    );
    assert_eq!(report.cluster.provider, "imported");
    assert_eq!(report.cluster.api_server, k8s().server);
    assert!(
        report
            .cluster
            .ca_pem
            .as_deref()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    // Legacy service-account tokens do not expire.
    assert_eq!(report.expires_at, None);
    assert!(!report.expiring_soon);

    // The stored token is the service account's, not the admin's.
    let token = stored_token(&p, &name).await;
    assert_ne!(token, k8s().admin_token);
    assert!(
        report
            .access
            .username
            .ends_with(&format!(":kube-system:kubepkg-{name}")),
        "{}",
        report.access.username
    );
    // `edit`: workloads yes; namespaces, RBAC and node changes no; nodes readable.
    let a = &report.access;
    assert!(a.allows("list", "", "pods"));
    assert!(a.allows("create", "apps", "deployments"));
    assert!(a.allows("list", "", "nodes"));
    assert!(!a.allows("delete", "", "namespaces"));
    assert!(!a.allows("create", "", "namespaces"));
    assert!(!a.allows("patch", "", "nodes"));
    assert!(!a.allows("create", "rbac.authorization.k8s.io", "clusterrolebindings"));

    // Through the platform's client: pods list, a namespace delete is Forbidden.
    let client = p.client(&name).await.expect("client");
    client
        .all::<Pod>()
        .list(&ListOptions::default().page_size(5))
        .await
        .expect("list pods");
    let err = p
        .with_client(&name, |c| async move {
            c.cluster::<Namespace>()
                .delete("kube-public", &DeleteOptions::default())
                .await
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");

    // A second import of the same name is refused before touching anything.
    let err = p.import_cluster(import_req(&name)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    // No credential in logs, Debug output, errors or list results.
    let listed = serde_json::to_string(&p.store().list_credentials().await.unwrap()).unwrap();
    let clusters = p.clusters(None).await.unwrap();
    let outputs = [
        ("logs", logs.text()),
        ("report Debug", format!("{report:?}")),
        ("platform Debug", format!("{p:?}")),
        ("credential list", listed),
        ("cluster list", serde_json::to_string(&clusters).unwrap()),
        ("cluster Debug", format!("{clusters:?}")),
        ("error", format!("{err} {err:?}")),
    ];
    for (what, text) in &outputs {
        assert_absent(what, text, &token);
        assert_absent(what, text, &k8s().admin_token);
    }
    let text = logs.text();
    assert!(
        text.contains("cluster imported"),
        "import is logged: {}",
        &text[..text.len().min(3000)]
    );
    p.delete_cluster(&name).await.expect("delete");
    assert_eq!(
        p.cluster(&name).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    cleanup(&name).await;
}

#[tokio::test]
async fn view_role_reads_but_cannot_change_workloads() {
    let p = platform().await;
    let name = unique("view");
    let report = p
        .import_cluster(import_req(&name).role(ImportRole::View))
        .await
        .expect("import");
    assert!(report.access.allows("list", "", "pods"));
    assert!(!report.access.allows("create", "apps", "deployments"));
    assert!(!report.access.allows("list", "", "secrets"));
    let dep: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nope"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }))
    .unwrap();
    let err = p
        .with_client(&name, |c| async move {
            c.namespaced::<Deployment>("default").create(&dep).await
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    cleanup(&name).await;
}

#[tokio::test]
async fn as_given_stores_the_limited_token_unchanged() {
    let p = platform().await;
    let e = k8s();
    let name = unique("given");
    let req = ImportRequest::new(
        &name,
        ImportSource::Token {
            server: e.server.clone(),
            ca_pem: Some(e.ca_pem.clone()),
            token: secret(&e.limited_token),
        },
    )
    .role(ImportRole::AsGiven);
    let report = p.import_cluster(req).await.expect("import");
    assert_eq!(report.service_account, None);
    assert_eq!(stored_token(&p, &name).await, e.limited_token);
    let ns = e.limited_namespace.clone();
    p.with_client(&name, |c| async move {
        c.namespaced::<Pod>(&ns).list(&ListOptions::default()).await
    })
    .await
    .expect("limited namespace");
    let err = p
        .with_client(&name, |c| async move {
            c.namespaced::<Pod>("kube-system")
                .list(&ListOptions::default())
                .await
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
}

fn kubeconfig_with_token(server: &str, token: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(&k8s().ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    )
}

fn expired_jwt() -> String {
    use base64::Engine as _;
    let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc(br#"{"alg":"RS256","kid":"x"}"#),
        enc(br#"{"iss":"test","sub":"system:serviceaccount:a:b","exp":1000000000}"#)
    )
}

#[tokio::test(flavor = "current_thread")]
async fn failing_imports_store_nothing_and_say_why() {
    let (logs, ()) = capture_logs();
    let p = platform().await;
    let e = k8s();
    let wrong = "wrong-token-0123456789abcdef";
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cases: Vec<(&str, ImportRequest, ErrorKind)> = vec![
        (
            "wrong token",
            ImportRequest::new(
                unique("bad"),
                ImportSource::Token {
                    server: e.server.clone(),
                    ca_pem: Some(e.ca_pem.clone()),
                    token: secret(wrong),
                },
            ),
            ErrorKind::Unauthorized,
        ),
        (
            "malformed kubeconfig",
            ImportRequest::new(
                unique("bad"),
                ImportSource::Kubeconfig {
                    text: secret("clusters: [this is: not: a kubeconfig"),
                    context: None,
                },
            ),
            ErrorKind::Invalid,
        ),
        (
            "kubeconfig without the context",
            ImportRequest::new(
                unique("bad"),
                ImportSource::Kubeconfig {
                    text: secret(&kubeconfig_with_token(&e.server, wrong)),
                    context: Some("missing".into()),
                },
            ),
            ErrorKind::Invalid,
        ),
        (
            "expired token",
            ImportRequest::new(
                unique("bad"),
                ImportSource::Kubeconfig {
                    text: secret(&kubeconfig_with_token(&e.server, &expired_jwt())),
                    context: None,
                },
            ),
            ErrorKind::Invalid,
        ),
        (
            "not base64",
            ImportRequest::new(
                unique("bad"),
                ImportSource::KubeconfigBase64 {
                    data: secret("%%% not base64 %%%"),
                    context: None,
                },
            ),
            ErrorKind::Invalid,
        ),
        (
            "unreachable server",
            ImportRequest::new(
                unique("bad"),
                ImportSource::Token {
                    server: format!("https://127.0.0.1:{closed}"),
                    ca_pem: Some(e.ca_pem.clone()),
                    token: secret(wrong),
                },
            ),
            ErrorKind::Unavailable,
        ),
        ("bad name", import_req("Not_A_Label"), ErrorKind::Invalid),
        (
            "unknown provider",
            ImportRequest::new(
                unique("bad"),
                ImportSource::Provider {
                    provider: "nope".into(),
                    cluster_id: "c-1".into(),
                },
            ),
            ErrorKind::NotFound,
        ),
    ];
    for (what, req, kind) in cases {
        let err = p.import_cluster(req).await.expect_err(what);
        assert_eq!(err.kind(), kind, "{what}: {err}");
        assert_absent(what, &format!("{err} {err:?}"), wrong);
        assert!(
            p.clusters(None).await.unwrap().is_empty(),
            "{what}: nothing stored"
        );
        assert!(
            p.store().list_credentials().await.unwrap().is_empty(),
            "{what}"
        );
        assert!(
            p.cluster_manager().names().is_empty(),
            "{what}: nothing cached"
        );
    }
    let err = p
        .import_cluster(ImportRequest::new(
            unique("bad"),
            ImportSource::Kubeconfig {
                text: secret(&kubeconfig_with_token(&e.server, &expired_jwt())),
                context: None,
            },
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_absent("logs", &logs.text(), wrong);
    assert_absent("logs", &logs.text(), &expired_jwt());
}

#[tokio::test]
async fn credentials_rotate_without_a_gap() {
    let p = platform().await;
    let name = unique("rot");
    p.import_cluster(import_req(&name)).await.expect("import");
    let old = stored_token(&p, &name).await;

    // Callers keep listing while the credential is swapped.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let p = p.clone();
        let name = name.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = p
                    .with_client(&name, |c| async move {
                        c.namespaced::<Pod>("default")
                            .list(&ListOptions::default())
                            .await
                    })
                    .await;
                match r {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let report = p
        .rotate_credentials(&name, admin_source(), ImportRole::Edit)
        .await
        .expect("rotate");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = worker.await.unwrap();
    assert!(
        failed.is_empty(),
        "calls failed during rotation: {failed:?}"
    );
    assert!(ok > 0);

    let new = stored_token(&p, &name).await;
    assert_ne!(new, old, "a fresh token was issued");
    assert!(report.cluster.version > 1, "the record's version moved");
    assert!(report.access.allows("list", "", "pods"));
    // The old token's Secret is gone, so the old token is refused.
    let e = k8s();
    let old_client = kubepkg_k8s_api::Client::connect_named(
        "old",
        &kubepkg_k8s_api::ClusterConfig::token(&e.server, Some(e.ca_pem.clone()), old.clone())
            .with_max_retries(0),
    )
    .await
    .unwrap();
    let mut refused = false;
    for _ in 0..50 {
        match old_client
            .namespaced::<Pod>("default")
            .list(&ListOptions::default())
            .await
        {
            Err(err) if err.kind() == ErrorKind::Unauthorized => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    assert!(refused, "the retired token still works");
    // The platform's client uses the new token.
    p.with_client(&name, |c| async move {
        c.namespaced::<Pod>("default")
            .list(&ListOptions::default())
            .await
    })
    .await
    .expect("new client");
    cleanup(&name).await;
}

#[tokio::test]
async fn a_stale_version_cannot_overwrite_a_newer_record() {
    let p = platform().await;
    let name = unique("ver");
    p.import_cluster(import_req(&name)).await.expect("import");
    let a = p.cluster(&name).await.unwrap();
    let mut b = a.clone();
    let mut a2 = a.clone();
    a2.display_name = "first".into();
    p.store().update_cluster(&a2).await.expect("first update");
    b.display_name = "second".into();
    let err = p.store().update_cluster(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(p.cluster(&name).await.unwrap().display_name, "first");
    cleanup(&name).await;
}
