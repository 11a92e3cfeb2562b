//! The error type of `kubepkg_image_api`.

use kubepkg_util::{ErrorKind, HasErrorKind};

/// A boxed underlying error (transport, I/O, decoding).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors returned by `kubepkg_image_api`.
///
/// Every variant maps to one shared [`ErrorKind`] through [`Error::kind`].
/// No variant ever carries a credential: messages come from servers or from
/// this crate, and request URLs never embed passwords or tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was rejected before anything was sent or changed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// This backend does not offer the requested operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The configuration cannot be used (missing URL, unknown scheme, unreadable TLS file…).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A registry answered with an error status.
    #[error("{backend} {operation} {target}: HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Registry {
        /// `distribution` or `harbor`.
        backend: &'static str,
        /// The operation, e.g. `list_tags`.
        operation: &'static str,
        /// What the operation was about (repository, project, URL path…).
        target: String,
        /// The HTTP status code.
        status: u16,
        /// The first error code of the body (`NAME_UNKNOWN`, `UNAUTHORIZED`…), if any.
        code: Option<String>,
        /// The server's message (or the status' reason when the body had none).
        message: String,
        /// How long the server asked to wait before trying again (its
        /// `Retry-After` header), if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// A server asked for something this client refuses to do: send
    /// credentials to a token realm over plain http or on another host,
    /// follow a pagination link to another origin. Nothing was sent.
    #[error("{backend} {operation} {target}: refused: {message}")]
    Refused {
        /// `distribution` or `harbor`.
        backend: &'static str,
        /// The operation.
        operation: &'static str,
        /// The URL or resource concerned.
        target: String,
        /// Why.
        message: String,
    },
    /// A response body was larger than this client reads into memory
    /// (manifests: 4 MiB, as registries enforce on push; API responses and
    /// in-memory blobs: see the backend's docs). Nothing was decoded.
    #[error("{backend} {operation} {target}: {what} is larger than {limit} bytes")]
    TooLarge {
        /// `distribution` or `harbor`.
        backend: &'static str,
        /// The operation.
        operation: &'static str,
        /// What was fetched.
        target: String,
        /// What the body was (`manifest`, `response`, `blob`).
        what: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The registry could not be reached, or the connection broke.
    #[error("{backend} {operation} {target}: {message}")]
    Transport {
        /// `distribution`, `harbor` or `docker`.
        backend: &'static str,
        /// The operation.
        operation: &'static str,
        /// What the operation was about.
        target: String,
        /// A description of the failure.
        message: String,
        /// Whether the failure was a timeout.
        timeout: bool,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A response could not be decoded, or violated the protocol.
    #[error("{backend} {operation} {target}: unexpected response: {message}")]
    Protocol {
        /// The backend.
        backend: &'static str,
        /// The operation.
        operation: &'static str,
        /// What the operation was about.
        target: String,
        /// What was wrong.
        message: String,
    },
    /// Content did not match its digest.
    #[error("digest mismatch for {target}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        target: String,
        /// The digest announced (header or reference).
        expected: String,
        /// The digest of the received bytes.
        actual: String,
    },
    /// The Docker engine answered with an error status.
    #[error("docker {operation} {target}: HTTP {status}: {message}")]
    Engine {
        /// The operation, e.g. `inspect_image`.
        operation: &'static str,
        /// The image, container or path the operation was about.
        target: String,
        /// The HTTP status code.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// An image build failed; `message` is the engine's own message
    /// (e.g. a Dockerfile parse error or a failing `RUN` step).
    #[error("docker build failed: {message}")]
    Build {
        /// The engine's message.
        message: String,
    },
    /// A streamed engine operation (pull, push, load) reported an error.
    #[error("docker {operation} {target}: {message}")]
    EngineStream {
        /// `pull`, `push` or `load`.
        operation: &'static str,
        /// The image reference.
        target: String,
        /// The engine's message.
        message: String,
    },
    /// Local I/O failed (reading a build context, writing a tarball).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Config(_) | Error::Build { .. } | Error::TooLarge { .. } => {
                ErrorKind::Invalid
            }
            Error::Refused { .. } => ErrorKind::Forbidden,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            // Harbor answers 409 when what a create / add names already exists.
            Error::Registry {
                status: 409,
                operation,
                ..
            } if operation.starts_with("create") || operation.starts_with("add") => {
                ErrorKind::AlreadyExists
            }
            Error::Registry { status, code, .. } => registry_kind(*status, code.as_deref()),
            Error::Transport { timeout, .. } => {
                if *timeout {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                }
            }
            Error::Protocol { .. } | Error::DigestMismatch { .. } => ErrorKind::Internal,
            Error::Engine { status, .. } => kubepkg_util::http_status::kind(*status),
            Error::EngineStream { message, .. } => stream_kind(message),
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
                _ => ErrorKind::Internal,
            },
        }
    }

    /// The HTTP status a server answered with, if this error came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Registry { status, .. } | Error::Engine { status, .. } => Some(*status),
            _ => None,
        }
    }

    #[cfg_attr(
        not(any(feature = "docker", feature = "distribution")),
        allow(dead_code)
    )]
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// Kind of a registry error: the status by the table every kubepkg HTTP
/// backend shares ([`kubepkg_util::http_status::classify`]), refined by the
/// distribution-spec error code.
fn registry_kind(status: u16, code: Option<&str>) -> ErrorKind {
    match code {
        Some("NAME_UNKNOWN" | "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "NOT_FOUND") => {
            ErrorKind::NotFound
        }
        Some("UNAUTHORIZED") => ErrorKind::Unauthorized,
        Some("DENIED" | "FORBIDDEN") => ErrorKind::Forbidden,
        Some("UNSUPPORTED") => ErrorKind::Unsupported,
        Some("TOOMANYREQUESTS") => ErrorKind::Unavailable,
        Some("CONFLICT") => ErrorKind::Conflict,
        Some("NAME_INVALID" | "TAG_INVALID" | "DIGEST_INVALID" | "MANIFEST_INVALID") => {
            ErrorKind::Invalid
        }
        _ => kubepkg_util::http_status::kind(status),
    }
}

