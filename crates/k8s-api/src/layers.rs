//! The tower layers kubepkg puts on top of kube's HTTP stack: a token-bucket
//! rate limiter, a per-request deadline that exempts long-running requests,
//! and a retry policy for 429 / 5xx / connection failures with exponential
//! backoff honoring `Retry-After` (5xx and transport failures only for
//! idempotent requests, see [`RetryPolicy`]). Evictions are never retried here: a 429
//! on an eviction is a PodDisruptionBudget's verdict, and the caller (the
//! drain loop) decides when to ask again.

use crate::error::RequestTimedOut;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// A token bucket: `qps` tokens per second, at most `burst` saved up.
/// Callers reserve a token (the count may go negative) and sleep until
/// their reservation is covered, which keeps waiting callers in order.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(crate) fn new(qps: f32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps: f64::from(qps),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// How long the caller must wait for the token it just reserved.
    /// Never panics: a wait too long to represent (a vanishingly small
    /// `qps`) saturates to [`Duration::MAX`], which tokio's timer treats as
    /// "far future". [`crate::ClusterConfig::validate`] rejects such rates
    /// before a bucket is built.
    pub(crate) fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let elapsed = now.saturating_duration_since(st.1).as_secs_f64();
        st.0 = (st.0 + elapsed * self.qps).min(self.burst);
        st.1 = now;
        st.0 -= 1.0;
        if st.0 >= 0.0 {
            Duration::ZERO
        } else {
            // `-st.0 / qps` is +inf for a subnormal qps and NaN for qps 0;
            // neither may reach `from_secs_f64`, which panics.
            Duration::try_from_secs_f64(-st.0 / self.qps).unwrap_or(Duration::MAX)
        }
    }

    pub(crate) async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tracing::trace!(?wait, "client-side rate limit");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether a request is long-running (watch, followed logs) and so exempt
/// from the per-request deadline.
fn is_long_running<B>(req: &Request<B>) -> bool {
    req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "watch=true" | "watch=1" | "follow=true" | "follow=1"))
    })
}

/// Whether a request is a pod eviction (`POST …/pods/{name}/eviction`).
/// The retry policy leaves these alone: the API server answers 429 with
/// `Retry-After: 10` while a PodDisruptionBudget blocks the eviction, and
/// retrying that here would hide the verdict from the caller for up to
/// `max_retries` × 10 s (kubectl's drain and kubepkg's retry it in their
/// own loop, on their own interval and deadline).
fn is_eviction<B>(req: &Request<B>) -> bool {
    if req.method() != Method::POST {
        return false;
    }
    let mut segments = req.uri().path().trim_end_matches('/').rsplit('/');
    matches!(
        (segments.next(), segments.next(), segments.next()),
        (Some("eviction"), Some(name), Some("pods")) if !name.is_empty()
    )
}

/// Makes a non-`Clone` service (kube's boxed HTTP stack) shareable, as the
/// retry layer needs, without a buffer task: each call takes a lock only
/// to drive the service ready and start the request; responses are awaited
/// outside the lock, so requests still run concurrently.
#[derive(Clone)]
pub(crate) struct SharedLayer;

impl<S> Layer<S> for SharedLayer {
    type Service = Shared<S>;
    fn layer(&self, inner: S) -> Shared<S> {
        Shared {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
        }
    }
}

/// See [`SharedLayer`].
pub(crate) struct Shared<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            inner: self.inner.clone(),
        }
    }
}

impl<S, Req> Service<Req> for Shared<S>
where
    S: Service<Req> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let fut = {
                let mut svc = inner.lock().await;
                futures::future::poll_fn(|cx| svc.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                svc.call(req)
            };
            fut.await.map_err(Into::into)
        })
    }
}

/// Rate limit + deadline, one layer.
#[derive(Clone)]
pub(crate) struct GuardLayer {
    pub(crate) bucket: Option<Arc<TokenBucket>>,
    pub(crate) timeout: Option<Duration>,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            bucket: self.bucket.clone(),
            timeout: self.timeout,
        }
    }
}

/// See [`GuardLayer`].
#[derive(Clone)]
pub(crate) struct Guard<S> {
    inner: S,
    bucket: Option<Arc<TokenBucket>>,
    timeout: Option<Duration>,
}

