//! The error type of `kubepkg_log_api`.

use kubepkg_util::{ErrorKind, HasErrorKind};

/// Errors returned by `kubepkg_log_api`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration (or a filter directive string) was rejected; nothing
    /// was installed or changed.
    #[error("invalid logging configuration: {0}")]
    Invalid(String),
    /// A process-wide logger is already installed: [`init`](crate::init) was
    /// called before, or another library installed a global `tracing`
    /// subscriber or `log` logger first.
    #[error("already initialised: {0}")]
    AlreadyExists(String),
    /// A global operation ([`set_filter`](crate::set_filter)) was called
    /// before [`init`](crate::init).
    #[error("logging is not initialised: call kubepkg_log_api::init first")]
    NotInitialized,
    /// The background writer did not finish in time (for example an output
    /// that stopped accepting writes).
    #[error("timed out: {0}")]
    Timeout(String),
    /// The background writer has shut down; the pipeline's guard was dropped.
    #[error("log writer unavailable: {0}")]
    Unavailable(String),
    /// This backend does not offer the requested operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::NotInitialized => ErrorKind::NotFound,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Unsupported(_) => ErrorKind::Unsupported,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

impl HasErrorKind for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map() {
        assert_eq!(Error::invalid("x").kind(), ErrorKind::Invalid);
        assert_eq!(
            Error::AlreadyExists("x".into()).kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(Error::NotInitialized.kind(), ErrorKind::NotFound);
        assert_eq!(Error::Timeout("x".into()).kind(), ErrorKind::Timeout);
    }
}
