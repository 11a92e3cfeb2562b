//! Object store in a directory on disk (feature `local`): the embedded
//! default, no server needed.
//!
//! Layout under the root directory: one directory per bucket; inside it, each
//! `/`-separated key segment but the last becomes a directory named
//! `<segment>.d`, and the last segment a file `<segment>.o` with its metadata
//! beside it in `<segment>.m` (JSON). The suffixes keep keys such as `a` and
//! `a/b` — both legal in S3 and on MinIO — from colliding as file and
//! directory. A segment too long for a suffix (254 or 255 bytes) is stored
//! as `<cut>.<hash>.lo` / `.lm` / `.ld`, its full name in `<cut>.<hash>.ln`.
//! Writes go to `<root>/.tmp` first and are renamed into place, so a reader
//! never sees a half-written object.
//!
//! Keys follow [`crate::validate::object_key`], the rules of every backend
//! (no absolute keys, no empty, `.` or `..` segments, segments of at most 255
//! bytes); nothing outside the root is ever touched. A key ending in `/` is
//! the file `.o` of its directory.
//!
//! Listings walk the bucket lazily, in key order: a page at a time, holding
//! one directory's entries per level of the walk, never the whole bucket. A
//! "directory" that a delimiter folds into one common prefix is not
//! descended into.

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
    BucketInfo, ByteRange, ByteStream, ListOptions, ListPage, Listed, ObjectMeta, ObjectStorage,
    ObjectStream, ObjectSummary, Paging, PutOptions, PutResult, check, common_prefix, hex,
    no_bucket, no_key,
};
pub use crate::config::LocalConfig;
use crate::error::{Error, Result};
use crate::validate;

/// Longest segment stored under its own name plus a two-byte suffix.
const SHORT_SEGMENT: usize = 253;
/// How much of a long segment its file names keep, before the hash.
const LONG_CUT: usize = 200;
const CHUNK: usize = 256 * 1024;

/// The file-name stem of a segment stored under a hashed name, or `None`
/// when it is short enough for its own name.
fn long_stem(seg: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    if seg.len() <= SHORT_SEGMENT {
        return None;
    }
    let mut cut = LONG_CUT;
    while !seg.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = hex(&Sha256::digest(seg.as_bytes()));
    Some(format!("{}.{}", &seg[..cut], &digest[..32]))
}

/// File names of one segment: `(object, metadata, directory)`.
fn names(seg: &str) -> (String, String, String) {
    match long_stem(seg) {
        None => (format!("{seg}.o"), format!("{seg}.m"), format!("{seg}.d")),
        Some(stem) => (
            format!("{stem}.lo"),
            format!("{stem}.lm"),
            format!("{stem}.ld"),
        ),
    }
}

/// What a directory entry of a bucket is.
enum EntryName {
    /// An object's data file; the segment, or the stem of a long one.
    Object(String, bool),
    /// A directory; the segment, or the stem of a long one.
    Dir(String, bool),
    /// Metadata, name files, strays: not listed.
    Other,
}

fn parse_name(name: &str) -> EntryName {
    if let Some(stem) = name.strip_suffix(".lo") {
        EntryName::Object(stem.to_owned(), true)
    } else if let Some(stem) = name.strip_suffix(".ld") {
        EntryName::Dir(stem.to_owned(), true)
    } else if let Some(seg) = name.strip_suffix(".o") {
        EntryName::Object(seg.to_owned(), false)
    } else if let Some(seg) = name.strip_suffix(".d") {
        EntryName::Dir(seg.to_owned(), false)
    } else {
        EntryName::Other
    }
}

