//! In-process object store (feature `memory`): for users' own unit tests.
//!
//! Buckets and objects live in a map behind a lock; clones of a
//! [`MemoryStorage`] share the same data. Presigned URLs are `Unsupported`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{
    BucketInfo, ByteRange, ByteStream, ListOptions, ListPage, Listed, ObjectMeta, ObjectStorage,
    ObjectStream, ObjectSummary, Paging, PutOptions, PutResult, check, collect_stream,
    common_prefix, md5_hex, no_bucket, no_key,
};
use crate::error::{Error, Result};
use crate::validate;

#[derive(Debug)]
struct Bucket {
    created: SystemTime,
    objects: BTreeMap<String, Stored>,
}

#[derive(Debug, Clone)]
struct Stored {
    data: Bytes,
    meta: ObjectMeta,
}

type State = Arc<RwLock<BTreeMap<String, Bucket>>>;

/// The in-memory backend.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    state: State,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, BTreeMap<String, Bucket>>> {
        self.state
            .read()
            .map_err(|_| Error::Internal("memory store lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, BTreeMap<String, Bucket>>> {
        self.state
            .write()
            .map_err(|_| Error::Internal("memory store lock poisoned".into()))
    }

    fn store(&self, bucket: &str, key: &str, data: Bytes, opts: &PutOptions) -> Result<PutResult> {
        check(bucket, key)?;
        let metadata = validate::metadata(&opts.metadata)?;
        let etag = md5_hex(&data);
        let size = data.len() as u64;
        let mut state = self.write()?;
        let b = state.get_mut(bucket).ok_or_else(|| no_bucket(bucket))?;
        b.objects.insert(
            key.to_owned(),
            Stored {
                data,
                meta: ObjectMeta {
                    key: key.to_owned(),
                    size,
                    etag: etag.clone(),
                    content_type: opts.content_type.clone(),
                    last_modified: Some(SystemTime::now()),
                    metadata,
                },
            },
        );
        Ok(PutResult {
            etag,
            size,
            parts: 1,
        })
    }

    /// The next page of a listing: keys after `cursor` (the last key
    /// consumed), grouped and cut by `paging`.
    fn list_page(
        &self,
        bucket: &str,
        opts: &ListOptions,
        cursor: &mut Option<String>,
        paging: &mut Paging,
    ) -> Result<Option<ListPage>> {
        use std::ops::Bound;
        let state = self.read()?;
        let b = state.get(bucket).ok_or_else(|| no_bucket(bucket))?;
        let lower = match cursor.clone() {
            Some(c) => Bound::Excluded(c),
            None => Bound::Included(opts.prefix.clone()),
        };
        let mut keys = b.objects.range::<String, _>((lower, Bound::Unbounded));
        paging.page(|| {
            let Some((k, o)) = keys.next() else {
                return Ok(None);
            };
            if !k.starts_with(opts.prefix.as_str()) {
                return Ok(None);
            }
            *cursor = Some(k.clone());
            Ok(Some(match common_prefix(opts, k) {
                Some(cp) => Listed::Prefix(cp),
                None => Listed::Object(ObjectSummary {
                    key: k.clone(),
                    size: o.meta.size,
                    etag: o.meta.etag.clone(),
                    last_modified: o.meta.last_modified,
                }),
            }))
        })
    }

    fn lookup(&self, bucket: &str, key: &str) -> Result<Stored> {
        check(bucket, key)?;
        let state = self.read()?;
        let b = state.get(bucket).ok_or_else(|| no_bucket(bucket))?;
        b.objects
            .get(key)
            .cloned()
            .ok_or_else(|| no_key(bucket, key))
    }
}

