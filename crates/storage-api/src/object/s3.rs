//! S3 backend (feature `s3`): any S3-compatible endpoint through
//! `aws-sdk-s3`.
//!
//! - Region, custom endpoint, path-style addressing; the region and the
//!   endpoint default to `AWS_REGION` / `AWS_ENDPOINT_URL` ([`S3Config`]).
//! - Credentials: the standard AWS credential chain by default
//!   (environment, shared profiles with assume-role, `credential_process`
//!   and SSO, web identity / IRSA, ECS, instance metadata), refreshed before
//!   they expire; or only the environment, only one profile, or static keys
//!   from the config ([`CredentialsConfig`]). A missing or refused
//!   credential is `Unauthorized`.
//! - Uploads send `Content-MD5` (the server rejects damaged bodies) and the
//!   returned ETag is compared with the MD5 computed here. The signed
//!   `Content-MD5` header binds the body to the request signature, so the
//!   body itself is sent as `UNSIGNED-PAYLOAD` (no second SHA-256 pass).
//! - Uploads above [`MultipartConfig::threshold`] go multipart, with at most
//!   [`MultipartConfig::max_concurrent_parts`] parts in flight; a part that
//!   fails with a transient error is retried (for up to a minute, so a short
//!   outage does not fail the upload). Part uploads are tasks owned by the
//!   upload: when it fails, or its future is dropped, they are stopped and
//!   then the upload is aborted, so no parts stay behind on the server and
//!   nothing keeps writing.
//! - Every request has a connect timeout, a read timeout (for the answer to
//!   start, and between two pieces of a download body) and a per-attempt
//!   timeout, optionally an overall one ([`S3Config`]): a server that never
//!   answers fails the call with `Timeout`.
//! - [`ObjectStorage::download`] reads an object above
//!   [`DownloadOptions::parallel_threshold`] as ranged GETs in parallel
//!   (tasks owned by the download, at most
//!   [`DownloadOptions::max_concurrent_parts`]), each with `If-Match` on
//!   the ETag its HEAD returned, so a replaced object fails with
//!   [`Error::Changed`] instead of mixing versions; a range cut midway is
//!   fetched again from the byte it reached. Objects with an MD5 ETag to
//!   check are read in one stream and hashed beside the writes.
//! - TLS certificates are verified (against the system's roots plus
//!   [`S3Config::ca_file`]) unless [`S3Config::danger_accept_invalid_certs`]
//!   says otherwise, which is logged as a warning. A rejected certificate
//!   is `Unavailable` naming the TLS failure, and is not retried.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, RequestChecksumCalculation, ResponseChecksumValidation, retry::RetryConfig,
    timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration, Delete, ObjectIdentifier, VersioningConfiguration,
};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::download::{self, BlockSink};
use super::{
    BucketInfo, ByteRange, ByteStream, DownloadOptions, DownloadResult, ListOptions, ListPage,
    MultipartConfig, ObjectMeta, ObjectStorage, ObjectStream, ObjectSummary, PutOptions, PutResult,
    Verified, check, hex,
};
pub use crate::config::{CredentialsConfig, S3Config};

mod credentials;
use crate::error::{Error, Result};
use crate::validate;

/// The S3 backend.
#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    multipart: MultipartConfig,
    verify_etag: bool,
    backend: &'static str,
    endpoint: Option<String>,
    /// Longest wait for the next piece of a download body.
    read_timeout: Option<Duration>,
    /// The timeouts of requests that carry a body: no read timeout (sending
    /// the body counts against it), the rest as configured.
    upload_timeouts: TimeoutConfig,
}

/// Longest timeout taken from a config: ten years (longer ones are as good
/// as none and could overflow clock arithmetic).
const MAX_TIMEOUT_SECS: u64 = 10 * 365 * 24 * 3600;

/// A configured timeout: `None` for 0 ("no limit").
fn timeout_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs.min(MAX_TIMEOUT_SECS)))
}

/// Timeouts from a config; without the read timeout when `read` is false.
fn timeouts(config: &S3Config, read: bool) -> TimeoutConfig {
    let mut b = TimeoutConfig::builder().connect_timeout(Duration::from_secs(
        config.connect_timeout_secs.clamp(1, MAX_TIMEOUT_SECS),
    ));
    b = match timeout_secs(config.read_timeout_secs).filter(|_| read) {
        Some(d) => b.read_timeout(d),
        None => b.disable_read_timeout(),
    };
    b = match timeout_secs(config.attempt_timeout_secs) {
        Some(d) => b.operation_attempt_timeout(d),
        None => b.disable_operation_attempt_timeout(),
    };
    b = match timeout_secs(config.operation_timeout_secs) {
        Some(d) => b.operation_timeout(d),
        None => b.disable_operation_timeout(),
    };
    b.build()
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("backend", &self.backend)
            .field("endpoint", &self.endpoint)
            .field("multipart", &self.multipart)
            .finish_non_exhaustive()
    }
}

