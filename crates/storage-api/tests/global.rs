//! The process-wide default instances and the named registry (own test
//! binary: globals are per process).

use kubepkg_storage_api::config::{QueueConfig, StorageConfig};
use kubepkg_storage_api::global;
use kubepkg_util::ErrorKind;

#[tokio::test]
async fn defaults_are_set_once_and_named_instances_are_kept() {
    let store = global::init(&StorageConfig::Memory).unwrap();
    assert_eq!(store.backend(), "memory");
    store.create_bucket("shared").await.unwrap();
    // get() returns the same instance.
    assert!(
        global::get()
            .unwrap()
            .bucket_exists("shared")
            .await
            .unwrap()
    );
    assert_eq!(
        global::init(&StorageConfig::Memory).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );

    let q = global::queue().unwrap();
    assert_eq!(q.backend(), "memory", "lazily built default queue");
    assert_eq!(
        global::init_queue(&QueueConfig::Memory).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );

    let archive = global::register("archive", &StorageConfig::Memory).unwrap();
    archive.create_bucket("cold").await.unwrap();
    assert!(
        global::named("archive")
            .unwrap()
            .bucket_exists("cold")
            .await
            .unwrap()
    );
    assert!(!global::get().unwrap().bucket_exists("cold").await.unwrap());
    assert_eq!(
        global::named("nope").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(global::unregister("archive").is_some());
    assert_eq!(
        global::named("archive").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        global::register("", &StorageConfig::Memory)
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );

    global::register_queue("events", &QueueConfig::Memory).unwrap();
    assert_eq!(global::named_queue("events").unwrap().backend(), "memory");
}

#[cfg(not(feature = "amqp"))]
#[test]
fn backends_not_compiled_in_are_unsupported() {
    let e = kubepkg_storage_api::connect_queue(&QueueConfig::Amqp(Default::default())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}
