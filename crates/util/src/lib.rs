//! # kubepkg-util
//!
//! The small, dependency-light helpers every other kubepkg crate builds on,
//! in the spirit of `k8s.io/apimachinery/pkg/util`.
//!
//! - [`error`]: the shared [`ErrorKind`] set every crate's error maps to.
//!
//! ```
//! use kubepkg_util::ErrorKind;
//!
//! assert_eq!(ErrorKind::NotFound.http_status(), 404);
//! assert!(ErrorKind::Unavailable.is_retryable());
//! ```
#![warn(missing_docs)]

pub mod error;

pub use error::{Error, ErrorKind, HasErrorKind, Result};
