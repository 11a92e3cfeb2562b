//! Downloads into a file: [`ObjectStorage::download`](super::ObjectStorage::download),
//! its options and what it reports, and the pieces every backend's version
//! shares.
//!
//! The body goes to a temporary file beside the destination
//! (`.<name>.<unique>.kubepkg-part`), written with plain positional writes
//! from a blocking thread (never on the async runtime): the chunks as they
//! arrive when they are large, gathered into blocks of 1 MiB otherwise; and
//! is renamed onto the destination only once it is complete and checked.
//! A failed download removes its temporary file and leaves the destination
//! as it was. The MD5 of a single-stream download is computed on a thread
//! of its own from the same blocks, beside the writes rather than in front
//! of them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{ByteStream, ObjectMeta, ObjectStream, hex};
use crate::error::{Error, Result};

const MIB: u64 = 1024 * 1024;

/// Bytes gathered before one positional write.
pub(crate) const BLOCK: usize = MIB as usize;

/// Chunks at least this large are written without gathering.
const DIRECT: usize = 128 * 1024;

/// Blocks queued for the writer (and for the hasher) at most.
const QUEUE: usize = 16;

/// Options of [`ObjectStorage::download`](super::ObjectStorage::download).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Objects larger than this many bytes are fetched as ranged GETs in
    /// parallel by the backends that can (S3, MinIO); smaller ones in one
    /// request (default 64 MiB).
    pub parallel_threshold: u64,
    /// Bytes per ranged GET (default 16 MiB; 1 MiB–5 GiB).
    pub part_size: u64,
    /// Ranged GETs in flight at once (default 4; 1–64).
    pub max_concurrent_parts: usize,
    /// Check the content against an ETag that is an MD5 (default true).
    ///
    /// An object stored by a single upload has the MD5 of its content as
    /// its ETag: the download computes the MD5 (on its own thread) and a
    /// mismatch is [`Error::Integrity`]. Such an object is read in one
    /// stream, since the hash must see the bytes in order and is slower
    /// than parallel requests. A multipart ETag (`<md5 of the part
    /// MD5s>-<parts>`) says nothing about the content without the part
    /// boundaries, so for those only the size is checked, and every ranged
    /// GET is bound to the ETag seen first (`If-Match`). Turn it off for
    /// servers whose ETags are not MD5s (SSE-KMS, SSE-C); the S3 backend's
    /// `verify_etag = false` turns it off too.
    pub verify_md5: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            parallel_threshold: 64 * MIB,
            part_size: 16 * MIB,
            max_concurrent_parts: 4,
            verify_md5: true,
        }
    }
}

impl DownloadOptions {
    /// Checks the limits: parts of 1 MiB–5 GiB, 1–64 parts in flight.
    pub fn validate(&self) -> Result<()> {
        if self.part_size < MIB || self.part_size > 5 * 1024 * MIB {
            return Err(Error::Invalid(format!(
                "download part_size {} is not within 1 MiB..=5 GiB",
                self.part_size
            )));
        }
        if !(1..=64).contains(&self.max_concurrent_parts) {
            return Err(Error::Invalid(format!(
                "download max_concurrent_parts {} is not within 1..=64",
                self.max_concurrent_parts
            )));
        }
        Ok(())
    }
}

/// What a download checked about the content it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The MD5 of the content is the object's ETag.
    Md5,
    /// The size is the object's size; the ETag is not an MD5 of the
    /// content (multipart, or a server that says so), or the check was
    /// turned off.
    Size,
}

/// What [`ObjectStorage::download`](super::ObjectStorage::download) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadResult {
    /// The object's metadata, as the first answer gave it.
    pub meta: ObjectMeta,
    /// Bytes written (the object's size).
    pub size: u64,
    /// GET requests the body took (1 for a single stream).
    pub requests: usize,
    /// What was checked.
    pub verified: Verified,
}

/// Whether `etag` is a plain lowercase-hex MD5 (a single-part upload's).
pub(crate) fn is_md5_etag(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("file task failed: {e}")))?
}

/// Checks everything a download is given, before any request.
pub(crate) fn check_request(
    bucket: &str,
    key: &str,
    dest: &Path,
    opts: &DownloadOptions,
) -> Result<()> {
    super::check(bucket, key)?;
    opts.validate()?;
    check_destination(dest)
}

