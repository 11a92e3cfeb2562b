//! The error type of `kubepkg_k8s_api`.
//!
//! Every failure of the Kubernetes API is mapped to one of the shared
//! [`ErrorKind`]s: the HTTP status and the `reason` of the server's `Status`
//! decide: the status by the table every kubepkg HTTP backend shares
//! ([`kubepkg_util::http_status`]: 404 → NotFound, 409 → Conflict, 422 →
//! Invalid with the server's field causes, 401, 403, 408 → Timeout, 410 →
//! NotFound, 429/502/503 → Unavailable, 500 → Internal, 504 → Timeout),
//! refined by the reason (see [`kind_of_status`]: `AlreadyExists`, an
//! `Expired` 410 → Conflict); transport failures are Unavailable (a server
//! certificate that fails verification says so, and is not retried), except credentials
//! that can never be sent (a bearer token or basic-auth value that is not a
//! valid header, an exec plugin without a command), which are
//! [`Error::Config`] (Invalid): retrying or rebuilding the client cannot fix
//! them.

use kubepkg_util::{ErrorKind, HasErrorKind};
use std::fmt;

/// One field-level cause the API server gave for rejecting a request
/// (from `Status.details.causes`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cause {
    /// Machine-readable reason, e.g. `FieldValueRequired`.
    pub reason: String,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// Human-readable message.
    pub message: String,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A failure answered by the API server (a `Status` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The shared kind derived from `code` and `reason`.
    pub kind: ErrorKind,
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. `AlreadyExists`, `Forbidden`, `Invalid`.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// Field-level causes (validation failures).
    pub causes: Vec<Cause>,
    /// `Status.details.retryAfterSeconds`, when the server suggested one.
    pub retry_after_secs: Option<u32>,
}

impl ApiFailure {
    /// Whether the same request may succeed when sent again, by its status
    /// ([`kubepkg_util::http_status::classify`]: 408, 429, 500, 502, 503,
    /// 504). Whether the request's *method* may safely be resent is the
    /// caller's decision; this client's own retries resend only idempotent
    /// requests on anything but 429.
    pub fn retryable(&self) -> bool {
        kubepkg_util::http_status::retryable(self.code)
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.message, self.code, self.reason)?;
        if !self.causes.is_empty() {
            let list: Vec<String> = self.causes.iter().map(ToString::to_string).collect();
            write!(f, ": {}", list.join("; "))?;
        }
        Ok(())
    }
}

/// Errors returned by `kubepkg_k8s_api`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server answered with a failure `Status`.
    #[error("kubernetes API: {0}")]
    Api(ApiFailure),
    /// The input was rejected before anything was sent or changed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A document of a bundle does not parse.
    #[error("document {index} (line {line}) does not parse: {message}")]
    Parse {
        /// Zero-based index of the document in the bundle.
        index: usize,
        /// One-based line where the document starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The cluster configuration (kubeconfig, token, CA…) is unusable.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// The API server cannot be reached.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The object, kind or cluster does not exist (raised locally, e.g. an
    /// unknown kind in discovery or an unregistered cluster name).
    #[error("not found: {0}")]
    NotFound(String),
    /// Something of that name exists already and is not what the call
    /// expected (raised locally, e.g. a Secret in the way of an import).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// This cluster or backend does not offer the requested operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An unexpected answer or a bug; details in the message.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// The shared kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Api(f) => f.kind,
            Error::Invalid(_) | Error::Parse { .. } | Error::Config(_) => ErrorKind::Invalid,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The API server's failure, when this error is one.
    pub fn api(&self) -> Option<&ApiFailure> {
        match self {
            Error::Api(f) => Some(f),
            _ => None,
        }
    }

    /// The server's field-level causes (empty unless the server gave some).
    pub fn causes(&self) -> &[Cause] {
        match self {
            Error::Api(f) => &f.causes,
            _ => &[],
        }
    }

    /// Whether this is a `NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Whether the same call may succeed when made again: the kind is
    /// Unavailable or Timeout, or the API server answered a status the
    /// shared table calls retryable ([`ApiFailure::retryable`]: a `500`
    /// is Internal, yet worth another try). Whether the call's method may
    /// safely be repeated is the caller's decision.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable() || self.api().is_some_and(ApiFailure::retryable)
    }

    /// Whether the server answered `410 Gone` (an expired resourceVersion).
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Api(f) if f.code == 410 || f.reason == "Expired" || f.reason == "Gone")
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}

