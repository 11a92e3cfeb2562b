//! The error type of `kubepkg_platform`.
//!
//! Every failure — of the store, of a cluster's API, of a vendor — is one
//! [`Error`] whose [`Error::kind`] is one of the shared
//! [`kubepkg_util::ErrorKind`]s; [`crate::api::ResponseCode`] maps each kind
//! to the response code and HTTP status of the platform's API.

use kubepkg_util::{ErrorKind, HasErrorKind};

/// Errors returned by `kubepkg_platform`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was rejected before anything was sent or changed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A setting of the platform's configuration is missing or malformed.
    #[error("configuration: {setting}: {message}")]
    Config {
        /// The setting (a dotted key such as `encryption.keys`, an
        /// environment variable, or a file).
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// This backend does not offer the requested operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The cluster, record or credential does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A record of that name exists already.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A concurrent update won: the record's version changed since it was read.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Missing or rejected credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The stored credential lacks the permission.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A cluster, store or vendor cannot be reached (or is known to be down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An operation did not finish within its deadline.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A stored credential could not be decrypted (wrong or unknown key,
    /// tampered ciphertext). Never garbage: decryption is authenticated.
    #[error("cannot decrypt the credential of {owner} with key {key_id:?}: {message}")]
    Decrypt {
        /// Whose credential.
        owner: String,
        /// The key id stored beside the ciphertext.
        key_id: String,
        /// Why.
        message: String,
    },
    /// The store's database failed.
    #[error("store: {message}")]
    Store {
        /// The kind of the failure (Unavailable for connection problems,
        /// Internal otherwise).
        kind: ErrorKind,
        /// What failed (never a credential).
        message: String,
        /// The database error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A Kubernetes call failed.
    #[error("cluster {cluster}: {source}")]
    Kubernetes {
        /// The cluster's name.
        cluster: String,
        /// The k8s-api error.
        #[source]
        source: Box<kubepkg_k8s_api::Error>,
    },
    /// An image registry or engine call failed.
    #[error(transparent)]
    Image(Box<kubepkg_image_api::Error>),
    /// An object storage or queue call failed.
    #[error(transparent)]
    Storage(Box<kubepkg_storage_api::Error>),
    /// Logging could not be set up.
    #[error(transparent)]
    Log(#[from] kubepkg_log_api::Error),
    /// A vendor API answered with an error.
    #[error("{provider}: {code}: {message} (request id {request_id:?})")]
    Provider {
        /// The provider (`"tke"`, `"ack"`, …).
        provider: String,
        /// The shared kind the vendor's code maps to.
        kind: ErrorKind,
        /// The vendor's error code.
        code: String,
        /// The vendor's message.
        message: String,
        /// The vendor's request id, when it sent one.
        request_id: Option<String>,
    },
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Config { .. } => ErrorKind::Invalid,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Decrypt { .. } => ErrorKind::Invalid,
            Error::Store { kind, .. } => *kind,
            Error::Kubernetes { source, .. } => source.kind(),
            Error::Image(e) => e.kind(),
            Error::Storage(e) => e.kind(),
            Error::Log(e) => e.kind(),
            Error::Provider { kind, .. } => *kind,
        }
    }

    /// Wraps a k8s-api error with the cluster it came from.
    pub fn kubernetes(cluster: impl Into<String>, source: kubepkg_k8s_api::Error) -> Error {
        Error::Kubernetes {
            cluster: cluster.into(),
            source: Box::new(source),
        }
    }

    /// A configuration error naming the setting.
    pub fn config(setting: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

impl From<kubepkg_image_api::Error> for Error {
    fn from(e: kubepkg_image_api::Error) -> Self {
        Error::Image(Box::new(e))
    }
}

impl From<kubepkg_storage_api::Error> for Error {
    fn from(e: kubepkg_storage_api::Error) -> Self {
        Error::Storage(Box::new(e))
    }
}

impl HasErrorKind for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
