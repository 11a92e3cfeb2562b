//! The error type of `kubepkg_storage_api`.
//!
//! Every backend maps its failures onto one [`Error`] enum whose
//! [`kind()`](Error::kind) is one of the shared [`ErrorKind`]s, so a caller can
//! react the same way to a missing bucket on S3, on disk or in memory.

use kubepkg_util::{ErrorKind, HasErrorKind};

/// Errors returned by `kubepkg_storage_api`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was rejected before anything was sent or changed
    /// (bad bucket name, bad object key, bad range, bad config...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The bucket, object, exchange or queue does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The bucket (or other named thing) already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request conflicts with the current state: a non-empty bucket
    /// deleted, a queue re-declared with different arguments (AMQP 406
    /// `PRECONDITION_FAILED`)...
    #[error("conflict: {0}")]
    Conflict(String),
    /// Missing or wrong credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Valid credentials that lack the permission for this operation.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The server cannot be reached, the connection was lost, or it answered
    /// with a transient failure.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// This backend does not offer the requested operation, or it was not
    /// compiled in (cargo feature off).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The broker refused a published message (a publisher-confirm nack:
    /// a full queue with `reject-publish` overflow, or a broker-side
    /// failure). Not retried by this crate; its kind is `Unavailable`, so a
    /// caller may publish again later.
    #[error("the broker refused the message: {0}")]
    Nacked(String),
    /// Data arrived damaged: a checksum or ETag did not match what was sent.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// The object was replaced or deleted while it was being read in
    /// several requests (a ranged GET bound to the ETag seen first was
    /// refused), so the pieces would not belong to one version. Its kind is
    /// `Conflict`; downloading again reads the new version.
    #[error("changed during the download: {0}")]
    Changed(String),
    /// A local I/O failure (local backend, reading a config file...).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An unexpected answer or a bug; details in the message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::Conflict(_) | Error::Changed(_) => ErrorKind::Conflict,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unavailable(_) | Error::Nacked(_) => ErrorKind::Unavailable,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Integrity(_) | Error::Internal(_) => ErrorKind::Internal,
            Error::Io { source, .. } => io_kind(source),
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether retrying the same operation unchanged may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::PermissionDenied => ErrorKind::Forbidden,
        K::InvalidInput | K::InvalidData => ErrorKind::Invalid,
        K::TimedOut => ErrorKind::Timeout,
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::Interrupted => ErrorKind::Unavailable,
        K::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Internal,
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
    fn kinds_follow_variants() {
        assert_eq!(Error::NotFound("b".into()).kind(), ErrorKind::NotFound);
        assert_eq!(Error::Conflict("q".into()).kind(), ErrorKind::Conflict);
        assert_eq!(Error::Integrity("md5".into()).kind(), ErrorKind::Internal);
        let e = Error::io(
            "reading",
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert!(e.to_string().starts_with("reading: "));
    }
}
