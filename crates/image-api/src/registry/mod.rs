//! The [`ImageRegistry`] trait and the types it speaks.
//!
//! A registry holds *namespaces* (Harbor projects; the first path segment of
//! a repository name), *repositories* (`library/nginx`), and in each
//! repository *artifacts* (manifests, addressed by digest) carrying zero or
//! more *tags*.
//!
//! Backends: [`distribution`](crate::distribution) (any OCI Distribution /
//! Docker Registry v2 server) and [`harbor`](crate::harbor). Build one from a
//! [`RegistryConfig`] with [`connect`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{RegistryConfig, RegistryKind};
use crate::{Error, Result};

pub mod manifest;

pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform, media_types};

/// Who may pull from a namespace without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone may pull.
    Public,
    /// Only members may pull.
    #[default]
    Private,
}

/// What to create with [`ImageRegistry::create_namespace`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSpec {
    /// The namespace (Harbor project) name.
    pub name: String,
    /// Public or private.
    #[serde(default)]
    pub visibility: Visibility,
    /// Storage quota in bytes; `None` keeps the registry's default, `-1` is unlimited.
    #[serde(default)]
    pub quota_bytes: Option<i64>,
}

impl NamespaceSpec {
    /// A private namespace with the default quota.
    pub fn new(name: impl Into<String>) -> Self {
        NamespaceSpec {
            name: name.into(),
            visibility: Visibility::Private,
            quota_bytes: None,
        }
    }

    /// Sets the visibility.
    pub fn visibility(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// Sets the storage quota in bytes (`-1`: unlimited).
    pub fn quota_bytes(mut self, bytes: i64) -> Self {
        self.quota_bytes = Some(bytes);
        self
    }
}

/// A namespace (Harbor project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Public or private.
    pub visibility: Visibility,
    /// Number of repositories, when the registry reports it.
    pub repository_count: Option<u64>,
    /// Storage quota in bytes (`-1`: unlimited), when known.
    pub quota_bytes: Option<i64>,
    /// Bytes used against the quota, when known.
    pub used_bytes: Option<u64>,
    /// Creation time, RFC 3339, when known.
    pub created: Option<String>,
}

/// A repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// The full name inside the registry, e.g. `library/nginx`.
    pub name: String,
    /// Number of artifacts, when the registry reports it.
    pub artifact_count: Option<u64>,
    /// Number of pulls, when the registry reports it.
    pub pull_count: Option<u64>,
    /// Last update time, RFC 3339, when known.
    pub updated: Option<String>,
}

impl Repository {
    /// A repository known only by name.
    pub fn named(name: impl Into<String>) -> Self {
        Repository {
            name: name.into(),
            artifact_count: None,
            pull_count: None,
            updated: None,
        }
    }

    /// The namespace part (everything before the last `/`), if any.
    pub fn namespace(&self) -> Option<&str> {
        self.name.rsplit_once('/').map(|(ns, _)| ns)
    }
}

/// An artifact: one manifest (image, index, or other OCI artifact) and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The repository it lives in.
    pub repository: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// Tags pointing at it (sorted).
    pub tags: Vec<String>,
    /// Size in bytes: for an image, config + layers as listed in its manifest;
    /// for an index, the sum over its platform manifests (shared blobs counted
    /// once per manifest). Harbor reports its own figure.
    pub size: u64,
    /// When it was pushed (RFC 3339) if known. Harbor records the push time;
    /// a plain distribution registry does not, so the `created` time of the
    /// image config is used instead (the build time, which the pusher
    /// controls — see the backend's docs).
    pub pushed: Option<String>,
    /// For an index, the platforms it serves.
    pub platforms: Vec<Platform>,
}

/// What [`ImageRegistry::delete_artifact`] and friends address: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArtifactRef {
    /// A tag, e.g. `v1`.
    Tag(String),
    /// A digest, e.g. `sha256:…`.
    Digest(String),
}

impl ArtifactRef {
    /// Parses a reference: a string containing `:` is a digest, anything else a tag.
    pub fn parse(s: &str) -> Result<Self> {
        if s.contains(':') {
            validate_digest(s)?;
            Ok(ArtifactRef::Digest(s.to_string()))
        } else {
            validate_tag(s)?;
            Ok(ArtifactRef::Tag(s.to_string()))
        }
    }