/// Maps an SDK error onto this crate's error kinds.
pub(crate) fn map_err<E>(op: &str, target: &str, e: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let what = format!("{op} {target}");
    if let Some(c) = credentials::credentials_failure(&e) {
        return Error::Unauthorized(format!(
            "{what}: no usable AWS credentials: {}",
            DisplayChain(c)
        ));
    }
    match &e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("").to_owned();
            let msg = ctx.err().message().unwrap_or("").to_owned();
            let detail = format!("{what}: {status} {code} {msg}")
                .trim_end()
                .to_owned();
            service_error(status, &code, detail)
        }
        SdkError::TimeoutError(_) => Error::Timeout(what),
        SdkError::DispatchFailure(d) => {
            if super::tls::is_certificate_failure(&e) {
                Error::Unavailable(format!(
                    "{what}: TLS verification of the server's certificate failed (is its CA \
                     in ca_file?): {}",
                    DisplayChain(&e)
                ))
            } else if d.is_timeout() {
                Error::Timeout(format!("{what}: {}", DisplayChain(&e)))
            } else {
                Error::Unavailable(format!("{what}: {}", DisplayChain(&e)))
            }
        }
        SdkError::ResponseError(_) => Error::Unavailable(format!("{what}: {}", DisplayChain(&e))),
        SdkError::ConstructionFailure(_) => Error::Invalid(format!("{what}: {}", DisplayChain(&e))),
        _ => Error::Internal(format!("{what}: {}", DisplayChain(&e))),
    }
}

/// Maps an S3 error answer: the S3 error code when it says more (bad
/// credentials, a missing bucket or key, an existing bucket, a bucket not
/// empty, a body that fails its checksum, throttling), else the status by
/// the table every kubepkg HTTP backend shares
/// ([`kubepkg_util::http_status::classify`]: 408 and 504 Timeout, 410
/// NotFound, 412 Conflict, 429 / 502 / 503 Unavailable, 500 Internal, …).
fn service_error(status: u16, code: &str, detail: String) -> Error {
    use kubepkg_util::ErrorKind;
    match code {
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "InvalidToken"
        | "ExpiredToken"
        | "InvalidSecurity" => Error::Unauthorized(detail),
        "NoSuchBucket" | "NoSuchKey" | "NoSuchUpload" | "NotFound" => Error::NotFound(detail),
        "BucketAlreadyOwnedByYou" | "BucketAlreadyExists" => Error::AlreadyExists(detail),
        "BucketNotEmpty" => Error::Conflict(detail),
        "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" => Error::Integrity(detail),
        // S3 answers both 503 SlowDown and 400 RequestTimeout (the upload
        // stalled) for what a later try may get through.
        "SlowDown" | "RequestTimeout" => Error::Unavailable(detail),
        _ => match kubepkg_util::http_status::kind(status) {
            ErrorKind::NotFound => Error::NotFound(detail),
            ErrorKind::AlreadyExists => Error::AlreadyExists(detail),
            ErrorKind::Conflict => Error::Conflict(detail),
            ErrorKind::Invalid => Error::Invalid(detail),
            ErrorKind::Unauthorized => Error::Unauthorized(detail),
            ErrorKind::Forbidden => Error::Forbidden(detail),
            ErrorKind::Unavailable => Error::Unavailable(detail),
            ErrorKind::Timeout => Error::Timeout(detail),
            ErrorKind::Unsupported => Error::Unsupported(detail),
            _ => Error::Internal(detail),
        },
    }
}

/// Displays an error with its sources.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or("").trim_matches('"').to_owned()
}

fn to_system_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

/// Percent-encodes a key for `x-amz-copy-source` (keeps `/`).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn md5_raw(data: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(data).into()
}

/// A multipart upload that was started and not yet completed or aborted.
///
/// Its part uploads are tasks of `parts`: when the upload fails, or the
/// future driving it is dropped, they are stopped (not left running
/// detached) before the upload is aborted, so no part lands after the abort.
struct Upload {
    s3: S3Storage,
    bucket: String,
    key: String,
    id: String,
    parts: JoinSet<Result<(i32, String, [u8; 16])>>,
    /// Completed or aborted: nothing left to clean up.
    settled: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // The future was dropped mid-upload: stop the parts (dropping the
        // set aborts them; `shutdown` also waits for them to end), then
        // abort the upload, in the background.
        let parts = std::mem::take(&mut self.parts);
        let abort = AbortUpload {
            s3: self.s3.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            id: self.id.clone(),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                tracing::warn!(backend = self.s3.backend, target = %format!("{}/{}", self.bucket, self.key), "multipart upload dropped; aborting it");
                handle.spawn(async move {
                    let mut parts = parts;
                    parts.shutdown().await;
                    abort.run().await;
                });
            }
            Err(_) => {
                drop(parts);
                tracing::error!(backend = self.s3.backend, upload_id = %self.id, "multipart upload dropped outside a runtime; its parts remain until a lifecycle rule removes them");
            }
        }
    }
}

/// What aborting a multipart upload needs, owned (for the background
/// cleanup of a dropped upload).
struct AbortUpload {
    s3: S3Storage,
    bucket: String,
    key: String,
    id: String,
}

impl S3Storage {
    /// Connects (lazily: no request is made) from an [`S3Config`].
    pub fn new(config: &S3Config) -> Result<Self> {
        Self::build(config, "s3")
    }

