//! [`Client`]: one cluster's connection (kube's HTTP stack with kubepkg's
//! rate limit, deadline and retry layers), its discovery cache, and the
//! entry points of every resource family.

use crate::config::ClusterConfig;
use crate::discovery::DiscoveryCache;
use crate::layers::{GuardLayer, RetryPolicy, SharedLayer, TokenBucket};
use crate::{Error, Result};
use k8s_openapi::apimachinery::pkg::version::Info;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

/// A connection to one cluster. Cheap to clone (shared connection pool,
/// shared discovery cache).
#[derive(Clone)]
pub struct Client {
    inner: kube::Client,
    name: Arc<str>,
    server: Arc<str>,
    pub(crate) discovery: Arc<DiscoveryCache>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Builds a client for `config` (named `default`). Nothing is contacted:
/// use [`Client::version`] or a [`crate::ClusterManager`] to probe.
pub async fn connect(config: &ClusterConfig) -> Result<Client> {
    Client::connect_named("default", config).await
}

impl Client {
    /// Builds a client named `name` (the name appears in tracing spans).
    pub async fn connect_named(name: &str, config: &ClusterConfig) -> Result<Client> {
        let kcfg = config.to_kube_config().await?;
        let server = kcfg.cluster_url.to_string();
        // kube (through tower-http) panics while building its auth layer
        // when a credential fixed at build time — e.g. an exec plugin's
        // token without an expiry — is not a valid header value. That is a
        // configuration error, not a reason to take the service down. The
        // panic message names no credential.
        let builder = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            kube::client::ClientBuilder::try_from(kcfg)
        }))
        .map_err(|_| {
            Error::Config(
                "the credentials of this config cannot be sent as an HTTP header \
                 (a token with a newline or another control character?)"
                    .into(),
            )
        })?
        .map_err(Error::from)?;
        let bucket =
            (config.qps > 0.0).then(|| Arc::new(TokenBucket::new(config.qps, config.burst)));
        let guard = GuardLayer {
            bucket,
            timeout: (config.timeout_secs > 0).then(|| Duration::from_secs(config.timeout_secs)),
        };
        let inner = builder
            .with_layer(&SharedLayer)
            .with_layer(&guard)
            .with_layer(&tower::retry::RetryLayer::new(RetryPolicy::new(
                config.max_retries,
            )))
            .build();
        Ok(Client::from_kube(name, inner, &server))
    }

    /// Wraps an existing kube client (no kubepkg layers are added).
    pub fn from_kube(name: &str, client: kube::Client, server: &str) -> Client {
        Client {
            inner: client,
            name: Arc::from(name),
            server: Arc::from(server.trim_end_matches('/')),
            discovery: Arc::new(DiscoveryCache::default()),
        }
    }

    /// The underlying kube client, for anything kubepkg does not wrap.
    pub fn kube(&self) -> &kube::Client {
        &self.inner
    }

    /// The cluster's name (from [`crate::ClusterManager`], else `default`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The namespace used when a call names none.
    pub fn default_namespace(&self) -> &str {
        self.inner.default_namespace()
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Info> {
        self.run("version", "/version", self.inner.apiserver_version())
            .await
    }

    /// The tracing span of one remote call.
    pub(crate) fn span(&self, operation: &'static str, target: &str) -> tracing::Span {
        tracing::info_span!(
            "k8s",
            backend = "kubernetes",
            cluster = %self.name,
            operation,
            target,
        )
    }

    /// Runs one kube call inside its span, mapping the error.
    pub(crate) async fn run<T, F>(&self, operation: &'static str, target: &str, fut: F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, kube::Error>>,
    {
        let span = self.span(operation, target);
        async move {
            fut.await.map_err(|e| {
                let e = Error::from(e);
                tracing::debug!(kind = %e.kind(), error = %e, "call failed");
                e
            })
        }
        .instrument(span)
        .await
    }
}
