use crate::common::*;
use kubepkg_k8s_api::ClusterSource;
use kubepkg_platform::store::{ConditionStatus, ConditionType, CredentialKind, NewCluster};
use kubepkg_util::ErrorKind;

/// Stores a cluster whose API server is a closed port, as if it had been
/// imported and then gone away.
pub async fn store_broken(p: &kubepkg_platform::Platform, name: &str) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = format!("https://127.0.0.1:{port}");
    let source = ClusterSource::Token {
        server: server.clone(),
        ca_pem: Some(k8s().ca_pem.clone()),
        token: secret("broken-token-0123456789"),
    };
    p.store()
        .create_cluster(
            &NewCluster {
                name: name.into(),
                display_name: name.into(),
                provider: "imported".into(),
                api_server: server,
                ..Default::default()
            },
            CredentialKind::Token,
            &secret(&serde_json::to_string(&source).unwrap()),
        )
        .await
        .expect("store broken cluster");
}

#[tokio::test]
async fn health_is_conditions_and_a_down_cluster_answers_at_once() {
    let p = platform().await;
    let good = unique("hok");
    p.import_cluster(import_req(&good)).await.expect("import");
    let h = p.check_health(&good).await.expect("health");
    for t in [
        ConditionType::Reachable,
        ConditionType::Version,
        ConditionType::NodesReady,
        ConditionType::CredentialValid,
    ] {
        assert_eq!(
            h.status(t),
            ConditionStatus::True,
            "{t:?}: {:?}",
            h.conditions
        );
    }
    assert_eq!(
        h.status(ConditionType::CredentialExpiring),
        ConditionStatus::False
    );
    // Every node the Node API lists (the environment's kwok nodes, plus any
    // a vendor simulator added to the shared control plane), all Ready.
    let listed = admin()
        .await
        .nodes()
        .list(&Default::default())
        .await
        .expect("list nodes")
        .len();
    assert!(listed >= k8s().nodes.len());
    assert_eq!(h.nodes_total, Some(listed as u32));
    assert_eq!(h.nodes_ready, h.nodes_total);
    assert_eq!(h.version.as_deref(), Some(k8s().version.as_str()));
    assert!(h.is_healthy());
    // Recorded in the store, and a second probe keeps the transition times.
    let rec = p.cluster(&good).await.unwrap();
    assert_eq!(rec.conditions, h.conditions);
    let again = p.check_health(&good).await.unwrap();
    assert_eq!(again.conditions, h.conditions);

    // A cluster that does not answer.
    let bad = unique("hdown");
    store_broken(&p, &bad).await;
    p.sync_clusters().await.expect("sync");
    let h = p
        .check_health(&bad)
        .await
        .expect("health of a down cluster");
    assert_eq!(h.status(ConditionType::Reachable), ConditionStatus::False);
    assert_eq!(
        h.status(ConditionType::NodesReady),
        ConditionStatus::Unknown
    );
    assert!(!h.is_healthy());
    assert!(p.is_down(&bad));
    // Known down: the answer comes from the platform, not a fresh connect.
    let err = p.client(&bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("is down since"), "{err}");
    // The good one is unaffected.
    p.client(&good).await.expect("good client");
    cleanup(&good).await;
}

#[tokio::test]
async fn a_wrong_stored_credential_is_reachable_but_not_valid() {
    let p = platform().await;
    let name = unique("hcred");
    let e = k8s();
    let source = ClusterSource::Token {
        server: e.server.clone(),
        ca_pem: Some(e.ca_pem.clone()),
        token: secret("not-a-valid-token-0123456789"),
    };
    p.store()
        .create_cluster(
            &NewCluster {
                name: name.clone(),
                display_name: name.clone(),
                provider: "imported".into(),
                api_server: e.server.clone(),
                ..Default::default()
            },
            CredentialKind::Token,
            &secret(&serde_json::to_string(&source).unwrap()),
        )
        .await
        .unwrap();
    let h = p.check_health(&name).await.expect("health");
    assert_eq!(
        h.status(ConditionType::Reachable),
        ConditionStatus::True,
        "{:?}",
        h.conditions
    );
    assert_eq!(
        h.status(ConditionType::CredentialValid),
        ConditionStatus::False
    );
    assert!(!p.is_down(&name), "a refused credential is not an outage");
}

#[tokio::test]
async fn the_prober_brings_a_cluster_back() {
    let p = platform().await;
    let name = unique("hback");
    // A relay we can stop and start in front of the real API server.
    let relay = Relay::start(&k8s().server).await;
    let e = k8s();
    let source = kubepkg_platform::core::ImportSource::Token {
        server: relay.url(),
        ca_pem: Some(e.ca_pem.clone()),
        token: secret(&e.admin_token),
    };
    let req = kubepkg_platform::core::ImportRequest::new(&name, source)
        .role(kubepkg_platform::core::ImportRole::AsGiven);
    p.import_cluster(req).await.expect("import through relay");
    let _prober = p.start_health_prober();
    relay.stop();
    let mut down = false;
    for _ in 0..100 {
        if p.is_down(&name) {
            down = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(down, "the prober saw the outage");
    relay.resume().await;
    let mut back = false;
    for _ in 0..200 {
        if !p.is_down(&name) {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "the prober saw the cluster back");
    p.client(&name).await.expect("usable again");
}
