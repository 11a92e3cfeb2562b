//! # kubepkg
//!
//! The facade of the kubepkg workspace: each member crate re-exported behind a
//! cargo feature of the same name (`util`, `log`, `k8s`, `image`, `storage`,
//! `platform`; all on by default).
//!
//! ```
//! # #[cfg(feature = "util")] {
//! use kubepkg::util::ErrorKind;
//! assert_eq!(ErrorKind::Forbidden.http_status(), 403);
//! # }
//! ```
#![warn(missing_docs)]

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
#[cfg(feature = "image")]
pub use kubepkg_image_api as image;

/// Object storage and message queues ([`kubepkg_storage_api`]).
#[cfg(feature = "storage")]
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