/// The full name of a long segment, from its name file in `dir`.
fn read_long_name(dir: &Path, stem: &str) -> std::io::Result<Option<String>> {
    match std::fs::read(dir.join(format!("{stem}.ln"))) {
        Ok(b) => Ok(String::from_utf8(b).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an I/O error means "there is no such object / directory here":
/// missing, or a file where a directory was expected (or the reverse).
fn is_absent(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::NotFound | K::NotADirectory | K::IsADirectory)
}

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

    /// `(data file, metadata file)` of a validated key. A key ending in `/`
    /// is the file `.o` in its directory.
    fn paths(&self, bucket: &str, key: &str) -> Option<(PathBuf, PathBuf)> {
        let mut p = self.bucket_dir(bucket);
        let segs: Vec<&str> = key.split('/').collect();
        let (last, dirs) = segs.split_last()?;
        for d in dirs {
            p.push(names(d).2);
        }
        let (data, meta, _) = names(last);
        Some((p.join(data), p.join(meta)))
    }

    /// Writes the name file of every long segment of `key` (after the
    /// object is in place, so a concurrent delete never removes the name of
    /// something that exists).
    async fn name_long_segments(&self, bucket: &str, key: &str) -> Result<()> {
        let mut dir = self.bucket_dir(bucket);
        for seg in key.split('/') {
            if let Some(stem) = long_stem(seg) {
                let tmp = self.temp_path();
                let placed = async {
                    tokio::fs::write(&tmp, seg.as_bytes()).await?;
                    tokio::fs::rename(&tmp, dir.join(format!("{stem}.ln"))).await
                }
                .await;
                if let Err(e) = placed {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(Error::io(format!("naming a segment of {key:?}"), e));
                }
            }
            dir.push(names(seg).2);
        }
        Ok(())
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
        let (data_path, meta_path) = self
            .paths(bucket, key)
            .ok_or_else(|| Error::Invalid(format!("object key {key:?} cannot be stored")))?;
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
            // A concurrent delete may prune the (then empty) directory
            // between creating it and renaming into it: try once more.
            let mut tries = 0;
            loop {
                tries += 1;
                if let Some(parent) = data_path.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(io(format!("creating the directory of {key:?}")))?;
                }
                match tokio::fs::rename(&tmp, &data_path).await {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => {}
                    Err(e) => return Err(Error::io(format!("storing {key:?}"), e)),
                }
            }
            tokio::fs::rename(&tmp_meta, &meta_path)
                .await
                .map_err(io(format!("storing the metadata of {key:?}")))?;
            self.name_long_segments(bucket, key).await
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
        self.require_bucket(bucket).await?;
        let Some((data_path, meta_path)) = self.paths(bucket, key) else {
            return Err(no_key(bucket, key));
        };
        let fs_meta = match tokio::fs::metadata(&data_path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(no_key(bucket, key)),
            Err(e) if is_absent(&e) => return Err(no_key(bucket, key)),
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
        let Some((data_path, meta_path)) = self.paths(bucket, key) else {
            return Ok(());
        };
        for p in [&data_path, &meta_path] {
            match tokio::fs::remove_file(p).await {
                Ok(()) => {}
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(Error::io(format!("deleting {key:?}"), e)),
            }
        }
        // Prune now-empty directories up to the bucket, and the names of
        // long segments nothing is stored under any more.
        let stop = self.bucket_dir(bucket);
        let mut segs: Vec<&str> = key.split('/').collect();
        let mut dir = data_path.parent().map(Path::to_path_buf);
        while let (Some(d), Some(seg)) = (dir, segs.pop()) {
            if let Some(stem) = long_stem(seg) {
                let gone = |suffix: &str| {
                    let p = d.join(format!("{stem}.{suffix}"));
                    async move { tokio::fs::symlink_metadata(p).await.is_err() }
                };
                if gone("lo").await && gone("ld").await {
                    let _ = tokio::fs::remove_file(d.join(format!("{stem}.ln"))).await;
                }
            }
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

/// One entry of a directory being walked.
struct Entry {
    /// Its name in key order: the segment, plus `/` for a directory.
    name: String,
    /// The data file of an object, the directory itself otherwise.
    path: PathBuf,
    /// The metadata file of an object.
    meta: Option<PathBuf>,
}

/// One directory of the walk, its remaining entries in key order.
struct Frame {
    key_prefix: String,
    entries: std::vec::IntoIter<Entry>,
}

/// Reads one directory: the entries whose keys can start with `prefix`,
/// sorted in key order. `None` when the directory is gone.
fn read_frame(dir: &Path, key_prefix: String, prefix: &str) -> std::io::Result<Option<Frame>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    for entry in rd {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let (stem, long, is_dir) = match parse_name(file_name) {
            EntryName::Object(stem, long) => (stem, long, false),
            EntryName::Dir(stem, long) => (stem, long, true),
            EntryName::Other => continue,
        };
        let seg = if long {
            // Not named yet (being written) or stray: not listed.
            match read_long_name(dir, &stem)? {
                Some(full) => full,
                None => continue,
            }
        } else {
            stem.clone()
        };
        let name = if is_dir { format!("{seg}/") } else { seg };
        let key = format!("{key_prefix}{name}");
        let wanted = if is_dir {
            key.starts_with(prefix) || prefix.starts_with(key.as_str())
        } else {
            key.starts_with(prefix)
        };
        if !wanted {
            continue;
        }
        let path = entry.path();
        let meta = (!is_dir).then(|| dir.join(format!("{stem}.{}", if long { "lm" } else { "m" })));
        entries.push(Entry { name, path, meta });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(Frame {
        key_prefix,
        entries: entries.into_iter(),
    }))
}

/// Whether a directory of a bucket holds at least one object, at any depth.
fn holds_objects(dir: &Path) -> std::io::Result<bool> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            match name.to_str().map(parse_name) {
                Some(EntryName::Object(..)) => return Ok(true),
                Some(EntryName::Dir(..)) => pending.push(entry.path()),
                _ => {}
            }
        }
    }
    Ok(false)
}

/// A lazy walk of one bucket in key order (blocking file system calls).
struct Walker {
    opts: ListOptions,
    stack: Vec<Frame>,
}

