//! # kubepkg-util
//!
//! The small, dependency-light helpers every other kubepkg crate builds on,
//! in the spirit of `k8s.io/apimachinery/pkg/util`.
//!
//! | module | what |
//! |---|---|
//! | [`error`] | the shared [`ErrorKind`] set every crate's error maps to, and this crate's [`Error`] |
//! | [`http_status`] | the one table from an HTTP status code to an [`ErrorKind`] and a retryable flag, used by every HTTP backend |
//! | [`quantity`] | Kubernetes resource quantities (`100m`, `1.5Gi`): exact parsing, arithmetic, canonical form |
//! | [`selector`] | label selectors (`env in (prod),tier!=cache`) and field selectors |
//! | [`yaml`] | splitting and parsing multi-document YAML / JSON manifests |
//! | [`names`] | DNS-1123 / DNS-1035 names, label keys and values, with the API server's messages |
//! | [`duration`] | Go-style durations (`1h30m`, `250ms`) |
//! | [`retry`] | async retry with exponential backoff, full jitter and `Retry-After` |
//! | [`secret`] | [`Secret<T>`](secret::Secret), redacted in logs and zeroised on drop |
//! | [`paging`] | the platform's `Page<T>` and pagination of collections and streams |
//!
//! ```
//! use kubepkg_util::{ErrorKind, quantity::Quantity, selector::Selector};
//!
//! assert_eq!(ErrorKind::NotFound.http_status(), 404);
//! assert!(ErrorKind::Unavailable.is_retryable());
//!
//! let request: Quantity = "1.5Gi".parse()?;
//! assert_eq!(request.to_string(), "1536Mi");
//!
//! let selector: Selector = "app=web,env in (prod)".parse()?;
//! assert!(selector.matches(&[("app", "web"), ("env", "prod")]));
//! # Ok::<(), kubepkg_util::Error>(())
//! ```
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): each item badged with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod duration;
pub mod error;
pub mod http_status;
pub mod names;
pub mod paging;
pub mod quantity;
pub mod retry;
pub mod secret;
pub mod selector;
pub mod yaml;

pub use error::{Error, ErrorKind, HasErrorKind, Result};
