//! # kubepkg_platform
//!
//! The library a multi-vendor container platform service embeds:
//! `Platform::open(&config)` gives multi-cluster management in two layers.
//!
//! - The **core layer** ([`core`]): every query of clusters, nodes and any
//!   Kubernetes resource goes straight to the cluster's own API, through
//!   one cached client per cluster (built once from the stored
//!   credential, never per request). Import a cluster with a
//!   least-privilege service account ([`Platform::import_cluster`]), watch
//!   its health as conditions ([`Platform::check_health`], a background
//!   prober, and an immediate Unavailable for a cluster known to be down),
//!   and search any kind across many clusters with one continue token
//!   ([`Platform::search`]).
//! - The **vendor-adapter layer** ([`provider`]): creating, deleting and
//!   changing clusters, nodes and registries goes through a
//!   [`provider::ClusterProvider`] or [`provider::RegistryProvider`] per
//!   vendor, all returning the same types.
//! - The **store** ([`store`]): only what neither a vendor nor a cluster
//!   keeps — cluster and node records, credentials (AES-256-GCM at rest,
//!   [`crypto`]), registries and their permissions, long-running vendor
//!   operations — on SQLite (embedded default) or PostgreSQL (shared).
//! - One **config file** for everything ([`config`]) and one [`init()`]
//!   that fills every kubepkg crate's process-wide defaults from it; the
//!   API's envelope, page and response-code table ([`api`]).
//!
//! Every failure is an [`Error`] whose `kind()` is one of
//! `kubepkg_util::ErrorKind`; [`api::ResponseCode`] maps it to a response
//! code and an HTTP status.
//!
//! ```
//! use kubepkg_platform::api::ApiResponse;
//! use kubepkg_platform::core::{ImportRequest, ImportSource};
//! use kubepkg_platform::{Keyring, Platform, PlatformOptions, Store};
//! use kubepkg_util::ErrorKind;
//! use kubepkg_util::secret::Secret;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! // An in-memory store with a fresh key (real services read both from the
//! // config file: `Platform::open(&PlatformConfig::load("kubepkg.toml")?)`).
//! let store = Store::open("sqlite::memory:", Keyring::new("k1", Keyring::generate_key())?).await?;
//! let platform = Platform::with_store(store, PlatformOptions::default()).await?;
//! assert!(platform.clusters(None).await?.is_empty());
//!
//! // Bad input is refused before anything is sent or stored.
//! let source = ImportSource::Kubeconfig {
//!     text: Secret::new("not: [a kubeconfig".into()),
//!     context: None,
//! };
//! let err = platform.import_cluster(ImportRequest::new("prod", source)).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! assert!(platform.clusters(None).await?.is_empty());
//!
//! // Every answer of the platform's API uses one envelope.
//! let body = serde_json::to_value(ApiResponse::<()>::from_error(&err))?;
//! assert_eq!(body["code"], 42200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): each item badged with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod config;
pub mod core;
pub mod crypto;
pub mod error;
pub mod init;
pub mod provider;
pub mod store;

pub use crate::core::{Platform, PlatformOptions};
pub use config::PlatformConfig;
pub use crypto::Keyring;
pub use error::{Error, Result};
pub use init::init;
pub use store::Store;
