//! # kubepkg_image_api
//!
//! Image registries (Harbor, any OCI distribution registry) and the Docker engine, each behind one trait.
//!
//! ```
//! use kubepkg_image_api::Error;
//! use kubepkg_util::ErrorKind;
//!
//! let err = Error::Invalid("empty name".into());
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! ```
#![warn(missing_docs)]

pub mod error;

pub use error::{Error, Result};
