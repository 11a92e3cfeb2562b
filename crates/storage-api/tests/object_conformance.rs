//! The object-storage conformance suite on the embedded backends (memory,
//! local). The same suites run against MinIO through the s3 and minio
//! backends in `object_s3.rs` (features `s3`, `minio`).

mod common;

use std::sync::Arc;

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

#[tokio::test]
async fn memory_and_local_give_every_key_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let local = connect(&StorageConfig::Local(
        kubepkg_storage_api::config::LocalConfig {
            root: dir.path().to_path_buf(),
        },
    ))
    .unwrap();
    let memory = connect(&StorageConfig::Memory).unwrap();
    let a = common::key_conformance(memory.as_ref()).await;
    let b = common::key_conformance(local.as_ref()).await;
    assert_eq!(a, b);
}

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

    /// The lazy directory walk lists exactly what the in-memory map lists,
    /// page for page, whatever the prefix, delimiter and page size.
    #[tokio::test]
    async fn local_lists_like_memory() {
        use futures::TryStreamExt;
        use kubepkg_storage_api::object::{ListOptions, ListPage};
        let dir = tempfile::tempdir().unwrap();
        let local = store(&dir);
        let memory = connect(&StorageConfig::Memory).unwrap();
        let u255 = "u".repeat(255);
        let u254 = "u".repeat(254);
        let mut keys: Vec<String> = [
            "a",
            "a-c",
            "a/b",
            "a/b/c",
            "a/b-c",
            "a/b/c/d/e",
            "a.b",
            "a0",
            "ab/c",
            "a b/c",
            "é/x",
            "z",
            "m/n/o",
            "m/n-o/p",
            "m-n/o",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        keys.push(format!("long/{u255}/x"));
        keys.push(format!("long/{u255}"));
        keys.push(format!("long/{u254}"));
        keys.push(format!("long/{u254}z/y"));
        for s in [&local, &memory] {
            s.create_bucket("walk").await.unwrap();
            for k in &keys {
                s.put_object("walk", k, k.clone().into(), &Default::default())
                    .await
                    .unwrap();
            }
        }
        let long_prefix = format!("long/{u254}");
        for prefix in [
            "",
            "a",
            "a/",
            "a/b",
            "m/",
            "long/",
            long_prefix.as_str(),
            "zz",
        ] {
            for delimiter in [None, Some("/"), Some("-"), Some("/c"), Some("b")] {
                for page_size in [1, 2, 3, 1000] {
                    let mut opts = ListOptions::prefix(prefix).with_page_size(page_size);
                    opts.delimiter = delimiter.map(str::to_owned);
                    let strip = |pages: Vec<ListPage>| {
                        pages
                            .into_iter()
                            .map(|p| {
                                let keys: Vec<String> =
                                    p.objects.into_iter().map(|o| o.key).collect();
                                (keys, p.common_prefixes)
                            })
                            .collect::<Vec<_>>()
                    };
                    let want: Vec<ListPage> = memory
                        .list_objects("walk", &opts)
                        .try_collect()
                        .await
                        .unwrap();
                    let got: Vec<ListPage> = local
                        .list_objects("walk", &opts)
                        .try_collect()
                        .await
                        .unwrap();
                    assert_eq!(strip(got), strip(want), "{opts:?}");
                }
            }
        }
        // The whole listing is in byte order of the keys.
        let all: Vec<ListPage> = local
            .list_objects("walk", &ListOptions::default())
            .try_collect()
            .await
            .unwrap();
        let listed: Vec<String> = all
            .into_iter()
            .flat_map(|p| p.objects.into_iter().map(|o| o.key))
            .collect();
        keys.sort();
        assert_eq!(listed, keys);
        for k in &keys {
            local.delete_object("walk", k).await.unwrap();
        }
        local.delete_bucket("walk").await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the temporary directory is left"
        );
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