    /// The string form used in URLs.
    pub fn as_str(&self) -> &str {
        match self {
            ArtifactRef::Tag(t) | ArtifactRef::Digest(t) => t,
        }
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about the registry server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RegistryInfo {
    /// The backend (`distribution` or `harbor`).
    pub backend: String,
    /// The server's version, when it tells (Harbor: `harbor_version`;
    /// distribution: the `Docker-Distribution-Api-Version` header).
    pub version: Option<String>,
    /// Other facts the backend reports.
    pub extra: BTreeMap<String, String>,
}

/// One registry: Harbor, or any OCI Distribution server.
///
/// Object-safe; use it as `Arc<dyn ImageRegistry>`. Operations a backend lacks
/// return [`Error::Unsupported`], never a silent
/// no-op. Every call runs in a `tracing` span named `image.registry` with the
/// backend, operation and target.
#[async_trait]
pub trait ImageRegistry: Send + Sync + fmt::Debug {
    /// The backend's kind.
    fn kind(&self) -> RegistryKind;

    /// The registry's host (and port) as used in image references, e.g.
    /// `registry.example.com` or `127.0.0.1:5000`.
    fn host(&self) -> &str;

    /// Checks that the configured credentials are accepted.
    /// Wrong ones give [`ErrorKind::Unauthorized`](kubepkg_util::ErrorKind::Unauthorized).
    async fn check_credentials(&self) -> Result<()>;

    /// Facts about the server.
    async fn info(&self) -> Result<RegistryInfo>;

    /// Creates a namespace (Harbor project) and returns it.
    async fn create_namespace(&self, spec: &NamespaceSpec) -> Result<Namespace>;

    /// Gets a namespace by name.
    async fn get_namespace(&self, name: &str) -> Result<Namespace>;

    /// Lists all namespaces visible to the caller.
    async fn list_namespaces(&self) -> Result<Vec<Namespace>>;

    /// Deletes an (empty) namespace.
    async fn delete_namespace(&self, name: &str) -> Result<()>;

    /// Lists repositories, all of them or those of one namespace.
    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>>;

    /// Deletes a repository and everything in it.
    async fn delete_repository(&self, repository: &str) -> Result<()>;

    /// Lists the tag names of a repository (cheap: one paginated call).
    /// A missing repository gives [`ErrorKind::NotFound`](kubepkg_util::ErrorKind::NotFound).
    async fn list_tags(&self, repository: &str) -> Result<Vec<String>>;

    /// Lists the artifacts of a repository with digest, tags, size and push time.
    async fn list_artifacts(&self, repository: &str) -> Result<Vec<Artifact>>;

    /// Gets one artifact by tag or digest.
    async fn get_artifact(&self, repository: &str, reference: &ArtifactRef) -> Result<Artifact>;

    /// Deletes the artifact (manifest) a tag or digest points at; every tag
    /// pointing at that manifest goes with it.
    async fn delete_artifact(&self, repository: &str, reference: &ArtifactRef) -> Result<()>;

    /// Removes one tag, leaving the manifest (and its other tags) in place.
    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()>;

    /// Gets a manifest (image index or platform manifest; OCI or Docker media
    /// types), verified against its digest.
    async fn get_manifest(&self, repository: &str, reference: &ArtifactRef) -> Result<Manifest>;

    /// Resolves a tag or digest to the manifest digest (`HEAD`, no body).
    async fn resolve(&self, repository: &str, reference: &ArtifactRef) -> Result<String>;
}

/// Builds the registry client a config describes.
///
/// Fails with [`Error::Config`] when the config is unusable, and with
/// [`Error::Unsupported`] when the backend's cargo feature is off.
pub fn connect(config: &RegistryConfig) -> Result<Arc<dyn ImageRegistry>> {
    match config.kind {
        RegistryKind::Distribution => {
            #[cfg(feature = "distribution")]
            {
                Ok(Arc::new(crate::distribution::DistributionRegistry::new(
                    config,
                )?))
            }
            #[cfg(not(feature = "distribution"))]
            {
                Err(Error::Unsupported(
                    "the `distribution` backend is not compiled in (enable cargo feature `distribution`)"
                        .into(),
                ))
            }
        }
        RegistryKind::Harbor => {
            #[cfg(feature = "harbor")]
            {
                Ok(Arc::new(crate::harbor::HarborRegistry::new(config)?))
            }
            #[cfg(not(feature = "harbor"))]
            {
                Err(Error::Unsupported(
                    "the `harbor` backend is not compiled in (enable cargo feature `harbor`)"
                        .into(),
                ))
            }
        }
    }
}

/// Checks a repository name against the distribution spec's grammar
/// (lowercase path components separated by `/`, each `[a-z0-9]+` joined by
/// `.`, `_`, `__` or `-`s).
pub fn validate_repository(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("repository name {name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 255 {
        return bad("longer than 255 characters");
    }
    for component in name.split('/') {
        if component.is_empty() {
            return bad("empty path component");
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return bad("components must start and end with [a-z0-9]");
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if alnum(b) {
                i += 1;
                continue;
            }
            // a separator run: ".", "_", "__" or "-"+
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return bad("invalid character or separator");
            }
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid tag {tag:?}")))
    }
}

/// Checks a digest: `algorithm:hex` (`sha256` needs 64 lowercase hex digits).
pub fn validate_digest(digest: &str) -> Result<()> {
    let bad = || Err(Error::Invalid(format!("invalid digest {digest:?}")));
    let Some((alg, hex)) = digest.split_once(':') else {
        return bad();
    };
    let alg_ok = !alg.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let hex_ok = !hex.is_empty()
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !alg_ok || !hex_ok || (alg == "sha256" && hex.len() != 64) {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["a", "library/nginx", "a-b/c.d/e__f", "x--y", "ns/sub/repo1"] {
            assert!(validate_repository(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a//b", "-a", "a-", "a/", "a..b", "a___b", "a b"] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(validate_tag("v1.2.3-rc_1").is_ok());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(validate_digest(&d).is_ok());
        assert!(validate_digest("sha256:abc").is_err());
        assert!(validate_digest("nocolon").is_err());
        assert_eq!(
            ArtifactRef::parse(&d).unwrap(),
            ArtifactRef::Digest(d.clone())
        );
        assert_eq!(
            ArtifactRef::parse("latest").unwrap(),
            ArtifactRef::Tag("latest".into())
        );
        assert!(ArtifactRef::parse("sha256:zz").is_err());
    }

    #[test]
    fn namespace_of_repository() {
        assert_eq!(Repository::named("a/b/c").namespace(), Some("a/b"));
        assert_eq!(Repository::named("c").namespace(), None);
    }
}
