//! Object store in a directory on disk (feature `local`): the embedded
//! default, no server needed.
//!
//! Layout under the root directory: one directory per bucket; inside it, each
//! `/`-separated key segment but the last becomes a directory named
//! `<segment>.d`, and the last segment a file `<segment>.o` with its metadata
//! beside it in `<segment>.m` (JSON). The suffixes keep keys such as `a` and
//! `a/b` — both legal in S3 — from colliding as file and directory. Writes go
//! to `<root>/.tmp` first and are renamed into place, so a reader never sees
//! a half-written object.
//!
//! Keys are validated by [`crate::validate::object_key`] (no absolute keys,
//! no `.` / `..` segments), and a segment may be at most 253 bytes (a file
//! name limit); nothing outside the root is ever touched.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{
    BucketInfo, ByteRange, ByteStream, ListOptions, ListPage, ObjectMeta, ObjectStorage,
    ObjectStream, ObjectSummary, PutOptions, PutResult, check, hex, no_bucket, no_key, paginate,
};
pub use crate::config::LocalConfig;
use crate::error::{Error, Result};
use crate::validate;

const MAX_SEGMENT: usize = 253;
const CHUNK: usize = 256 * 1024;

/// The local-directory backend.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Sidecar {
    etag: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |e| Error::io(context, e)
}

impl LocalStorage {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join(".tmp"))
            .map_err(io(format!("creating {}", root.display())))?;
        Ok(LocalStorage { root })
    }

    /// From a [`LocalConfig`].
    pub fn from_config(config: &LocalConfig) -> Result<Self> {
        Self::new(config.root.clone())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    /// `(data file, metadata file)` of a validated key.
    fn paths(&self, bucket: &str, key: &str) -> Result<(PathBuf, PathBuf)> {
        let mut p = self.bucket_dir(bucket);
        let segs: Vec<&str> = key.split('/').collect();
        for s in &segs {
            if s.len() > MAX_SEGMENT {
                return Err(Error::Invalid(format!(
                    "object key {key:?}: the local backend allows at most {MAX_SEGMENT} bytes between '/'"
                )));
            }
        }
        let (last, dirs) = segs
            .split_last()
            .ok_or_else(|| Error::Invalid("object key must not be empty".into()))?;
        for d in dirs {
            p.push(format!("{d}.d"));
        }
        Ok((p.join(format!("{last}.o")), p.join(format!("{last}.m"))))
    }

    async fn require_bucket(&self, bucket: &str) -> Result<()> {
        match tokio::fs::metadata(self.bucket_dir(bucket)).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(no_bucket(bucket)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_bucket(bucket)),
            Err(e) => Err(Error::io(format!("checking bucket {bucket:?}"), e)),
        }
    }

    fn temp_path(&self) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.root.join(".tmp").join(format!(
            "{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    async fn write_stream(
        &self,
        bucket: &str,
        key: &str,
        mut body: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        use md5::{Digest, Md5};
        check(bucket, key)?;
        let metadata = validate::metadata(&opts.metadata)?;
        let (data_path, meta_path) = self.paths(bucket, key)?;
        self.require_bucket(bucket).await?;
        let tmp = self.temp_path();
        let result: Result<(String, u64)> = async {
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(io("creating a temporary file"))?;
            let mut md5 = Md5::new();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                md5.update(&chunk);
                size += chunk.len() as u64;
                f.write_all(&chunk)
                    .await
                    .map_err(io("writing object data"))?;
            }
            f.flush().await.map_err(io("writing object data"))?;
            f.sync_all().await.map_err(io("syncing object data"))?;
            Ok((hex(&md5.finalize()), size))
        }
        .await;
        let (etag, size) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let sidecar = Sidecar {
            etag: etag.clone(),
            content_type: opts.content_type.clone(),
            metadata,
        };
        let json = serde_json::to_vec(&sidecar)
            .map_err(|e| Error::Internal(format!("encoding object metadata: {e}")))?;
        let tmp_meta = self.temp_path();
        let placed: Result<()> = async {
            tokio::fs::write(&tmp_meta, json)
                .await
                .map_err(io("writing object metadata"))?;
            if let Some(parent) = data_path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io(format!("creating the directory of {key:?}")))?;
            }
            tokio::fs::rename(&tmp, &data_path)
                .await
                .map_err(io(format!("storing {key:?}")))?;
            tokio::fs::rename(&tmp_meta, &meta_path)
                .await
                .map_err(io(format!("storing the metadata of {key:?}")))?;
            Ok(())
        }
        .await;
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&tmp).await;
            let _ = tokio::fs::remove_file(&tmp_meta).await;
            return Err(e);
        }
        Ok(PutResult {
            etag,
            size,
            parts: 1,
        })
    }

    async fn meta(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, PathBuf)> {
        check(bucket, key)?;
        let (data_path, meta_path) = self.paths(bucket, key)?;
        self.require_bucket(bucket).await?;
        let fs_meta = match tokio::fs::metadata(&data_path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(no_key(bucket, key)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(no_key(bucket, key));
            }
            Err(e) => return Err(Error::io(format!("reading {key:?}"), e)),
        };
        let sidecar = match tokio::fs::read(&meta_path).await {
            Ok(b) => serde_json::from_slice::<Sidecar>(&b).unwrap_or_default(),
            Err(_) => Sidecar::default(),
        };
        let etag = if sidecar.etag.is_empty() {
            file_md5(&data_path).await?
        } else {
            sidecar.etag
        };
        Ok((
            ObjectMeta {
                key: key.to_owned(),
                size: fs_meta.len(),
                etag,
                content_type: sidecar.content_type,
                last_modified: fs_meta.modified().ok(),
                metadata: sidecar.metadata,
            },
            data_path,
        ))
    }

    async fn remove_key(&self, bucket: &str, key: &str) -> Result<()> {
        let (data_path, meta_path) = self.paths(bucket, key)?;
        for p in [&data_path, &meta_path] {
            match tokio::fs::remove_file(p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("deleting {key:?}"), e)),
            }
        }
        // Prune now-empty directories up to the bucket.
        let stop = self.bucket_dir(bucket);
        let mut dir = data_path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == stop || !d.starts_with(&stop) {
                break;
            }
            if tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }
}