impl HasErrorKind for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an HTTP status code and a `Status.reason` to the shared kind.
///
/// The status decides by the one table of
/// [`kubepkg_util::http_status::classify`], shared with every other kubepkg
/// HTTP backend; a `reason` the API server set refines it:
///
/// | reason | kind |
/// |---|---|
/// | `AlreadyExists` | `AlreadyExists` (a 409 is `Conflict` by status alone) |
/// | `NotFound`, `Gone` | `NotFound` |
/// | `Expired` | `Conflict`: a compacted resourceVersion or an expired continue token (`410`) — the caller's view is stale and must be re-listed, as after a lost optimistic-concurrency race |
/// | `Forbidden` | `Forbidden` |
/// | `Unauthorized` | `Unauthorized` |
/// | `Invalid`, `BadRequest` | `Invalid` |
/// | `Timeout`, `ServerTimeout` | `Timeout` |
/// | anything else | the table's kind for `code` |
pub fn kind_of_status(code: u16, reason: &str) -> ErrorKind {
    match reason {
        "AlreadyExists" => ErrorKind::AlreadyExists,
        "NotFound" | "Gone" => ErrorKind::NotFound,
        "Expired" => ErrorKind::Conflict,
        "Forbidden" => ErrorKind::Forbidden,
        "Unauthorized" => ErrorKind::Unauthorized,
        "Invalid" | "BadRequest" => ErrorKind::Invalid,
        "Timeout" | "ServerTimeout" => ErrorKind::Timeout,
        _ => kubepkg_util::http_status::kind(code),
    }
}

/// Marker error produced by the per-request timeout layer.
#[derive(Debug)]
pub(crate) struct RequestTimedOut(pub std::time::Duration);

impl fmt::Display for RequestTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no response within {:?}", self.0)
    }
}

impl std::error::Error for RequestTimedOut {}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// Whether a failure of kube's auth layer (raised per request) is a
/// configuration problem no retry or rebuild can fix. Exec plugin runs
/// and token refreshes may fail transiently, so they stay Unavailable.
fn auth_is_config(e: &kube::client::AuthError) -> bool {
    use kube::client::AuthError as A;
    matches!(
        e,
        A::InvalidBasicAuth(_)
            | A::InvalidBearerToken(_)
            | A::MissingCommand
            | A::ExecMissingClusterInfo
    )
}

/// Whether a transport failure is the TLS handshake rejecting the server's
/// certificate (rustls: "invalid peer certificate: UnknownIssuer",
/// "…: NotValidForName", an expired certificate…). Retrying cannot fix it.
pub(crate) fn is_certificate_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if s.to_string().contains("invalid peer certificate") {
            return true;
        }
        cur = s.source();
    }
    false
}

fn transport_error(e: &(dyn std::error::Error + 'static)) -> Error {
    if is_certificate_failure(e) {
        return Error::Unavailable(format!(
            "TLS verification of the API server's certificate failed (is the cluster's CA \
             configured?): {}",
            chain_text(e)
        ));
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if let Some(t) = s.downcast_ref::<RequestTimedOut>() {
            return Error::Timeout(t.to_string());
        }
        if let Some(a) = s.downcast_ref::<kube::client::AuthError>()
            && auth_is_config(a)
        {
            return Error::Config(format!("authentication: {}", chain_text(e)));
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return Error::Timeout(chain_text(e));
        }
        cur = s.source();
    }
    Error::Unavailable(chain_text(e))
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Error::Api(failure_from_status(&status)),
            kube::Error::HyperError(ref h) => transport_error(h),
            kube::Error::Service(ref s) => transport_error(s.as_ref()),
            kube::Error::ReadEvents(ref io) => transport_error(io),
            #[cfg(feature = "exec")]
            kube::Error::UpgradeConnection(ref u) => Error::Unavailable(chain_text(u)),
            kube::Error::SerdeError(ref s) => {
                Error::Internal(format!("unexpected answer from the API server: {s}"))
            }
            kube::Error::BuildRequest(ref b) => Error::Invalid(chain_text(b)),
            kube::Error::HttpError(ref h) => Error::Invalid(chain_text(h)),
            kube::Error::InferConfig(ref c) => Error::Config(chain_text(c)),
            kube::Error::InferKubeconfig(ref c) => Error::Config(chain_text(c)),
            kube::Error::Auth(ref a) => Error::Config(format!("authentication: {}", chain_text(a))),
            #[cfg(feature = "rustls-tls")]
            kube::Error::RustlsTls(ref t) => Error::Config(format!("TLS: {}", chain_text(t))),
            kube::Error::Discovery(ref d) => Error::NotFound(chain_text(d)),
            other => Error::Internal(chain_text(&other)),
        }
    }
}