/// The engine reports pull / push / load failures as text inside a 200
/// stream; classify the usual ones.
fn stream_kind(message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    if m.contains("unauthorized") || m.contains("authentication required") {
        ErrorKind::Unauthorized
    } else if m.contains("denied") {
        ErrorKind::Forbidden
    } else if m.contains("not found")
        || m.contains("manifest unknown")
        || m.contains("does not exist")
        || m.contains("no such image")
    {
        ErrorKind::NotFound
    } else if m.contains("connection refused")
        || m.contains("no such host")
        || m.contains("i/o timeout")
        || m.contains("connection reset")
    {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Internal
    }
}

impl HasErrorKind for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Registry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(status: u16, code: Option<&str>) -> Error {
        Error::Registry {
            backend: "distribution",
            operation: "list_tags",
            target: "x".into(),
            status,
            code: code.map(Into::into),
            message: "m".into(),
            retry_after: None,
        }
    }

    #[test]
    fn registry_codes_refine_statuses() {
        assert_eq!(reg(404, Some("NAME_UNKNOWN")).kind(), ErrorKind::NotFound);
        assert_eq!(reg(401, None).kind(), ErrorKind::Unauthorized);
        assert_eq!(reg(405, Some("UNSUPPORTED")).kind(), ErrorKind::Unsupported);
        assert_eq!(reg(400, Some("UNSUPPORTED")).kind(), ErrorKind::Unsupported);
        assert_eq!(reg(503, None).kind(), ErrorKind::Unavailable);
        assert_eq!(reg(412, None).kind(), ErrorKind::Conflict);
        assert_eq!(reg(500, None).kind(), ErrorKind::Internal);
    }

    /// Without a code that says more, a status means what it means to every
    /// other kubepkg HTTP backend (k8s-api and storage-api's S3 backend test
    /// the same statuses).
    #[test]
    fn bare_statuses_follow_the_shared_table() {
        for status in [
            400, 401, 403, 404, 405, 408, 409, 410, 412, 413, 418, 422, 429, 500, 501, 502, 503,
            504, 599,
        ] {
            let shared = kubepkg_util::http_status::kind(status);
            assert_eq!(reg(status, None).kind(), shared, "{status}");
            assert_eq!(reg(status, Some("UNKNOWN")).kind(), shared, "{status}");
            let engine = Error::Engine {
                operation: "pull",
                target: "t".into(),
                status,
                message: "m".into(),
            };
            assert_eq!(engine.kind(), shared, "{status}");
        }
        assert_eq!(reg(408, None).kind(), ErrorKind::Timeout);
        assert_eq!(reg(410, None).kind(), ErrorKind::NotFound);
    }

    #[test]
    fn display_names_code_and_target() {
        let s = reg(404, Some("NAME_UNKNOWN")).to_string();
        assert!(
            s.contains("NAME_UNKNOWN") && s.contains("list_tags x"),
            "{s}"
        );
    }

    #[test]
    fn engine_stream_messages_are_classified() {
        let e = |m: &str| Error::EngineStream {
            operation: "push",
            target: "t".into(),
            message: m.into(),
        };
        assert_eq!(
            e("unauthorized: authentication required").kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(e("manifest unknown").kind(), ErrorKind::NotFound);
        assert_eq!(e("something odd").kind(), ErrorKind::Internal);
        assert_eq!(
            Error::Build {
                message: "unknown instruction".into()
            }
            .kind(),
            ErrorKind::Invalid
        );
    }
}
