//! Extractors whose failures are answered in the envelope: a JSON or YAML
//! body (415 for another content type, 413 past the limit, 400 saying what
//! and where), query parameters (400), and the page request.

use crate::error::{Error, Problem, Result};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use kubepkg_platform::api::PageRequest;
use serde::de::DeserializeOwned;

/// Reads the whole body, mapping the body limit to 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes> {
    Bytes::from_request(req, state).await.map_err(|e| {
        let status = axum::response::IntoResponse::into_response(e).status();
        if status == http::StatusCode::PAYLOAD_TOO_LARGE {
            Error::request(
                Problem::TooLarge,
                "the request body is larger than the server accepts",
            )
        } else {
            Error::request(Problem::Malformed, "the request body could not be read")
        }
    })
}

/// The media type of a request, lowercased, without parameters.
pub fn media_type(req: &Request) -> Option<String> {
    let value = req
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// A JSON body (`application/json`), parsed strictly.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match media_type(&req).as_deref() {
            Some("application/json") => {}
            Some(other) => {
                return Err(Error::request(
                    Problem::UnsupportedMediaType,
                    format!("this route reads application/json, not {other}"),
                ));
            }
            None => {
                return Err(Error::request(
                    Problem::UnsupportedMediaType,
                    "this route reads application/json; set Content-Type",
                ));
            }
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be left out (no body: `T::default()`).
pub struct JsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonOrEmpty<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let typed = media_type(&req);
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(JsonOrEmpty(T::default()));
        }
        match typed.as_deref() {
            Some("application/json") => parse_json(&bytes).map(JsonOrEmpty),
            other => Err(Error::request(
                Problem::UnsupportedMediaType,
                format!(
                    "this route reads application/json, not {}",
                    other.unwrap_or("a body without Content-Type")
                ),
            )),
        }
    }
}

/// Parses a JSON body, saying what is wrong and where.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::request(Problem::Malformed, format!("request body: {e}")))
}

/// Query parameters, parsed strictly (an unknown parameter is a 400).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e| Error::request(Problem::Malformed, format!("query: {}", e.body_text())))
    }
}

/// `?page=&page_size=` with the server's largest page size.
pub fn page_request(page: Option<u64>, page_size: Option<u64>, max: u32) -> Result<PageRequest> {
    let size = page_size.unwrap_or(20);
    if size > u64::from(max) {
        return Err(Error::Invalid(format!(
            "page_size must be at most {max} (it is {size})"
        )));
    }
    PageRequest::new(page.unwrap_or(1), size).map_err(|e| Error::Invalid(format!("paging: {e}")))
}
