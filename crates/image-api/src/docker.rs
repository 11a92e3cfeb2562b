//! The Docker engine backend of [`ImageEngine`], on `bollard`.
//!
//! Connects by `unix://` socket (or a bare socket path), `tcp://` / `http://`
//! (plain, logged as a warning) or TCP with TLS client certificates (cargo
//! feature `docker-tls`). The API version is negotiated with the engine on
//! first use, so old engines (e.g. API 1.41) work. Builds use the classic
//! builder (no BuildKit session); a directory context is archived while it
//! is uploaded, in 64 KiB pieces, never whole in memory. Container logs are
//! a stream ([`ImageEngine::container_log_stream`]); the collected form
//! keeps only the end of each stream.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use async_trait::async_trait;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ImportImageOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    PruneImagesOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, StartContainerOptions, TagImageOptionsBuilder, WaitContainerOptions,
};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::{OnceCell, mpsc};
use tracing::Instrument;

use crate::config::EngineConfig;
use crate::engine::{
    BoxStream, BuildContext, BuildOptions, ByteStream, ContainerSpec, EngineVersion, EventStream,
    ImageDetails, ImageEngine, ImageSummary, LogChunk, LogOptions, ProgressEvent, PruneOptions,
    PruneReport, RegistryAuth,
};
use crate::{Error, Result};

/// A Docker engine.
#[derive(Clone)]
pub struct DockerEngine {
    host: String,
    base: Docker,
    negotiated: std::sync::Arc<OnceCell<Docker>>,
}

impl std::fmt::Debug for DockerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEngine")
            .field("host", &self.host)
            .finish()
    }
}

fn span(operation: &'static str, target: &str) -> tracing::Span {
    tracing::info_span!(
        "image.engine",
        backend = "docker",
        operation,
        target = %target
    )
}

impl DockerEngine {
    /// Builds a client for the engine a config describes (no I/O yet).
    pub fn new(config: &EngineConfig) -> Result<Self> {
        let host = config.resolved_host();
        // clamped to 1 s ..= 1 day, like the registry clients' timeouts
        let timeout = config.timeout_secs.clamp(1, 24 * 3600);
        let version = bollard::API_DEFAULT_VERSION;
        let cfg_err = |e: bollard::errors::Error| Error::Config(format!("docker host {host}: {e}"));
        let base = if let Some(tls) = &config.tls {
            #[cfg(feature = "docker-tls")]
            {
                Docker::connect_with_ssl(&host, &tls.key, &tls.cert, &tls.ca, timeout, version)
                    .map_err(cfg_err)?
            }
            #[cfg(not(feature = "docker-tls"))]
            {
                let _ = tls;
                return Err(Error::Unsupported(
                    "TLS to the docker engine needs cargo feature `docker-tls`".into(),
                ));
            }
        } else if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, timeout, version).map_err(cfg_err)?
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            tracing::warn!(
                host = %host,
                "connecting to the docker engine over plain TCP without TLS"
            );
            Docker::connect_with_http(&host, timeout, version).map_err(cfg_err)?
        } else if host.starts_with("https://") {
            return Err(Error::Config(format!(
                "docker host {host}: https needs client certificates (`tls` with ca, cert, key)"
            )));
        } else {
            return Err(Error::Config(format!(
                "docker host {host}: expected unix://, tcp://, http:// or https://"
            )));
        };
        Ok(DockerEngine {
            host,
            base,
            negotiated: std::sync::Arc::new(OnceCell::new()),
        })
    }

    /// The engine's address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The bollard client, with the API version negotiated (once).
    pub async fn client(&self) -> Result<Docker> {
        self.negotiated
            .get_or_try_init(|| async {
                self.base
                    .clone()
                    .negotiate_version()
                    .await
                    .map_err(|e| map_err("negotiate_version", &self.host, e))
            })
            .await
            .cloned()
    }
}

