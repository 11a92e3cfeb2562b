//! # kubepkg_k8s_api
//!
//! Kubernetes clusters of any vendor: connection, a per-cluster client cache, and the core resource families.
//!
//! ```
//! use kubepkg_k8s_api::Error;
//! use kubepkg_util::ErrorKind;
//!
//! let err = Error::Invalid("empty name".into());
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! ```
#![warn(missing_docs)]

pub mod error;

pub use error::{Error, Result};
