//! Object storage: the [`ObjectStorage`] trait, its data types, and the
//! backends (each behind a cargo feature).
//!
//! Every backend validates bucket names and object keys before doing anything
//! with the same rules (MinIO's, see [`crate::validate::object_key`]), so a
//! key gets the same answer everywhere; reports ETags as the lowercase hex MD5 of the
//! content for single-part uploads (S3's rule; multipart ETags are
//! `md5-of-part-md5s-N`), and returns the same [`Error`] kinds for the same
//! situations: a missing bucket or object is `NotFound`, creating an
//! existing bucket is `AlreadyExists`, deleting a non-empty bucket is
//! `Conflict`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};

pub mod download;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "minio")]
pub mod minio;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "s3")]
mod tls;

pub use download::{DownloadOptions, DownloadResult, Verified};

/// A stream of body chunks. Used for uploads of unknown length and for
/// downloads, so large objects are never held in memory whole.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// A bucket as listed by [`ObjectStorage::list_buckets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// The bucket name.
    pub name: String,
    /// When it was created, if the backend says.
    pub created: Option<SystemTime>,
}

/// What [`ObjectStorage::head_object`] returns about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Size in bytes of the whole object.
    pub size: u64,
    /// The entity tag without quotes: hex MD5 of the content for single-part
    /// uploads, `hex-N` for multipart ones.
    pub etag: String,
    /// `Content-Type`, if one was stored.
    pub content_type: Option<String>,
    /// When the object was last written.
    pub last_modified: Option<SystemTime>,
    /// User metadata (`x-amz-meta-*` on S3), keys in lowercase.
    pub metadata: BTreeMap<String, String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The entity tag without quotes.
    pub etag: String,
    /// When the object was last written.
    pub last_modified: Option<SystemTime>,
}

/// One page of [`ObjectStorage::list_objects`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects in this page, in key order.
    pub objects: Vec<ObjectSummary>,
    /// "Directories": distinct key prefixes up to and including the delimiter
    /// (only when a delimiter was given).
    pub common_prefixes: Vec<String>,
}

/// Options of [`ObjectStorage::list_objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys that contain this after the prefix into
    /// [`ListPage::common_prefixes`] (usually `"/"`).
    pub delimiter: Option<String>,
    /// Entries (objects + common prefixes) per page, 1–1000.
    pub page_size: usize,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            prefix: String::new(),
            delimiter: None,
            page_size: 1000,
        }
    }
}

impl ListOptions {
    /// Keys under `prefix`, no delimiter.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        ListOptions {
            prefix: prefix.into(),
            ..Default::default()
        }
    }

    /// Sets the delimiter.
    pub fn with_delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into());
        self
    }

    /// Sets the page size.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        crate::validate::key_prefix(&self.prefix)?;
        if self.page_size == 0 || self.page_size > 1000 {
            return Err(Error::Invalid(format!(
                "page size {} is not within 1..=1000",
                self.page_size
            )));
        }
        if self.delimiter.as_deref() == Some("") {
            return Err(Error::Invalid("delimiter must not be empty".into()));
        }
        Ok(())
    }
}

/// Options of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type` to store.
    pub content_type: Option<String>,
    /// User metadata; keys are ASCII letters, digits, `-`, `_` (stored
    /// lowercase), values printable ASCII.
    pub metadata: BTreeMap<String, String>,
}

impl PutOptions {
    /// Sets the content type.
    pub fn content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }

    /// Adds one metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The entity tag without quotes.
    pub etag: String,
    /// Bytes stored.
    pub size: u64,
    /// Number of parts (1 for a single-part upload).
    pub parts: usize,
}

/// A byte range of an object: `start..end` (end exclusive) or `start..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte; `None` means to the end of the object.
    pub end: Option<u64>,
}

impl ByteRange {
    /// `start..end`, end exclusive.
    pub fn new(start: u64, end: u64) -> Self {
        ByteRange {
            start,
            end: Some(end),
        }
    }

    /// From `start` to the end of the object.
    pub fn from(start: u64) -> Self {
        ByteRange { start, end: None }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.end {
            Some(end) if end <= self.start => Err(Error::Invalid(format!(
                "empty byte range {}..{end}",
                self.start
            ))),
            _ => Ok(()),
        }
    }