/// Maps a bollard error.
fn map_err(operation: &'static str, target: &str, e: bollard::errors::Error) -> Error {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError {
            status_code,
            message,
        } => Error::Engine {
            operation,
            target: target.to_string(),
            status: status_code,
            message,
        },
        B::DockerStreamError { error } => Error::EngineStream {
            operation,
            target: target.to_string(),
            message: error,
        },
        B::RequestTimeoutError => Error::Transport {
            backend: "docker",
            operation,
            target: target.to_string(),
            message: "request timed out".into(),
            timeout: true,
            source: None,
        },
        B::JsonDataError { .. }
        | B::JsonSerdeError { .. }
        | B::APIVersionParseError {}
        | B::StrParseError { .. }
        | B::HttpHeaderToStrError { .. } => Error::Protocol {
            backend: "docker",
            operation,
            target: target.to_string(),
            message: e.to_string(),
        },
        other => Error::Transport {
            backend: "docker",
            operation,
            target: target.to_string(),
            message: other.to_string(),
            timeout: false,
            source: Some(Box::new(other)),
        },
    }
}

/// Checks an image name, reference or id the engine API takes as a path
/// segment (`/images/{name}/json`): the characters of Docker's reference
/// grammar only (`A-Za-z0-9 . _ - : / @`), and no empty, `.` or `..` path
/// component — so a caller's string cannot add a query or walk to another
/// endpoint.
pub(crate) fn check_image(image: &str) -> Result<()> {
    let chars_ok = image
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b));
    let parts_ok = image
        .split('/')
        .all(|p| !p.is_empty() && p != "." && p != "..");
    if image.is_empty() || image.len() > 1024 || !chars_ok || !parts_ok {
        return Err(Error::Invalid(format!("invalid image reference {image:?}")));
    }
    Ok(())
}

/// Checks a container id or name (Docker's rule for names:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; ids are hex), which the engine API takes as
/// a path segment.
pub(crate) fn check_container(id: &str) -> Result<()> {
    let mut bytes = id.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !first_ok || !rest_ok || id.len() > 256 {
        return Err(Error::Invalid(format!(
            "invalid container id or name {id:?}"
        )));
    }
    Ok(())
}

/// Splits `repo:tag` / `repo@digest` into the repository and the tag or
/// digest (a `:` inside the host part is a port, not a tag).
pub(crate) fn split_reference(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo, None, Some(digest));
    }
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&reference[..at], Some(&reference[at + 1..]), None)
        }
        None => (reference, None, None),
    }
}

fn credentials(auth: Option<&RegistryAuth>) -> Option<DockerCredentials> {
    auth.map(|a| DockerCredentials {
        username: a.username.clone(),
        password: a.password.as_ref().map(|p| p.expose().clone()),
        identitytoken: a.identity_token.as_ref().map(|p| p.expose().clone()),
        serveraddress: a.server.clone(),
        ..DockerCredentials::default()
    })
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

fn status_event(
    id: Option<String>,
    status: Option<String>,
    detail: Option<bollard::models::ProgressDetail>,
) -> Option<ProgressEvent> {
    let status = status?;
    let (current, total) = detail
        .map(|d| (to_u64(d.current), to_u64(d.total)))
        .unwrap_or((None, None));
    Some(ProgressEvent::Status {
        id,
        status,
        current,
        total,
    })
}

/// `v1: digest: sha256:… size: 528` → (tag, digest, size).
fn parse_push_status(status: &str) -> Option<(String, String, u64)> {
    let (tag, rest) = status.split_once(": digest: ")?;
    let (digest, size) = rest.split_once(" size: ")?;
    let size = size.trim().parse().ok()?;
    Some((tag.trim().to_string(), digest.trim().to_string(), size))
}

/// Runs `work` on a task feeding a channel, so that a stream borrowing the
/// client can be handed out as a `'static` stream. Dropping the returned
/// stream stops the task at its next send.
fn channel_stream<T, F, Fut>(span: tracing::Span, work: F) -> crate::engine::BoxStream<Result<T>>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = futures::stream::once(async move {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(work(tx).instrument(span));
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
    })
    .flatten();
    Box::pin(start)
}

/// The size of the pieces a directory context is uploaded in.
const CONTEXT_CHUNK: usize = 64 << 10;

