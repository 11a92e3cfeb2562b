//! MinIO backend (feature `minio`): the S3 backend with MinIO's defaults
//! (path-style addressing, static keys, `us-east-1`), plus MinIO's admin API
//! (server info, users, policies) signed with SigV4.
//!
//! Bucket versioning, lifecycle and notification setters are the S3 ones:
//! reach them through [`MinioStorage::s3`]. Admin requests that carry
//! secrets (adding a user, attaching policies) are encrypted the way MinIO
//! expects (PBKDF2-SHA256 key from the caller's secret key, AES-256-GCM in
//! 16 KiB authenticated chunks).
//!
//! One MinIO behaviour no client can change: when both an object `a` and
//! keys below it (`a/b`) exist, MinIO lists `a` but not `a/b` (both can be
//! read). The other backends list both.

use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use super::s3::S3Storage;
use super::{
    BucketInfo, ByteRange, ByteStream, DownloadOptions, DownloadResult, ListOptions, ListPage,
    ObjectMeta, ObjectStorage, ObjectStream, PutOptions, PutResult,
};
pub use crate::config::MinioConfig;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The MinIO backend.
#[derive(Clone)]
pub struct MinioStorage {
    s3: S3Storage,
    endpoint: url::Url,
    access_key: String,
    secret_key: Secret,
    region: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for MinioStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinioStorage")
            .field("endpoint", &self.endpoint.as_str())
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// A user as MinIO reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct UserInfo {
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: String,
    /// Comma-separated policy names attached to the user.
    #[serde(default, rename = "policyName")]
    pub policy_name: String,
}

