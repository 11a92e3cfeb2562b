//! Object storage: the configured stores, buckets, objects (list by
//! prefix, streaming upload with `PUT`, streaming download, delete).

use crate::error::{Error, Result};
use crate::extract::Query;
use crate::state::AppState;
use crate::views::{Envelope, ErrorBody};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use kubepkg_storage_api::object::{ListOptions, ObjectStorage, PutOptions};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;
use utoipa::{IntoParams, ToSchema};

fn store(state: &AppState, name: &str) -> Result<Arc<dyn ObjectStorage>> {
    if !state.object_stores.iter().any(|s| s == name) {
        return Err(Error::NotFound(format!(
            "object store {name:?} (configured: {})",
            state.object_stores.join(", ")
        )));
    }
    Ok(kubepkg_storage_api::global::named(name)?)
}

fn rfc3339(t: Option<SystemTime>) -> Option<String> {
    t.and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(|t| t.to_string())
}

/// The configured object stores.
#[utoipa::path(get, path = "/object-stores", tag = "objects",
    responses((status = 200, description = "Store names", body = Envelope<Vec<String>>)))]
pub async fn stores(State(state): State<AppState>) -> impl IntoResponse {
    super::ok(state.object_stores.as_ref().clone())
}

/// A bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketView {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Option<String>,
}

/// Buckets of a store.
#[utoipa::path(get, path = "/object-stores/{store}/buckets", tag = "objects",
    params(("store" = String, Path)),
    responses((status = 200, description = "Buckets", body = Envelope<Vec<BucketView>>),
        (status = 404, description = "Unknown store", body = ErrorBody)))]
pub async fn buckets(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse> {
    let s = store(&state, &name)?;
    let list = s.list_buckets().await?;
    Ok(super::ok(
        list.into_iter()
            .map(|b| BucketView {
                name: b.name,
                created: rfc3339(b.created),
            })
            .collect::<Vec<_>>(),
    ))
}

/// A bucket to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketBody {
    /// Name (S3 rules: 3–63 lower-case letters, digits, `-`, `.`).
    pub name: String,
}

/// Creates a bucket.
#[utoipa::path(post, path = "/object-stores/{store}/buckets", tag = "objects",
    params(("store" = String, Path)), request_body = BucketBody,
    responses((status = 200, description = "Created", body = Envelope<String>),
        (status = 409, description = "It exists", body = ErrorBody),
        (status = 422, description = "Bad name", body = ErrorBody)))]
pub async fn create_bucket(
    State(state): State<AppState>,
    Path(name): Path<String>,
    crate::extract::JsonBody(body): crate::extract::JsonBody<BucketBody>,
) -> Result<impl IntoResponse> {
    let s = store(&state, &name)?;
    s.create_bucket(&body.name).await?;
    Ok(super::ok(body.name))
}

/// `?prefix=&delimiter=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ObjectListParams {
    /// Key prefix.
    #[serde(default)]
    pub prefix: String,
    /// Group keys by this delimiter (`/`).
    pub delimiter: Option<String>,
    /// Most objects to return (1–1000, default 1000).
    pub limit: Option<usize>,
}

/// An object in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectView {
    /// Key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag.
    pub etag: String,
    /// Last change.
    pub last_modified: Option<String>,
}

/// A listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectListView {
    /// Objects, in key order.
    pub objects: Vec<ObjectView>,
    /// Prefixes grouped by the delimiter.
    pub common_prefixes: Vec<String>,
    /// More objects follow the ones returned.
    pub truncated: bool,
}

/// Objects of a bucket, by prefix.
#[utoipa::path(get, path = "/object-stores/{store}/buckets/{bucket}/objects", tag = "objects",
    params(("store" = String, Path), ("bucket" = String, Path), ObjectListParams),
    responses((status = 200, description = "Objects", body = Envelope<ObjectListView>),
        (status = 404, description = "Unknown store or bucket", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path((name, bucket)): Path<(String, String)>,
    Query(q): Query<ObjectListParams>,
) -> Result<impl IntoResponse> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(Error::Invalid("limit must be between 1 and 1000".into()));
    }
    let s = store(&state, &name)?;
    let opts = ListOptions {
        prefix: q.prefix,
        delimiter: q.delimiter,
        page_size: limit,
    };
    let mut pages = s.list_objects(&bucket, &opts);
    let mut view = ObjectListView {
        objects: Vec::new(),
        common_prefixes: Vec::new(),
        truncated: false,
    };
    while let Some(page) = pages.next().await {
        let page = page?;
        view.common_prefixes.extend(page.common_prefixes);
        for o in page.objects {
            if view.objects.len() == limit {
                view.truncated = true;
                break;
            }
            view.objects.push(ObjectView {
                key: o.key,
                size: o.size,
                etag: o.etag,
                last_modified: rfc3339(o.last_modified),
            });
        }
        if view.objects.len() >= limit {
            view.truncated = view.truncated || pages.next().await.is_some();
            break;
        }
    }
    Ok(super::ok(view))
}

/// Downloads an object as a stream, with its content type and length.
#[utoipa::path(get, path = "/object-stores/{store}/buckets/{bucket}/objects/{key}", tag = "objects",
    params(("store" = String, Path), ("bucket" = String, Path), ("key" = String, Path, description = "Object key (may contain /)")),
    responses((status = 200, description = "The object's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such object", body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Path((name, bucket, key)): Path<(String, String, String)>,
) -> Result<Response> {
    let s = store(&state, &name)?;
    let obj = s.get_stream(&bucket, &key, None).await?;
    let content_type = obj
        .meta
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let body = obj.body.map_err(|e| std::io::Error::other(e.to_string()));
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    h.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(obj.meta.size),
    );
    if let Ok(v) = http::HeaderValue::from_str(&obj.meta.etag) {
        h.insert(http::header::ETAG, v);
    }
    Ok(resp)
}

/// What an upload stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// Key.
    pub key: String,
    /// ETag.
    pub etag: String,
    /// Bytes stored.
    pub size: u64,
}

/// Uploads an object from the request body as it arrives (multipart above
/// the store's threshold); the body limit does not apply.
#[utoipa::path(put, path = "/object-stores/{store}/buckets/{bucket}/objects/{key}", tag = "objects",
    params(("store" = String, Path), ("bucket" = String, Path), ("key" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "Stored", body = Envelope<UploadView>),
        (status = 404, description = "No such bucket", body = ErrorBody),
        (status = 422, description = "Bad key", body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Path((name, bucket, key)): Path<(String, String, String)>,
    req: Request,
) -> Result<impl IntoResponse> {
    let s = store(&state, &name)?;
    let opts = PutOptions {
        content_type: crate::extract::media_type(&req),
        ..Default::default()
    };
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(|e| kubepkg_storage_api::Error::Invalid(format!("the upload body broke off: {e}")))
        .boxed();
    let put = s.put_stream(&bucket, &key, stream, &opts).await?;
    Ok(super::ok(UploadView {
        key,
        etag: put.etag,
        size: put.size,
    }))
}

/// Deletes an object (absent is not an error).
#[utoipa::path(delete, path = "/object-stores/{store}/buckets/{bucket}/objects/{key}", tag = "objects",
    params(("store" = String, Path), ("bucket" = String, Path), ("key" = String, Path)),
    responses((status = 200, description = "Deleted", body = Envelope<String>),
        (status = 404, description = "No such bucket", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path((name, bucket, key)): Path<(String, String, String)>,
) -> Result<impl IntoResponse> {
    let s = store(&state, &name)?;
    s.delete_object(&bucket, &key).await?;
    Ok(super::ok(key))
}
