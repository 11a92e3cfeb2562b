//! The object-storage suites against the local environment's MinIO
//! (`cargo xtask env up`) through the s3 and minio backends, the key rules
//! checked against what MinIO itself does, and what the S3 backend does when
//! the network or the server misbehaves: timeouts, dropped uploads.
//! Needs the `s3` and `minio` features (declared in Cargo.toml, so this
//! target is never built without them).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{minio_host, minio_s3_config as s3_config};
use futures::StreamExt;
use kubepkg_storage_api::config::{
    LocalConfig, MinioConfig, MultipartConfig, S3Config, StorageConfig, connect,
};
use kubepkg_storage_api::object::s3::S3Storage;
use kubepkg_storage_api::object::{ObjectStorage, PutOptions};
use kubepkg_util::ErrorKind;

fn multipart_5mib() -> MultipartConfig {
    MultipartConfig {
        threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        max_concurrent_parts: 4,
    }
}

#[tokio::test]
async fn s3_backend_against_minio() {
    let m = kubepkg_testenv::minio();
    let cfg = StorageConfig::S3(S3Config {
        multipart: multipart_5mib(),
        ..s3_config(&m.endpoint)
    });
    let store = connect(&cfg).unwrap();
    assert_eq!(store.backend(), "s3");
    common::object_suite(store.clone(), true).await;
    common::object_bad_input(store).await;
}

#[tokio::test]
async fn minio_backend() {
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

/// The same good and bad keys get the same answers from memory, local and
/// MinIO.
#[tokio::test]
async fn every_backend_gives_every_key_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let m = kubepkg_testenv::minio();
    let backends: Vec<Arc<dyn ObjectStorage>> = vec![
        connect(&StorageConfig::Memory).unwrap(),
        connect(&StorageConfig::Local(LocalConfig {
            root: dir.path().to_path_buf(),
        }))
        .unwrap(),
        connect(&StorageConfig::S3(s3_config(&m.endpoint))).unwrap(),
    ];
    let mut outcomes = Vec::new();
    for b in &backends {
        outcomes.push((b.backend(), common::key_conformance(b.as_ref()).await));
    }
    for (name, o) in &outcomes[1..] {
        assert_eq!(o, &outcomes[0].1, "{name} differs from memory");
    }
}

/// The key rules are MinIO's: sent as they are (bypassing the checks), the
/// keys `validate` refuses are refused or renamed by MinIO itself (control
/// characters other than NUL, and blank keys the SDK cannot send, are
/// refused on purpose), and the good ones are stored under their own name.
#[tokio::test]
async fn the_key_rules_are_what_minio_does() {
    let m = kubepkg_testenv::minio();
    let s3 = S3Storage::new(&S3Config {
        max_attempts: 1,
        ..s3_config(&m.endpoint)
    })
    .unwrap();
    let raw = s3.client();
    let bucket = kubepkg_testenv::unique_name("truth");
    s3.create_bucket(&bucket).await.unwrap();
    let put = |key: String| {
        let raw = raw.clone();
        let bucket = bucket.clone();
        async move {
            raw.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(Bytes::from_static(b"x").into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    e.raw_response()
                        .map(|r| r.status().as_u16())
                        .unwrap_or_default()
                })
        }
    };
    let k = |n: usize| "k".repeat(n);
    // Refused by MinIO (400) as they are.
    for key in [
        "a//b".to_owned(),
        "a/b//".to_owned(),
        "a/./b".to_owned(),
        "a/../b".to_owned(),
        "..".to_owned(),
        " .. ".to_owned(),
        "a/ ./b".to_owned(),
        "nul\0x".to_owned(),
        format!("seg256/{}", k(256)),
        format!("{}/{}", k(255), k(769)),
    ] {
        assert_eq!(put(key.clone()).await, Err(400), "MinIO stored {key:?}");
        assert!(
            common::bad_keys().contains(&key) || key == "a/../b",
            "{key:?} is in the refused list"
        );
    }
    // A leading '/' is dropped: "/abs" would overwrite "abs".
    put("/abs".to_owned()).await.unwrap();
    let listed = |prefix: &'static str| {
        let raw = raw.clone();
        let bucket = bucket.clone();
        async move {
            let out = raw
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(prefix)
                .send()
                .await
                .unwrap();
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("").await, vec!["abs"]);
    // An object ending in '/' is an object like any other.
    put("marker/".to_owned()).await.unwrap();
    put("marker/inside".to_owned()).await.unwrap();
    assert_eq!(listed("marker").await, vec!["marker/", "marker/inside"]);
    // MinIO's own quirk, the same whatever the client: an object `parent`
    // hides `parent/child` from listings (both can be read).
    put("parent".to_owned()).await.unwrap();
    put("parent/child".to_owned()).await.unwrap();
    assert_eq!(listed("parent").await, vec!["parent"]);
    assert_eq!(s3.get_object(&bucket, "parent/child").await.unwrap(), "x");
    // The good keys are stored and listed under their own names.
    let good = common::good_keys();
    for key in &good {
        put(key.clone()).await.unwrap();
    }
    let mut all = Vec::new();
    let mut pages = s3.list_objects(&bucket, &Default::default());
    while let Some(p) = pages.next().await {
        all.extend(p.unwrap().objects.into_iter().map(|o| o.key));
    }
    for key in &good {
        assert!(all.contains(key), "{key:?} listed as itself");
    }
    let mut delete: Vec<String> = all;
    delete.push("parent/child".to_owned());
    s3.delete_objects(&bucket, &delete).await.unwrap();
    s3.delete_bucket(&bucket).await.unwrap();
}