impl<S, B, R> Service<Request<B>> for Guard<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<R>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Take the instance that was driven to readiness; leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let bucket = self.bucket.clone();
        let timeout = self.timeout.filter(|_| !is_long_running(&req));
        Box::pin(async move {
            if let Some(b) = bucket {
                b.acquire().await;
            }
            let fut = inner.call(req);
            match timeout {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r.map_err(Into::into),
                    Err(_) => Err(Box::new(RequestTimedOut(t)) as BoxError),
                },
                None => fut.await.map_err(Into::into),
            }
        })
    }
}

/// Retries of a request:
///
/// - 429 always: the API server's flow control rejects a request before
///   handling it, whatever its method;
/// - the other statuses [`kubepkg_util::http_status::classify`] calls
///   retryable (408, 500, 502, 503, 504), timeouts and other transport
///   failures only
///   for idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE, and a
///   server-side apply PATCH): a POST, a JSON / merge / strategic PATCH
///   answered 503 — by a proxy or a load balancer in front of the API
///   server, or by the server itself after a storage error — may already
///   have been carried out, and sending it again could create a second
///   object or apply a patch twice;
/// - a refused connection always: no byte of the request was sent.
///
/// Pod evictions are never retried (see [`is_eviction`]): their caller
/// owns the retry loop.
#[derive(Clone)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) attempt: u32,
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
    pub(crate) idempotent: bool,
}

impl RetryPolicy {
    pub(crate) fn new(max_retries: u32) -> Self {
        RetryPolicy {
            max_retries,
            attempt: 0,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            idempotent: false,
        }
    }

    /// Exponential backoff with jitter for attempt `n` (0-based).
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << n.min(16)).min(self.cap);
        // Cheap jitter in [50%, 100%] without a random-number dependency.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let frac = 0.5 + f64::from(nanos % 1000) / 2000.0;
        exp.mul_f64(frac)
    }
}

fn idempotent<B>(req: &Request<B>) -> bool {
    match *req.method() {
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS => true,
        Method::PATCH => req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/apply-patch")),
        _ => false,
    }
}

fn connection_refused(e: &BoxError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = s.source();
    }
    // hyper-util reports a failed connect as "client error (Connect)".
    e.to_string().contains("(Connect)")
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the API server).
fn retry_after<R>(resp: &Response<R>) -> Option<Duration> {
    resp.headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(60)))
}