#[async_trait]
impl ObjectStorage for MemoryStorage {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        validate::bucket_name(bucket)?;
        let mut state = self.write()?;
        if state.contains_key(bucket) {
            return Err(Error::AlreadyExists(format!("bucket {bucket:?}")));
        }
        state.insert(
            bucket.to_owned(),
            Bucket {
                created: SystemTime::now(),
                objects: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        validate::bucket_name(bucket)?;
        let mut state = self.write()?;
        match state.get(bucket) {
            None => Err(no_bucket(bucket)),
            Some(b) if !b.objects.is_empty() => {
                Err(Error::Conflict(format!("bucket {bucket:?} is not empty")))
            }
            Some(_) => {
                state.remove(bucket);
                Ok(())
            }
        }
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        validate::bucket_name(bucket)?;
        Ok(self.read()?.contains_key(bucket))
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        Ok(self
            .read()?
            .iter()
            .map(|(name, b)| BucketInfo {
                name: name.clone(),
                created: Some(b.created),
            })
            .collect())
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.store(bucket, key, data, opts)
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        check(bucket, key)?;
        validate::metadata(&opts.metadata)?;
        if !self.read()?.contains_key(bucket) {
            return Err(no_bucket(bucket));
        }
        let data = collect_stream(body).await?;
        self.store(bucket, key, data, opts)
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
        let stored = self.lookup(bucket, key)?;
        let body = match range {
            None => stored.data.clone(),
            Some(r) => {
                let (s, e) = r.resolve(stored.meta.size)?;
                stored.data.slice(s as usize..e as usize)
            }
        };
        Ok(ObjectStream {
            meta: stored.meta,
            body: super::bytes_stream(body, 64 * 1024),
        })
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        Ok(self.lookup(bucket, key)?.meta)
    }

    fn list_objects(
        &self,
        bucket: &str,
        opts: &ListOptions,
    ) -> BoxStream<'static, Result<ListPage>> {
        if let Err(e) = validate::bucket_name(bucket).and_then(|()| opts.validate()) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        // Each page is read under the lock from where the previous one
        // ended: nothing beyond one page is copied out of the store.
        let this = self.clone();
        let bucket = bucket.to_owned();
        let opts = opts.clone();
        let state = (None::<String>, Paging::new(opts.page_size));
        futures::stream::unfold(Some(state), move |state| {
            let page = state.and_then(|(mut cursor, mut paging)| {
                let out = this.list_page(&bucket, &opts, &mut cursor, &mut paging);
                match out {
                    Ok(Some(page)) => Some((Ok(page), Some((cursor, paging)))),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), None)),
                }
            });
            futures::future::ready(page)
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
        let src = self.lookup(src_bucket, src_key)?;
        let mut state = self.write()?;
        let b = state
            .get_mut(dst_bucket)
            .ok_or_else(|| no_bucket(dst_bucket))?;
        let mut meta = src.meta;
        meta.key = dst_key.to_owned();
        meta.last_modified = Some(SystemTime::now());
        b.objects.insert(
            dst_key.to_owned(),
            Stored {
                data: src.data,
                meta,
            },
        );
        Ok(())
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        check(bucket, key)?;
        let mut state = self.write()?;
        let b = state.get_mut(bucket).ok_or_else(|| no_bucket(bucket))?;
        b.objects.remove(key);
        Ok(())
    }

    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()> {
        validate::bucket_name(bucket)?;
        for k in keys {
            validate::object_key(k)?;
        }
        let mut state = self.write()?;
        let b = state.get_mut(bucket).ok_or_else(|| no_bucket(bucket))?;
        for k in keys {
            b.objects.remove(k);
        }
        Ok(())
    }

    async fn presign_get(&self, bucket: &str, key: &str, _expires_in: Duration) -> Result<String> {
        check(bucket, key)?;
        Err(Error::Unsupported(
            "the memory backend has no URLs to presign".into(),
        ))
    }

    async fn presign_put(&self, bucket: &str, key: &str, _expires_in: Duration) -> Result<String> {
        check(bucket, key)?;
        Err(Error::Unsupported(
            "the memory backend has no URLs to presign".into(),
        ))
    }
}
