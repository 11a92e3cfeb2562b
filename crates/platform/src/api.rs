//! The platform's unified API types: the response envelope, the page, and
//! the one table that maps every [`ErrorKind`] to a response code and an
//! HTTP status.
//!
//! Every answer of the platform's API is an [`ApiResponse`]:
//!
//! ```json
//! {"code": 0, "message": "ok", "data": {...}}
//! ```
//!
//! and every list a [`Page`] (`cur_page`, `cur_page_size`, `total`,
//! `total_page`, `data`) inside it, with the source design's field names.
//!
//! ```
//! use kubepkg_platform::api::{ApiResponse, ResponseCode};
//! use kubepkg_platform::Error;
//! use kubepkg_util::ErrorKind;
//!
//! let ok = ApiResponse::ok(vec!["prod", "staging"]);
//! assert_eq!(
//!     serde_json::to_string(&ok)?,
//!     r#"{"code":0,"message":"ok","data":["prod","staging"]}"#
//! );
//!
//! let err = Error::NotFound("cluster \"qa\"".into());
//! let resp = ApiResponse::<()>::from_error(&err);
//! assert_eq!(resp.code, ResponseCode::for_kind(ErrorKind::NotFound).code);
//! assert_eq!(ResponseCode::for_kind(ErrorKind::NotFound).http_status, 404);
//! # Ok::<(), serde_json::Error>(())
//! ```

use crate::Error;
use kubepkg_util::ErrorKind;
use serde::{Deserialize, Serialize};

pub use kubepkg_util::paging::{Page, PageRequest};

/// The response envelope: `{"code", "message", "data"}`.
///
/// `code` is [`ResponseCode::OK`] on success; on failure it is the code of
/// the error's kind and `data` is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResponse<T> {
    /// `0` on success, else [`ResponseCode::code`] of the error's kind.
    pub code: u32,
    /// `"ok"`, or the error's message.
    pub message: String,
    /// The payload (absent on errors).
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

impl<T> ApiResponse<T> {
    /// A success carrying `data`.
    pub fn ok(data: T) -> Self {
        ApiResponse {
            code: ResponseCode::OK,
            message: "ok".into(),
            data: Some(data),
        }
    }

    /// The envelope of an error: its kind's code and its message.
    pub fn from_error(err: &Error) -> Self {
        ApiResponse {
            code: ResponseCode::for_kind(err.kind()).code,
            message: err.to_string(),
            data: None,
        }
    }

    /// Whether this is a success.
    pub fn is_ok(&self) -> bool {
        self.code == ResponseCode::OK
    }
}

/// A response code and the HTTP status that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseCode {
    /// The error kind.
    pub kind: ErrorKind,
    /// The envelope's `code`.
    pub code: u32,
    /// The HTTP status.
    pub http_status: u16,
}

impl ResponseCode {
    /// The code of a success.
    pub const OK: u32 = 0;

    /// The whole table, one row per kind, in [`ErrorKind::ALL`] order.
    ///
    /// Codes are the HTTP status times 100 plus a small index, so two kinds
    /// that share a status (AlreadyExists and Conflict are both 409) still
    /// have codes of their own.
    pub const TABLE: [ResponseCode; 10] = [
        ResponseCode::row(ErrorKind::NotFound, 40400, 404),
        ResponseCode::row(ErrorKind::AlreadyExists, 40901, 409),
        ResponseCode::row(ErrorKind::Conflict, 40902, 409),
        ResponseCode::row(ErrorKind::Invalid, 42200, 422),
        ResponseCode::row(ErrorKind::Unauthorized, 40100, 401),
        ResponseCode::row(ErrorKind::Forbidden, 40300, 403),
        ResponseCode::row(ErrorKind::Unavailable, 50300, 503),
        ResponseCode::row(ErrorKind::Timeout, 50400, 504),
        ResponseCode::row(ErrorKind::Unsupported, 50100, 501),
        ResponseCode::row(ErrorKind::Internal, 50000, 500),
    ];

    const fn row(kind: ErrorKind, code: u32, http_status: u16) -> ResponseCode {
        ResponseCode {
            kind,
            code,
            http_status,
        }
    }

    /// The row of `kind`.
    pub fn for_kind(kind: ErrorKind) -> ResponseCode {
        Self::TABLE
            .iter()
            .copied()
            .find(|r| r.kind == kind)
            .unwrap_or(Self::row(ErrorKind::Internal, 50000, 500))
    }

    /// The row whose envelope code is `code`, if any.
    pub fn from_code(code: u32) -> Option<ResponseCode> {
        Self::TABLE.iter().copied().find(|r| r.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_distinct_code_and_its_status() {
        let mut codes = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let row = ResponseCode::for_kind(kind);
            assert_eq!(row.kind, kind);
            assert_eq!(row.http_status, kind.http_status(), "{kind}");
            assert!(codes.insert(row.code), "code {} used twice", row.code);
            assert_ne!(row.code, ResponseCode::OK);
            assert_eq!(ResponseCode::from_code(row.code), Some(row));
            assert_eq!(row.code / 100, u32::from(row.http_status));
        }
    }

    #[test]
    fn errors_serialise_without_data() {
        let e = Error::Conflict("cluster \"a\" changed".into());
        let json = serde_json::to_value(ApiResponse::<u8>::from_error(&e)).unwrap();
        assert_eq!(json["code"], 40902);
        assert!(json.get("data").is_none());
        let back: ApiResponse<u8> = serde_json::from_value(json).unwrap();
        assert!(!back.is_ok());
    }

    #[test]
    fn pages_keep_the_source_field_names() {
        let req = PageRequest::new(1, 2).unwrap();
        let page = kubepkg_util::paging::paginate(vec![1, 2, 3], &req);
        let json = serde_json::to_value(ApiResponse::ok(page)).unwrap();
        let data = &json["data"];
        for k in ["cur_page", "cur_page_size", "total", "total_page", "data"] {
            assert!(data.get(k).is_some(), "{k}");
        }
        assert_eq!(data["total_page"], 2);
    }
}
