//! What every simulator shares: the in-process server, its handle, fault
//! injection and the poll counters of simulated operations.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Knobs of a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Polls a new cluster (or node) stays creating before it runs.
    pub polls_to_ready: u32,
    /// Polls a deleted cluster (or node) is still listed.
    pub polls_to_gone: u32,
    /// The control plane a created cluster's kubeconfig reaches and kwok
    /// nodes are created in (`None`: the local environment's, from
    /// `kubepkg-testenv`).
    pub kube: Option<crate::kube::KubeTarget>,
}

impl Default for SimOptions {
    /// 2 polls to be ready, 2 to be gone, the local environment.
    fn default() -> Self {
        SimOptions {
            polls_to_ready: 2,
            polls_to_gone: 2,
            kube: None,
        }
    }
}

/// A canned answer for the next request (a fixture from the vendor's
/// reference), served after the request's signature or key was checked.
#[derive(Debug, Clone)]
pub struct Canned {
    /// HTTP status.
    pub status: u16,
    /// The body, verbatim.
    pub body: String,
}

impl axum::response::IntoResponse for Canned {
    /// The canned status and body, as JSON.
    fn into_response(self) -> axum::response::Response {
        let status =
            axum::http::StatusCode::from_u16(self.status).unwrap_or(axum::http::StatusCode::OK);
        (status, [("content-type", "application/json")], self.body).into_response()
    }
}

/// A synchronous simulator handler: method, URI, headers, body.
pub(crate) type SyncHandler<S> = fn(
    &S,
    &axum::http::Method,
    &axum::http::Uri,
    &axum::http::HeaderMap,
    &[u8],
) -> axum::response::Response;

/// Serves every path of `sim` through `handler` on 127.0.0.1:0.
pub(crate) async fn serve_sync<S: Send + Sync + 'static>(
    sim: Arc<S>,
    handler: SyncHandler<S>,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, Uri};
    let app = axum::Router::new().fallback(move |m: Method, uri: Uri, h: HeaderMap, b: Bytes| {
        let sim = sim.clone();
        async move { handler(&sim, &m, &uri, &h, &b) }
    });
    serve(app).await
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub throttle: u32,
    pub canned: VecDeque<Canned>,
    pub fail_create: u32,
    pub requests: u64,
    /// Images "pushed" to a registry simulator: repository → tag → digest.
    pub images: BTreeMap<String, BTreeMap<String, String>>,
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The key id (SecretId, AccessKey id, user name) it accepts; empty
    /// for token-only APIs.
    pub key_id: String,
    /// The secret (SecretKey, AccessKey secret, bearer token, password).
    pub secret: String,
    /// The region it serves.
    pub region: String,
    pub(crate) faults: Arc<Mutex<Faults>>,
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) owner: Arc<crate::kube::Owner>,
}

impl Drop for SimHandle {
    /// Stops the server and deletes the kwok nodes it still has.
    fn drop(&mut self) {
        self.task.abort();
        self.owner.release();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimHandle {
    /// The next `n` authenticated requests are answered as throttled.
    pub fn throttle_next(&self, n: u32) {
        lock(&self.faults).throttle += n;
    }

    /// The next authenticated request gets `canned` instead of a real
    /// answer (queued: several calls answer several requests).
    pub fn respond_next(&self, status: u16, body: impl Into<String>) {
        lock(&self.faults).canned.push_back(Canned {
            status,
            body: body.into(),
        });
    }

    /// The next `n` clusters created stay creating, then fail.
    pub fn fail_next_create(&self, n: u32) {
        lock(&self.faults).fail_create += n;
    }

    /// How many requests reached the simulator (signed or not).
    pub fn requests(&self) -> u64 {
        lock(&self.faults).requests
    }

    /// Records an image as if it had been pushed to a registry simulator
    /// (TKEStack, ACR, Harbor): `repository` (`namespace/name`) gets `tag`
    /// with a made-up digest. Cluster simulators ignore it.
    pub fn push_image(&self, repository: &str, tag: &str) {
        let digest = format!(
            "sha256:{}",
            kubepkg_platform::provider::sign::sha256_hex(format!("{repository}:{tag}").as_bytes())
        );
        lock(&self.faults)
            .images
            .entry(repository.to_string())
            .or_default()
            .insert(tag.to_string(), digest);
    }

    /// The value of [`crate::kube::OWNER_LABEL`] on the kwok nodes this
    /// simulator creates.
    pub fn owner_id(&self) -> &str {
        self.owner.id()
    }

    /// The kwok nodes this simulator created and has not deleted yet.
    pub fn kwok_nodes(&self) -> Vec<String> {
        self.owner.nodes()
    }
}

/// What a simulator's handler should do about fault injection for one
/// authenticated request.
pub(crate) enum Injected {
    Throttle,
    Canned(Canned),
    None,
}

impl Faults {
    pub(crate) fn take(&mut self) -> Injected {
        if self.throttle > 0 {
            self.throttle -= 1;
            return Injected::Throttle;
        }
        match self.canned.pop_front() {
            Some(c) => Injected::Canned(c),
            None => Injected::None,
        }
    }

    pub(crate) fn take_fail_create(&mut self) -> bool {
        if self.fail_create > 0 {
            self.fail_create -= 1;
            true
        } else {
            false
        }
    }
}

/// Serves `app` on 127.0.0.1:0 in the current runtime; returns its URL.
pub(crate) async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("vendor simulator: cannot listen on 127.0.0.1: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("vendor simulator: no local address: {e}"),
    };
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "vendor simulator stopped");
        }
    });
    (format!("http://{addr}"), task)
}

/// A random hex id of `n` characters.
pub(crate) fn rand_id(n: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(n);
    s
}

/// A cluster or node's progress through a simulated lifecycle: counts
/// polls down, then flips.
#[derive(Debug, Clone)]
pub(crate) struct Countdown {
    pub left: u32,
}

impl Countdown {
    pub fn new(n: u32) -> Self {
        Countdown { left: n }
    }
    /// One poll: true once it has run out.
    pub fn tick(&mut self) -> bool {
        if self.left == 0 {
            return true;
        }
        self.left -= 1;
        self.left == 0
    }
}