    /// Clamps to an object of `size` bytes: the `start..end` actually served.
    /// A range starting at or past the end is `Invalid` (HTTP 416).
    pub(crate) fn resolve(&self, size: u64) -> Result<(u64, u64)> {
        self.validate()?;
        if self.start >= size {
            return Err(Error::Invalid(format!(
                "range start {} is past the end of a {size}-byte object",
                self.start
            )));
        }
        let end = self.end.map_or(size, |e| e.min(size));
        Ok((self.start, end))
    }

    /// The HTTP `Range` header value.
    pub fn to_header(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{}", self.start, end.saturating_sub(1)),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// A download: the object's metadata and its body as a stream.
pub struct ObjectStream {
    /// The object's metadata (`size` is the whole object's size even for a
    /// range request).
    pub meta: ObjectMeta,
    /// The requested bytes.
    pub body: ByteStream,
}

impl fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStream")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl ObjectStream {
    /// Reads the whole body into memory.
    pub async fn collect(self) -> Result<Bytes> {
        collect_stream(self.body).await
    }
}

/// Multipart upload knobs of the remote backends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultipartConfig {
    /// Uploads larger than this many bytes go multipart (default 16 MiB).
    pub threshold: u64,
    /// Size of each part but the last (default 16 MiB; S3 needs ≥ 5 MiB).
    pub part_size: u64,
    /// Parts uploaded at the same time per upload (default 4).
    pub max_concurrent_parts: usize,
}

impl Default for MultipartConfig {
    fn default() -> Self {
        MultipartConfig {
            threshold: 16 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
            max_concurrent_parts: 4,
        }
    }
}

