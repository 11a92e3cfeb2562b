//! The [`ImageEngine`] trait: a container engine that builds, runs, pulls and
//! pushes images. The backend is [`docker`](crate::docker) (bollard).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::{Error, Result};
use kubepkg_util::secret::Secret;

/// A boxed, sendable stream.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// A stream of progress events.
pub type EventStream = BoxStream<Result<ProgressEvent>>;

/// A stream of bytes (tarballs).
pub type ByteStream = BoxStream<Result<Bytes>>;

/// The engine's version facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EngineVersion {
    /// Engine version, e.g. `20.10.24`.
    pub version: String,
    /// Highest API version the engine speaks, e.g. `1.41`.
    pub api_version: String,
    /// Lowest API version it accepts.
    pub min_api_version: Option<String>,
    /// API version this client negotiated.
    pub negotiated_api_version: String,
    /// `linux`, `windows`.
    pub os: String,
    /// `amd64`, `arm64`…
    pub arch: String,
    /// Kernel version.
    pub kernel_version: Option<String>,
}

/// One image in the engine's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// `sha256:…` image id (config digest).
    pub id: String,
    /// `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` names (from pushes / pulls).
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Details of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetails {
    /// `sha256:…` image id.
    pub id: String,
    /// `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` names.
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// Default command.
    pub cmd: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Layer diff ids.
    pub layers: Vec<String>,
}

/// Credentials for a registry, sent to the engine for pull / push
/// (`Debug` shows no password or token).
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// An identity (refresh) token instead of a password.
    pub identity_token: Option<Secret<String>>,
    /// The registry host, e.g. `registry.example.com`.
    pub server: Option<String>,
}

impl RegistryAuth {
    /// User name and password for `server`.
    pub fn basic(
        server: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret<String>>,
    ) -> Self {
        RegistryAuth {
            username: Some(username.into()),
            password: Some(password.into()),
            identity_token: None,
            server: Some(server.into()),
        }
    }

    /// The credentials of a registry config (host from its URL).
    pub fn from_registry_config(cfg: &crate::RegistryConfig) -> Result<Self> {
        Ok(RegistryAuth {
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            identity_token: None,
            server: Some(cfg.host()?),
        })
    }
}

/// What to build from.
#[derive(Debug, Clone)]
pub enum BuildContext {
    /// A tar archive (optionally gzip-compressed) holding the Dockerfile and
    /// files, already in memory.
    Tar(Bytes),
    /// A directory on this machine; it is archived (symlinks kept as links)
    /// while it is sent, in small pieces, so a large context is never held
    /// in memory whole. A `.dockerignore` is not applied.
    Directory(PathBuf),
}

/// How to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `repo:tag` names to give the image.
    pub tags: Vec<String>,
    /// Path of the Dockerfile inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Labels to add.
    pub labels: BTreeMap<String, String>,
    /// Ignore the build cache.
    pub no_cache: bool,
    /// Always try to pull newer base images.
    pub pull: bool,
    /// Target stage of a multi-stage build.
    pub target: Option<String>,
    /// Network mode for `RUN` steps (e.g. `none`).
    pub network_mode: Option<String>,
}

impl BuildOptions {
    /// Options tagging the image `tag`.
    pub fn tagged(tag: impl Into<String>) -> Self {
        BuildOptions {
            tags: vec![tag.into()],
            ..BuildOptions::default()
        }
    }

    /// Adds a build argument.
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(key.into(), value.into());
        self
    }
}

/// One event of a build, pull, push or load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Build output (a line of a step's output, or a step header).
    Log {
        /// The text, usually ending in a newline.
        text: String,
    },
    /// Layer / transfer status, e.g. `Pushing` with byte counts.
    Status {
        /// Layer id, when the status is about one.
        id: Option<String>,
        /// The status text.
        status: String,
        /// Bytes done.
        current: Option<u64>,
        /// Bytes in total.
        total: Option<u64>,
    },
    /// A build finished with this image id.
    Built {
        /// `sha256:…`.
        image_id: String,
    },
    /// A push finished: the registry's manifest digest.
    Pushed {
        /// The tag pushed.
        tag: String,
        /// `sha256:…` manifest digest.
        digest: String,
        /// Manifest size in bytes.
        size: u64,
    },
    /// A pull finished with this digest (`Digest: sha256:…`).
    Pulled {
        /// `sha256:…` manifest digest.
        digest: String,
    },
    /// A load finished with this image.
    Loaded {
        /// `repo:tag` or image id.
        image: String,
    },
}

/// The result of [`ImageEngine::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `sha256:…` image id.
    pub id: String,
    /// The build output, concatenated.
    pub log: String,
}