    pub(crate) fn build(config: &S3Config, backend: &'static str) -> Result<Self> {
        config.multipart.validate()?;
        let region = credentials::region(config.region.as_deref(), &credentials::env_var)?;
        let endpoint = credentials::endpoint(config.endpoint.as_deref(), &credentials::env_var);
        if let Some(ep) = &endpoint {
            let u = url::Url::parse(ep)
                .map_err(|e| Error::Invalid(format!("s3 endpoint {ep:?}: {e}")))?;
            if u.scheme() != "http" && u.scheme() != "https" {
                return Err(Error::Invalid(format!(
                    "s3 endpoint {ep:?}: scheme must be http or https"
                )));
            }
        }
        let creds = credentials::provider(&config.credentials, &region)?;
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(creds)
            .force_path_style(config.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
            .timeout_config(timeouts(config, true));
        if let Some(ep) = &endpoint {
            b = b.endpoint_url(ep.trim_end_matches('/'));
        }
        if let Some(client) = super::tls::http_client(config, backend)? {
            b = b.http_client(client);
        }
        b = b.retry_classifier(super::tls::NoRetryOnCertificate);
        Ok(S3Storage {
            client: Client::from_conf(b.build()),
            multipart: config.multipart.clone(),
            verify_etag: config.verify_etag,
            backend,
            endpoint,
            read_timeout: timeout_secs(config.read_timeout_secs),
            upload_timeouts: timeouts(config, false),
        })
    }

    /// Per-request config for requests that send a body.
    fn upload_config(&self) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::default().timeout_config(self.upload_timeouts.clone())
    }

