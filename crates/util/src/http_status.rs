//! The one table from an HTTP status code to an [`ErrorKind`], with a
//! *retryable* flag kept apart from the kind.
//!
//! Every kubepkg backend that speaks HTTP (k8s-api, image-api's registry and
//! engine clients, storage-api's S3 backend, the platform's vendor adapters)
//! takes the kind of an error status from [`classify`] and only then refines
//! it with what the body says (a Kubernetes `Status.reason`, a
//! distribution-spec or Harbor error code, an S3 `<Code>`), so one status
//! means one kind whichever backend answered it. Retry loops that decide on a
//! status consult [`StatusClass::retryable`]; *which methods* may be retried
//! stays each backend's decision (a POST answered 502 may have been carried
//! out).
//!
//! The kind says *what* went wrong, for a caller or the platform's API to
//! report; the flag says whether sending the same request again *may* help.
//! They differ on purpose for `500`: the server failed on something it did
//! not expect — a bug or a broken dependency, reported as `Internal` — yet a
//! second try often succeeds (AWS and GCS document retrying `500`, and an API
//! server answers it for a transient etcd error), so it is retryable.
//!
//! | status | kind | retryable | why |
//! |---|---|---|---|
//! | 400 Bad Request | `Invalid` | no | the request is malformed |
//! | 401 Unauthorized | `Unauthorized` | no | missing or wrong credentials |
//! | 403 Forbidden | `Forbidden` | no | authenticated, not permitted |
//! | 404 Not Found | `NotFound` | no | |
//! | 405 Method Not Allowed | `Unsupported` | no | the server does not offer this operation on the resource (a registry without deletes) |
//! | 408 Request Timeout | `Timeout` | yes | the server gave up waiting for the request; it was not processed |
//! | 409 Conflict | `Conflict` | no | a concurrent change won; `AlreadyExists` comes from the body (a Kubernetes reason, an S3 code) |
//! | 410 Gone | `NotFound` | no | the resource existed and is gone for good (RFC 9110: "likely to be permanent"), so sending the request again finds nothing either. A Kubernetes `Expired` reason (a compacted resourceVersion, an expired continue token) is refined to `Conflict` by k8s-api |
//! | 412 Precondition Failed | `Conflict` | no | an `If-Match` / `If-None-Match` or resourceVersion precondition lost to another change |
//! | 413 Content Too Large, 414 URI Too Long | `Invalid` | no | the same request is too large again |
//! | 422 Unprocessable Content | `Invalid` | no | fails validation |
//! | 429 Too Many Requests | `Unavailable` | yes | throttled; wait (honour `Retry-After`) and retry |
//! | other 4xx (406, 411, 415, 416, 418, …) | `Invalid` | no | a client error: something about the request is wrong |
//! | 500 Internal Server Error | `Internal` | yes | see above |
//! | 501 Not Implemented | `Unsupported` | no | |
//! | 502 Bad Gateway, 503 Service Unavailable | `Unavailable` | yes | a proxy or the server itself cannot serve now |
//! | 504 Gateway Timeout | `Timeout` | yes | an upstream did not answer in time |
//! | other 5xx | `Internal` | no | an unknown server failure; nothing says a retry helps |
//! | anything else (1xx, 2xx, 3xx, ≥ 600) | `Internal` | no | not an error status: an answer the caller did not expect |
//!
//! The table agrees with [`ErrorKind::http_status`], the reverse direction:
//! for every kind, `classify(kind.http_status()).kind == kind`, except that
//! `AlreadyExists` and `Conflict` share `409` (which classifies as
//! `Conflict`).
//!
//! ```
//! use kubepkg_util::{ErrorKind, http_status::classify};
//!
//! let c = classify(503);
//! assert_eq!(c.kind, ErrorKind::Unavailable);
//! assert!(c.retryable);
//!
//! // 500 is reported as a server bug, yet worth another try.
//! assert_eq!(classify(500).kind, ErrorKind::Internal);
//! assert!(classify(500).retryable);
//!
//! assert_eq!(classify(410).kind, ErrorKind::NotFound);
//! assert!(!classify(410).retryable);
//! ```

use crate::error::ErrorKind;