/// The result of [`ImageEngine::push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// The tag pushed.
    pub tag: String,
    /// The manifest digest the registry stored.
    pub digest: String,
    /// Manifest size.
    pub size: u64,
}

/// Which images [`ImageEngine::prune_images`] removes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneOptions {
    /// Every unused image, not only dangling (untagged) ones.
    pub all: bool,
    /// Only images carrying every one of these labels (`key` or `key=value`).
    /// Use it to prune what your own builds left behind without touching
    /// images (or build caches) that other users of the engine rely on.
    pub labels: Vec<String>,
}

impl PruneOptions {
    /// Dangling images only.
    pub fn dangling() -> Self {
        PruneOptions::default()
    }

    /// Adds a label filter (`key` or `key=value`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }
}

/// What [`ImageEngine::prune_images`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Removed image ids and untagged names.
    pub deleted: Vec<String>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Image to run.
    pub image: String,
    /// Command (overrides the image's `CMD`).
    pub cmd: Vec<String>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` environment.
    pub env: Vec<String>,
    /// Container name; `None` lets the engine pick.
    pub name: Option<String>,
    /// Network mode (`none`, `host`, `bridge`, a network name); `None`: the engine default.
    pub network_mode: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User to run as.
    pub user: Option<String>,
}

impl ContainerSpec {
    /// Runs `image` with `cmd`.
    pub fn new<I, S>(image: impl Into<String>, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ContainerSpec {
            image: image.into(),
            cmd: cmd.into_iter().map(Into::into).collect(),
            ..ContainerSpec::default()
        }
    }

    /// Sets the network mode.
    pub fn network_mode(mut self, mode: impl Into<String>) -> Self {
        self.network_mode = Some(mode.into());
        self
    }
}

/// How much of its output [`ImageEngine::container_logs`] (and so
/// [`ImageEngine::run`]) keeps per stream: the last 4 MiB.
pub const MAX_LOG_BYTES: usize = 4 << 20;

/// A container's output, as collected by [`ImageEngine::container_logs`]:
/// at most the last [`MAX_LOG_BYTES`] of each stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerLogs {
    /// Standard output (its end, when `truncated`).
    pub stdout: String,
    /// Standard error (its end, when `truncated`).
    pub stderr: String,
    /// Whether earlier output was dropped to stay within [`MAX_LOG_BYTES`].
    pub truncated: bool,
}

/// What [`ImageEngine::container_log_stream`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open and deliver new output as the container writes
    /// it, until it stops (`docker logs --follow`).
    pub follow: bool,
    /// Only the last this many lines of earlier output (`--tail`); `None`: all.
    pub tail: Option<u64>,
    /// Prefix each line with the engine's RFC 3339 timestamp (`--timestamps`).
    pub timestamps: bool,
}

impl LogOptions {
    /// Follows the output as it is written.
    pub fn follow() -> Self {
        LogOptions {
            follow: true,
            ..LogOptions::default()
        }
    }
}

/// A piece of a container's output, as the engine framed it (usually one
/// write of the process, often one line).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogChunk {
    /// Standard output (or the terminal, for a container with a TTY).
    Stdout(Bytes),
    /// Standard error.
    Stderr(Bytes),
}

/// The result of [`ImageEngine::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// The process' exit code.
    pub exit_code: i64,
    /// Standard output (at most the last [`MAX_LOG_BYTES`]).
    pub stdout: String,
    /// Standard error (at most the last [`MAX_LOG_BYTES`]).
    pub stderr: String,
    /// Whether earlier output was dropped to stay within [`MAX_LOG_BYTES`].
    pub truncated: bool,
}

/// The last `max` bytes of what is pushed into it.
#[derive(Debug, Default)]
struct Tail {
    buf: Vec<u8>,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, bytes: &[u8], max: usize) {
        if bytes.len() >= max {
            self.dropped |= !self.buf.is_empty() || bytes.len() > max;
            self.buf.clear();
            self.buf.extend_from_slice(&bytes[bytes.len() - max..]);
            return;
        }
        self.buf.extend_from_slice(bytes);
        // Trim only when well over, so trimming stays amortised O(1) per byte.
        if self.buf.len() > max.saturating_mul(2) {
            let cut = self.buf.len() - max;
            self.buf.drain(..cut);
            self.dropped = true;
        }
    }

    fn finish(mut self, max: usize) -> (String, bool) {
        if self.buf.len() > max {
            let cut = self.buf.len() - max;
            self.buf.drain(..cut);
            self.dropped = true;
        }
        (
            String::from_utf8_lossy(&self.buf).into_owned(),
            self.dropped,
        )
    }
}

