//! The error type of `kubepkg_log_api`.

use kubepkg_util::{ErrorKind, HasErrorKind};

/// Errors returned by `kubepkg_log_api`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was rejected before anything was sent or changed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// This backend does not offer the requested operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Unsupported(_) => ErrorKind::Unsupported,
        }
    }
}

impl HasErrorKind for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
