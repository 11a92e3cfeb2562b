//! `ObjectStorage::download` against the local environment's MinIO
//! (`cargo xtask env up`) and on the embedded backends: the file equals the
//! object whichever way it was read (one stream, parallel ranges, MD5 or
//! multipart ETag), an object replaced midway fails with `Error::Changed`,
//! a missing object is `NotFound` and leaves no file, a destination in a
//! missing directory is refused before anything is requested.
//! Needs the `minio`, `memory` and `local` features (declared in
//! Cargo.toml).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::minio_host;
use kubepkg_storage_api::Error;
use kubepkg_storage_api::config::{MultipartConfig, S3Config};
use kubepkg_storage_api::object::local::LocalStorage;
use kubepkg_storage_api::object::memory::MemoryStorage;
use kubepkg_storage_api::object::s3::S3Storage;
use kubepkg_storage_api::object::{DownloadOptions, ObjectStorage, PutOptions, Verified};
use kubepkg_util::ErrorKind;

const MIB: usize = 1024 * 1024;

/// The environment's MinIO at `endpoint`, with 5 MiB parts.
fn s3_config(endpoint: &str) -> S3Config {
    S3Config {
        multipart: MultipartConfig {
            threshold: 5 * MIB as u64,
            part_size: 5 * MIB as u64,
            max_concurrent_parts: 4,
        },
        ..common::minio_s3_config(endpoint)
    }
}

fn minio() -> S3Storage {
    S3Storage::new(&s3_config(&kubepkg_testenv::minio().endpoint)).unwrap()
}

/// Small ranges so that a few MiB take several requests.
fn parallel(parts: usize) -> DownloadOptions {
    DownloadOptions {
        parallel_threshold: MIB as u64,
        part_size: 3 * MIB as u64,
        max_concurrent_parts: parts,
        ..Default::default()
    }
}

/// The names in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

