//! # kubepkg_platform
//!
//! The platform layer: vendor adapters (TKE, ACK, Rancher, ACR, Harbor) and a core layer that queries each cluster's Kubernetes API directly.
//!
//! ```
//! use kubepkg_platform::Error;
//! use kubepkg_util::ErrorKind;
//!
//! let err = Error::Invalid("empty name".into());
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod crypto;
pub mod error;
pub mod init;
pub mod store;

pub use config::PlatformConfig;
pub use crypto::Keyring;
pub use error::{Error, Result};
pub use init::init;
pub use store::Store;