/// Checks a destination before anything is sent: it needs a file name and
/// an existing directory, and must not be a directory itself.
pub(crate) fn check_destination(dest: &Path) -> Result<()> {
    let shown = dest.display();
    let Some(name) = dest.file_name() else {
        return Err(Error::Invalid(format!(
            "download destination {shown} has no file name"
        )));
    };
    if name.is_empty() {
        return Err(Error::Invalid(format!(
            "download destination {shown} has no file name"
        )));
    }
    let dir = parent_dir(dest);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "download destination {shown}: {} is not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "download destination {shown}: directory {} does not exist",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(Error::io(
                format!("download destination {shown}: reading {}", dir.display()),
                e,
            ));
        }
    }
    if std::fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Invalid(format!(
            "download destination {shown} is a directory"
        )));
    }
    Ok(())
}

fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary file a download writes, renamed onto the destination by
/// [`PartFile::commit`]; removed when dropped uncommitted.
pub(crate) struct PartFile {
    temp: PathBuf,
    dest: PathBuf,
    file: Arc<File>,
    committed: bool,
}

impl PartFile {
    /// Creates the temporary file beside `dest` (checked with
    /// [`check_destination`]), sized to `len`.
    pub(crate) async fn create(dest: &Path, len: u64) -> Result<PartFile> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let temp = parent_dir(dest).join(format!(".{name}.{unique}.kubepkg-part"));
        let dest = dest.to_path_buf();
        let path = temp.clone();
        let file = blocking(move || {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
            if len > 0
                && let Err(e) = f.set_len(len)
            {
                drop(f);
                std::fs::remove_file(&path).ok();
                return Err(Error::io(format!("sizing {}", path.display()), e));
            }
            Ok(f)
        })
        .await?;
        Ok(PartFile {
            temp,
            dest,
            file: Arc::new(file),
            committed: false,
        })
    }

    /// The open file, for the writer.
    pub(crate) fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Moves the complete file onto the destination.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let (temp, dest) = (self.temp.clone(), self.dest.clone());
        blocking(move || {
            std::fs::rename(&temp, &dest).map_err(|e| {
                Error::io(
                    format!("moving {} to {}", temp.display(), dest.display()),
                    e,
                )
            })
        })
        .await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort, and quick: one unlink.
            std::fs::remove_file(&self.temp).ok();
        }
    }
}

/// The blocking thread that writes blocks at their offsets, and optionally
/// the one that hashes them in the order they come.
pub(crate) struct Writer {
    tx: mpsc::Sender<(u64, Bytes)>,
    md5_tx: Option<mpsc::Sender<Bytes>>,
    write: tokio::task::JoinHandle<Result<u64>>,
    md5: Option<tokio::task::JoinHandle<String>>,
}

impl Writer {
    /// Starts the writer for `file` (shown as `what` in errors); with
    /// `md5`, also a hasher fed every block in the order they are sent
    /// (only meaningful for a single stream).
    pub(crate) fn start(file: Arc<File>, what: String, md5: bool) -> Writer {
        let (tx, mut rx) = mpsc::channel::<(u64, Bytes)>(QUEUE);
        let write = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut written = 0u64;
            while let Some((at, block)) = rx.blocking_recv() {
                file.write_all_at(&block, at)
                    .map_err(|e| Error::io(format!("writing {what}"), e))?;
                written += block.len() as u64;
            }
            Ok(written)
        });
        let (md5_tx, md5) = if md5 {
            let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
            let task = tokio::task::spawn_blocking(move || {
                use md5::{Digest, Md5};
                let mut h = Md5::new();
                while let Some(block) = rx.blocking_recv() {
                    h.update(&block);
                }
                hex(&h.finalize())
            });
            (Some(tx), Some(task))
        } else {
            (None, None)
        };
        Writer {
            tx,
            md5_tx,
            write,
            md5,
        }
    }

    /// A sink for the bytes from `at` on.
    pub(crate) fn sink(&self, at: u64) -> BlockSink {
        BlockSink {
            tx: self.tx.clone(),
            md5_tx: self.md5_tx.clone(),
            at,
            buf: BytesMut::new(),
        }
    }

    /// Waits for every block to be written; the bytes written and the MD5
    /// (when hashing).
    pub(crate) async fn finish(self) -> Result<(u64, Option<String>)> {
        let Writer {
            tx,
            md5_tx,
            write,
            md5,
        } = self;
        drop(tx);
        drop(md5_tx);
        let written = write
            .await
            .map_err(|e| Error::Internal(format!("writer task failed: {e}")))??;
        let md5 = match md5 {
            Some(task) => Some(
                task.await
                    .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?,
            ),
            None => None,
        };
        Ok((written, md5))
    }

    /// Stops, for a download that failed: the writer's own error when it
    /// had one (a full disk explains more than the transfer that stopped
    /// because of it), else `other`.
    pub(crate) async fn fail(self, other: Error) -> Error {
        match self.finish().await {
            Err(e) => e,
            Ok(_) => other,
        }
    }
}