impl Walker {
    /// Starts at the deepest directory the prefix fully names.
    fn new(bucket_dir: &Path, opts: ListOptions) -> std::io::Result<Self> {
        let mut start = bucket_dir.to_path_buf();
        let mut key_prefix = String::new();
        if let Some((dirs, _)) = opts.prefix.rsplit_once('/') {
            for d in dirs.split('/') {
                start.push(names(d).2);
                key_prefix.push_str(d);
                key_prefix.push('/');
            }
        }
        let stack = read_frame(&start, key_prefix, &opts.prefix)?
            .into_iter()
            .collect();
        Ok(Walker { opts, stack })
    }

    /// The next object or common prefix in key order.
    fn next(&mut self) -> std::io::Result<Option<Listed>> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(entry) = frame.entries.next() else {
                self.stack.pop();
                continue;
            };
            let key = format!("{}{}", frame.key_prefix, entry.name);
            let Some(meta_path) = entry.meta else {
                // A directory: folded into one common prefix when the
                // delimiter falls inside its name, walked otherwise.
                if key.len() >= self.opts.prefix.len()
                    && let Some(cp) = common_prefix(&self.opts, &key)
                {
                    if holds_objects(&entry.path)? {
                        return Ok(Some(Listed::Prefix(cp)));
                    }
                    continue;
                }
                if let Some(f) = read_frame(&entry.path, key, &self.opts.prefix)? {
                    self.stack.push(f);
                }
                continue;
            };
            if let Some(cp) = common_prefix(&self.opts, &key) {
                return Ok(Some(Listed::Prefix(cp)));
            }
            let m = match std::fs::metadata(&entry.path) {
                Ok(m) => m,
                // Deleted since the directory was read.
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(e),
            };
            let etag = std::fs::read(&meta_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
                .map(|s| s.etag)
                .unwrap_or_default();
            return Ok(Some(Listed::Object(ObjectSummary {
                key,
                size: m.len(),
                etag,
                last_modified: m.modified().ok(),
            })));
        }
    }
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
        let full = tokio::task::spawn_blocking(move || holds_objects(&d2))
            .await
            .map_err(|e| Error::Internal(format!("listing task failed: {e}")))?
            .map_err(io(format!("listing bucket {bucket:?}")))?;
        if full {
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
        if let Err(e) = validate::bucket_name(bucket).and_then(|()| opts.validate()) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let this = self.clone();
        let bucket = bucket.to_owned();
        let opts = opts.clone();
        // State: None before the first page (the walk starts then), and
        // after an error.
        let first: Option<(Option<Walker>, Paging)> = Some((None, Paging::new(opts.page_size)));
        futures::stream::unfold(first, move |state| {
            let this = this.clone();
            let bucket = bucket.clone();
            let opts = opts.clone();
            async move {
                let (walker, mut paging) = state?;
                if walker.is_none()
                    && let Err(e) = this.require_bucket(&bucket).await
                {
                    return Some((Err(e), None));
                }
                let dir = this.bucket_dir(&bucket);
                let step = tokio::task::spawn_blocking(move || {
                    let mut walker = match walker {
                        Some(w) => w,
                        None => Walker::new(&dir, opts)?,
                    };
                    let page = paging.page(|| walker.next())?;
                    Ok::<_, std::io::Error>((page, walker, paging))
                })
                .await;
                match step {
                    Ok(Ok((Some(page), walker, paging))) => {
                        Some((Ok(page), Some((Some(walker), paging))))
                    }
                    Ok(Ok((None, _, _))) => None,
                    Ok(Err(e)) => Some((
                        Err(Error::io(format!("listing bucket {bucket:?}"), e)),
                        None,
                    )),
                    Err(e) => Some((
                        Err(Error::Internal(format!("listing task failed: {e}"))),
                        None,
                    )),
                }
            }
        })
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
        self.require_bucket(bucket).await?;
        self.remove_key(bucket, key).await
    }

    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()> {
        validate::bucket_name(bucket)?;
        for k in keys {
            validate::object_key(k)?;
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
        let long = "x".repeat(255);
        let (d, _) = s.paths("b", &format!("{long}/{long}")).unwrap();
        let name = d.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= 255 && name.ends_with(".lo"), "{name}");
        let dir = d.parent().unwrap().file_name().unwrap().to_str().unwrap();
        assert!(dir.len() <= 255 && dir.ends_with(".ld"), "{dir}");
        // Short names never look like long ones, whatever the segment.
        for seg in ["l", "x.l", ".l", "a.lo"] {
            let (o, m, d) = names(seg);
            assert!(matches!(parse_name(&o), EntryName::Object(s, false) if s == seg));
            assert!(matches!(parse_name(&d), EntryName::Dir(s, false) if s == seg));
            assert!(matches!(parse_name(&m), EntryName::Other));
        }
    }
}