async fn put(store: &dyn ObjectStorage, bucket: &str, key: &str, data: &[u8]) -> String {
    store
        .put_object(bucket, key, data.to_vec().into(), &PutOptions::default())
        .await
        .unwrap()
        .etag
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_the_object_however_it_is_read() {
    let s3 = minio();
    let bucket = kubepkg_testenv::unique_name("down");
    s3.create_bucket(&bucket).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");

    // Multipart (5 MiB parts, ETag "-5"), read as 3 MiB ranges, 3 in flight:
    // ranges that do not line up with the parts, the size checked.
    let multi = common::data(22 * MIB + 17, 1);
    let etag = put(&s3, &bucket, "multi", &multi).await;
    assert!(etag.ends_with("-5"), "{etag}");
    let r = s3
        .download(&bucket, "multi", &dest, &parallel(3))
        .await
        .unwrap();
    assert_eq!(r.size, multi.len() as u64);
    assert_eq!(r.requests, 8);
    assert_eq!(r.verified, Verified::Size);
    assert_eq!(r.meta.etag, etag);
    assert!(std::fs::read(&dest).unwrap() == multi, "content differs");

    // A single-part object above the threshold has an MD5 ETag: one
    // stream, hashed; with the MD5 check off, parallel ranges. Each
    // replaces the file that is there.
    let single = common::data(4 * MIB + 5, 2);
    put(&s3, &bucket, "single", &single).await;
    let r = s3
        .download(&bucket, "single", &dest, &parallel(4))
        .await
        .unwrap();
    assert_eq!((r.requests, r.verified), (1, Verified::Md5));
    assert!(std::fs::read(&dest).unwrap() == single, "content differs");
    let unchecked = DownloadOptions {
        verify_md5: false,
        ..parallel(4)
    };
    let r = s3
        .download(&bucket, "single", &dest, &unchecked)
        .await
        .unwrap();
    assert_eq!((r.requests, r.verified), (2, Verified::Size));
    assert!(std::fs::read(&dest).unwrap() == single, "content differs");

    // Below the threshold, and empty.
    let small = common::data(1000, 3);
    put(&s3, &bucket, "small", &small).await;
    let r = s3
        .download(&bucket, "small", &dest, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!((r.requests, r.verified), (1, Verified::Md5));
    assert_eq!(std::fs::read(&dest).unwrap(), small);
    put(&s3, &bucket, "empty", b"").await;
    let r = s3
        .download(&bucket, "empty", &dest, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(r.size, 0);
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 0);
    // Only the destination is left: no temporary file.
    assert_eq!(entries(dir.path()), vec!["out.bin".to_owned()]);

    // The MinIO backend is the same code.
    let m = kubepkg_testenv::minio();
    let minio = kubepkg_storage_api::object::minio::MinioStorage::new(
        &kubepkg_storage_api::config::MinioConfig {
            endpoint: m.endpoint.clone(),
            access_key: m.access_key.clone(),
            secret_key: m.secret_key.clone().into(),
            region: m.region.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let r = minio
        .download(&bucket, "multi", &dest, &parallel(2))
        .await
        .unwrap();
    assert_eq!(r.verified, Verified::Size);
    assert!(std::fs::read(&dest).unwrap() == multi, "content differs");

    s3.delete_objects(
        &bucket,
        &["multi", "single", "small", "empty"].map(String::from),
    )
    .await
    .unwrap();
    s3.delete_bucket(&bucket).await.unwrap();
}

/// The embedded backends use the trait's default: one stream, hashed.
#[tokio::test]
async fn embedded_backends_download_through_the_default() {
    let root = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<dyn ObjectStorage>> = vec![
        Arc::new(MemoryStorage::new()),
        Arc::new(LocalStorage::new(root.path().join("store")).unwrap()),
    ];
    for store in stores {
        let what = store.backend();
        store.create_bucket("bucket").await.unwrap();
        let data = common::data(3 * MIB + 1, 4);
        put(store.as_ref(), "bucket", "k", &data).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("k.bin");
        let r = store
            .download("bucket", "k", &dest, &DownloadOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (r.size, r.verified),
            (data.len() as u64, Verified::Md5),
            "{what}"
        );
        assert!(
            std::fs::read(&dest).unwrap() == data,
            "{what}: content differs"
        );
        let e = store
            .download("bucket", "missing", &dest, &DownloadOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{what}: {e}");
        assert_eq!(entries(dir.path()), vec!["k.bin".to_owned()], "{what}");
        let e = store
            .download(
                "bucket",
                "k",
                &dir.path().join("no-such-dir/k.bin"),
                &DownloadOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{what}: {e}");
    }
}

/// An object replaced while its ranges are being read: the next ranged
/// GET is refused (If-Match), the download fails with `Error::Changed`,
/// and neither the destination nor a temporary file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_midway_fails_the_download() {
    let direct = minio();
    let bucket = kubepkg_testenv::unique_name("changed");
    direct.create_bucket(&bucket).await.unwrap();
    let first = common::data(24 * MIB, 5);
    put(&direct, &bucket, "obj", &first).await;

    // Through a relay that sends 4 MiB/s: one range (3 MiB) at a time, the
    // whole object takes about 6 s.
    let relay = common::Relay::start(minio_host(), None).await;
    relay.limit_down(4 * MIB as u64);
    let slow = S3Storage::new(&s3_config(&relay.url())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("obj.bin");
    let download = {
        let (bucket, dest) = (bucket.clone(), dest.clone());
        tokio::spawn(async move { slow.download(&bucket, "obj", &dest, &parallel(1)).await })
    };
    let midway = common::wait_for(Duration::from_secs(30), async || {
        relay.down() > 3 * MIB as u64
    })
    .await;
    assert!(midway, "the download did not start");
    // A small replacement: stored at once, long before the last range.
    put(&direct, &bucket, "obj", &common::data(1000, 6)).await;
    let e = download.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::Changed(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    direct.delete_object(&bucket, "obj").await.unwrap();
    direct.delete_bucket(&bucket).await.unwrap();
}

#[tokio::test]
async fn a_missing_object_or_directory_leaves_no_file() {
    let s3 = minio();
    let bucket = kubepkg_testenv::unique_name("missing");
    s3.create_bucket(&bucket).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    let e = s3
        .download(&bucket, "nothing-here", &dest, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = s3
        .download(
            &kubepkg_testenv::unique_name("nobucket"),
            "k",
            &dest,
            &DownloadOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // A destination whose directory does not exist: refused by name before
    // any request (the object does not even need to exist).
    let missing_dir = dir.path().join("not-created");
    let e = s3
        .download(
            &bucket,
            "nothing-here",
            &missing_dir.join("x.bin"),
            &DownloadOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("does not exist") && msg.contains("not-created"),
        "{msg}"
    );
    assert!(!missing_dir.exists());
    // A directory as the destination, and options out of their limits.
    let e = s3
        .download(&bucket, "k", dir.path(), &DownloadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    let e = s3
        .download(
            &bucket,
            "k",
            &dest,
            &DownloadOptions {
                max_concurrent_parts: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    s3.delete_bucket(&bucket).await.unwrap();
}