/// Collects a log stream, keeping the last `max` bytes of each stream.
async fn collect_logs(
    mut stream: BoxStream<Result<LogChunk>>,
    max: usize,
) -> Result<ContainerLogs> {
    let (mut out, mut err) = (Tail::default(), Tail::default());
    while let Some(chunk) = stream.next().await {
        match chunk? {
            LogChunk::Stdout(b) => out.push(&b, max),
            LogChunk::Stderr(b) => err.push(&b, max),
        }
    }
    let (stdout, t1) = out.finish(max);
    let (stderr, t2) = err.finish(max);
    Ok(ContainerLogs {
        stdout,
        stderr,
        truncated: t1 || t2,
    })
}

/// A container engine (Docker).
///
/// Object-safe; use it as `Arc<dyn ImageEngine>`. Long operations (build, pull,
/// push, load, save) are streams; the provided methods [`build`](Self::build),
/// [`pull`](Self::pull), [`push`](Self::push) and [`run`](Self::run) drive
/// them to the end. Every call runs in a `tracing` span named `image.engine`.
#[async_trait]
pub trait ImageEngine: Send + Sync + fmt::Debug {
    /// Engine and API version.
    async fn version(&self) -> Result<EngineVersion>;

    /// Checks the engine answers.
    async fn ping(&self) -> Result<()>;

    /// Lists images; `all` includes intermediate ones.
    async fn list_images(&self, all: bool) -> Result<Vec<ImageSummary>>;

    /// Inspects an image by name or id.
    async fn inspect_image(&self, image: &str) -> Result<ImageDetails>;

    /// Builds an image, streaming its output. A failing build (bad
    /// Dockerfile, failing step) ends the stream with [`Error::Build`]
    /// carrying the engine's message.
    fn build_stream(&self, context: BuildContext, options: BuildOptions) -> EventStream;

    /// Tags `source` as `target` (`repo:tag`).
    async fn tag_image(&self, source: &str, target: &str) -> Result<()>;

    /// Removes an image; returns the deleted / untagged ids and names.
    async fn remove_image(&self, image: &str, force: bool) -> Result<Vec<String>>;

    /// Removes dangling images (or, with `all`, every unused image), limited
    /// to those carrying the options' labels.
    async fn prune_images(&self, opts: &PruneOptions) -> Result<PruneReport>;

    /// Pulls `reference` (`repo:tag` or `repo@digest`), streaming progress.
    fn pull_stream(&self, reference: &str, auth: Option<&RegistryAuth>) -> EventStream;

    /// Pushes `reference` (`repo:tag`), streaming progress; the last event is
    /// [`ProgressEvent::Pushed`] with the registry's digest.
    fn push_stream(&self, reference: &str, auth: Option<&RegistryAuth>) -> EventStream;

    /// Saves images (names or ids) as a `docker save` tarball, streamed.
    fn save_images(&self, images: &[String]) -> ByteStream;

    /// Loads a `docker save` tarball; returns the loaded image names / ids.
    async fn load_images(&self, tarball: ByteStream) -> Result<Vec<String>>;

    /// Creates a container; returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;

    /// Starts a container.
    async fn start_container(&self, id: &str) -> Result<()>;

    /// Waits for a container to stop; returns its exit code.
    async fn wait_container(&self, id: &str) -> Result<i64>;

    /// A container's output as a stream of chunks (stdout and stderr as
    /// the engine interleaves them); with [`LogOptions::follow`] it lasts
    /// until the container stops. Nothing is buffered beyond the chunk at hand.
    fn container_log_stream(&self, id: &str, options: &LogOptions) -> BoxStream<Result<LogChunk>>;

    /// A container's output so far, collected in memory: at most the last
    /// [`MAX_LOG_BYTES`] of each stream (`truncated` says when earlier output
    /// was dropped). Use [`container_log_stream`](Self::container_log_stream)
    /// to read all of a large log.
    async fn container_logs(&self, id: &str) -> Result<ContainerLogs> {
        collect_logs(
            self.container_log_stream(id, &LogOptions::default()),
            MAX_LOG_BYTES,
        )
        .await
    }

    /// Removes a container (`force` kills it first).
    async fn remove_container(&self, id: &str, force: bool) -> Result<()>;

    /// Builds an image and returns its id and output.
    async fn build(&self, context: BuildContext, options: BuildOptions) -> Result<BuiltImage> {
        let mut stream = self.build_stream(context, options);
        let mut log = String::new();
        let mut id = None;
        while let Some(ev) = stream.next().await {
            match ev? {
                ProgressEvent::Log { text } => log.push_str(&text),
                ProgressEvent::Built { image_id } => id = Some(image_id),
                _ => {}
            }
        }
        match id {
            Some(id) => Ok(BuiltImage { id, log }),
            None => Err(Error::Build {
                message: format!("the engine reported no image id; output:\n{log}"),
            }),
        }
    }

