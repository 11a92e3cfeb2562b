//! # kubepkg_storage_api
//!
//! Object storage (S3, MinIO, local disk, memory) and message queues (AMQP, memory), each behind one trait.
//!
//! ```
//! use kubepkg_storage_api::Error;
//! use kubepkg_util::ErrorKind;
//!
//! let err = Error::Invalid("empty name".into());
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! ```
#![warn(missing_docs)]

pub mod error;

pub use error::{Error, Result};