/// Archives `dir` into `out` (symlinks kept as links).
fn tar_directory<W: std::io::Write>(dir: &Path, out: W) -> Result<W> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir.display(), e))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "build context {} is not a directory",
            dir.display()
        )));
    }
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", dir)
        .map_err(|e| Error::io(dir.display(), e))?;
    builder
        .into_inner()
        .map_err(|e| Error::io(dir.display(), e))
}

/// A `Write` handing fixed-size pieces to a bounded channel (from a
/// blocking thread): the archive is produced only as fast as it is sent.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CONTEXT_CHUNK),
        ));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CONTEXT_CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CONTEXT_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A directory archived on a blocking thread as it is read: the stream of
/// pieces, and the archiver's outcome (its error explains a failed upload).
fn tar_stream(
    dir: std::path::PathBuf,
) -> (
    impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    tokio::task::JoinHandle<Result<()>>,
) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let task = tokio::task::spawn_blocking(move || {
        let writer = ChunkWriter {
            buf: Vec::with_capacity(CONTEXT_CHUNK),
            tx: tx.clone(),
        };
        match tar_directory(&dir, writer).and_then(|mut w| {
            std::io::Write::flush(&mut w).map_err(|e| Error::io(dir.display(), e))
        }) {
            Ok(()) => Ok(()),
            Err(e) => {
                // end the upload with an error, so the engine does not take
                // a truncated archive for a whole one
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    (stream, task)
}

/// The request body of a build: the bytes given, or the directory archived
/// while it is sent (then also the archiver, whose error wins over the
/// engine's report of a broken upload).
async fn context_body(
    context: BuildContext,
) -> Result<(
    BoxStream<std::io::Result<Bytes>>,
    Option<tokio::task::JoinHandle<Result<()>>>,
)> {
    match context {
        BuildContext::Tar(b) => Ok((Box::pin(futures::stream::once(async { Ok(b) })), None)),
        BuildContext::Directory(dir) => {
            // a missing or wrong directory fails before anything is sent
            let meta = tokio::fs::metadata(&dir)
                .await
                .map_err(|e| Error::io(dir.display(), e))?;
            if !meta.is_dir() {
                return Err(Error::Invalid(format!(
                    "build context {} is not a directory",
                    dir.display()
                )));
            }
            let (stream, task) = tar_stream(dir);
            Ok((Box::pin(stream), Some(task)))
        }
    }
}

fn hashmap(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[async_trait]
impl ImageEngine for DockerEngine {
    async fn version(&self) -> Result<EngineVersion> {
        let docker = self.client().await?;
        let v = docker
            .version()
            .instrument(span("version", &self.host))
            .await
            .map_err(|e| map_err("version", &self.host, e))?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            min_api_version: v.min_api_version,
            negotiated_api_version: docker.client_version().to_string(),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
            kernel_version: v.kernel_version,
        })
    }

    async fn ping(&self) -> Result<()> {
        self.base
            .ping()
            .instrument(span("ping", &self.host))
            .await
            .map(|_| ())
            .map_err(|e| map_err("ping", &self.host, e))
    }

    async fn list_images(&self, all: bool) -> Result<Vec<ImageSummary>> {
        let docker = self.client().await?;
        let opts = ListImagesOptionsBuilder::new().all(all).build();
        let list = docker
            .list_images(Some(opts))
            .instrument(span("list_images", &self.host))
            .await
            .map_err(|e| map_err("list_images", &self.host, e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                repo_tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                repo_digests: i
                    .repo_digests
                    .into_iter()
                    .filter(|t| t != "<none>@<none>")
                    .collect(),
                size: u64::try_from(i.size).unwrap_or(0),
                created: i.created,
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageDetails> {
        check_image(image)?;
        let docker = self.client().await?;
        let i = docker
            .inspect_image(image)
            .instrument(span("inspect_image", image))
            .await
            .map_err(|e| map_err("inspect_image", image, e))?;
        let config = i.config.unwrap_or_default();
        Ok(ImageDetails {
            id: i.id.unwrap_or_default(),
            repo_tags: i.repo_tags.unwrap_or_default(),
            repo_digests: i.repo_digests.unwrap_or_default(),
            size: to_u64(i.size).unwrap_or(0),
            created: i.created,
            os: i.os.unwrap_or_default(),
            architecture: i.architecture.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            entrypoint: config.entrypoint.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        })
    }

    fn build_stream(&self, context: BuildContext, options: BuildOptions) -> EventStream {
        let this = self.clone();
        let target = options
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| "<untagged>".into());
        channel_stream(span("build", &target), move |tx| async move {
            let fail = |e: Error| async { tx.send(Err(e)).await.is_ok() };
            let docker = match this.client().await {
                Ok(d) => d,
                Err(e) => {
                    fail(e).await;
                    return;
                }
            };
            let (body, mut archiver) = match context_body(context).await {
                Ok(b) => b,
                Err(e) => {
                    fail(e).await;
                    return;
                }
            };
            let mut b = BuildImageOptionsBuilder::new()
                .dockerfile(options.dockerfile.as_deref().unwrap_or("Dockerfile"))
                .rm(true)
                .forcerm(true)
                .nocache(options.no_cache)
                .buildargs(&hashmap(&options.build_args))
                .labels(&hashmap(&options.labels));
            if let Some(first) = options.tags.first() {
                b = b.t(first);
            }
            if options.pull {
                b = b.pull("1");
            }
            if let Some(t) = &options.target {
                b = b.target(t);
            }
            if let Some(n) = &options.network_mode {
                b = b.networkmode(n);
            }
            let mut image_id = None;
            {
                let mut stream =
                    docker.build_image(b.build(), None, Some(bollard::body_try_stream(body)));
                while let Some(item) = stream.next().await {
                    let ev = match item {
                        Ok(info) => {
                            if let Some(aux) = info.aux.and_then(|a| a.id) {
                                image_id = Some(aux.clone());
                                Some(ProgressEvent::Built { image_id: aux })
                            } else if let Some(text) = info.stream {
                                Some(ProgressEvent::Log { text })
                            } else {
                                status_event(info.id, info.status, info.progress_detail)
                            }
                        }
                        Err(e) => {
                            // A context that could not be archived explains
                            // the broken upload better than the engine can.
                            if let Some(task) = archiver.take()
                                && let Ok(Err(io)) = task.await
                            {
                                fail(io).await;
                                return;
                            }
                            let err = match e {
                                bollard::errors::Error::DockerStreamError { error } => {
                                    Error::Build { message: error }
                                }
                                bollard::errors::Error::DockerResponseServerError {
                                    message,
                                    ..
                                } => Error::Build { message },
                                other => map_err("build", &target, other),
                            };
                            fail(err).await;
                            return;
                        }
                    };
                    if let Some(ev) = ev
                        && tx.send(Ok(ev)).await.is_err()
                    {
                        return;
                    }
                }
            }
            // The engine tags only one name per build request; add the others.
            if let Some(id) = &image_id {
                for extra in options.tags.iter().skip(1) {
                    if let Err(e) = this.tag_image(id, extra).await {
                        fail(e).await;
                        return;
                    }
                }
            }
        })
    }

    async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        check_image(source)?;
        check_image(target)?;
        let docker = self.client().await?;
        let (repo, tag, digest) = split_reference(target);
        if digest.is_some() {
            return Err(Error::Invalid(format!(
                "cannot tag as {target:?}: a tag target cannot hold a digest"
            )));
        }
        let opts = TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(tag.unwrap_or("latest"))
            .build();
        docker
            .tag_image(source, Some(opts))
            .instrument(span("tag_image", target))
            .await
            .map_err(|e| map_err("tag_image", target, e))
    }

    async fn remove_image(&self, image: &str, force: bool) -> Result<Vec<String>> {
        check_image(image)?;
        let docker = self.client().await?;
        let opts = RemoveImageOptionsBuilder::new().force(force).build();
        let items = docker
            .remove_image(image, Some(opts), None)
            .instrument(span("remove_image", image))
            .await
            .map_err(|e| map_err("remove_image", image, e))?;
        Ok(items
            .into_iter()
            .flat_map(|i| i.untagged.into_iter().chain(i.deleted))
            .collect())
    }

    async fn prune_images(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let docker = self.client().await?;
        let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
        filters.insert("dangling", vec![if opts.all { "false" } else { "true" }]);
        if !opts.labels.is_empty() {
            filters.insert("label", opts.labels.iter().map(String::as_str).collect());
        }
        let opts = PruneImagesOptionsBuilder::new().filters(&filters).build();
        let r = docker
            .prune_images(Some(opts))
            .instrument(span("prune_images", &self.host))
            .await
            .map_err(|e| map_err("prune_images", &self.host, e))?;
        Ok(PruneReport {
            deleted: r
                .images_deleted
                .unwrap_or_default()
                .into_iter()
                .flat_map(|i| i.untagged.into_iter().chain(i.deleted))
                .collect(),
            space_reclaimed: to_u64(r.space_reclaimed).unwrap_or(0),
        })
    }

    fn pull_stream(&self, reference: &str, auth: Option<&RegistryAuth>) -> EventStream {
        let this = self.clone();
        let reference = reference.to_string();
        let creds = credentials(auth);
        channel_stream(span("pull", &reference), move |tx| async move {
            let docker = match this.client().await {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let (repo, tag, digest) = split_reference(&reference);
            let opts = if digest.is_some() {
                CreateImageOptionsBuilder::new()
                    .from_image(&reference)
                    .build()
            } else {
                CreateImageOptionsBuilder::new()
                    .from_image(repo)
                    .tag(tag.unwrap_or("latest"))
                    .build()
            };
            let mut stream = docker.create_image(Some(opts), None, creds);
            while let Some(item) = stream.next().await {
                let ev = match item {
                    Ok(info) => {
                        match info
                            .status
                            .as_deref()
                            .and_then(|s| s.strip_prefix("Digest: "))
                        {
                            Some(d) => Some(ProgressEvent::Pulled {
                                digest: d.trim().to_string(),
                            }),
                            None => status_event(info.id, info.status, info.progress_detail),
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(map_err("pull", &reference, e))).await;
                        return;
                    }
                };
                if let Some(ev) = ev
                    && tx.send(Ok(ev)).await.is_err()
                {
                    return;
                }
            }
        })
    }

    fn push_stream(&self, reference: &str, auth: Option<&RegistryAuth>) -> EventStream {
        let this = self.clone();
        let reference = reference.to_string();
        let creds = credentials(auth);
        channel_stream(span("push", &reference), move |tx| async move {
            if let Err(e) = check_image(&reference) {
                let _ = tx.send(Err(e)).await;
                return;
            }
            let docker = match this.client().await {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let (repo, tag, digest) = split_reference(&reference);
            if digest.is_some() {
                let _ = tx
                    .send(Err(Error::Invalid(format!(
                        "cannot push {reference:?}: push a tag, not a digest"
                    ))))
                    .await;
                return;
            }
            let opts = PushImageOptionsBuilder::new()
                .tag(tag.unwrap_or("latest"))
                .build();
            let mut stream = docker.push_image(repo, Some(opts), creds);
            while let Some(item) = stream.next().await {
                let ev = match item {
                    Ok(info) => match info.status.as_deref().and_then(parse_push_status) {
                        Some((tag, digest, size)) => {
                            Some(ProgressEvent::Pushed { tag, digest, size })
                        }
                        None => status_event(None, info.status, info.progress_detail),
                    },
                    Err(e) => {
                        let _ = tx.send(Err(map_err("push", &reference, e))).await;
                        return;
                    }
                };
                if let Some(ev) = ev
                    && tx.send(Ok(ev)).await.is_err()
                {
                    return;
                }
            }
        })
    }

    fn save_images(&self, images: &[String]) -> ByteStream {
        let this = self.clone();
        let images = images.to_vec();
        let target = images.join(",");
        let sp = span("save_images", &target);
        let s = futures::stream::once(async move {
            let docker = this.client().await?;
            let names: Vec<&str> = images.iter().map(String::as_str).collect();
            let t = target.clone();
            Ok::<_, Error>(
                docker
                    .export_images(&names)
                    .map_err(move |e| map_err("save_images", &t, e)),
            )
        })
        .map(|r: Result<_>| match r {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        })
        .flatten();
        Box::pin(s.boxed().instrument_stream(sp))
    }

    async fn load_images(&self, tarball: ByteStream) -> Result<Vec<String>> {
        let docker = self.client().await?;
        let opts = ImportImageOptionsBuilder::new().quiet(true).build();
        let body = tarball.map_err(|e| std::io::Error::other(e.to_string()));
        let mut stream = docker.import_image_stream(opts, body, None);
        let mut loaded = Vec::new();
        let sp = span("load_images", &self.host);
        while let Some(item) = stream.next().instrument(sp.clone()).await {
            let info = item.map_err(|e| map_err("load_images", &self.host, e))?;
            if let Some(text) = info.stream {
                for line in text.lines() {
                    if let Some(name) = line
                        .strip_prefix("Loaded image: ")
                        .or_else(|| line.strip_prefix("Loaded image ID: "))
                    {
                        loaded.push(name.trim().to_string());
                    }
                }
            }
        }
        Ok(loaded)
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let docker = self.client().await?;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
            entrypoint: spec.entrypoint.clone(),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            labels: (!spec.labels.is_empty()).then(|| hashmap(&spec.labels)),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            host_config: Some(HostConfig {
                network_mode: spec.network_mode.clone(),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let opts = spec
            .name
            .as_deref()
            .map(|n| CreateContainerOptionsBuilder::new().name(n).build());
        let r = docker
            .create_container(opts, body)
            .instrument(span("create_container", &spec.image))
            .await
            .map_err(|e| map_err("create_container", &spec.image, e))?;
        for w in &r.warnings {
            tracing::warn!(image = %spec.image, warning = %w, "docker create_container");
        }
        Ok(r.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        check_container(id)?;
        let docker = self.client().await?;
        docker
            .start_container(id, None::<StartContainerOptions>)
            .instrument(span("start_container", id))
            .await
            .map_err(|e| map_err("start_container", id, e))
    }

    async fn wait_container(&self, id: &str) -> Result<i64> {
        check_container(id)?;
        let docker = self.client().await?;
        let mut stream = docker.wait_container(id, None::<WaitContainerOptions>);
        let mut code = None;
        while let Some(item) = stream.next().instrument(span("wait_container", id)).await {
            match item {
                Ok(r) => code = Some(r.status_code),
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                    code = Some(c)
                }
                Err(e) => return Err(map_err("wait_container", id, e)),
            }
        }
        code.ok_or_else(|| Error::Protocol {
            backend: "docker",
            operation: "wait_container",
            target: id.to_string(),
            message: "the engine returned no exit status".into(),
        })
    }

    fn container_log_stream(&self, id: &str, options: &LogOptions) -> BoxStream<Result<LogChunk>> {
        let this = self.clone();
        let id = id.to_string();
        let options = options.clone();
        channel_stream(span("container_logs", &id), move |tx| async move {
            if let Err(e) = check_container(&id) {
                let _ = tx.send(Err(e)).await;
                return;
            }
            let docker = match this.client().await {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut b = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(options.follow)
                .timestamps(options.timestamps);
            if let Some(n) = options.tail {
                b = b.tail(&n.to_string());
            }
            let mut stream = docker.logs(&id, Some(b.build()));
            while let Some(item) = stream.next().await {
                let chunk = match item {
                    Ok(LogOutput::StdErr { message }) => LogChunk::Stderr(message),
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        LogChunk::Stdout(message)
                    }
                    Ok(LogOutput::StdIn { .. }) => continue,
                    Err(e) => {
                        let _ = tx.send(Err(map_err("container_logs", &id, e))).await;
                        return;
                    }
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        })
    }

    async fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        check_container(id)?;
        let docker = self.client().await?;
        let opts = RemoveContainerOptionsBuilder::new()
            .force(force)
            .v(true)
            .build();
        docker
            .remove_container(id, Some(opts))
            .instrument(span("remove_container", id))
            .await
            .map_err(|e| map_err("remove_container", id, e))
    }
}

/// Enters a span while each item of a stream is produced.
trait InstrumentStream: Stream + Sized {
    fn instrument_stream(self, span: tracing::Span) -> Instrumented<Self> {
        Instrumented { inner: self, span }
    }
}

impl<S: Stream> InstrumentStream for S {}

struct Instrumented<S> {
    inner: S,
    span: tracing::Span,
}

impl<S: Stream + Unpin> Stream for Instrumented<S> {
    type Item = S::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _enter = this.span.enter();
        this.inner.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split() {
        assert_eq!(split_reference("a/b:v1"), ("a/b", Some("v1"), None));
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", None, None)
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a:t"),
            ("127.0.0.1:5000/a", Some("t"), None)
        );
        assert_eq!(
            split_reference("h:1/a@sha256:00"),
            ("h:1/a", None, Some("sha256:00"))
        );
    }

    #[test]
    fn engine_path_parameters_are_checked() {
        for ok in [
            "busybox",
            "127.0.0.1:5000/kubepkg-it/app:v1",
            "h:1/a@sha256:00ab",
            "sha256:0123abcd",
            "Registry.Example.com/A_b-c.d",
        ] {
            assert!(check_image(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../containers/json",
            "a/../../b",
            "a?x=1",
            "a#b",
            "a%2f..",
            "/abs",
            "a//b",
            "a/",
            "a b",
        ] {
            assert_eq!(
                check_image(bad).unwrap_err().kind(),
                kubepkg_util::ErrorKind::Invalid,
                "{bad}"
            );
        }
        assert!(check_container("0123abcdef").is_ok());
        assert!(check_container("my_app.1-x").is_ok());
        for bad in [
            "",
            "..",
            "../images/x",
            "a/b",
            "a?force=1",
            "-a",
            ".a",
            "a b",
        ] {
            assert!(check_container(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn push_status_parses() {
        let s = format!("v1: digest: sha256:{} size: 528", "ab".repeat(32));
        let (tag, digest, size) = parse_push_status(&s).unwrap();
        assert_eq!(tag, "v1");
        assert!(digest.starts_with("sha256:ab"));
        assert_eq!(size, 528);
        assert!(parse_push_status("Pushing").is_none());
    }

    #[test]
    fn bad_hosts_are_config_errors() {
        let e = DockerEngine::new(&EngineConfig::new("ftp://x")).unwrap_err();
        assert_eq!(e.kind(), kubepkg_util::ErrorKind::Invalid);
        let e = DockerEngine::new(&EngineConfig::new("https://x:2376")).unwrap_err();
        assert!(e.to_string().contains("client certificates"), "{e}");
    }

    #[cfg(feature = "docker-tls")]
    #[test]
    fn missing_tls_files_are_config_errors() {
        let cfg = EngineConfig {
            host: Some("tcp://127.0.0.1:2376".into()),
            tls: Some(crate::config::EngineTls::from_dir(
                "/nonexistent/kubepkg-certs",
            )),
            ..EngineConfig::default()
        };
        let e = DockerEngine::new(&cfg).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(e.to_string().contains("kubepkg-certs"), "{e}");
    }

    #[test]
    fn tar_of_missing_dir_fails_cleanly() {
        let e = tar_directory(Path::new("/nonexistent/kubepkg-ctx"), Vec::new()).unwrap_err();
        assert_eq!(e.kind(), kubepkg_util::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn directory_contexts_are_streamed_in_bounded_pieces() {
        let dir = tempfile::tempdir().unwrap();
        // 1 MiB of incompressible-ish data in two files
        let data: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        std::fs::write(dir.path().join("a.bin"), &data[..600_000]).unwrap();
        std::fs::write(dir.path().join("b.bin"), &data[600_000..]).unwrap();
        let (stream, task) = tar_stream(dir.path().to_path_buf());
        let pieces: Vec<Bytes> = stream.try_collect().await.unwrap();
        task.await.unwrap().unwrap();
        assert!(pieces.len() > 16, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| p.len() <= CONTEXT_CHUNK));
        // the pieces are exactly the archive tar_directory writes
        let whole = tar_directory(dir.path(), Vec::new()).unwrap();
        assert_eq!(pieces.concat(), whole);

        // a reader that goes away stops the archiver (no unbounded buffering)
        let (stream, task) = tar_stream(dir.path().to_path_buf());
        drop(stream);
        let e = task.await.unwrap().unwrap_err();
        assert!(e.to_string().contains("stopped reading"), "{e}");
    }
}