/// What an HTTP status code says about a failed request: its [`ErrorKind`]
/// and whether the same request may succeed when sent again.
///
/// See the [module documentation](self) for the table and the reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusClass {
    /// The shared kind of the error the status reports.
    pub kind: ErrorKind,
    /// Whether sending the same request again may succeed (after a backoff,
    /// honouring `Retry-After`). Whether a *method* may be resent safely is
    /// the caller's decision, not this flag's.
    pub retryable: bool,
}

impl StatusClass {
    const fn new(kind: ErrorKind, retryable: bool) -> StatusClass {
        StatusClass { kind, retryable }
    }
}

/// Classifies an HTTP status code by the table of the
/// [module documentation](self).
///
/// Meant for error statuses (4xx, 5xx); any other code (a success or a
/// redirect the caller did not expect) is `Internal`, not retryable.
pub const fn classify(status: u16) -> StatusClass {
    use ErrorKind::*;
    match status {
        400 => StatusClass::new(Invalid, false),
        401 => StatusClass::new(Unauthorized, false),
        403 => StatusClass::new(Forbidden, false),
        404 | 410 => StatusClass::new(NotFound, false),
        405 | 501 => StatusClass::new(Unsupported, false),
        408 | 504 => StatusClass::new(Timeout, true),
        409 | 412 => StatusClass::new(Conflict, false),
        413 | 414 | 422 => StatusClass::new(Invalid, false),
        429 | 502 | 503 => StatusClass::new(Unavailable, true),
        500 => StatusClass::new(Internal, true),
        // Every other client error.
        s if s / 100 == 4 => StatusClass::new(Invalid, false),
        _ => StatusClass::new(Internal, false),
    }
}

/// The kind of an HTTP status code: `classify(status).kind`.
pub const fn kind(status: u16) -> ErrorKind {
    classify(status).kind
}

/// Whether a request answered with `status` may succeed when sent again:
/// `classify(status).retryable` (408, 429, 500, 502, 503, 504).
pub const fn retryable(status: u16) -> bool {
    classify(status).retryable
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorKind::*;

    #[test]
    fn the_table() {
        let table: &[(u16, ErrorKind, bool)] = &[
            (400, Invalid, false),
            (401, Unauthorized, false),
            (402, Invalid, false),
            (403, Forbidden, false),
            (404, NotFound, false),
            (405, Unsupported, false),
            (406, Invalid, false),
            (408, Timeout, true),
            (409, Conflict, false),
            (410, NotFound, false),
            (411, Invalid, false),
            (412, Conflict, false),
            (413, Invalid, false),
            (414, Invalid, false),
            (415, Invalid, false),
            (416, Invalid, false),
            (418, Invalid, false),
            (422, Invalid, false),
            (429, Unavailable, true),
            (499, Invalid, false),
            (500, Internal, true),
            (501, Unsupported, false),
            (502, Unavailable, true),
            (503, Unavailable, true),
            (504, Timeout, true),
            (505, Internal, false),
            (507, Internal, false),
            (599, Internal, false),
            (0, Internal, false),
            (100, Internal, false),
            (200, Internal, false),
            (304, Internal, false),
            (600, Internal, false),
        ];
        for &(status, k, r) in table {
            assert_eq!(classify(status), StatusClass::new(k, r), "{status}");
            assert_eq!(kind(status), k, "{status}");
            assert_eq!(retryable(status), r, "{status}");
        }
    }

    #[test]
    fn agrees_with_the_reverse_direction() {
        for k in ErrorKind::ALL {
            let back = classify(k.http_status()).kind;
            let expected = if k == AlreadyExists { Conflict } else { k };
            assert_eq!(back, expected, "{k} -> {} -> {back}", k.http_status());
        }
    }

    #[test]
    fn retryable_kinds_are_retryable_statuses() {
        // A status whose kind is retryable is retryable; the flag adds 500.
        for status in 0..=999u16 {
            let c = classify(status);
            if c.kind.is_retryable() {
                assert!(c.retryable, "{status}");
            }
            if c.retryable && !c.kind.is_retryable() {
                assert_eq!(status, 500);
            }
        }
    }
}