impl<R> tower::retry::Policy<Request<kube::client::Body>, Response<R>, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<kube::client::Body>,
        result: &mut Result<Response<R>, BoxError>,
    ) -> Option<Self::Future> {
        if self.attempt >= self.max_retries || is_eviction(req) {
            return None;
        }
        let idem = self.idempotent || idempotent(req);
        let delay = match result {
            Ok(resp) => {
                let status = resp.status();
                // Whether the status is worth another try comes from the
                // table every kubepkg backend shares; whether this request
                // may be resent is decided here.
                let retry = kubepkg_util::http_status::retryable(status.as_u16())
                    && (status == StatusCode::TOO_MANY_REQUESTS || idem);
                if !retry {
                    return None;
                }
                let backoff = self.backoff(self.attempt);
                let delay = retry_after(resp).map_or(backoff, |ra| ra.max(backoff));
                tracing::debug!(%status, attempt = self.attempt + 1, ?delay, "retrying request");
                delay
            }
            Err(e) => {
                if crate::error::is_certificate_failure(e.as_ref()) {
                    // An untrusted server certificate stays untrusted.
                    return None;
                }
                if e.downcast_ref::<RequestTimedOut>().is_some() && !idem {
                    return None;
                }
                if !(idem || connection_refused(e)) {
                    return None;
                }
                let delay = self.backoff(self.attempt);
                tracing::debug!(error = %e, attempt = self.attempt + 1, ?delay, "retrying request");
                delay
            }
        };
        self.attempt += 1;
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(
        &mut self,
        req: &Request<kube::client::Body>,
    ) -> Option<Request<kube::client::Body>> {
        let body = req.body().try_clone()?;
        let mut builder = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(h) = builder.headers_mut() {
            h.extend(req.headers().clone());
        }
        let mut out = builder.body(body).ok()?;
        *out.extensions_mut() = req.extensions().clone();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_burst_then_paces() {
        let b = TokenBucket::new(10.0, 3);
        for _ in 0..3 {
            assert_eq!(b.reserve(), Duration::ZERO);
        }
        let w = b.reserve();
        assert!(
            w > Duration::from_millis(90) && w <= Duration::from_millis(100),
            "{w:?}"
        );
        let w2 = b.reserve();
        assert!(
            w2 > Duration::from_millis(190) && w2 <= Duration::from_millis(200),
            "{w2:?}"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        // Refilled, but never beyond the burst.
        for _ in 0..3 {
            assert_eq!(b.reserve(), Duration::ZERO);
        }
        assert!(b.reserve() > Duration::ZERO);
    }

    #[test]
    fn a_tiny_rate_does_not_panic() {
        for qps in [f32::MIN_POSITIVE, 1e-45, 1e-30] {
            let b = TokenBucket::new(qps, 1);
            assert_eq!(b.reserve(), Duration::ZERO, "the burst token");
            // The next token is ages away: a long wait, never a panic.
            let w = b.reserve();
            assert!(w > Duration::from_secs(1_000_000), "{qps}: {w:?}");
        }
        let b = TokenBucket::new(f32::MIN_POSITIVE / 1e6, 1);
        b.reserve();
        assert_eq!(
            b.reserve(),
            Duration::MAX,
            "an unrepresentable wait saturates"
        );
    }

    #[test]
    fn evictions_are_recognised() {
        let evict = Request::post("/api/v1/namespaces/a/pods/web-1/eviction?")
            .body(())
            .unwrap();
        assert!(is_eviction(&evict));
        for (method, uri) in [
            ("GET", "/api/v1/namespaces/a/pods/web-1/eviction"),
            ("POST", "/api/v1/namespaces/a/pods"),
            ("POST", "/api/v1/namespaces/a/configmaps/eviction"),
            ("POST", "/apis/x.io/v1/namespaces/a/widgets/w/eviction"),
        ] {
            let r = Request::builder().method(method).uri(uri).body(()).unwrap();
            assert!(!is_eviction(&r), "{method} {uri}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn policy_leaves_a_blocked_eviction_to_the_caller() {
        use tower::retry::Policy;
        let mut p = RetryPolicy::new(4);
        let mut evict = Request::post("/api/v1/namespaces/a/pods/p/eviction")
            .body(kube::client::Body::empty())
            .unwrap();
        let mut blocked: Result<Response<()>, BoxError> = Ok(Response::builder()
            .status(429)
            .header("retry-after", "10")
            .body(())
            .unwrap());
        assert!(p.retry(&mut evict, &mut blocked).is_none());
        let mut down: Result<Response<()>, BoxError> =
            Ok(Response::builder().status(503).body(()).unwrap());
        assert!(p.retry(&mut evict, &mut down).is_none());
        // The same 429 to any other POST is retried.
        let mut create = Request::post("/api/v1/namespaces/a/pods")
            .body(kube::client::Body::empty())
            .unwrap();
        assert!(p.retry(&mut create, &mut blocked).is_some());
    }

    #[test]
    fn long_running_requests_are_recognised() {
        let w = Request::get("/api/v1/pods?watch=true&resourceVersion=1")
            .body(())
            .unwrap();
        assert!(is_long_running(&w));
        let l = Request::get("/api/v1/namespaces/a/pods/p/log?follow=true")
            .body(())
            .unwrap();
        assert!(is_long_running(&l));
        let g = Request::get("/api/v1/pods?limit=5").body(()).unwrap();
        assert!(!is_long_running(&g));
    }

    #[test]
    fn idempotency_by_method_and_patch_type() {
        let get = Request::get("/x").body(()).unwrap();
        assert!(idempotent(&get));
        let post = Request::post("/x").body(()).unwrap();
        assert!(!idempotent(&post));
        let apply = Request::patch("/x")
            .header("content-type", "application/apply-patch+yaml")
            .body(())
            .unwrap();
        assert!(idempotent(&apply));
        let merge = Request::patch("/x")
            .header("content-type", "application/merge-patch+json")
            .body(())
            .unwrap();
        assert!(!idempotent(&merge));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::new(5);
        assert!(p.backoff(0) <= Duration::from_millis(100));
        assert!(p.backoff(3) >= Duration::from_millis(400));
        assert!(p.backoff(20) <= Duration::from_secs(5));
    }

    #[test]
    fn retry_after_header_is_read() {
        let r = Response::builder()
            .header("retry-after", "3")
            .body(())
            .unwrap();
        assert_eq!(retry_after(&r), Some(Duration::from_secs(3)));
        let r = Response::builder().body(()).unwrap();
        assert_eq!(retry_after(&r), None);
    }

    #[tokio::test(start_paused = true)]
    async fn policy_retries_429_but_not_404_and_stops_at_budget() {
        use tower::retry::Policy;
        let mut p = RetryPolicy::new(2);
        let mut req = Request::post("/x")
            .body(kube::client::Body::empty())
            .unwrap();
        let mut not_found: Result<Response<()>, BoxError> =
            Ok(Response::builder().status(404).body(()).unwrap());
        assert!(p.retry(&mut req, &mut not_found).is_none());
        let mut busy: Result<Response<()>, BoxError> = Ok(Response::builder()
            .status(429)
            .header("retry-after", "1")
            .body(())
            .unwrap());
        assert!(p.retry(&mut req, &mut busy).is_some());
        assert!(p.retry(&mut req, &mut busy).is_some());
        assert!(p.retry(&mut req, &mut busy).is_none());
        // A 5xx (or a 408) on a POST may have been processed: not retried.
        for code in [408, 500, 502, 503, 504] {
            let mut p = RetryPolicy::new(2);
            let mut failed: Result<Response<()>, BoxError> =
                Ok(Response::builder().status(code).body(()).unwrap());
            assert!(p.retry(&mut req, &mut failed).is_none(), "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_idempotent_requests_are_retried_after_a_5xx() {
        use tower::retry::Policy;
        let req = |method: &str, content_type: Option<&str>| {
            let mut b = Request::builder()
                .method(method)
                .uri("/api/v1/namespaces/a/configmaps/x");
            if let Some(ct) = content_type {
                b = b.header("content-type", ct);
            }
            b.body(kube::client::Body::empty()).unwrap()
        };
        let cases = [
            ("GET", None, true),
            ("HEAD", None, true),
            ("PUT", None, true),
            ("DELETE", None, true),
            ("PATCH", Some("application/apply-patch+yaml"), true),
            ("POST", None, false),
            ("PATCH", Some("application/merge-patch+json"), false),
            (
                "PATCH",
                Some("application/strategic-merge-patch+json"),
                false,
            ),
            ("PATCH", Some("application/json-patch+json"), false),
        ];
        for (method, ct, retried) in cases {
            let mut p = RetryPolicy::new(3);
            let mut r = req(method, ct);
            let mut down: Result<Response<()>, BoxError> =
                Ok(Response::builder().status(503).body(()).unwrap());
            assert_eq!(
                p.retry(&mut r, &mut down).is_some(),
                retried,
                "{method} {ct:?}"
            );
        }
        // Which statuses a GET retries is the shared table's flag.
        for code in 400..=599u16 {
            let mut p = RetryPolicy::new(3);
            let mut r = req("GET", None);
            let mut answered: Result<Response<()>, BoxError> =
                Ok(Response::builder().status(code).body(()).unwrap());
            assert_eq!(
                p.retry(&mut r, &mut answered).is_some(),
                kubepkg_util::http_status::retryable(code),
                "{code}"
            );
        }
        // A refused connection sent nothing: retried for a POST too.
        let mut p = RetryPolicy::new(3);
        let mut post = req("POST", None);
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let mut refused: Result<Response<()>, BoxError> = Err(Box::new(refused));
        assert!(p.retry(&mut post, &mut refused).is_some());
        // Any other transport failure after sending may not be.
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let mut reset: Result<Response<()>, BoxError> = Err(Box::new(reset));
        assert!(p.retry(&mut post, &mut reset).is_none());
    }
}