    /// Pulls an image; returns the manifest digest when the engine reports it.
    async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<Option<String>> {
        let mut stream = self.pull_stream(reference, auth);
        let mut digest = None;
        while let Some(ev) = stream.next().await {
            if let ProgressEvent::Pulled { digest: d } = ev? {
                digest = Some(d);
            }
        }
        Ok(digest)
    }

    /// Pushes an image; returns the digest the registry stored.
    async fn push(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<PushedImage> {
        let mut stream = self.push_stream(reference, auth);
        let mut pushed = None;
        while let Some(ev) = stream.next().await {
            if let ProgressEvent::Pushed { tag, digest, size } = ev? {
                pushed = Some(PushedImage { tag, digest, size });
            }
        }
        pushed.ok_or_else(|| Error::EngineStream {
            operation: "push",
            target: reference.to_string(),
            message: "the engine reported no digest".into(),
        })
    }

    /// Creates, starts and waits for a container, collects its output and
    /// removes it (also when a step fails).
    async fn run(&self, spec: &ContainerSpec) -> Result<RunOutput> {
        let id = self.create_container(spec).await?;
        let result = async {
            self.start_container(&id).await?;
            let exit_code = self.wait_container(&id).await?;
            let logs = self.container_logs(&id).await?;
            Ok(RunOutput {
                exit_code,
                stdout: logs.stdout,
                stderr: logs.stderr,
                truncated: logs.truncated,
            })
        }
        .await;
        let removed = self.remove_container(&id, true).await;
        let out = result?;
        removed?;
        Ok(out)
    }
}

/// Builds the engine client a config describes. The API version is
/// negotiated with the engine on first use.
///
/// Fails with [`Error::Unsupported`] when the `docker` cargo feature is off.
pub fn connect(config: &EngineConfig) -> Result<Arc<dyn ImageEngine>> {
    #[cfg(feature = "docker")]
    {
        Ok(Arc::new(crate::docker::DockerEngine::new(config)?))
    }
    #[cfg(not(feature = "docker"))]
    {
        let _ = config;
        Err(Error::Unsupported(
            "the `docker` engine backend is not compiled in (enable cargo feature `docker`)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_debug_is_redacted() {
        let a = RegistryAuth::basic("r:5000", "u", "topsecret");
        let s = format!("{a:?}");
        assert!(!s.contains("topsecret"), "{s}");
        assert!(s.contains("r:5000"));
    }

    #[tokio::test]
    async fn collected_logs_keep_the_last_bytes_of_each_stream() {
        let chunks: Vec<Result<LogChunk>> = (0..1000)
            .map(|i| Ok(LogChunk::Stdout(Bytes::from(format!("line {i:04}\n")))))
            .chain([Ok(LogChunk::Stderr(Bytes::from_static(b"oops\n")))])
            .collect();
        let logs = collect_logs(Box::pin(futures::stream::iter(chunks)), 100)
            .await
            .unwrap();
        assert!(logs.truncated);
        assert_eq!(logs.stdout.len(), 100);
        assert!(logs.stdout.ends_with("line 0999\n"), "{}", logs.stdout);
        assert_eq!(logs.stderr, "oops\n");

        // one chunk larger than the limit keeps its end
        let one = vec![Ok(LogChunk::Stdout(Bytes::from("x".repeat(50) + "end")))];
        let logs = collect_logs(Box::pin(futures::stream::iter(one)), 10)
            .await
            .unwrap();
        assert!(logs.truncated);
        assert_eq!(logs.stdout, "xxxxxxxend");

        // within the limit nothing is dropped; errors end the collection
        let small = vec![
            Ok(LogChunk::Stdout(Bytes::from_static(b"hi\n"))),
            Err(Error::Invalid("gone".into())),
        ];
        assert!(
            collect_logs(Box::pin(futures::stream::iter(small)), 10)
                .await
                .is_err()
        );
        let small = vec![Ok(LogChunk::Stdout(Bytes::from_static(b"hi\n")))];
        let logs = collect_logs(Box::pin(futures::stream::iter(small)), 10)
            .await
            .unwrap();
        assert_eq!((logs.stdout.as_str(), logs.truncated), ("hi\n", false));
    }

    #[test]
    fn events_serialise_with_a_type_tag() {
        let e = ProgressEvent::Pushed {
            tag: "v1".into(),
            digest: "sha256:x".into(),
            size: 3,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "pushed");
    }
}
