//! # kubepkg_log_api
//!
//! One logging configuration and one global init for the `tracing`, `slog` and `log` families.
//!
//! ```
//! use kubepkg_log_api::Error;
//! use kubepkg_util::ErrorKind;
//!
//! let err = Error::Invalid("empty name".into());
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! ```
#![warn(missing_docs)]

pub mod error;

pub use error::{Error, Result};
