use crate::common::*;
use kubepkg_k8s_api::ListOptions;
use kubepkg_k8s_api::k8s_openapi::api::core::v1::Pod;
use kubepkg_platform::{Platform, PlatformConfig};
use kubepkg_util::ErrorKind;

fn config(dir: &std::path::Path, key: &str) -> PlatformConfig {
    let text = format!(
        "data_dir = {:?}\n[encryption]\nactive_key = \"k1\"\n[encryption.keys]\nk1 = \"{key}\"\n",
        dir.display().to_string()
    );
    PlatformConfig::from_toml_str(&text).expect("config")
}

fn key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(kubepkg_platform::Keyring::generate_key())
}

/// A platform opened from its config file keeps its clusters in the
/// SQLite file of its data directory; a second open fills the client cache
/// from the store (one client per cluster, built once) and serves them.
#[tokio::test]
async fn a_reopened_platform_serves_its_stored_clusters() {
    let _ = capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let name = unique("open");
    {
        let p = Platform::open(&config(dir.path(), &k)).await.expect("open");
        p.import_cluster(import_req(&name)).await.expect("import");
    }
    assert!(
        dir.path().join("kubepkg.db").exists(),
        "the default store is a file in data_dir"
    );

    let p = Platform::open(&config(dir.path(), &k))
        .await
        .expect("reopen");
    assert_eq!(p.cluster_manager().names(), vec![name.clone()]);
    let builds = p.cluster_manager().builds();
    for _ in 0..5 {
        p.with_client(&name, |c| async move {
            c.namespaced::<Pod>("default")
                .list(&ListOptions::default())
                .await
        })
        .await
        .expect("list through the cached client");
    }
    assert_eq!(
        p.cluster_manager().builds(),
        builds,
        "no client rebuilt per request"
    );

    // The same file with another key: the clusters are there, their
    // credentials cannot be read — a typed error, never garbage.
    let other = Platform::open(&config(dir.path(), &key()))
        .await
        .expect("open, other key");
    assert_eq!(other.clusters(None).await.unwrap().len(), 1);
    let err = other.client(&name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("decrypt"), "{err}");
    cleanup(&name).await;
}
