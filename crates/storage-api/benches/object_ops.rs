//! Criterion: per-operation cost of the embedded backends (no server):
//! 4 KiB put and get on `memory` and `local`, and one page of a 1,000-key
//! listing.

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use kubepkg_storage_api::Bytes;
use kubepkg_storage_api::config::{LocalConfig, StorageConfig, connect};
use kubepkg_storage_api::object::{ListOptions, ObjectStorage, PutOptions};
use std::sync::Arc;

fn bench_backend(c: &mut Criterion, name: &str, store: Arc<dyn ObjectStorage>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = Bytes::from(vec![7u8; 4096]);
    rt.block_on(async {
        store.create_bucket("bench").await.expect("bucket");
        for i in 0..1000 {
            store
                .put_object(
                    "bench",
                    &format!("list/{i:04}"),
                    body.clone(),
                    &PutOptions::default(),
                )
                .await
                .expect("put");
        }
    });
    let mut g = c.benchmark_group(format!("object_ops/{name}"));
    g.bench_function("put_4k", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .put_object("bench", "hot", body.clone(), &PutOptions::default())
                .await
                .expect("put")
        })
    });
    g.bench_function("get_4k", |b| {
        b.to_async(&rt)
            .iter(|| async { store.get_object("bench", "hot").await.expect("get") })
    });
    g.bench_function("list_page_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let mut pages = store.list_objects("bench", &ListOptions::prefix("list/"));
            pages
                .next()
                .await
                .expect("page")
                .expect("page")
                .objects
                .len()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_backend(
        c,
        "memory",
        connect(&StorageConfig::Memory).expect("memory"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let local = connect(&StorageConfig::Local(LocalConfig {
        root: dir.path().to_path_buf(),
    }))
    .expect("local");
    bench_backend(c, "local", local);
}

criterion_group!(object_ops, benches);
criterion_main!(object_ops);