    /// The underlying SDK client, for operations this crate does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Turns versioning of a bucket on or off (suspended).
    pub async fn set_bucket_versioning(&self, bucket: &str, enabled: bool) -> Result<()> {
        validate::bucket_name(bucket)?;
        let status = if enabled {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        self.client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
            .instrument(self.span("put_bucket_versioning", bucket))
            .await
            .map_err(|e| map_err("put_bucket_versioning", bucket, e))?;
        Ok(())
    }

    /// Whether versioning of a bucket is enabled.
    pub async fn bucket_versioning(&self, bucket: &str) -> Result<bool> {
        validate::bucket_name(bucket)?;
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .instrument(self.span("get_bucket_versioning", bucket))
            .await
            .map_err(|e| map_err("get_bucket_versioning", bucket, e))?;
        Ok(out.status() == Some(&BucketVersioningStatus::Enabled))
    }

    /// Replaces the lifecycle rules of a bucket: objects under each rule's
    /// prefix expire after its number of days.
    pub async fn set_bucket_lifecycle(&self, bucket: &str, rules: &[ExpirationRule]) -> Result<()> {
        use aws_sdk_s3::types::{
            BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
            LifecycleRuleFilter,
        };
        validate::bucket_name(bucket)?;
        let mut built = Vec::new();
        for r in rules {
            if r.days == 0 || r.id.is_empty() {
                return Err(Error::Invalid(
                    "a lifecycle rule needs an id and at least one day".into(),
                ));
            }
            let days = i32::try_from(r.days).map_err(|_| {
                Error::Invalid(format!(
                    "lifecycle rule {:?}: {} days is more than S3 accepts",
                    r.id, r.days
                ))
            })?;
            validate::key_prefix(&r.prefix)?;
            built.push(
                LifecycleRule::builder()
                    .id(&r.id)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build())
                    .expiration(LifecycleExpiration::builder().days(days).build())
                    .build()
                    .map_err(|e| Error::Invalid(format!("lifecycle rule {:?}: {e}", r.id)))?,
            );
        }
        let req = self
            .client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket);
        if built.is_empty() {
            self.client
                .delete_bucket_lifecycle()
                .bucket(bucket)
                .send()
                .instrument(self.span("delete_bucket_lifecycle", bucket))
                .await
                .map(|_| ())
                .map_err(|e| map_err("delete_bucket_lifecycle", bucket, e))
        } else {
            req.lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(built))
                    .build()
                    .map_err(|e| Error::Invalid(format!("lifecycle: {e}")))?,
            )
            .send()
            .instrument(self.span("put_bucket_lifecycle", bucket))
            .await
            .map(|_| ())
            .map_err(|e| map_err("put_bucket_lifecycle", bucket, e))
        }
    }

    /// The lifecycle expiration rules of a bucket (empty when none).
    pub async fn bucket_lifecycle(&self, bucket: &str) -> Result<Vec<ExpirationRule>> {
        validate::bucket_name(bucket)?;
        let out = self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .instrument(self.span("get_bucket_lifecycle", bucket))
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let is_missing = e.code() == Some("NoSuchLifecycleConfiguration");
                let err = map_err("get_bucket_lifecycle", bucket, e);
                if is_missing {
                    return Ok(Vec::new());
                }
                return Err(err);
            }
        };
        Ok(out
            .rules()
            .iter()
            .map(|r| ExpirationRule {
                id: r.id().unwrap_or_default().to_owned(),
                prefix: r
                    .filter()
                    .and_then(|f| f.prefix())
                    .unwrap_or_default()
                    .to_owned(),
                days: r
                    .expiration()
                    .and_then(|e| e.days())
                    .map_or(0, |d| d.max(0) as u32),
            })
            .collect())
    }

    /// Sends bucket event notifications (e.g. `s3:ObjectCreated:*`) to a
    /// queue target identified by its ARN (on MinIO:
    /// `arn:minio:sqs::<id>:<type>`, configured on the server). An empty
    /// `targets` removes all notifications.
    pub async fn set_bucket_notification(
        &self,
        bucket: &str,
        targets: &[NotificationTarget],
    ) -> Result<()> {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfiguration,
            NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
        };
        validate::bucket_name(bucket)?;
        let mut queues = Vec::new();
        for t in targets {
            if t.arn.is_empty() || t.events.is_empty() {
                return Err(Error::Invalid(
                    "a notification target needs an ARN and at least one event".into(),
                ));
            }
            let mut rules = Vec::new();
            if let Some(p) = &t.prefix {
                rules.push(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(p)
                        .build(),
                );
            }
            if let Some(s) = &t.suffix {
                rules.push(
                    FilterRule::builder()
                        .name(FilterRuleName::Suffix)
                        .value(s)
                        .build(),
                );
            }
            let mut q = QueueConfiguration::builder()
                .queue_arn(&t.arn)
                .set_events(Some(
                    t.events.iter().map(|e| Event::from(e.as_str())).collect(),
                ));
            if !rules.is_empty() {
                q = q.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            queues.push(
                q.build()
                    .map_err(|e| Error::Invalid(format!("notification target: {e}")))?,
            );
        }
        self.client
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(queues))
                    .build(),
            )
            .send()
            .instrument(self.span("put_bucket_notification", bucket))
            .await
            .map_err(|e| map_err("put_bucket_notification", bucket, e))?;
        Ok(())
    }

    /// Multipart uploads still open in a bucket, as `(key, upload id)`.
    pub async fn list_multipart_uploads(&self, bucket: &str) -> Result<Vec<(String, String)>> {
        validate::bucket_name(bucket)?;
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .instrument(self.span("list_multipart_uploads", bucket))
            .await
            .map_err(|e| map_err("list_multipart_uploads", bucket, e))?;
        Ok(out
            .uploads()
            .iter()
            .map(|u| {
                (
                    u.key().unwrap_or_default().to_owned(),
                    u.upload_id().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// A GET of `range` (or the whole object), bound to `if_match` when
    /// given: then a 412 or 404 answer means the object changed since its
    /// ETag was read ([`Error::Changed`]). The body fails with `Timeout`
    /// when the server stops sending for longer than the read timeout.
    async fn get_body(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream> {
        let target = format!("{bucket}/{key}");
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(range.map(|r| r.to_header()))
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .instrument(self.span("get_object", key))
            .await
            .map_err(|e| {
                if let (Some(etag), SdkError::ServiceError(ctx)) = (if_match, &e) {
                    match ctx.raw().status().as_u16() {
                        412 => {
                            return Error::Changed(format!(
                                "{target}: no longer the version with ETag {etag} \
                                 (412 Precondition Failed)"
                            ));
                        }
                        404 => {
                            return Error::Changed(format!(
                                "{target}: deleted during the download"
                            ));
                        }
                        _ => {}
                    }
                }
                map_err("get_object", &target, e)
            })?;
        let total = out
            .content_range()
            .and_then(|cr| cr.rsplit_once('/'))
            .and_then(|(_, t)| t.parse::<u64>().ok())
            .or_else(|| out.content_length().map(|l| l.max(0) as u64))
            .unwrap_or(0);
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: total,
            etag: unquote(out.e_tag()),
            content_type: out.content_type().map(str::to_owned),
            last_modified: to_system_time(out.last_modified()),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        };
        // A server that stops sending mid-body fails the read after the
        // read timeout instead of hanging it.
        let idle = self.read_timeout;
        let body =
            futures::stream::try_unfold((out.body, target), move |(mut b, target)| async move {
                let next = match idle {
                    Some(d) => tokio::time::timeout(d, b.next()).await.map_err(|_| {
                        Error::Timeout(format!("reading {target}: no data for {d:?}"))
                    })?,
                    None => b.next().await,
                };
                match next {
                    None => Ok(None),
                    Some(Ok(chunk)) => Ok(Some((chunk, (b, target)))),
                    Some(Err(e)) => Err(Error::Unavailable(format!(
                        "reading {target}: {}",
                        DisplayChain(&e)
                    ))),
                }
            })
            .boxed();
        Ok(ObjectStream { meta, body })
    }

    /// The parallel part of [`ObjectStorage::download`]: ranges of
    /// `part_size` fetched by at most `max_concurrent_parts` tasks, each
    /// GET bound to the ETag of `head`, written in place by one blocking
    /// writer; the size checked at the end.
    async fn download_ranges(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        head: ObjectMeta,
        opts: &DownloadOptions,
    ) -> Result<DownloadResult> {
        let size = head.size;
        let what = format!("the download of {bucket}/{key} to {}", dest.display());
        let part = download::PartFile::create(dest, size).await?;
        let writer = download::Writer::start(part.file(), what.clone(), false);
        let want = Arc::new(Wanted {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: head.etag.clone(),
            size,
        });
        let mut ranges = (0..size.div_ceil(opts.part_size))
            .map(|i| (i * opts.part_size, ((i + 1) * opts.part_size).min(size)));
        let mut tasks: JoinSet<Result<usize>> = JoinSet::new();
        let mut requests = 0;
        let fetched: Result<()> = async {
            loop {
                while tasks.len() < opts.max_concurrent_parts {
                    let Some((start, end)) = ranges.next() else {
                        break;
                    };
                    let this = self.clone();
                    let want = want.clone();
                    let sink = writer.sink(start);
                    tasks.spawn(
                        async move { this.fetch_range(&want, end, sink).await }.in_current_span(),
                    );
                }
                match tasks.join_next().await {
                    None => return Ok(()),
                    Some(r) => requests += flatten_join(r)?,
                }
            }
        }
        .await;
        if let Err(e) = fetched {
            tasks.shutdown().await;
            return Err(writer.fail(e).await);
        }
        let (written, _) = writer.finish().await?;
        if written != size {
            return Err(Error::Integrity(format!(
                "{what}: {written} bytes written for a {size}-byte object"
            )));
        }
        part.commit().await?;
        Ok(DownloadResult {
            meta: head,
            size,
            requests,
            verified: Verified::Size,
        })
    }

    /// Fetches `sink.position()..end` of the wanted object into `sink`; a
    /// transient failure (a refused or cut connection, a stalled body) is
    /// retried from the byte reached. Returns the requests it took.
    async fn fetch_range(&self, want: &Wanted, end: u64, mut sink: BlockSink) -> Result<usize> {
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let from = sink.position();
            let target = format!("{}/{} bytes {from}..{end}", want.bucket, want.key);
            let res = async {
                let if_match = (!want.etag.is_empty()).then_some(want.etag.as_str());
                let stream = self
                    .get_body(
                        &want.bucket,
                        &want.key,
                        Some(ByteRange::new(from, end)),
                        if_match,
                    )
                    .await?;
                if stream.meta.size != want.size
                    || (if_match.is_some() && stream.meta.etag != want.etag)
                {
                    return Err(Error::Changed(format!(
                        "{target}: now {} bytes with ETag {}, was {} bytes with ETag {}",
                        stream.meta.size, stream.meta.etag, want.size, want.etag
                    )));
                }
                let mut body = stream.body;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk?;
                    if sink.position() + chunk.len() as u64 > end {
                        return Err(Error::Internal(format!(
                            "{target}: the server sent more than the range"
                        )));
                    }
                    sink.push(chunk).await?;
                }
                if sink.position() < end {
                    return Err(Error::Unavailable(format!(
                        "{target}: the body ended at byte {}",
                        sink.position()
                    )));
                }
                sink.flush().await
            }
            .await;
            match res {
                Ok(()) => return Ok(attempt as usize),
                Err(e) if e.is_retryable() && attempt < RANGE_ATTEMPTS => {
                    tracing::warn!(target = %target, attempt, error = %e, "retrying a ranged GET");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(PART_MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn span(&self, op: &'static str, target: &str) -> tracing::Span {
        tracing::debug_span!("storage", backend = self.backend, op, target)
    }

    async fn put_single(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
        metadata: &BTreeMap<String, String>,
    ) -> Result<PutResult> {
        let md5 = md5_raw(&data);
        let size = data.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_length(size as i64)
            .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
            .set_content_type(opts.content_type.clone())
            .set_metadata(Some(metadata.clone().into_iter().collect()))
            .body(SdkByteStream::from(data))
            .customize()
            .config_override(self.upload_config())
            .disable_payload_signing()
            .send()
            .instrument(self.span("put_object", key))
            .await
            .map_err(|e| map_err("put_object", &format!("{bucket}/{key}"), e))?;
        let etag = unquote(out.e_tag());
        let expected = hex(&md5);
        if self.verify_etag && etag != expected {
            return Err(Error::Integrity(format!(
                "{bucket}/{key}: server ETag {etag} is not the MD5 {expected} of what was sent"
            )));
        }
        Ok(PutResult {
            etag,
            size,
            parts: 1,
        })
    }

    async fn put_multipart(
        &self,
        bucket: &str,
        key: &str,
        first: BytesMut,
        rest: ByteStream,
        opts: &PutOptions,
        metadata: &BTreeMap<String, String>,
    ) -> Result<PutResult> {
        let target = format!("{bucket}/{key}");
        let out = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_content_type(opts.content_type.clone())
            .set_metadata(Some(metadata.clone().into_iter().collect()))
            .send()
            .instrument(self.span("create_multipart_upload", key))
            .await
            .map_err(|e| map_err("create_multipart_upload", &target, e))?;
        let id = out
            .upload_id()
            .ok_or_else(|| Error::Internal(format!("{target}: no upload id returned")))?
            .to_owned();
        let mut upload = Upload {
            s3: self.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            id,
            parts: JoinSet::new(),
            settled: false,
        };
        match upload.run(first, rest).await {
            Ok(r) => {
                upload.settled = true;
                Ok(r)
            }
            Err(e) => {
                tracing::warn!(backend = self.backend, target = %target, error = %e, "multipart upload failed; aborting it");
                upload.parts.shutdown().await;
                upload.abort().await;
                upload.settled = true;
                Err(e)
            }
        }
    }
}

/// One lifecycle expiration rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirationRule {
    /// Rule id.
    pub id: String,
    /// Objects under this key prefix ("" for all)...
    pub prefix: String,
    /// ...expire this many days after creation.
    pub days: u32,
}

/// One bucket notification target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationTarget {
    /// Queue ARN, e.g. `arn:minio:sqs::primary:webhook`.
    pub arn: String,
    /// Events, e.g. `s3:ObjectCreated:*`.
    pub events: Vec<String>,
    /// Only keys with this prefix.
    pub prefix: Option<String>,
    /// Only keys with this suffix.
    pub suffix: Option<String>,
}

/// A part that fails with a transient error is sent again, with backoff,
/// for at least this many attempts...
const PART_ATTEMPTS: u32 = 4;
/// ...and for as long as this since its first attempt (a short outage of the
/// server or the network does not fail the whole upload).
const PART_RETRY_WINDOW: Duration = Duration::from_secs(60);
/// Longest pause between two attempts of a part.
const PART_MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Attempts of one ranged GET of a download, each from the byte the one
/// before reached.
const RANGE_ATTEMPTS: u32 = 4;

/// The object a parallel download reads: the version of its first HEAD.
struct Wanted {
    bucket: String,
    key: String,
    etag: String,
    size: u64,
}

impl Upload {
    async fn run(&mut self, mut pending: BytesMut, mut rest: ByteStream) -> Result<PutResult> {
        let cfg = self.s3.multipart.clone();
        let part_size = cfg.part_size as usize;
        let mut done: Vec<(i32, String, [u8; 16])> = Vec::new();
        let mut next_part: i32 = 1;
        let mut total: u64 = 0;
        let mut ended = false;
        loop {
            // Fill `pending` to a full part unless the body has ended.
            while !ended && pending.len() < part_size {
                match rest.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(e)) => return Err(e),
                    None => ended = true,
                }
            }
            if pending.is_empty() {
                break;
            }
            let take = pending.len().min(part_size);
            let part = pending.split_to(take).freeze();
            total += part.len() as u64;
            if next_part > 10_000 {
                return Err(Error::Invalid(
                    "more than 10000 parts; raise multipart.part_size".into(),
                ));
            }
            self.spawn_part(next_part, part);
            next_part += 1;
            while self.parts.len() >= cfg.max_concurrent_parts {
                if let Some(r) = self.parts.join_next().await {
                    done.push(flatten_join(r)?);
                }
            }
            if ended && pending.is_empty() {
                break;
            }
        }
        while let Some(r) = self.parts.join_next().await {
            done.push(flatten_join(r)?);
        }
        done.sort_by_key(|(n, _, _)| *n);
        let parts: Vec<CompletedPart> = done
            .iter()
            .map(|(n, etag, _)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
            .collect();
        let target = format!("{}/{}", self.bucket, self.key);
        let out = self
            .s3
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .instrument(self.s3.span("complete_multipart_upload", &self.key))
            .await
            .map_err(|e| map_err("complete_multipart_upload", &target, e))?;
        let etag = unquote(out.e_tag());
        let mut all = Vec::with_capacity(done.len() * 16);
        for (_, _, md5) in &done {
            all.extend_from_slice(md5);
        }
        let expected = format!("{}-{}", hex(&md5_raw(&all)), done.len());
        if self.s3.verify_etag && etag != expected {
            return Err(Error::Integrity(format!(
                "{target}: server ETag {etag} does not match the parts sent ({expected})"
            )));
        }
        Ok(PutResult {
            etag,
            size: total,
            parts: done.len(),
        })
    }

    /// Starts uploading one part as a task of `self.parts`.
    fn spawn_part(&mut self, number: i32, data: Bytes) {
        let client = self.s3.client.clone();
        let upload_config = self.s3.upload_config();
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        let id = self.id.clone();
        let verify = self.s3.verify_etag;
        let span = self.s3.span("upload_part", &self.key);
        self.parts.spawn(
            async move {
                // Hash off the I/O threads so other parts keep moving meanwhile.
                let hashed = data.clone();
                let md5 = tokio::task::spawn_blocking(move || md5_raw(&hashed))
                    .await
                    .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?;
                let md5_b64 = base64::engine::general_purpose::STANDARD.encode(md5);
                let expected = hex(&md5);
                let target = format!("{bucket}/{key} part {number}");
                let started = tokio::time::Instant::now();
                let mut backoff = Duration::from_millis(200);
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let res = client
                        .upload_part()
                        .bucket(&bucket)
                        .key(&key)
                        .upload_id(&id)
                        .part_number(number)
                        .content_length(data.len() as i64)
                        .content_md5(&md5_b64)
                        .body(SdkByteStream::from(data.clone()))
                        .customize()
                        .config_override(upload_config.clone())
                        .disable_payload_signing()
                        .send()
                        .await
                        .map_err(|e| map_err("upload_part", &target, e));
                    match res {
                        Ok(out) => {
                            let etag = unquote(out.e_tag());
                            if verify && etag != expected {
                                return Err(Error::Integrity(format!(
                                    "{target}: server ETag {etag} is not the MD5 {expected} of the part"
                                )));
                            }
                            return Ok((number, etag, md5));
                        }
                        Err(e)
                            if e.is_retryable()
                                && (attempt < PART_ATTEMPTS
                                    || started.elapsed() + backoff < PART_RETRY_WINDOW) =>
                        {
                            tracing::warn!(target = %target, attempt, error = %e, "retrying part");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(PART_MAX_BACKOFF);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            .instrument(span),
        );
    }

    /// Aborts the upload, retrying a few times; parts uploaded so far are
    /// deleted by the server. Call once the part tasks have ended.
    async fn abort(&self) {
        AbortUpload {
            s3: self.s3.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            id: self.id.clone(),
        }
        .run()
        .await
    }
}

impl AbortUpload {
    async fn run(&self) {
        let target = format!("{}/{}", self.bucket, self.key);
        for attempt in 1..=5u32 {
            let res = self
                .s3
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&self.id)
                .send()
                .instrument(self.s3.span("abort_multipart_upload", &self.key))
                .await;
            match res {
                Ok(_) => return,
                Err(e) => {
                    let e = map_err("abort_multipart_upload", &target, e);
                    if e.kind() == kubepkg_util::ErrorKind::NotFound {
                        return;
                    }
                    tracing::warn!(target = %target, attempt, error = %e, "abort failed");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
            }
        }
        tracing::error!(target = %target, upload_id = %self.id, "could not abort multipart upload; parts may remain until a lifecycle rule removes them");
    }
}

fn flatten_join<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::Internal(format!("transfer task failed: {e}")))?
}

#[async_trait]
impl ObjectStorage for S3Storage {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        validate::bucket_name(bucket)?;
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        let mut req = self.client.create_bucket().bucket(bucket);
        if !region.is_empty() && region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        req.send()
            .instrument(self.span("create_bucket", bucket))
            .await
            .map_err(|e| map_err("create_bucket", bucket, e))?;
        Ok(())
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        validate::bucket_name(bucket)?;
        self.client
            .delete_bucket()
            .bucket(bucket)
            .send()
            .instrument(self.span("delete_bucket", bucket))
            .await
            .map_err(|e| map_err("delete_bucket", bucket, e))?;
        Ok(())
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        validate::bucket_name(bucket)?;
        match self
            .client
            .head_bucket()
            .bucket(bucket)
            .send()
            .instrument(self.span("head_bucket", bucket))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = map_err("head_bucket", bucket, e);
                if e.kind() == kubepkg_util::ErrorKind::NotFound {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let out = self
            .client
            .list_buckets()
            .send()
            .instrument(self.span("list_buckets", ""))
            .await
            .map_err(|e| map_err("list_buckets", "", e))?;
        let mut v: Vec<BucketInfo> = out
            .buckets()
            .iter()
            .map(|b| BucketInfo {
                name: b.name().unwrap_or_default().to_owned(),
                created: to_system_time(b.creation_date()),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        check(bucket, key)?;
        let metadata = validate::metadata(&opts.metadata)?;
        if data.len() as u64 > self.multipart.threshold {
            let rest = super::bytes_stream(data, self.multipart.part_size as usize);
            return self
                .put_multipart(bucket, key, BytesMut::new(), rest, opts, &metadata)
                .await;
        }
        self.put_single(bucket, key, data, opts, &metadata).await
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        mut body: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        check(bucket, key)?;
        let metadata = validate::metadata(&opts.metadata)?;
        let threshold = self.multipart.threshold as usize;
        let mut buf = BytesMut::new();
        let mut ended = false;
        while buf.len() <= threshold {
            match body.next().await {
                Some(chunk) => buf.extend_from_slice(&chunk?),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            return self
                .put_single(bucket, key, buf.freeze(), opts, &metadata)
                .await;
        }
        self.put_multipart(bucket, key, buf, body, opts, &metadata)
            .await
    }

    async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectStream> {
        check(bucket, key)?;
        if let Some(r) = &range {
            r.validate()?;
        }
        self.get_body(bucket, key, range, None).await
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        opts: &DownloadOptions,
    ) -> Result<DownloadResult> {
        download::check_request(bucket, key, dest, opts)?;
        let verify_md5 = opts.verify_md5 && self.verify_etag;
        let head = self.head_object(bucket, key).await?;
        let if_match = (!head.etag.is_empty()).then_some(head.etag.as_str());
        // An MD5 to check is computed in order, one stream; it is slower
        // than parallel requests would be.
        if head.size <= opts.parallel_threshold || (verify_md5 && download::is_md5_etag(&head.etag))
        {
            let stream = self.get_body(bucket, key, None, if_match).await?;
            return download::single_stream(stream, dest, verify_md5).await;
        }
        self.download_ranges(bucket, key, dest, head, opts)
            .instrument(self.span("download", key))
            .await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        check(bucket, key)?;
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .instrument(self.span("head_object", key))
            .await
            .map_err(|e| map_err("head_object", &format!("{bucket}/{key}"), e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: out.content_length().map_or(0, |l| l.max(0) as u64),
            etag: unquote(out.e_tag()),
            content_type: out.content_type().map(str::to_owned),
            last_modified: to_system_time(out.last_modified()),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    fn list_objects(
        &self,
        bucket: &str,
        opts: &ListOptions,
    ) -> BoxStream<'static, Result<ListPage>> {
        if let Err(e) = validate::bucket_name(bucket).and_then(|()| opts.validate()) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let this = self.clone();
        let bucket = bucket.to_owned();
        let opts = opts.clone();
        // State: Some(token) while there are pages left (None = first page).
        futures::stream::try_unfold(Some(None::<String>), move |state| {
            let this = this.clone();
            let bucket = bucket.clone();
            let opts = opts.clone();
            async move {
                let Some(token) = state else {
                    return Ok(None);
                };
                let out = this
                    .client
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&opts.prefix)
                    .set_delimiter(opts.delimiter.clone())
                    .max_keys(opts.page_size as i32)
                    .set_continuation_token(token)
                    .send()
                    .instrument(this.span("list_objects", &bucket))
                    .await
                    .map_err(|e| map_err("list_objects", &bucket, e))?;
                let page = ListPage {
                    objects: out
                        .contents()
                        .iter()
                        .map(|o| ObjectSummary {
                            key: o.key().unwrap_or_default().to_owned(),
                            size: o.size().map_or(0, |s| s.max(0) as u64),
                            etag: unquote(o.e_tag()),
                            last_modified: to_system_time(o.last_modified()),
                        })
                        .collect(),
                    common_prefixes: out
                        .common_prefixes()
                        .iter()
                        .filter_map(|p| p.prefix().map(str::to_owned))
                        .collect(),
                };
                let next = if out.is_truncated() == Some(true) {
                    out.next_continuation_token().map(|t| Some(t.to_owned()))
                } else {
                    None
                };
                Ok(Some((page, next)))
            }
        })
        .into_stream()
        .boxed()
    }

    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        check(src_bucket, src_key)?;
        check(dst_bucket, dst_key)?;
        let target = format!("{src_bucket}/{src_key} -> {dst_bucket}/{dst_key}");
        self.client
            .copy_object()
            .bucket(dst_bucket)
            .key(dst_key)
            .copy_source(format!("{src_bucket}/{}", encode_key(src_key)))
            .send()
            .instrument(self.span("copy_object", dst_key))
            .await
            .map_err(|e| map_err("copy_object", &target, e))?;
        Ok(())
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        check(bucket, key)?;
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .instrument(self.span("delete_object", key))
            .await
            .map_err(|e| map_err("delete_object", &format!("{bucket}/{key}"), e))?;
        Ok(())
    }

    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()> {
        validate::bucket_name(bucket)?;
        for k in keys {
            validate::object_key(k)?;
        }
        for chunk in keys.chunks(1000) {
            let ids = chunk
                .iter()
                .map(|k| {
                    ObjectIdentifier::builder()
                        .key(k)
                        .build()
                        .map_err(|e| Error::Invalid(format!("{k:?}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(ids))
                        .quiet(true)
                        .build()
                        .map_err(|e| Error::Invalid(format!("delete request: {e}")))?,
                )
                .send()
                .instrument(self.span("delete_objects", bucket))
                .await
                .map_err(|e| map_err("delete_objects", bucket, e))?;
            if let Some(first) = out.errors().first() {
                return Err(Error::Internal(format!(
                    "deleting {} of {} keys failed; first: {:?} {} {}",
                    out.errors().len(),
                    chunk.len(),
                    first.key().unwrap_or_default(),
                    first.code().unwrap_or_default(),
                    first.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    async fn presign_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        check(bucket, key)?;
        let cfg = PresigningConfig::expires_in(expires_in)
            .map_err(|e| Error::Invalid(format!("presign expiry: {e}")))?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(|e| map_err("presign_get", &format!("{bucket}/{key}"), e))?;
        Ok(req.uri().to_owned())
    }

    async fn presign_put(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        check(bucket, key)?;
        let cfg = PresigningConfig::expires_in(expires_in)
            .map_err(|e| Error::Invalid(format!("presign expiry: {e}")))?;
        let req = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(|e| map_err("presign_put", &format!("{bucket}/{key}"), e))?;
        Ok(req.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use kubepkg_util::ErrorKind;

    /// Without a code that says more, a status means what it means to every
    /// other kubepkg HTTP backend (k8s-api and image-api test the same
    /// statuses).
    #[test]
    fn bare_statuses_follow_the_shared_table() {
        for status in [
            400, 401, 403, 404, 405, 408, 409, 410, 411, 412, 413, 416, 418, 422, 429, 500, 501,
            502, 503, 504, 599,
        ] {
            let shared = kubepkg_util::http_status::kind(status);
            for code in ["", "InternalError", "SomethingNew"] {
                let e = service_error(status, code, "d".into());
                assert_eq!(e.kind(), shared, "{status} {code}: {e:?}");
            }
        }
        assert_eq!(
            service_error(408, "", "d".into()).kind(),
            ErrorKind::Timeout
        );
        assert_eq!(
            service_error(410, "", "d".into()).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            service_error(500, "", "d".into()).kind(),
            ErrorKind::Internal
        );
    }

    #[test]
    fn s3_codes_refine_statuses() {
        let kind = |status, code| service_error(status, code, "d".into()).kind();
        assert_eq!(kind(403, "InvalidAccessKeyId"), ErrorKind::Unauthorized);
        assert_eq!(kind(403, "SignatureDoesNotMatch"), ErrorKind::Unauthorized);
        assert_eq!(kind(403, "AccessDenied"), ErrorKind::Forbidden);
        assert_eq!(kind(404, "NoSuchKey"), ErrorKind::NotFound);
        assert_eq!(
            kind(409, "BucketAlreadyOwnedByYou"),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind(409, "BucketNotEmpty"), ErrorKind::Conflict);
        assert_eq!(kind(400, "BadDigest"), ErrorKind::Internal);
        assert!(matches!(
            service_error(400, "BadDigest", "d".into()),
            Error::Integrity(_)
        ));
        assert_eq!(kind(503, "SlowDown"), ErrorKind::Unavailable);
        assert_eq!(kind(400, "RequestTimeout"), ErrorKind::Unavailable);
        assert_eq!(kind(412, "PreconditionFailed"), ErrorKind::Conflict);
        assert_eq!(kind(501, "NotImplemented"), ErrorKind::Unsupported);
    }

    #[test]
    fn copy_source_is_encoded() {
        assert_eq!(encode_key("a b/c+d"), "a%20b/c%2Bd");
    }

    #[test]
    fn config_debug_hides_secret() {
        let c = S3Config {
            credentials: CredentialsConfig::Static {
                access_key: "ak".into(),
                secret_key: Secret::from("very-secret"),
                session_token: None,
            },
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
