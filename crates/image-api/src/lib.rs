//! # kubepkg_image_api
//!
//! Image registries (Harbor, any OCI distribution registry) and the Docker
//! engine, each behind one object-safe trait:
//!
//! - [`ImageRegistry`]: namespaces (Harbor projects), repositories, tags and
//!   artifacts (digest, size, push time), manifests (image index and platform
//!   manifests, OCI and Docker media types), credential check. Backends:
//!   [`distribution`] (cargo feature `distribution`: the OCI Distribution /
//!   Docker Registry HTTP API v2 with basic auth and the bearer-token
//!   challenge) and [`harbor`] (feature `harbor`: Harbor's REST API v2.0).
//! - [`ImageEngine`]: version, images (list, inspect, build, tag, remove,
//!   prune), pull and push with progress streams, save / load, and enough
//!   container calls to check an image runs. Backend: [`docker`] (feature
//!   `docker`, on bollard; `docker-tls` adds TCP with client certificates).
//!
//! Configuration is data ([`Config`], [`RegistryConfig`], [`EngineConfig`]);
//! [`connect_registry`] and [`connect_engine`] turn it into `Arc<dyn …>`
//! clients, and [`global`] keeps process-wide defaults and named instances.
//! Credentials are [`Secret`]s and never appear in `Debug` output or logs;
//! TLS is verified unless a config explicitly says
//! `danger_accept_invalid_certs`, and plain http is refused unless it says
//! `allow_http` (two separate settings, each logged as a warning when on;
//! the single `insecure` key of earlier versions is refused with a message
//! naming both). The registry clients retry idempotent calls through 429 /
//! 5xx answers and connection failures (honouring `Retry-After`), put a
//! total timeout on API calls but only connect and idle timeouts on blob
//! downloads, read bounded bodies, and send credentials only where they
//! belong (see [`distribution`] for the rules). Every remote
//! call runs in a `tracing` span (`image.registry` / `image.engine`) with
//! the backend, operation and target. Errors are one enum, [`Error`], whose
//! [`kind()`](Error::kind) maps to the shared [`kubepkg_util::ErrorKind`].
//!
//! ```
//! use kubepkg_image_api::{ArtifactRef, RegistryConfig, RegistryKind};
//! use kubepkg_util::ErrorKind;
//!
//! // Config is data: read it from a file or build it in code.
//! let cfg: RegistryConfig = serde_json::from_str(
//!     r#"{"url": "http://127.0.0.1:5000", "username": "ci", "password": "pw"}"#,
//! ).unwrap();
//! assert_eq!(cfg.kind, RegistryKind::Distribution);
//! // Plain http is refused unless the config says `allow_http`.
//! assert_eq!(cfg.base_url().unwrap_err().kind(), ErrorKind::Invalid);
//! # #[cfg(feature = "distribution")]
//! assert_eq!(kubepkg_image_api::connect_registry(&cfg).unwrap_err().kind(), ErrorKind::Invalid);
//!
//! // Tags and digests are told apart and validated before any request.
//! assert!(matches!(ArtifactRef::parse("v1.2").unwrap(), ArtifactRef::Tag(_)));
//! assert_eq!(ArtifactRef::parse("sha256:nothex").unwrap_err().kind(), ErrorKind::Invalid);
//! ```
//!
//! Against a real registry (see `examples/image_registry.rs`):
//!
//! ```no_run
//! # #[cfg(feature = "distribution")]
//! # async fn demo() -> kubepkg_image_api::Result<()> {
//! use kubepkg_image_api::{connect_registry, RegistryConfig};
//!
//! let cfg = RegistryConfig::new("https://registry.example.com").credentials("ci", "secret");
//! let registry = connect_registry(&cfg)?;
//! registry.check_credentials().await?;
//! for repo in registry.list_repositories(None).await? {
//!     let tags = registry.list_tags(&repo.name).await?;
//!     tracing::info!(repo = %repo.name, ?tags);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Cargo features and tests
//!
//! The library is lean by default (traits, types, config and globals only);
//! enable the backends you use: `distribution`, `harbor`, `docker`,
//! `docker-tls`. The crate's tests are not: its dev-dependency on itself
//! turns on `distribution`, `harbor` and `docker` for every test, bench and
//! doctest build, so a plain `cargo test -p kubepkg-image-api` runs the
//! HTTP-fixture tests and the tests against the local environment's
//! registry and Docker engine (`cargo xtask env up`; a missing server fails
//! the test, it never skips it). `tests/features.rs` fails loudly should a
//! test build ever lack those features.
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): each item badged with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Without a backend's feature its module does not exist, so the links to it
// above cannot resolve; full docs are built with every feature (docs.rs too).
#![cfg_attr(
    not(all(feature = "distribution", feature = "harbor", feature = "docker")),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod config;
#[cfg(feature = "distribution")]
pub mod distribution;
#[cfg(feature = "docker")]
pub mod docker;
pub mod engine;
pub mod error;
pub mod global;
#[cfg(feature = "harbor")]
pub mod harbor;
#[cfg(feature = "distribution")]
mod http;
pub mod registry;

pub use config::{Config, EngineConfig, EngineTls, RegistryConfig, RegistryKind};
pub use engine::{
    BuildContext, BuildOptions, ContainerSpec, ImageEngine, LogChunk, LogOptions, ProgressEvent,
    RegistryAuth, connect as connect_engine,
};
pub use error::{Error, Result};
pub use kubepkg_util::secret::Secret;
pub use registry::{
    Artifact, ArtifactRef, ImageRegistry, Manifest, Namespace, NamespaceSpec, Repository,
    Visibility, connect as connect_registry,
};