/// A TCP listener that accepts connections and never answers; they are kept
/// open for as long as the listener lives.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (format!("http://{addr}"), task)
}

/// `op` fails with `Timeout` in about `bound` (and certainly not never).
async fn times_out<T: std::fmt::Debug>(
    what: &str,
    bound: Duration,
    op: impl std::future::Future<Output = kubepkg_storage_api::Result<T>>,
) {
    let started = Instant::now();
    let r = tokio::time::timeout(bound + Duration::from_secs(10), op)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {:?}", started.elapsed()));
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Timeout, "{what}: {e}");
    assert!(
        started.elapsed() < bound + Duration::from_secs(5),
        "{what}: took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (endpoint, _server) = silent_server().await;
    let base = S3Config {
        max_attempts: 1,
        ..s3_config(&endpoint)
    };
    // The attempt timeout alone bounds every request...
    let attempt_only = S3Storage::new(&S3Config {
        read_timeout_secs: 0,
        attempt_timeout_secs: 1,
        ..base.clone()
    })
    .unwrap();
    times_out(
        "list_buckets (attempt timeout)",
        Duration::from_secs(1),
        attempt_only.list_buckets(),
    )
    .await;
    times_out(
        "put_object (attempt timeout)",
        Duration::from_secs(1),
        attempt_only.put_object("bucket", "key", "body".into(), &PutOptions::default()),
    )
    .await;
    // ...and the read timeout alone bounds what is not an upload.
    let read_only = S3Storage::new(&S3Config {
        read_timeout_secs: 1,
        attempt_timeout_secs: 0,
        ..base.clone()
    })
    .unwrap();
    times_out(
        "get_object (read timeout)",
        Duration::from_secs(1),
        read_only.get_object("bucket", "key"),
    )
    .await;
    // The overall timeout bounds all attempts together.
    let overall = S3Storage::new(&S3Config {
        max_attempts: 10,
        read_timeout_secs: 0,
        attempt_timeout_secs: 0,
        operation_timeout_secs: 2,
        ..base
    })
    .unwrap();
    times_out(
        "head_bucket (operation timeout)",
        Duration::from_secs(2),
        overall.bucket_exists("bucket"),
    )
    .await;
}

#[tokio::test]
async fn a_download_that_stops_midway_times_out() {
    let m = kubepkg_testenv::minio();
    let direct = S3Storage::new(&s3_config(&m.endpoint)).unwrap();
    let bucket = kubepkg_testenv::unique_name("stall");
    direct.create_bucket(&bucket).await.unwrap();
    let body = common::data(4 * 1024 * 1024, 11);
    direct
        .put_object(&bucket, "big.bin", body, &PutOptions::default())
        .await
        .unwrap();
    let relay = common::Relay::start(minio_host(), None).await;
    relay.stall_responses_after(256 * 1024);
    let stalled = S3Storage::new(&S3Config {
        read_timeout_secs: 1,
        max_attempts: 1,
        ..s3_config(&relay.url())
    })
    .unwrap();
    let started = Instant::now();
    let stream = stalled.get_stream(&bucket, "big.bin", None).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.collect())
        .await
        .expect("the read ended");
    let e = read.expect_err("the body never completes");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    direct.delete_object(&bucket, "big.bin").await.unwrap();
    direct.delete_bucket(&bucket).await.unwrap();
}

/// Dropping a multipart upload midway stops its part uploads and aborts it:
/// no upload is left on the server, and nothing is sent after the abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_multipart_upload_is_aborted_and_stops_writing() {
    let m = kubepkg_testenv::minio();
    let direct = S3Storage::new(&s3_config(&m.endpoint)).unwrap();
    let bucket = kubepkg_testenv::unique_name("dropped");
    direct.create_bucket(&bucket).await.unwrap();
    let relay = common::Relay::start(minio_host(), None).await;
    let slow = S3Storage::new(&S3Config {
        multipart: MultipartConfig {
            max_concurrent_parts: 2,
            ..multipart_5mib()
        },
        ..s3_config(&relay.url())
    })
    .unwrap();
    let body = common::data(64 * 1024 * 1024, 5);
    let source = kubepkg_storage_api::object::bytes_stream(body, 1024 * 1024);
    let opts = PutOptions::default();
    let mut upload = Box::pin(slow.put_stream(&bucket, "dropped.bin", source, &opts));
    // Drive the upload until it has sent a part and a half: parts are in
    // flight.
    tokio::select! {
        r = &mut upload => panic!("the upload finished before it could be dropped: {r:?}"),
        _ = common::wait_for(Duration::from_secs(60), async || relay.up() > 8 * 1024 * 1024) => {}
    }
    let open = direct.list_multipart_uploads(&bucket).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    drop(upload);
    drop(slow);
    let aborted = common::wait_for(Duration::from_secs(30), async || {
        direct
            .list_multipart_uploads(&bucket)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    assert!(aborted, "the dropped upload was not aborted");
    let sent_at_abort = relay.up();
    // The part tasks ended before the abort: once the last client of the
    // relay is gone, every connection through it closes, and at most what
    // was already in the sockets went through after the abort.
    let closed = common::wait_for(Duration::from_secs(30), async || relay.open() == 0).await;
    assert!(closed, "{} connections still open", relay.open());
    let after = relay.up() - sent_at_abort;
    assert!(after < 1024 * 1024, "{after} bytes sent after the abort");
    assert!(
        sent_at_abort < 40 * 1024 * 1024,
        "most of the body was never sent: {sent_at_abort}"
    );
    assert_eq!(
        direct
            .head_object(&bucket, "dropped.bin")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    direct.delete_bucket(&bucket).await.unwrap();
}