impl MultipartConfig {
    /// Checks the S3 limits: parts of 5 MiB–5 GiB, threshold between the
    /// part size and 5 GiB (the largest single-request upload; a stream is
    /// buffered up to the threshold), at least one concurrent part.
    pub fn validate(&self) -> Result<()> {
        const MIB: u64 = 1024 * 1024;
        const MAX: u64 = 5 * 1024 * MIB;
        if self.part_size < 5 * MIB || self.part_size > MAX {
            return Err(Error::Invalid(format!(
                "multipart part_size {} is not within 5 MiB..=5 GiB",
                self.part_size
            )));
        }
        if self.threshold < self.part_size || self.threshold > MAX {
            return Err(Error::Invalid(format!(
                "multipart threshold {} is not within part_size..=5 GiB",
                self.threshold
            )));
        }
        if self.max_concurrent_parts == 0 {
            return Err(Error::Invalid(
                "multipart max_concurrent_parts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One object store. Object-safe; use it as `Arc<dyn ObjectStorage>`.
///
/// Bucket names follow the S3 rules and keys are checked by
/// [`crate::validate::object_key`] before anything is sent; a failed check
/// is [`Error::Invalid`] and changes nothing.
#[async_trait]
pub trait ObjectStorage: Send + Sync + fmt::Debug {
    /// The backend's name: `"memory"`, `"local"`, `"s3"` or `"minio"`.
    fn backend(&self) -> &'static str;

    /// Creates a bucket; `AlreadyExists` if it exists.
    async fn create_bucket(&self, bucket: &str) -> Result<()>;

    /// Deletes an empty bucket; `NotFound` if missing, `Conflict` if not
    /// empty.
    async fn delete_bucket(&self, bucket: &str) -> Result<()>;

    /// Whether a bucket exists.
    async fn bucket_exists(&self, bucket: &str) -> Result<bool>;

    /// All buckets, sorted by name.
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>>;

    /// Stores `data` under `key` (multipart above the backend's threshold).
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult>;

    /// Stores a stream of unknown length under `key`. Remote backends buffer
    /// at most `threshold` bytes to decide between a single request and a
    /// multipart upload; a failed multipart upload is aborted.
    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult>;

    /// Downloads an object or a range of it as a stream.
    async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectStream>;

    /// Downloads a whole object into memory.
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Bytes> {
        self.get_stream(bucket, key, None).await?.collect().await
    }

    /// Downloads a byte range into memory. A range past the end of the
    /// object is clamped; one starting past the end is `Invalid`.
    async fn get_range(&self, bucket: &str, key: &str, range: ByteRange) -> Result<Bytes> {
        range.validate()?;
        self.get_stream(bucket, key, Some(range))
            .await?
            .collect()
            .await
    }

    /// Downloads an object into the file `dest`, replacing it only once
    /// the whole object has arrived and was checked (see
    /// [`DownloadOptions::verify_md5`]); until then it is written to a
    /// temporary file beside `dest`, which a failed download removes.
    ///
    /// `dest`'s directory must exist: otherwise, as for options out of
    /// their limits, the error is `Invalid` and nothing is requested. A
    /// missing object is `NotFound` and creates no file. The S3 and MinIO
    /// backends fetch objects above [`DownloadOptions::parallel_threshold`]
    /// as parallel ranged GETs bound to the ETag they saw first, so an
    /// object replaced meanwhile fails with [`Error::Changed`] rather than
    /// mixing two versions; this default reads one stream from
    /// [`get_stream`](Self::get_stream) and writes it from a blocking
    /// thread.
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        opts: &DownloadOptions,
    ) -> Result<DownloadResult> {
        download::check_request(bucket, key, dest, opts)?;
        let stream = self.get_stream(bucket, key, None).await?;
        download::single_stream(stream, dest, opts.verify_md5).await
    }

    /// Size, ETag, content type, modification time and user metadata.
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta>;

    /// Lists keys as a stream of pages. Errors (including a bad prefix or a
    /// missing bucket) arrive as the stream's first item.
    fn list_objects(
        &self,
        bucket: &str,
        opts: &ListOptions,
    ) -> BoxStream<'static, Result<ListPage>>;

    /// Copies an object (server side where the backend can).
    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()>;

    /// Deletes an object; deleting a missing key succeeds (S3 semantics), a
    /// missing bucket is `NotFound`.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()>;

    /// Deletes many objects (batched by 1000 on S3). Every key is validated
    /// before anything is deleted.
    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()>;

    /// A URL anyone can GET the object with until it expires.
    /// `Unsupported` on backends without an HTTP endpoint.
    async fn presign_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String>;

    /// A URL anyone can PUT the object with until it expires.
    /// `Unsupported` on backends without an HTTP endpoint.
    async fn presign_put(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String>;
}

/// Reads a whole [`ByteStream`] into one buffer.
pub async fn collect_stream(body: ByteStream) -> Result<Bytes> {
    let chunks: Vec<Bytes> = body.try_collect().await?;
    if chunks.len() == 1 {
        return Ok(chunks.into_iter().next().unwrap_or_default());
    }
    let len = chunks.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(len);
    for c in chunks {
        out.extend_from_slice(&c);
    }
    Ok(Bytes::from(out))
}

/// A [`ByteStream`] of one buffer, split in chunks of `chunk` bytes.
pub fn bytes_stream(data: Bytes, chunk: usize) -> ByteStream {
    let chunk = chunk.max(1);
    let mut parts = Vec::new();
    let mut rest = data;
    while rest.len() > chunk {
        parts.push(Ok(rest.split_to(chunk)));
    }
    if !rest.is_empty() {
        parts.push(Ok(rest));
    }
    futures::stream::iter(parts).boxed()
}

/// Lowercase hex MD5 of `data`.
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex(&Md5::digest(data))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// One listing entry of an embedded backend, before paging.
#[cfg(any(feature = "memory", feature = "local"))]
#[derive(Debug)]
pub(crate) enum Listed {
    Object(ObjectSummary),
    Prefix(String),
}

/// The common prefix `key` lists under (S3's delimiter grouping): the list
/// prefix plus the rest of `key` up to and including the first delimiter
/// after it. Also right for a key prefix that every key below it shares,
/// once it contains the delimiter.
#[cfg(any(feature = "memory", feature = "local"))]
pub(crate) fn common_prefix(opts: &ListOptions, key: &str) -> Option<String> {
    let d = opts.delimiter.as_deref()?;
    let rest = key.strip_prefix(opts.prefix.as_str())?;
    let pos = rest.find(d)?;
    Some(format!("{}{}", opts.prefix, &rest[..pos + d.len()]))
}

/// Cuts entries arriving in key order into pages of `page_size`, one page at
/// a time, holding at most one entry beyond the page. A common prefix is
/// listed once however many keys (or pages) it covers; the first page is
/// returned even when empty, and no empty page follows a full one.
#[cfg(any(feature = "memory", feature = "local"))]
#[derive(Debug)]
pub(crate) struct Paging {
    size: usize,
    last_prefix: Option<String>,
    peeked: Option<Listed>,
    done: bool,
}

#[cfg(any(feature = "memory", feature = "local"))]
impl Paging {
    pub(crate) fn new(page_size: usize) -> Self {
        Paging {
            size: page_size.max(1),
            last_prefix: None,
            peeked: None,
            done: false,
        }
    }

    /// The next page from `next`, or `None` after the last one.
    pub(crate) fn page<E>(
        &mut self,
        mut next: impl FnMut() -> std::result::Result<Option<Listed>, E>,
    ) -> std::result::Result<Option<ListPage>, E> {
        if self.done {
            return Ok(None);
        }
        let mut page = ListPage::default();
        let mut n = 0;
        loop {
            let item = match self.peeked.take() {
                Some(item) => Some(item),
                None => self.next_distinct(&mut next)?,
            };
            let Some(item) = item else {
                self.done = true;
                return Ok(Some(page));
            };
            if n == self.size {
                self.peeked = Some(item);
                return Ok(Some(page));
            }
            match item {
                Listed::Object(o) => page.objects.push(o),
                Listed::Prefix(p) => page.common_prefixes.push(p),
            }
            n += 1;
        }
    }

    fn next_distinct<E>(
        &mut self,
        next: &mut impl FnMut() -> std::result::Result<Option<Listed>, E>,
    ) -> std::result::Result<Option<Listed>, E> {
        loop {
            match next()? {
                Some(Listed::Prefix(p)) => {
                    if self.last_prefix.as_deref() == Some(p.as_str()) {
                        continue;
                    }
                    self.last_prefix = Some(p.clone());
                    return Ok(Some(Listed::Prefix(p)));
                }
                other => return Ok(other),
            }
        }
    }
}

pub(crate) fn no_bucket(bucket: &str) -> Error {
    Error::NotFound(format!("bucket {bucket:?} does not exist"))
}

pub(crate) fn no_key(bucket: &str, key: &str) -> Error {
    Error::NotFound(format!(
        "object {key:?} does not exist in bucket {bucket:?}"
    ))
}

/// Checks a `bucket` + `key` pair.
pub(crate) fn check(bucket: &str, key: &str) -> Result<()> {
    crate::validate::bucket_name(bucket)?;
    crate::validate::object_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: &str) -> ObjectSummary {
        ObjectSummary {
            key: key.into(),
            size: 1,
            etag: String::new(),
            last_modified: None,
        }
    }

    #[cfg(feature = "memory")]
    #[test]
    fn pages_group_by_delimiter() {
        let keys = ["a/1", "a/2", "b", "c/x/y", "d"];
        let opts = ListOptions::default().with_delimiter("/").with_page_size(2);
        let mut it = keys.iter().map(|k| match common_prefix(&opts, k) {
            Some(cp) => Listed::Prefix(cp),
            None => Listed::Object(s(k)),
        });
        let mut paging = Paging::new(opts.page_size);
        let mut pages = Vec::new();
        while let Some(p) = paging.page(|| Ok::<_, ()>(it.next())).unwrap() {
            pages.push(p);
        }
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].common_prefixes, vec!["a/"]);
        assert_eq!(pages[0].objects[0].key, "b");
        assert_eq!(pages[1].common_prefixes, vec!["c/"]);
        assert_eq!(pages[1].objects[0].key, "d");
        let mut empty = Paging::new(3);
        assert_eq!(
            empty.page(|| Ok::<_, ()>(None)).unwrap(),
            Some(ListPage::default())
        );
        assert_eq!(empty.page(|| Ok::<_, ()>(None)).unwrap(), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(ByteRange::new(0, 10).to_header(), "bytes=0-9");
        assert_eq!(ByteRange::from(5).to_header(), "bytes=5-");
        assert_eq!(ByteRange::new(2, 100).resolve(10).unwrap(), (2, 10));
        assert!(ByteRange::new(3, 3).validate().is_err());
        assert!(ByteRange::from(10).resolve(10).is_err());
    }

    #[test]
    fn md5_is_hex() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn multipart_limits() {
        assert!(MultipartConfig::default().validate().is_ok());
        let small = MultipartConfig {
            part_size: 1024,
            ..Default::default()
        };
        assert!(small.validate().is_err());
        let huge = MultipartConfig {
            threshold: u64::MAX,
            ..Default::default()
        };
        assert!(huge.validate().is_err());
    }
}
