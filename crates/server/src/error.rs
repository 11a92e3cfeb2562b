//! The server's error type: every failure a handler can meet, each answered
//! as the platform's envelope with the code and HTTP status of its kind
//! ([`kubepkg_platform::api::ResponseCode`]) or of a protocol problem
//! ([`Problem`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kubepkg_platform::api::{ApiResponse, ResponseCode};
use kubepkg_util::ErrorKind;

/// A request problem that happens before a handler understands the request:
/// each has an HTTP status and an envelope code of its own (status × 100),
/// beside the platform's table of error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The body or a query parameter could not be read (400, code 40000).
    Malformed,
    /// No or a bad bearer token (401, code 40100).
    Unauthenticated,
    /// The route does not exist (404, code 40400).
    NoRoute,
    /// The route exists, the method does not (405, code 40500).
    MethodNotAllowed,
    /// The body is larger than the configured limit (413, code 41300).
    TooLarge,
    /// The body's content type is not one the route reads (415, code 41500).
    UnsupportedMediaType,
}

impl Problem {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Problem::Malformed => StatusCode::BAD_REQUEST,
            Problem::Unauthenticated => StatusCode::UNAUTHORIZED,
            Problem::NoRoute => StatusCode::NOT_FOUND,
            Problem::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Problem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The envelope code.
    pub fn code(self) -> u32 {
        u32::from(self.status().as_u16()) * 100
    }

    /// The error kind it counts as.
    pub fn kind(self) -> ErrorKind {
        match self {
            Problem::Unauthenticated => ErrorKind::Unauthorized,
            Problem::NoRoute => ErrorKind::NotFound,
            Problem::MethodNotAllowed => ErrorKind::Unsupported,
            _ => ErrorKind::Invalid,
        }
    }
}

/// Every failure of a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform (store, core layer, providers) failed.
    #[error(transparent)]
    Platform(Box<kubepkg_platform::Error>),
    /// A cluster's Kubernetes API failed.
    #[error(transparent)]
    Kubernetes(Box<kubepkg_k8s_api::Error>),
    /// An image registry failed.
    #[error(transparent)]
    Registry(Box<kubepkg_image_api::Error>),
    /// Object storage or a message queue failed.
    #[error(transparent)]
    Storage(Box<kubepkg_storage_api::Error>),
    /// The request is not understood (see [`Problem`]).
    #[error("{message}")]
    Request {
        /// What is wrong.
        problem: Problem,
        /// What and where.
        message: String,
    },
    /// Well-formed, but not acceptable (422).
    #[error("{0}")]
    Invalid(String),
    /// The token lacks the role or the cluster (403).
    #[error("{0}")]
    Forbidden(String),
    /// Something the server does not have (404).
    #[error("{0}")]
    NotFound(String),
    /// The request ran past the server's time limit (504).
    #[error("the request took longer than {0} s")]
    Timeout(u64),
    /// The server could not serve (binding, TLS files, a signal handler).
    #[error("{0}")]
    Serve(String),
}

macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    Platform(kubepkg_platform::Error),
    Kubernetes(kubepkg_k8s_api::Error),
    Registry(kubepkg_image_api::Error),
    Storage(kubepkg_storage_api::Error)
);

/// `Result` with the server's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Problem`] with its message.
    pub fn request(problem: Problem, message: impl Into<String>) -> Error {
        Error::Request {
            problem,
            message: message.into(),
        }
    }

    /// The shared kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Platform(e) => e.kind(),
            Error::Kubernetes(e) => e.kind(),
            Error::Registry(e) => e.kind(),
            Error::Storage(e) => e.kind(),
            Error::Request { problem, .. } => problem.kind(),
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Serve(_) => ErrorKind::Internal,
        }
    }

    /// The HTTP status and envelope code of the answer.
    pub fn status_and_code(&self) -> (StatusCode, u32) {
        if let Error::Request { problem, .. } = self {
            return (problem.status(), problem.code());
        }
        let row = ResponseCode::for_kind(self.kind());
        let status =
            StatusCode::from_u16(row.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, row.code)
    }
}

/// The message of an answered error, kept on the response for the audit
/// log and the request's log line.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), code, error = %message, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), code, error = %message, "request refused");
        }
        let body = ApiResponse::<()> {
            code,
            message: message.clone(),
            data: None,
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorMessage(message));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
