//! Object storage on local disk: no server needed.
//!
//! ```text
//! cargo run --example storage_local [ROOT_DIR]
//! ```

use futures::{StreamExt, TryStreamExt};
use kubepkg::storage::config::{LocalConfig, StorageConfig, connect};
use kubepkg::storage::object::{ByteRange, ListOptions, PutOptions, bytes_stream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("kubepkg-example-{}", std::process::id()))
        });
    let store = connect(&StorageConfig::Local(LocalConfig { root: root.clone() }))?;
    println!("local object store in {}", root.display());

    let bucket = "example-bucket";
    if !store.bucket_exists(bucket).await? {
        store.create_bucket(bucket).await?;
    }
    let opts = PutOptions::default()
        .content_type("text/plain")
        .meta("owner", "examples");
    store
        .put_object(
            bucket,
            "notes/hello.txt",
            "hello, local disk\n".into(),
            &opts,
        )
        .await?;

    // A body of unknown length, streamed in 64 KiB chunks.
    let body = kubepkg::storage::Bytes::from(vec![b'x'; 1_000_000]);
    let put = store
        .put_stream(
            bucket,
            "blobs/one-megabyte",
            bytes_stream(body, 64 * 1024),
            &PutOptions::default(),
        )
        .await?;
    println!(
        "stored blobs/one-megabyte: {} bytes, etag {}",
        put.size, put.etag
    );

    let head = store.head_object(bucket, "notes/hello.txt").await?;
    println!(
        "notes/hello.txt: {} bytes, {:?}, metadata {:?}",
        head.size, head.content_type, head.metadata
    );
    let part = store
        .get_range(bucket, "notes/hello.txt", ByteRange::new(0, 5))
        .await?;
    println!("first five bytes: {:?}", String::from_utf8_lossy(&part));

    let mut pages = store.list_objects(bucket, &ListOptions::default().with_delimiter("/"));
    while let Some(page) = pages.next().await {
        let page = page?;
        println!(
            "page: prefixes {:?}, objects {:?}",
            page.common_prefixes,
            page.objects.iter().map(|o| &o.key).collect::<Vec<_>>()
        );
    }

    // Stream a download without holding it in memory.
    let download = store.get_stream(bucket, "blobs/one-megabyte", None).await?;
    let total = download
        .body
        .try_fold(0usize, |n, chunk| async move { Ok(n + chunk.len()) })
        .await?;
    println!("streamed {total} bytes back");

    store
        .delete_objects(
            bucket,
            &[
                "notes/hello.txt".to_owned(),
                "blobs/one-megabyte".to_owned(),
            ],
        )
        .await?;
    store.delete_bucket(bucket).await?;
    println!("cleaned up");
    Ok(())
}
