//! # kubepkg-server
//!
//! The kubepkg platform as a REST service: clusters of any vendor (import,
//! health, credentials), their nodes, namespaces, workloads and pods (logs
//! streamed, events newest first), services / ingresses / configmaps /
//! secrets (values redacted) / volumes, multi-document apply with dry run
//! and prune, watches as Server-Sent Events, multi-cluster search, image
//! registries, object storage and message queues — every answer in the
//! platform's envelope `{code, message, data}`, every list in its page type,
//! every route but `/healthz` and `/readyz` behind a bearer token with a
//! role (`viewer`, `operator`, `admin`) and optionally a list of clusters,
//! every mutation in the store's audit log, and `/openapi.json` generated
//! from the handlers.
//!
//! The binary reads the platform's config file (the `[server]` section is
//! [`kubepkg_platform::config::ServerSettings`]):
//!
//! ```sh
//! kubepkg-server --config kubepkg.toml
//! ```
//!
//! The library half builds the same router for embedding or testing:
//!
//! ```
//! use kubepkg_platform::config::ServerSettings;
//! use kubepkg_platform::{Keyring, Platform, PlatformOptions, Store};
//! use kubepkg_server::{AppState, bootstrap, router};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let store = Store::open("sqlite::memory:", Keyring::new("k1", Keyring::generate_key())?).await?;
//! let platform = Platform::with_store(store, PlatformOptions::default()).await?;
//! let state = AppState::new(platform, ServerSettings::default(), vec![], vec![]);
//! // An empty store gets one admin token, shown only here.
//! let token = bootstrap(&state).await?.expect("a fresh store gets a token");
//! assert!(token.expose().starts_with("kpk_"));
//! let app = router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move { axum::serve(listener, app).await });
//! // Without the token: 401 in the envelope.
//! let mut s = tokio::net::TcpStream::connect(addr).await?;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! s.write_all(b"GET /clusters HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
//! let mut answer = String::new();
//! s.read_to_string(&mut answer).await?;
//! assert!(answer.starts_with("HTTP/1.1 401"));
//! assert!(answer.contains(r#""code":40100"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod auth;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;
mod tls;
pub mod views;

pub use error::{Error, Result};
pub use routes::router;
pub use state::AppState;

use kubepkg_platform::PlatformConfig;
use kubepkg_util::secret::Secret;
use std::future::Future;
use std::sync::Arc;

/// On an empty token table, creates the bootstrap admin token (the one in
/// `[server] bootstrap_token`, else a random one) and returns its secret,
/// to be shown once. `None` when tokens exist already.
pub async fn bootstrap(state: &AppState) -> Result<Option<Secret<String>>> {
    if state.platform.store().count_api_tokens().await? > 0 {
        return Ok(None);
    }
    let given = state.settings.bootstrap_token.clone();
    let (_record, secret) =
        auth::create(state, "bootstrap", auth::Role::Admin, None, None, given).await?;
    Ok(Some(secret))
}

/// Registers every configured image registry with the platform's registry
/// providers, so the registry routes serve them.
pub fn register_registries(state: &AppState, names: &[String]) -> Result<()> {
    for name in names {
        let registry = kubepkg_image_api::global::named_registry(name)?;
        let kind = format!("{:?}", registry.kind()).to_lowercase();
        state.platform.providers().insert_registry(
            name,
            Arc::new(kubepkg_platform::provider::image_api::ImageApiRegistry::new(kind, registry)),
        );
    }
    Ok(())
}

/// Runs the server from a config until `shutdown` resolves: sets every
/// crate's defaults (`kubepkg_platform::init`, which also installs
/// logging), opens the platform, creates the bootstrap token on an empty
/// store (printed once on standard output), starts the background health
/// prober, listens, and on shutdown lets in-flight requests finish within
/// `shutdown_grace_secs`.
pub async fn run(
    config: PlatformConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let settings = config.server.clone();
    let acceptor = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(Error::Serve(
                "server.tls_cert and server.tls_key go together: set both to serve HTTPS, \
                 or neither for plain HTTP"
                    .into(),
            ));
        }
    };
    let init = kubepkg_platform::init(&config).await?;
    let platform = kubepkg_platform::Platform::open(&config).await?;
    let state = AppState::new(
        platform.clone(),
        settings.clone(),
        init.object_stores.clone(),
        init.queues.clone(),
    );
    register_registries(&state, &init.registries)?;
    let configured = settings.bootstrap_token.is_some();
    if let Some(token) = bootstrap(&state).await? {
        if configured {
            println!(
                "kubepkg-server: created the admin token `bootstrap` from server.bootstrap_token"
            );
        } else {
            println!(
                "kubepkg-server: bootstrap admin token (shown once, store it now): {}",
                token.expose()
            );
        }
    }
    let prober = platform.start_health_prober();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| Error::Serve(format!("cannot listen on {}: {e}", settings.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Serve(format!("listening socket: {e}")))?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!(
        "kubepkg-server: instance {} listening on {scheme}://{addr}",
        platform.instance_id()
    );
    tracing::info!(%addr, instance = platform.instance_id(), "listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grace = settings.shutdown_grace();
    let app = router(state);
    let stopping = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    };
    let server: std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send>> = match acceptor {
        None => Box::pin(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopping)
                .await
                .map_err(|e| Error::Serve(format!("serving: {e}")))
        }),
        Some(acceptor) => Box::pin(tls::serve(listener, acceptor, app, stopping)),
    };
    let mut stop_rx2 = stop_rx.clone();
    let served = tokio::select! {
        r = server => r,
        () = async move {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests outlived the shutdown grace; stopping");
            Ok(())
        }
    };
    drop(stop_rx);
    prober.stop().await;
    platform.store().close().await;
    served
}
