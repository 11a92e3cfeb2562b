//! The shared error kinds every kubepkg crate maps its errors to, and this
//! crate's own error type.

use std::fmt;

/// The small, shared set of error kinds.
///
/// Every kubepkg crate has its own `thiserror` error enum with a `kind()`
/// method returning one of these, so a caller (the platform's API layer, a
/// retry policy) can decide what to do with any backend's error without
/// knowing the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object, bucket, queue, cluster... does not exist.
    NotFound,
    /// Creating something that already exists.
    AlreadyExists,
    /// A concurrent change won (optimistic concurrency, resourceVersion).
    Conflict,
    /// The input is malformed or fails validation; retrying will not help.
    Invalid,
    /// Missing or wrong credentials.
    Unauthorized,
    /// Valid credentials without the permission for this operation.
    Forbidden,
    /// The server cannot be reached or answered with a transient failure.
    Unavailable,
    /// The operation did not finish within its deadline.
    Timeout,
    /// The backend does not offer this operation.
    Unsupported,
    /// A bug or an unexpected answer; details are in the error message.
    Internal,
}

impl ErrorKind {
    /// All kinds, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::Conflict,
        ErrorKind::Invalid,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
    ];

    /// A stable snake_case name, e.g. `"not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether an operation failing with this kind may succeed when retried
    /// unchanged (`Unavailable`, `Timeout`).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// The HTTP status code that best represents this kind.
    ///
    /// The reverse of [`crate::http_status::classify`]: classifying the
    /// status gives this kind back (`AlreadyExists` gives `Conflict`, the
    /// two share `409`).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 422,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Unsupported => 501,
            ErrorKind::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every kubepkg error type.
pub trait HasErrorKind {
    /// The shared kind of this error.
    fn kind(&self) -> ErrorKind;

    /// How long the server asked the client to wait before retrying (an HTTP
    /// `Retry-After` header, a rate limiter's hint), if it said so.
    ///
    /// The default classifier of [`crate::retry`] honours it. The default
    /// implementation returns `None`.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Errors of `kubepkg-util`'s own parsers and helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not parse or fails validation.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was being parsed, e.g. `"quantity"`.
        what: &'static str,
        /// Why it was rejected.
        message: String,
    },
    /// One document of a multi-document YAML or JSON input failed to parse.
    #[error("document {index} (line {line}): {message}")]
    Document {
        /// The document's index among the non-empty documents (0-based).
        index: usize,
        /// The 1-based line of the error in the whole input, or of the
        /// document's start when the parser gave no position.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A computation overflowed the representable range.
    #[error("{what} out of range: {message}")]
    OutOfRange {
        /// What overflowed.
        what: &'static str,
        /// Details.
        message: String,
    },
}

impl Error {
    /// Builds an [`Error::Invalid`].
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            message: message.into(),
        }
    }

    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } | Error::Document { .. } | Error::OutOfRange { .. } => {
                ErrorKind::Invalid
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn only_transient_kinds_retry() {
        assert!(ErrorKind::Unavailable.is_retryable());
        assert!(!ErrorKind::Invalid.is_retryable());
        assert!(!ErrorKind::Forbidden.is_retryable());
    }
}
