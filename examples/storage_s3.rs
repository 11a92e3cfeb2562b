//! Object storage on MinIO (or any S3 endpoint), configured from the
//! environment: `KUBEPKG_S3_ENDPOINT`, `KUBEPKG_S3_ACCESS_KEY`,
//! `KUBEPKG_S3_SECRET_KEY`, optionally `KUBEPKG_S3_REGION`. Without them it
//! uses the local environment's MinIO (`cargo xtask env up`).
//!
//! ```text
//! KUBEPKG_S3_ENDPOINT=http://127.0.0.1:9000 KUBEPKG_S3_ACCESS_KEY=... KUBEPKG_S3_SECRET_KEY=... \
//!   cargo run --example storage_s3
//! ```

use std::time::Duration;

use kubepkg::storage::config::{MinioConfig, S3Config, StorageConfig, connect};
use kubepkg::storage::object::{PutOptions, bytes_stream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = if std::env::var_os("KUBEPKG_S3_ENDPOINT").is_some() {
        StorageConfig::S3(S3Config {
            path_style: true,
            ..Default::default()
        })
        .with_env()?
    } else {
        let m = kubepkg_testenv::minio();
        StorageConfig::Minio(MinioConfig {
            endpoint: m.endpoint.clone(),
            access_key: m.access_key.clone(),
            secret_key: m.secret_key.clone().into(),
            region: m.region.clone(),
            ..Default::default()
        })
    };
    println!("config: {config:?}"); // the secret key prints as <redacted>
    let store = connect(&config)?;

    let bucket = format!("example-{}", std::process::id());
    store.create_bucket(&bucket).await?;

    // 40 MiB from a stream of unknown length: uploaded as a multipart upload
    // (16 MiB parts, several in flight), each part checked with Content-MD5.
    let body = kubepkg::storage::Bytes::from(vec![7u8; 40 * 1024 * 1024]);
    let put = store
        .put_stream(
            &bucket,
            "big.bin",
            bytes_stream(body, 1024 * 1024),
            &PutOptions::default(),
        )
        .await?;
    println!("uploaded big.bin in {} parts, etag {}", put.parts, put.etag);

    let url = store
        .presign_get(&bucket, "big.bin", Duration::from_secs(600))
        .await?;
    println!("presigned GET for 10 minutes: {url}");

    let head = store.head_object(&bucket, "big.bin").await?;
    println!(
        "head: {} bytes, last modified {:?}",
        head.size, head.last_modified
    );

    store.delete_object(&bucket, "big.bin").await?;
    store.delete_bucket(&bucket).await?;
    println!("cleaned up");
    Ok(())
}
