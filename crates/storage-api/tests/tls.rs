//! TLS of the S3 and MinIO backends against the local environment's MinIO
//! HTTPS endpoint (`minio-tls`, a certificate from the environment's
//! services CA; `cargo xtask env up`): verified by default, so a client
//! without the CA fails on the certificate itself (UnknownIssuer), not on
//! anything else; `ca_file` trusts the CA; `danger_accept_invalid_certs`
//! skips the check and says so in a warning. Needs the `minio` feature
//! (declared in Cargo.toml).

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kubepkg_storage_api::config::{MinioConfig, S3Config};
use kubepkg_storage_api::object::minio::MinioStorage;
use kubepkg_storage_api::object::s3::S3Storage;
use kubepkg_storage_api::object::{ObjectStorage, PutOptions};
use kubepkg_util::ErrorKind;

fn minio_config(ca_file: Option<PathBuf>, danger: bool) -> MinioConfig {
    let m = kubepkg_testenv::minio();
    MinioConfig {
        endpoint: kubepkg_testenv::minio_tls().url.clone(),
        access_key: m.access_key.clone(),
        secret_key: m.secret_key.clone().into(),
        region: m.region.clone(),
        ca_file,
        danger_accept_invalid_certs: danger,
        ..Default::default()
    }
}

fn s3_config() -> S3Config {
    common::minio_s3_config(&kubepkg_testenv::minio_tls().url)
}

/// A client without the environment's CA: the error is the rejected
/// certificate, named as such, and it is not a timeout or a refusal.
#[tokio::test]
async fn the_certificate_is_verified_by_default() {
    let stores: Vec<Arc<dyn ObjectStorage>> = vec![
        Arc::new(MinioStorage::new(&minio_config(None, false)).unwrap()),
        Arc::new(S3Storage::new(&s3_config()).unwrap()),
    ];
    for store in stores {
        let what = store.backend();
        let e = store.list_buckets().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{what}: {e}");
        let text = e.to_string();
        assert!(text.contains("UnknownIssuer"), "{what}: {text}");
        assert!(
            text.contains("TLS verification of the server's certificate failed"),
            "{what}: {text}"
        );
    }
    // Through a relay that counts connections (TLS end to end): one
    // attempt, not retried.
    let relay = common::Relay::start(kubepkg_testenv::minio_tls().host.clone(), None).await;
    let store = S3Storage::new(&S3Config {
        max_attempts: 3,
        ..common::minio_s3_config(&format!("https://{}", relay.addr))
    })
    .unwrap();
    let e = store.list_buckets().await.unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert_eq!(relay.accepted(), 1, "the rejected certificate was retried");
}

#[tokio::test]
async fn the_environment_ca_is_trusted_when_configured() {
    let tls = kubepkg_testenv::minio_tls();
    let store = MinioStorage::new(&minio_config(Some(tls.ca_file.clone()), false)).unwrap();
    let bucket = kubepkg_testenv::unique_name("tls");
    store.create_bucket(&bucket).await.unwrap();
    let body = bytes::Bytes::from_static(b"over https");
    store
        .put_object(&bucket, "k", body.clone(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get_object(&bucket, "k").await.unwrap(), body);
    // The admin API trusts the same CA.
    store.server_info().await.unwrap();
    store.delete_object(&bucket, "k").await.unwrap();
    store.delete_bucket(&bucket).await.unwrap();
}

#[test]
fn a_ca_file_without_a_certificate_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let e = MinioStorage::new(&minio_config(Some(path.clone()), false)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(e.to_string().contains("ca.pem"), "{e}");
    let e =
        MinioStorage::new(&minio_config(Some(dir.path().join("missing.pem")), false)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

/// What a `tracing` subscriber wrote, for one closure.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text =
        String::from_utf8_lossy(&buffer.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    (out, text)
}

#[test]
fn switching_verification_off_is_a_warning_and_works() {
    let m = kubepkg_testenv::minio();
    let tls = kubepkg_testenv::minio_tls();
    let (store, log) = logs_of(|| MinioStorage::new(&minio_config(None, true)));
    let store = store.unwrap();
    let warning = log
        .lines()
        .find(|l| l.contains("TLS certificate verification is OFF"))
        .unwrap_or_else(|| panic!("no warning in {log:?}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("danger_accept_invalid_certs"), "{warning}");
    assert!(warning.contains(tls.url.trim_end_matches('/')), "{warning}");
    assert!(!log.contains(&m.secret_key), "the secret key was logged");

    // Verified nothing, and so reaches the server.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        store.list_buckets().await.unwrap();
    });

    // Verification on: no such warning.
    let (_, quiet) = logs_of(|| MinioStorage::new(&minio_config(None, false)));
    assert!(!quiet.contains("verification is OFF"), "{quiet}");
}
