//! # kubepkg
//!
//! The facade of the kubepkg workspace: each member crate re-exported behind a
//! cargo feature of the same name (`util`, `log`, `k8s`, `image`, `storage`,
//! `platform`; all on by default).
//!
//! `image` and `storage` turn on every backend of their crate; to take only
//! some, turn the defaults off and name them: `image-distribution`,
//! `image-harbor`, `image-docker`, `image-docker-tls`, `storage-s3`,
//! `storage-minio`, `storage-amqp`, `storage-memory`, `storage-local` (any
//! of them re-exports the crate as
//! [`image`] or [`storage`]). `k8s-runtime` adds kube's controller runtime
//! to [`k8s`].
//!
//! ```toml
//! kubepkg = { version = "0.1", default-features = false, features = ["k8s", "storage-s3"] }
//! # the application picks the Kubernetes version
//! k8s-openapi = { version = "0.29", features = ["v1_35"] }
//! ```
//!
//! ```
//! # #[cfg(feature = "util")] {
//! use kubepkg::util::ErrorKind;
//! assert_eq!(ErrorKind::Forbidden.http_status(), 403);
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Without a crate's feature its re-export does not exist, so the links to it
// above cannot resolve; full docs are built with every feature (docs.rs too).
#![cfg_attr(
    not(all(feature = "k8s", feature = "image", feature = "storage")),
    allow(rustdoc::broken_intra_doc_links)
)]

/// Shared helpers and error kinds ([`kubepkg_util`]).
#[cfg(feature = "util")]
pub use kubepkg_util as util;

/// Logging front for tracing, slog and log ([`kubepkg_log_api`]).
#[cfg(feature = "log")]
pub use kubepkg_log_api as log;

/// Kubernetes clusters ([`kubepkg_k8s_api`]).
#[cfg(feature = "k8s")]
pub use kubepkg_k8s_api as k8s;

/// Image registries and the Docker engine ([`kubepkg_image_api`]).
#[cfg(any(feature = "image-distribution", feature = "image-docker"))]
pub use kubepkg_image_api as image;

/// Object storage and message queues ([`kubepkg_storage_api`]).
#[cfg(any(
    feature = "storage-s3",
    feature = "storage-amqp",
    feature = "storage-memory",
    feature = "storage-local"
))]
pub use kubepkg_storage_api as storage;

/// Vendor adapters and the core layer ([`kubepkg_platform`]).
#[cfg(feature = "platform")]
pub use kubepkg_platform as platform;

/// Initialises every crate's process-wide defaults and named instances from
/// one platform config file ([`kubepkg_platform::init()`]).
#[cfg(feature = "platform")]
pub use kubepkg_platform::init;

/// The platform's one configuration ([`kubepkg_platform::PlatformConfig`]).
#[cfg(feature = "platform")]
pub use kubepkg_platform::PlatformConfig;