impl MinioStorage {
    /// Connects (lazily) from a [`MinioConfig`].
    pub fn new(config: &MinioConfig) -> Result<Self> {
        let s3 = S3Storage::build(&config.to_s3(), "minio")?;
        let endpoint = url::Url::parse(&config.endpoint)
            .map_err(|e| Error::Invalid(format!("minio endpoint {:?}: {e}", config.endpoint)))?;
        // The admin API shares the S3 side's timeouts (0: no limit).
        let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n.min(10 * 365 * 24 * 3600)));
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)));
        if let Some(d) = secs(config.read_timeout_secs) {
            http = http.read_timeout(d);
        }
        if let Some(d) = secs(config.attempt_timeout_secs) {
            http = http.timeout(d);
        }
        // The S3 side checked the file and logged a verification switched
        // off already.
        if config.danger_accept_invalid_certs {
            http = http.tls_danger_accept_invalid_certs(true);
        } else if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::io(format!("reading ca_file {}", path.display()), e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Invalid(format!("ca_file {}: {e}", path.display())))?;
            http = http.tls_certs_merge(certs);
        }
        let http = http
            .build()
            .map_err(|e| Error::Internal(format!("building the HTTP client: {e}")))?;
        Ok(MinioStorage {
            s3,
            endpoint,
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            region: config.region.clone(),
            http,
        })
    }

    /// The S3 side: versioning, lifecycle, notifications, the SDK client.
    pub fn s3(&self) -> &S3Storage {
        &self.s3
    }

    /// `GET /minio/admin/v3/info`: the server's mode, version, disks...
    pub async fn server_info(&self) -> Result<serde_json::Value> {
        let body = self
            .admin(http::Method::GET, "info", &[], Bytes::new())
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::Internal(format!("minio server info is not JSON: {e}")))
    }

    /// Adds (or updates) a user with an enabled status.
    pub async fn add_user(&self, access_key: &str, secret_key: &Secret) -> Result<()> {
        if access_key.len() < 3 || secret_key.expose().len() < 8 {
            return Err(Error::Invalid(
                "minio users need an access key of 3+ and a secret key of 8+ characters".into(),
            ));
        }
        let payload = serde_json::json!({ "secretKey": secret_key.expose(), "status": "enabled" });
        let body = self.encrypt(&serde_json::to_vec(&payload).unwrap_or_default())?;
        self.admin(
            http::Method::PUT,
            "add-user",
            &[("accessKey", access_key)],
            body.into(),
        )
        .await
        .map(|_| ())
    }

    /// Removes a user.
    pub async fn remove_user(&self, access_key: &str) -> Result<()> {
        self.admin(
            http::Method::DELETE,
            "remove-user",
            &[("accessKey", access_key)],
            Bytes::new(),
        )
        .await
        .map(|_| ())
    }

    /// A user's status and policies.
    pub async fn user_info(&self, access_key: &str) -> Result<UserInfo> {
        let body = self
            .admin(
                http::Method::GET,
                "user-info",
                &[("accessKey", access_key)],
                Bytes::new(),
            )
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::Internal(format!("minio user info is not JSON: {e}")))
    }

    /// Creates or replaces a policy from its JSON document.
    pub async fn add_policy(&self, name: &str, policy: &serde_json::Value) -> Result<()> {
        if name.is_empty() {
            return Err(Error::Invalid("policy name must not be empty".into()));
        }
        let body = serde_json::to_vec(policy)
            .map_err(|e| Error::Invalid(format!("policy document: {e}")))?;
        self.admin(
            http::Method::PUT,
            "add-canned-policy",
            &[("name", name)],
            body.into(),
        )
        .await
        .map(|_| ())
    }

    /// Attaches policies (built-in like `readwrite`, or added ones) to a user.
    pub async fn attach_policy(&self, user: &str, policies: &[&str]) -> Result<()> {
        if policies.is_empty() {
            return Err(Error::Invalid("no policy to attach".into()));
        }
        let payload = serde_json::json!({ "policies": policies, "user": user });
        let body = self.encrypt(&serde_json::to_vec(&payload).unwrap_or_default())?;
        self.admin(
            http::Method::POST,
            "idp/builtin/policy/attach",
            &[],
            body.into(),
        )
        .await
        .map(|_| ())
    }

    fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>> {
        encrypt_admin_payload(self.secret_key.expose(), plain)
    }

    /// Sends one signed admin request; returns the body of a 2xx answer.
    async fn admin(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Bytes> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
        };
        use aws_sigv4::sign::v4;
        let mut url = self
            .endpoint
            .join(&format!("minio/admin/v3/{path}"))
            .map_err(|e| Error::Invalid(format!("admin path {path:?}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().copied());
        }
        let identity = aws_sdk_s3::config::Credentials::new(
            self.access_key.clone(),
            self.secret_key.expose().to_owned(),
            None,
            None,
            "kubepkg-minio-admin",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| Error::Internal(format!("signing parameters: {e}")))?
            .into();
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .body(body.clone())
            .map_err(|e| Error::Invalid(format!("admin request: {e}")))?;
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            std::iter::empty(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| Error::Internal(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Error::Internal(format!("signing: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let span = tracing::debug_span!("storage", backend = "minio", op = "admin", target = path);
        let has_body = !body.is_empty();
        let mut rb = self.http.request(method, url.as_str()).body(body);
        if has_body {
            // MinIO insists on an opaque body type for encrypted payloads.
            rb = rb.header(http::header::CONTENT_TYPE, "application/octet-stream");
        }
        for (k, v) in req.headers() {
            rb = rb.header(k, v);
        }
        let resp = tracing::Instrument::instrument(rb.send(), span)
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Error::Timeout(format!("minio admin {path}: {e}"))
                } else {
                    Error::Unavailable(format!("minio admin {path}: {e}"))
                }
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("minio admin {path}: {e}")))?;
        if status.is_success() {
            return Ok(bytes);
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "PascalCase")]
        struct ApiError {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let err: ApiError = serde_json::from_slice(&bytes).unwrap_or_default();
        let detail = format!(
            "minio admin {path}: {} {} {}",
            status.as_u16(),
            err.code,
            err.message
        );
        Err(match (status.as_u16(), err.code.as_str()) {
            (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch") => Error::Unauthorized(detail),
            (_, "XMinioAdminNoSuchUser" | "XMinioAdminNoSuchPolicy") | (404, _) => {
                Error::NotFound(detail)
            }
            (_, "XMinioAdminPolicyChangeAlreadyApplied") => Error::AlreadyExists(detail),
            (401, _) => Error::Unauthorized(detail),
            (403, _) => Error::Forbidden(detail),
            (409, _) => Error::Conflict(detail),
            (400, _) => Error::Invalid(detail),
            (501, _) => Error::Unsupported(detail),
            (s, _) if s >= 500 => Error::Unavailable(detail),
            _ => Error::Internal(detail),
        })
    }
}

const SIO_BUF: usize = 16 * 1024;
const PBKDF2_AES_GCM: u8 = 0x02;

/// Encrypts an admin payload: `salt(32) | 0x02 | nonce(8) | chunks`, the key
/// being PBKDF2-HMAC-SHA256(secret, salt, 8192 rounds); each 16 KiB chunk is
/// sealed with AES-256-GCM under `nonce | seq` (little endian), the last one
/// flagged in its associated data.
pub(crate) fn encrypt_admin_payload(secret: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let mut salt = [0u8; 32];
    let mut nonce8 = [0u8; 8];
    aws_lc_rs::rand::fill(&mut salt)
        .and_then(|()| aws_lc_rs::rand::fill(&mut nonce8))
        .map_err(|_| Error::Internal("no randomness".into()))?;
    encrypt_with(secret, plain, &salt, &nonce8)
}

fn encrypt_with(secret: &str, plain: &[u8], salt: &[u8; 32], nonce8: &[u8; 8]) -> Result<Vec<u8>> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let mut key = [0u8; 32];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(8192).unwrap_or(std::num::NonZeroU32::MIN),
        salt,
        secret.as_bytes(),
        &mut key,
    );
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| Error::Internal("bad AES key".into()))?,
    );
    let nonce_for = |seq: u32| {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(nonce8);
        n[8..].copy_from_slice(&seq.to_le_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let seal_err = |_| Error::Internal("AES-GCM sealing failed".into());
    // Associated data: flag byte + the tag of an empty message under seq 0.
    let mut empty = Vec::new();
    let tag0 = aead
        .seal_in_place_separate_tag(nonce_for(0), Aad::empty(), &mut empty)
        .map_err(seal_err)?;
    let mut ad = Vec::with_capacity(17);
    ad.push(0x00);
    ad.extend_from_slice(tag0.as_ref());

    let mut out = Vec::with_capacity(41 + plain.len() + (plain.len() / SIO_BUF + 1) * 16);
    out.extend_from_slice(salt);
    out.push(PBKDF2_AES_GCM);
    out.extend_from_slice(nonce8);
    let full = if plain.is_empty() {
        0
    } else {
        (plain.len() - 1) / SIO_BUF
    };
    let mut seq = 1u32;
    for i in 0..full {
        let mut chunk = plain[i * SIO_BUF..(i + 1) * SIO_BUF].to_vec();
        aead.seal_in_place_append_tag(nonce_for(seq), Aad::from(ad.as_slice()), &mut chunk)
            .map_err(seal_err)?;
        out.extend_from_slice(&chunk);
        seq += 1;
    }
    ad[0] = 0x80;
    let mut last = plain[full * SIO_BUF..].to_vec();
    aead.seal_in_place_append_tag(nonce_for(seq), Aad::from(ad.as_slice()), &mut last)
        .map_err(seal_err)?;
    out.extend_from_slice(&last);
    Ok(out)
}

#[async_trait]
impl ObjectStorage for MinioStorage {
    fn backend(&self) -> &'static str {
        "minio"
    }
    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.s3.create_bucket(bucket).await
    }
    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        self.s3.delete_bucket(bucket).await
    }
    async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        self.s3.bucket_exists(bucket).await
    }
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        self.s3.list_buckets().await
    }
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.s3.put_object(bucket, key, data, opts).await
    }
    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.s3.put_stream(bucket, key, body, opts).await
    }
    async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectStream> {
        self.s3.get_stream(bucket, key, range).await
    }
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        opts: &DownloadOptions,
    ) -> Result<DownloadResult> {
        self.s3.download(bucket, key, dest, opts).await
    }
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.s3.head_object(bucket, key).await
    }
    fn list_objects(
        &self,
        bucket: &str,
        opts: &ListOptions,
    ) -> BoxStream<'static, Result<ListPage>> {
        self.s3.list_objects(bucket, opts)
    }
    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<()> {
        self.s3
            .copy_object(src_bucket, src_key, dst_bucket, dst_key)
            .await
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.s3.delete_object(bucket, key).await
    }
    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()> {
        self.s3.delete_objects(bucket, keys).await
    }
    async fn presign_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        self.s3.presign_get(bucket, key, expires_in).await
    }
    async fn presign_put(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        self.s3.presign_put(bucket, key, expires_in).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_layout() {
        let salt = [7u8; 32];
        let nonce = [9u8; 8];
        let plain = vec![1u8; SIO_BUF * 2 + 5];
        let out = encrypt_with("secret", &plain, &salt, &nonce).unwrap();
        assert_eq!(&out[..32], &salt);
        assert_eq!(out[32], PBKDF2_AES_GCM);
        assert_eq!(&out[33..41], &nonce);
        // three chunks, 16-byte tag each
        assert_eq!(out.len(), 41 + plain.len() + 3 * 16);
        let exact = encrypt_with("s", &vec![0u8; SIO_BUF], &salt, &nonce).unwrap();
        assert_eq!(exact.len(), 41 + SIO_BUF + 16);
        let empty = encrypt_with("s", &[], &salt, &nonce).unwrap();
        assert_eq!(empty.len(), 41 + 16);
    }
}