/// Gathers chunks into blocks of about [`BLOCK`] bytes and hands them to
/// the writer at consecutive offsets.
pub(crate) struct BlockSink {
    tx: mpsc::Sender<(u64, Bytes)>,
    md5_tx: Option<mpsc::Sender<Bytes>>,
    at: u64,
    buf: BytesMut,
}

impl BlockSink {
    /// The offset the next byte goes to.
    pub(crate) fn position(&self) -> u64 {
        self.at + self.buf.len() as u64
    }

    /// Adds one chunk. A chunk of [`DIRECT`] bytes or more (what a busy
    /// connection yields) is written as it is, without a copy; smaller ones
    /// are gathered.
    pub(crate) async fn push(&mut self, chunk: Bytes) -> Result<()> {
        if self.buf.is_empty() && chunk.len() >= DIRECT {
            return self.send(chunk).await;
        }
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= BLOCK {
            let block = self.buf.split().freeze();
            self.send(block).await?;
        }
        Ok(())
    }

    /// Hands over what is gathered.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let block = self.buf.split().freeze();
        self.send(block).await
    }

    async fn send(&mut self, block: Bytes) -> Result<()> {
        let at = self.at;
        self.at += block.len() as u64;
        if let Some(md5) = &self.md5_tx {
            md5.send(block.clone()).await.map_err(|_| stopped())?;
        }
        self.tx.send((at, block)).await.map_err(|_| stopped())
    }

    /// Drains `body` into the file (then flushes); the bytes it had.
    pub(crate) async fn drain(&mut self, mut body: ByteStream) -> Result<u64> {
        let start = self.position();
        while let Some(chunk) = body.next().await {
            self.push(chunk?).await?;
        }
        self.flush().await?;
        Ok(self.position() - start)
    }
}

fn stopped() -> Error {
    Error::Internal("the file writer stopped".into())
}

/// Downloads one stream (the whole object) into `dest`, which
/// [`check_destination`] accepted: the default of every backend, and the
/// S3 backend's way for objects up to the parallel threshold or with an
/// MD5 ETag to check.
pub(crate) async fn single_stream(
    stream: ObjectStream,
    dest: &Path,
    verify_md5: bool,
) -> Result<DownloadResult> {
    let ObjectStream { meta, body } = stream;
    let what = format!("the download of {:?} to {}", meta.key, dest.display());
    let hash = verify_md5 && is_md5_etag(&meta.etag);
    let part = PartFile::create(dest, meta.size).await?;
    let writer = Writer::start(part.file(), what.clone(), hash);
    let mut sink = writer.sink(0);
    let got = match sink.drain(body).await {
        Ok(n) => n,
        Err(e) => {
            drop(sink);
            return Err(writer.fail(e).await);
        }
    };
    drop(sink);
    let (written, md5) = writer.finish().await?;
    if got != meta.size || written != meta.size {
        return Err(Error::Integrity(format!(
            "{what}: {got} bytes arrived and {written} were written for a {}-byte object",
            meta.size
        )));
    }
    let verified = match md5 {
        Some(md5) if !md5.eq_ignore_ascii_case(&meta.etag) => {
            return Err(Error::Integrity(format!(
                "{what}: the content's MD5 {md5} is not the ETag {}",
                meta.etag
            )));
        }
        Some(_) => Verified::Md5,
        None => Verified::Size,
    };
    part.commit().await?;
    Ok(DownloadResult {
        meta,
        size: written,
        requests: 1,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_limits() {
        assert!(DownloadOptions::default().validate().is_ok());
        let tiny = DownloadOptions {
            part_size: 1024,
            ..Default::default()
        };
        assert_eq!(
            tiny.validate().unwrap_err().kind(),
            kubepkg_util::ErrorKind::Invalid
        );
        let none = DownloadOptions {
            max_concurrent_parts: 0,
            ..Default::default()
        };
        assert!(none.validate().is_err());
    }

    #[test]
    fn md5_etags() {
        assert!(is_md5_etag("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_md5_etag("d41d8cd98f00b204e9800998ecf8427e-4"));
        assert!(!is_md5_etag(""));
    }

    #[test]
    fn destinations_are_checked() {
        let dir = std::env::temp_dir();
        assert!(check_destination(&dir.join("file.bin")).is_ok());
        let missing = check_destination(&dir.join("no-such-dir-kubepkg/x")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        assert!(check_destination(&dir).is_err());
        assert!(check_destination(Path::new("/")).is_err());
    }
}
