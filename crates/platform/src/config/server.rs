//! The `[server]` section: settings of the platform's REST service
//! (`kubepkg-server`). A library user of the platform can leave it out; it
//! lives here so one file configures the service and the library it embeds.

use kubepkg_util::secret::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of `kubepkg-server`. `Debug` never shows the bootstrap token.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSettings {
    /// Address to listen on. Default `127.0.0.1:8480`.
    pub listen: SocketAddr,
    /// Largest request body, in bytes; a larger one is refused with 413
    /// before it is read whole. Default 8 MiB.
    pub body_limit_bytes: usize,
    /// Seconds a request may take before it is answered 504 (streams —
    /// `follow`ed logs, watches, object downloads — are exempt once their
    /// first byte is sent). Default 60.
    pub request_timeout_secs: u64,
    /// Largest page size a list accepts. Default 1000.
    pub max_page_size: u32,
    /// PEM certificate chain for serving HTTPS; with `tls_key`. Absent:
    /// plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for serving HTTPS.
    pub tls_key: Option<PathBuf>,
    /// The admin token to create on first start with an empty store. Absent:
    /// a random one is created and printed once.
    pub bootstrap_token: Option<Secret<String>>,
    /// Seconds the shutdown waits for in-flight requests after SIGTERM.
    /// Default 30.
    pub shutdown_grace_secs: u64,
    /// Build a new Kubernetes client for every request (store read,
    /// decryption, TLS set-up, a `/version` probe) instead of reusing the
    /// cached one, as the source design did. Only slower: the server's
    /// benchmark turns it on for its baseline, and it can rule the client
    /// cache out when debugging. Default false.
    pub rebuild_clients_per_request: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            body_limit_bytes: 8 * 1024 * 1024,
            request_timeout_secs: 60,
            max_page_size: 1000,
            tls_cert: None,
            tls_key: None,
            bootstrap_token: None,
            shutdown_grace_secs: 30,
            rebuild_clients_per_request: false,
        }
    }
}

impl ServerSettings {
    /// [`request_timeout_secs`](Self::request_timeout_secs) as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// [`shutdown_grace_secs`](Self::shutdown_grace_secs) as a `Duration`.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}