/// Converts a kube `Status` into an [`ApiFailure`].
pub(crate) fn failure_from_status(s: &kube::core::Status) -> ApiFailure {
    let causes = s
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| Cause {
                    reason: c.reason.clone(),
                    field: c.field.clone(),
                    message: c.message.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let retry_after_secs = s
        .details
        .as_ref()
        .map(|d| d.retry_after_seconds)
        .filter(|r| *r > 0);
    ApiFailure {
        kind: kind_of_status(s.code, &s.reason),
        code: s.code,
        reason: s.reason.clone(),
        message: s.message.clone(),
        causes,
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_kinds() {
        assert_eq!(kind_of_status(404, "NotFound"), ErrorKind::NotFound);
        assert_eq!(
            kind_of_status(409, "AlreadyExists"),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind_of_status(409, "Conflict"), ErrorKind::Conflict);
        assert_eq!(kind_of_status(422, "Invalid"), ErrorKind::Invalid);
        assert_eq!(kind_of_status(401, ""), ErrorKind::Unauthorized);
        assert_eq!(kind_of_status(403, "Forbidden"), ErrorKind::Forbidden);
        assert_eq!(
            kind_of_status(429, "TooManyRequests"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_of_status(503, "ServiceUnavailable"),
            ErrorKind::Unavailable
        );
        assert_eq!(kind_of_status(504, ""), ErrorKind::Timeout);
        assert_eq!(kind_of_status(410, "Expired"), ErrorKind::Conflict);
        assert_eq!(kind_of_status(410, "Gone"), ErrorKind::NotFound);
        assert_eq!(kind_of_status(500, "ServerTimeout"), ErrorKind::Timeout);
        assert_eq!(kind_of_status(418, ""), ErrorKind::Invalid);
    }

    /// Without a reason, a status means what it means to every other kubepkg
    /// HTTP backend (image-api and storage-api's S3 test the same statuses).
    #[test]
    fn bare_statuses_follow_the_shared_table() {
        for code in [
            400, 401, 403, 404, 405, 408, 409, 410, 412, 413, 422, 429, 500, 501, 502, 503, 504,
            418, 599,
        ] {
            let shared = kubepkg_util::http_status::classify(code);
            assert_eq!(kind_of_status(code, ""), shared.kind, "{code}");
            assert_eq!(kind_of_status(code, "SomethingNew"), shared.kind, "{code}");
        }
        assert_eq!(kind_of_status(408, ""), ErrorKind::Timeout);
        assert_eq!(kind_of_status(410, ""), ErrorKind::NotFound);
        assert_eq!(kind_of_status(500, "InternalError"), ErrorKind::Internal);
    }

    #[test]
    fn a_500_is_internal_yet_retryable() {
        let api = |code: u16, reason: &str| {
            Error::Api(ApiFailure {
                kind: kind_of_status(code, reason),
                code,
                reason: reason.into(),
                message: String::new(),
                causes: Vec::new(),
                retry_after_secs: None,
            })
        };
        let e = api(500, "InternalError");
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.is_retryable());
        assert!(api(408, "").is_retryable());
        assert!(api(503, "ServiceUnavailable").is_retryable());
        assert!(!api(410, "Expired").is_retryable());
        assert!(!api(404, "NotFound").is_retryable());
        assert!(!api(501, "").is_retryable());
        assert!(Error::Unavailable("refused".into()).is_retryable());
        assert!(!Error::Internal("bug".into()).is_retryable());
    }

    #[test]
    fn api_failure_display_lists_causes() {
        let f = ApiFailure {
            kind: ErrorKind::Invalid,
            code: 422,
            reason: "Invalid".into(),
            message: "ConfigMap \"A\" is invalid".into(),
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                field: "metadata.name".into(),
                message: "must be lowercase".into(),
            }],
            retry_after_secs: None,
        };
        let e = Error::Api(f);
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let text = e.to_string();
        assert!(text.contains("metadata.name: must be lowercase"), "{text}");
        assert_eq!(e.causes().len(), 1);
    }

    #[test]
    fn timeout_marker_maps_to_timeout() {
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(RequestTimedOut(std::time::Duration::from_secs(1)));
        let e: Error = kube::Error::Service(boxed).into();
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn an_unsendable_bearer_token_is_a_config_error_not_unavailable() {
        // What kube's auth layer raises for a token ending in a newline.
        let header = http::HeaderValue::try_from("Bearer tok\n").unwrap_err();
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(kube::client::AuthError::InvalidBearerToken(header));
        let e: Error = kube::Error::Service(boxed).into();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let text = e.to_string();
        assert!(text.contains("invalid bearer token"), "{text}");
        assert!(text.contains("failed to parse header value"), "{text}");

        // Also when another layer wrapped it.
        #[derive(Debug)]
        struct Wrapped(kube::client::AuthError);
        impl fmt::Display for Wrapped {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("middleware failed")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(Wrapped(kube::client::AuthError::MissingCommand));
        let e: Error = kube::Error::Service(boxed).into();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");

        // A failing exec plugin may recover: still Unavailable.
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(kube::client::AuthError::ExecPluginFailed);
        let e: Error = kube::Error::Service(boxed).into();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }

    #[test]
    fn refused_connection_is_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(io);
        let e: Error = kube::Error::Service(boxed).into();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