async fn file_md5(path: &Path) -> Result<String> {
    use md5::{Digest, Md5};
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(io(format!("opening {}", path.display())))?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(hex(&md5.finalize()))
}

/// Walks a bucket directory (blocking), returning every key under `start`
/// (a directory inside the bucket) with `key_prefix` as the key of `start`.
fn walk(start: &Path, key_prefix: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(start) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seg) = name.strip_suffix(".d") {
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &format!("{key_prefix}{seg}/"), out)?;
            }
        } else if let Some(seg) = name.strip_suffix(".o") {
            // Keep the path without its `.o` so the caller can add `.o` / `.m`.
            out.push((format!("{key_prefix}{seg}"), start.join(seg)));
        }
    }
    Ok(())
}

fn list_blocking(bucket_dir: &Path, prefix: &str) -> std::io::Result<Vec<ObjectSummary>> {
    // Start at the deepest directory the prefix fully names.
    let mut start = bucket_dir.to_path_buf();
    let mut key_prefix = String::new();
    if let Some((dirs, _)) = prefix.rsplit_once('/') {
        for d in dirs.split('/') {
            start.push(format!("{d}.d"));
            key_prefix.push_str(d);
            key_prefix.push('/');
        }
    }
    let mut found = Vec::new();
    walk(&start, &key_prefix, &mut found)?;
    let mut out = Vec::new();
    for (key, path) in found {
        if !key.starts_with(prefix) {
            continue;
        }
        let mut data_path = path.clone().into_os_string();
        data_path.push(".o");
        let m = match std::fs::metadata(&data_path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut meta_path = path.into_os_string();
        meta_path.push(".m");
        let etag = std::fs::read(PathBuf::from(meta_path))
            .ok()
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
            .map(|s| s.etag)
            .unwrap_or_default();
        out.push(ObjectSummary {
            key,
            size: m.len(),
            etag,
            last_modified: m.modified().ok(),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[async_trait]
impl ObjectStorage for LocalStorage {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        validate::bucket_name(bucket)?;
        match tokio::fs::create_dir(self.bucket_dir(bucket)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(format!("bucket {bucket:?}")))
            }
            Err(e) => Err(Error::io(format!("creating bucket {bucket:?}"), e)),
        }
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        validate::bucket_name(bucket)?;
        self.require_bucket(bucket).await?;
        let dir = self.bucket_dir(bucket);
        let d2 = dir.clone();
        let keys = tokio::task::spawn_blocking(move || list_blocking(&d2, ""))
            .await
            .map_err(|e| Error::Internal(format!("listing task failed: {e}")))?
            .map_err(io(format!("listing bucket {bucket:?}")))?;
        if !keys.is_empty() {
            return Err(Error::Conflict(format!("bucket {bucket:?} is not empty")));
        }
        tokio::fs::remove_dir_all(&dir)
            .await
            .map_err(io(format!("deleting bucket {bucket:?}")))
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        validate::bucket_name(bucket)?;
        match self.require_bucket(bucket).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == kubepkg_util::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let mut rd = tokio::fs::read_dir(&self.root)
            .await
            .map_err(io("listing buckets"))?;
        let mut out = Vec::new();
        while let Some(entry) = rd.next_entry().await.map_err(io("listing buckets"))? {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate::bucket_name(&name).is_err() {
                continue;
            }
            let meta = entry.metadata().await.map_err(io("listing buckets"))?;
            if meta.is_dir() {
                out.push(BucketInfo {
                    name,
                    created: meta.created().or_else(|_| meta.modified()).ok(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.write_stream(bucket, key, futures::stream::iter([Ok(data)]).boxed(), opts)
            .await
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.write_stream(bucket, key, body, opts).await
    }

    async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectStream> {
        if let Some(r) = &range {
            r.validate()?;
        }
        let (meta, path) = self.meta(bucket, key).await?;
        let (start, end) = match range {
            Some(r) => r.resolve(meta.size)?,
            None => (0, meta.size),
        };
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(io(format!("opening {key:?}")))?;
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .await
                .map_err(io(format!("seeking in {key:?}")))?;
        }
        let key_owned = key.to_owned();
        let body = futures::stream::try_unfold(
            (file, end - start, key_owned),
            |(mut file, left, key)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = left.min(CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(io(format!("reading {key:?}")))?;
                if n == 0 {
                    return Err(Error::Unavailable(format!(
                        "{key:?} was truncated while being read"
                    )));
                }
                buf.truncate(n);
                Ok(Some((Bytes::from(buf), (file, left - n as u64, key))))
            },
        )
        .into_stream()
        .boxed();
        Ok(ObjectStream { meta, body })
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        Ok(self.meta(bucket, key).await?.0)
    }

    fn list_objects(
        &self,
        bucket: &str,
        opts: &ListOptions,
    ) -> BoxStream<'static, Result<ListPage>> {
        let this = self.clone();
        let bucket = bucket.to_owned();
        let opts = opts.clone();
        futures::stream::once(async move {
            validate::bucket_name(&bucket)?;
            opts.validate()?;
            this.require_bucket(&bucket).await?;
            let dir = this.bucket_dir(&bucket);
            let prefix = opts.prefix.clone();
            let sorted = tokio::task::spawn_blocking(move || list_blocking(&dir, &prefix))
                .await
                .map_err(|e| Error::Internal(format!("listing task failed: {e}")))?
                .map_err(io(format!("listing bucket {bucket:?}")))?;
            Ok::<_, Error>(futures::stream::iter(
                paginate(sorted, &opts).into_iter().map(Ok),
            ))
        })
        .try_flatten()
        .boxed()
    }

    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        check(dst_bucket, dst_key)?;
        self.paths(dst_bucket, dst_key)?;
        let src = self.get_stream(src_bucket, src_key, None).await?;
        let opts = PutOptions {
            content_type: src.meta.content_type.clone(),
            metadata: src.meta.metadata.clone(),
        };
        self.write_stream(dst_bucket, dst_key, src.body, &opts)
            .await
            .map(|_| ())
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        check(bucket, key)?;
        self.paths(bucket, key)?;
        self.require_bucket(bucket).await?;
        self.remove_key(bucket, key).await
    }

    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()> {
        validate::bucket_name(bucket)?;
        for k in keys {
            validate::object_key(k)?;
            self.paths(bucket, k)?;
        }
        self.require_bucket(bucket).await?;
        for k in keys {
            self.remove_key(bucket, k).await?;
        }
        Ok(())
    }

    async fn presign_get(&self, bucket: &str, key: &str, _expires_in: Duration) -> Result<String> {
        check(bucket, key)?;
        Err(Error::Unsupported(
            "the local backend has no URLs to presign".into(),
        ))
    }

    async fn presign_put(&self, bucket: &str, key: &str, _expires_in: Duration) -> Result<String> {
        check(bucket, key)?;
        Err(Error::Unsupported(
            "the local backend has no URLs to presign".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_inside_the_bucket() {
        let s = LocalStorage {
            root: PathBuf::from("/r"),
        };
        let (d, m) = s.paths("b", "a/b/c.txt").unwrap();
        assert_eq!(d, PathBuf::from("/r/b/a.d/b.d/c.txt.o"));
        assert_eq!(m, PathBuf::from("/r/b/a.d/b.d/c.txt.m"));
        let (d, _) = s.paths("b", "dir/").unwrap();
        assert_eq!(d, PathBuf::from("/r/b/dir.d/.o"));
        assert!(s.paths("b", &"x".repeat(254)).is_err());
    }
}
