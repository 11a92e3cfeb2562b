//! Manifests: OCI image index / manifest and Docker manifest list / v2 manifest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The media types this crate reads.
pub mod media_types {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// Docker manifest list (schema 2).
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image manifest (schema 2).
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

    /// The `Accept` header value asking for any of the four manifest types.
    pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

    /// Whether `media_type` is an index / manifest list.
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_LIST
    }
}

/// A platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Platform {
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version (Windows).
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor: what a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the target.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the target.
    pub digest: String,
    /// Size of the target in bytes.
    pub size: u64,
    /// For index entries, the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The media type (from the body, or the response's `Content-Type`).
    #[serde(default)]
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Config size plus all layer sizes.
    pub fn total_size(&self) -> u64 {
        self.layers
            .iter()
            .fold(self.config.size, |acc, l| acc.saturating_add(l.size))
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The media type.
    #[serde(default)]
    pub media_type: String,
    /// One entry per platform manifest.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest as fetched from a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its digest (verified against the body).
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Size of the raw body in bytes.
    pub size: u64,
    /// The parsed content.
    pub content: ManifestContent,
}

/// The parsed content of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestContent {
    /// An image index / manifest list.
    Index(ImageIndex),
    /// A platform image manifest.
    Image(ImageManifest),
}

impl Manifest {
    /// Parses a manifest body. `content_type` is the response's
    /// `Content-Type`, used when the body has no `mediaType`.
    pub fn parse(digest: String, content_type: Option<&str>, body: &[u8]) -> Result<Manifest> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            schema_version: Option<u32>,
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
            #[serde(default)]
            config: Option<serde_json::Value>,
        }
        let bad = |m: String| Error::Invalid(format!("manifest {digest}: {m}"));
        let probe: Probe = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
        if probe.schema_version != Some(2) {
            return Err(bad(format!(
                "unsupported schemaVersion {:?} (only schema 2 / OCI are read)",
                probe.schema_version
            )));
        }
        let media_type = probe
            .media_type
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| {
                content_type
                    .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
                    .filter(|c| c.starts_with("application/vnd."))
            })
            .unwrap_or_else(|| {
                if probe.manifests.is_some() {
                    media_types::OCI_INDEX.to_string()
                } else {
                    media_types::OCI_MANIFEST.to_string()
                }
            });
        let content = if media_types::is_index(&media_type) || probe.manifests.is_some() {
            let mut index: ImageIndex =
                serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            index.media_type.clone_from(&media_type);
            ManifestContent::Index(index)
        } else if probe.config.is_some() {
            let mut image: ImageManifest =
                serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            image.media_type.clone_from(&media_type);
            ManifestContent::Image(image)
        } else {
            return Err(bad(format!(
                "media type {media_type} is neither an index nor an image manifest"
            )));
        };
        Ok(Manifest {
            digest,
            media_type,
            size: body.len() as u64,
            content,
        })
    }

    /// The index, if this is one.
    pub fn as_index(&self) -> Option<&ImageIndex> {
        match &self.content {
            ManifestContent::Index(i) => Some(i),
            ManifestContent::Image(_) => None,
        }
    }

    /// The image manifest, if this is one.
    pub fn as_image(&self) -> Option<&ImageManifest> {
        match &self.content {
            ManifestContent::Image(i) => Some(i),
            ManifestContent::Index(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
      "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":100,"digest":"sha256:aa"},
      "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1000,"digest":"sha256:bb"},
                {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":24,"digest":"sha256:cc"}]}"#;

    const INDEX: &str = r#"{"schemaVersion":2,
      "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,"digest":"sha256:dd",
                    "platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;

    #[test]
    fn parses_docker_image_manifest() {
        let m = Manifest::parse("sha256:x".into(), None, IMAGE.as_bytes()).unwrap();
        assert_eq!(m.media_type, media_types::DOCKER_MANIFEST);
        let img = m.as_image().unwrap();
        assert_eq!(img.total_size(), 1124);
        assert_eq!(img.layers.len(), 2);
    }

    #[test]
    fn parses_index_with_media_type_from_content_type() {
        let m = Manifest::parse(
            "sha256:y".into(),
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
            INDEX.as_bytes(),
        )
        .unwrap();
        assert_eq!(m.media_type, media_types::OCI_INDEX);
        let idx = m.as_index().unwrap();
        let p = idx.manifests[0].platform.as_ref().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(m.as_image().is_none());
    }

    #[test]
    fn rejects_schema1_and_garbage() {
        assert!(Manifest::parse("d".into(), None, br#"{"schemaVersion":1}"#).is_err());
        assert!(Manifest::parse("d".into(), None, b"not json").is_err());
        assert!(Manifest::parse("d".into(), None, br#"{"schemaVersion":2}"#).is_err());
    }
}
