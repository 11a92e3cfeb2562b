//! # kubepkg_k8s_api
//!
//! Kubernetes clusters of any vendor, built on `kube` and `k8s-openapi`:
//!
//! - **Connect** — [`ClusterConfig`] (serde) from a kubeconfig file, text or
//!   base64 (with context selection), a server URL + CA + bearer token, the
//!   in-cluster service account, or the default chain (in-cluster,
//!   `$KUBECONFIG`, `~/.kube/config`); QPS / burst of a client-side token
//!   bucket, connect and request timeouts, and retries with backoff
//!   honoring `Retry-After`: of 429 and refused connections for any
//!   request, of 5xx and other transport failures only for idempotent ones
//!   (GET, HEAD, PUT, DELETE, server-side apply — never a POST or another
//!   kind of PATCH, which the server may already have carried out). TLS is
//!   always verified unless a config says otherwise (logged as a warning).
//! - **Cache** — [`connect`] builds one [`Client`]; [`global`] holds the
//!   process-wide default; [`ClusterManager`] keeps one probed client per
//!   named cluster and fans calls out over many; [`import_kubeconfig`] turns
//!   an admin kubeconfig into a dedicated service-account token.
//! - **Families** — one typed handle, [`Resources<K>`] (list / pages /
//!   stream, get, create, apply, patch, delete, watch), with per-family
//!   extras: [`pod`] (logs, follow, events; exec and port-forward with the
//!   `exec` feature), [`instance`] (scale, restart,
//!   rollout status, rollback, CronJob suspend, pods by owner), [`service`]
//!   (redacting Secrets), [`volume`], [`events`], [`node`] (cordon, drain
//!   through evictions), [`rbac`], [`namespace`], [`index`] (overview), and
//!   any kind through [`dynamic`] + [`discovery`].
//! - **Apply** — [`apply`](mod@apply) a multi-document bundle of any kinds
//!   with server-side apply, ordering, per-object results, dry run and prune.
//! - **Watch** — [`watch`] resumes after dropped connections and re-lists
//!   on `410 Gone`, turning the difference into events, so a caller sees
//!   each change once (see the module docs for a watch started from a
//!   caller's own resourceVersion); [`Resources::watch_updates`] delivers
//!   every list whole between `Init` / `InitDone` markers, as kube's
//!   watcher does. [`Resources::wait_for`] and
//!   [`Resources::wait_deleted`] wait on such a watch ([`wait`]).
//! - **Controllers** (feature `runtime`) — [`runtime`](crate#features)
//!   re-exports kube's runtime (`Controller`, `watcher`, `reflector`,
//!   `finalizer`, the events `Recorder`) and adds a controller on a
//!   [`ClusterManager`]'s cluster, a rate-limited requeue of failed
//!   reconciles and a reflector store fed by kubepkg's watch. The `cnat`
//!   example (`crates/k8s-api/examples/cnat`) is a whole operator.
//!
//! ## Features
//!
//! - `exec` (**on by default**): the `exec` module (exec and port-forward), over
//!   kube's WebSocket client. A service that never execs can leave it out
//!   with `default-features = false`. It is on by default so that
//!   `cargo test -p kubepkg-k8s-api` runs every test against the local
//!   cluster; the exec tests are their own test binary, which declares
//!   `required-features = ["exec"]`, so building without the feature
//!   leaves that binary out instead of compiling its tests away.
//! - `runtime`: the `runtime` module — kube's controller runtime (kube's own
//!   `runtime` feature) and kubepkg's helpers around it. Off by default; it
//!   adds kube-runtime and a few small crates (async-broadcast, json-patch,
//!   ahash, hashbrown, educe, pin-project). Its test and example declare
//!   `required-features = ["runtime"]`.
//! - `rustls-tls`, `aws-lc-rs` (**on by default**): TLS through rustls with
//!   aws-lc-rs, kube's own features of those names. For ring or OpenSSL,
//!   turn the defaults off and enable kube's `ring` or `openssl-tls` in the
//!   application's `kube` dependency (cargo unifies kube's features):
//!
//!   ```toml
//!   kubepkg-k8s-api = { version = "0.1", default-features = false, features = ["exec", "rustls-tls"] }
//!   kube = { version = "5", default-features = false, features = ["ring"] }
//!   ```
//! - `webpki-roots`, `http-proxy`, `socks5`, `gzip`, `oidc`: kube's features
//!   of those names, passed through.
//!
//! The Kubernetes version is the application's choice, not this crate's: it
//! depends on `k8s-openapi` with no `v1_*` feature, and the application
//! enables one, e.g. `k8s-openapi = { version = "0.29", features = ["v1_35"] }`.
//!
//! Every failure is an [`Error`] whose [`Error::kind`] is one of
//! `kubepkg_util::ErrorKind`; every remote call runs in a `tracing` span
//! with `backend = "kubernetes"`, the cluster, the operation and the target.
//!
//! ```
//! use kubepkg_k8s_api::{ClusterConfig, ClusterSource};
//!
//! let kubeconfig = r#"
//! apiVersion: v1
//! kind: Config
//! clusters:
//! - name: prod
//!   cluster: {server: "https://prod.example:6443"}
//! users:
//! - name: ops
//!   user: {token: "abc123"}
//! contexts:
//! - name: prod
//!   context: {cluster: prod, user: ops, namespace: shop}
//! current-context: prod
//! "#;
//! let cfg = ClusterConfig::kubeconfig_text(kubeconfig)
//!     .with_context("prod")
//!     .with_rate_limit(50.0, 100);
//! cfg.validate()?;
//! assert!(matches!(cfg.source, ClusterSource::Kubeconfig { .. }));
//! // Credentials never show in Debug output.
//! assert!(!format!("{cfg:?}").contains("abc123"));
//!
//! // Resolving it reads no network: it only parses and checks.
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! let kube_cfg = rt.block_on(cfg.to_kube_config())?;
//! assert_eq!(kube_cfg.cluster_url.host(), Some("prod.example"));
//! assert_eq!(kube_cfg.default_namespace, "shop");
//!
//! // A bad context is a typed error, not a panic.
//! let err = rt
//!     .block_on(ClusterConfig::kubeconfig_text(kubeconfig).with_context("dev").to_kube_config())
//!     .unwrap_err();
//! assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): each item badged with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod apply;
pub mod bundle;
pub mod client;
pub mod config;
pub mod discovery;
pub mod dynamic;
pub mod error;
pub mod events;
#[cfg(feature = "exec")]
pub mod exec;
pub mod global;
pub mod import;
pub mod index;
pub mod instance;
mod layers;
pub mod manager;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod rbac;
pub mod resource;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod service;
pub mod volume;
pub mod wait;
pub mod watch;

pub use apply::{ApplyOptions, ApplyReport, Outcome};
pub use client::{Client, connect};
pub use config::{ClusterConfig, ClusterSource};
pub use error::{Error, Result};
pub use import::{ImportOptions, ImportedCluster, import_kubeconfig};
pub use kubepkg_util::secret::Secret;
pub use manager::ClusterManager;
pub use resource::{DeleteOptions, ListOptions, Resources};
pub use watch::{Event, Update, WatchOptions};
pub use {k8s_openapi, kube};
