//! The object-storage conformance suite on every backend: memory and local
//! here; s3 and minio against the local environment's MinIO.

mod common;

use std::sync::Arc;

#[cfg(feature = "s3")]
use kubepkg_storage_api::config::MultipartConfig;
use kubepkg_storage_api::config::{StorageConfig, connect};
use kubepkg_storage_api::object::ObjectStorage;

#[tokio::test]
async fn memory_backend() {
    common::object_suite(connect(&StorageConfig::Memory).unwrap(), false).await;
}

#[tokio::test]
async fn memory_bad_input() {
    common::object_bad_input(connect(&StorageConfig::Memory).unwrap()).await;
}

#[cfg(feature = "local")]
mod local {
    use super::*;
    use kubepkg_storage_api::config::LocalConfig;

    fn store(dir: &tempfile::TempDir) -> Arc<dyn ObjectStorage> {
        connect(&StorageConfig::Local(LocalConfig {
            root: dir.path().to_path_buf(),
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn local_backend() {
        let dir = tempfile::tempdir().unwrap();
        common::object_suite(store(&dir), false).await;
    }

    #[tokio::test]
    async fn local_bad_input_touches_nothing_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let s = connect(&StorageConfig::Local(LocalConfig { root: root.clone() })).unwrap();
        common::object_bad_input(s.clone()).await;
        let outside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, vec![std::ffi::OsString::from("root")]);
    }

    #[tokio::test]
    async fn local_data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.create_bucket("persist").await.unwrap();
        s.put_object("persist", "k", "v".into(), &Default::default())
            .await
            .unwrap();
        drop(s);
        let s = store(&dir);
        assert_eq!(s.get_object("persist", "k").await.unwrap(), "v");
        assert_eq!(s.list_buckets().await.unwrap()[0].name, "persist");
    }
}

#[cfg(feature = "s3")]
fn multipart_5mib() -> MultipartConfig {
    MultipartConfig {
        threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        max_concurrent_parts: 4,
    }
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_backend_against_minio() {
    use kubepkg_storage_api::config::{CredentialsConfig, S3Config};
    let m = kubepkg_testenv::minio();
    let cfg = StorageConfig::S3(S3Config {
        endpoint: Some(m.endpoint.clone()),
        region: m.region.clone(),
        path_style: true,
        credentials: CredentialsConfig::Static {
            access_key: m.access_key.clone(),
            secret_key: m.secret_key.clone().into(),
            session_token: None,
        },
        multipart: multipart_5mib(),
        ..Default::default()
    });
    let store = connect(&cfg).unwrap();
    assert_eq!(store.backend(), "s3");
    common::object_suite(store.clone(), true).await;
    common::object_bad_input(store).await;
}

#[cfg(feature = "minio")]
#[tokio::test]
async fn minio_backend() {
    use kubepkg_storage_api::config::MinioConfig;
    let m = kubepkg_testenv::minio();
    let cfg = StorageConfig::Minio(MinioConfig {
        endpoint: m.endpoint.clone(),
        access_key: m.access_key.clone(),
        secret_key: m.secret_key.clone().into(),
        region: m.region.clone(),
        multipart: multipart_5mib(),
        ..Default::default()
    });
    let store = connect(&cfg).unwrap();
    assert_eq!(store.backend(), "minio");
    common::object_suite(store, true).await;
}
