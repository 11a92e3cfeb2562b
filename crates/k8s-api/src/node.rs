//! Nodes: list / get (from [`Resources`]), cordon, uncordon, and drain
//! through the eviction API, so PodDisruptionBudgets are respected.

use crate::resource::{ListOptions, Resources, check_name, check_namespace, deadline_after};
use crate::{Client, Error, Result};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt as _;
use kubepkg_util::selector::FieldSelector;
use kubepkg_util::{ErrorKind, HasErrorKind};
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Annotation of static (mirror) pods, which cannot be evicted.
const MIRROR: &str = "kubernetes.io/config.mirror";

impl Client {
    /// Nodes.
    pub fn nodes(&self) -> Resources<Node> {
        self.cluster()
    }
}

/// Whether a node has condition Ready=True.
pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Options of [`Resources::<Node>::drain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOptions {
    /// Grace period given to evicted pods (`None`: each pod's own).
    pub grace_period_secs: Option<u32>,
    /// Give up after this long (default 5 minutes; `Duration::MAX`: no
    /// limit). Bounds the whole drain, API calls included.
    pub timeout: Duration,
    /// Leave DaemonSet pods alone (default true); when false they make the
    /// drain fail up front.
    pub ignore_daemonsets: bool,
    /// Evict pods no controller manages (they will not come back); default
    /// false, and such pods make the drain fail up front.
    pub delete_unmanaged: bool,
    /// Evict pods using emptyDir volumes (their data is lost); default false.
    pub delete_emptydir_data: bool,
    /// How often a blocked eviction is retried (default 1 s).
    pub retry_interval: Duration,
    /// Evictions in flight at once (default 8).
    pub concurrency: usize,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            grace_period_secs: None,
            timeout: Duration::from_secs(300),
            ignore_daemonsets: true,
            delete_unmanaged: false,
            delete_emptydir_data: false,
            retry_interval: Duration::from_secs(1),
            concurrency: 8,
        }
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// `namespace/name` of the evicted pods, sorted.
    pub evicted: Vec<String>,
    /// `namespace/name` and why each pod was left alone.
    pub skipped: Vec<(String, String)>,
}

/// A drain that stopped before every pod was gone.
///
/// It keeps what had been done: [`DrainError::report`] lists the pods
/// evicted (and skipped) before the drain stopped, [`DrainError::failed`]
/// each pod that was not evicted and why. When the drain got as far as
/// cordoning the node ([`DrainError::cordoned`]), the node **stays
/// cordoned**, so nothing new lands on a half-drained node: drain again to
/// finish, or [`Resources::<Node>::uncordon`] to give up.
///
/// Its [`kind`](DrainError::kind) is that of [`DrainError::error`]: Invalid
/// when pods would block the drain (refused up front, nothing changed),
/// Timeout when an eviction was still blocked — e.g. by a
/// PodDisruptionBudget — or a pod still terminating at
/// [`DrainOptions::timeout`]. `?` converts it into the crate's [`Error`]
/// (keeping only [`DrainError::error`]).
#[derive(Debug)]
pub struct DrainError {
    /// The node.
    pub node: String,
    /// Why the drain stopped: the first pod failure that is not a timeout
    /// if there is one (in `namespace/name` order), else the first timeout;
    /// or the failure of a call made before any eviction.
    pub error: Error,
    /// What had been done when the drain stopped.
    pub report: DrainReport,
    /// `namespace/name` and the failure of each pod that was not evicted
    /// (or would block the drain), sorted.
    pub failed: Vec<(String, String)>,
    /// Whether the node had been cordoned (it stays cordoned).
    pub cordoned: bool,
}

impl DrainError {
    /// The shared kind of [`DrainError::error`].
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// The underlying error, dropping the report.
    pub fn into_error(self) -> Error {
        self.error
    }

    fn early(node: &str, error: Error, report: DrainReport) -> Self {
        DrainError {
            node: node.to_string(),
            error,
            report,
            failed: Vec::new(),
            cordoned: false,
        }
    }
}

impl fmt::Display for DrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.cordoned {
            write!(
                f,
                " (node {} stays cordoned; {} pod(s) evicted, {} not)",
                self.node,
                self.report.evicted.len(),
                self.failed.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for DrainError {}

impl HasErrorKind for DrainError {
    fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

impl From<DrainError> for Error {
    fn from(e: DrainError) -> Self {
        e.error
    }
}

fn key(p: &Pod) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

fn controller_kind(p: &Pod) -> Option<String> {
    p.owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.clone())
}

fn finished(p: &Pod) -> bool {
    matches!(crate::pod::phase(p), "Succeeded" | "Failed")
}

fn uses_empty_dir(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()))
}

/// Runs `fut`, giving up with a Timeout at `deadline` (`None`: no limit).
async fn within<T>(
    deadline: Option<Instant>,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.unwrap_or_else(|_| {
            Err(Error::Timeout(format!(
                "{what} did not finish before the drain timed out"
            )))
        }),
        None => fut.await,
    }
}

/// The failure that best explains a failed drain: the first one that is
/// not a timeout (a real problem), else the first timeout.
fn primary(mut failures: Vec<(String, Error)>) -> Option<(Vec<(String, String)>, Error)> {
    if failures.is_empty() {
        return None;
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    let listed = failures
        .iter()
        .map(|(k, e)| (k.clone(), e.to_string()))
        .collect();
    let at = failures
        .iter()
        .position(|(_, e)| e.kind() != ErrorKind::Timeout)
        .unwrap_or(0);
    Some((listed, failures.swap_remove(at).1))
}

impl Resources<Node> {
    /// Marks the node unschedulable.
    pub async fn cordon(&self, name: &str) -> Result<Node> {
        self.merge_patch(name, &serde_json::json!({"spec": {"unschedulable": true}}))
            .await
    }

    /// Marks the node schedulable again.
    pub async fn uncordon(&self, name: &str) -> Result<Node> {
        self.merge_patch(name, &serde_json::json!({"spec": {"unschedulable": null}}))
            .await
    }

    /// The pods scheduled on node `name`.
    pub async fn pods_on(&self, name: &str) -> Result<Vec<Pod>> {
        check_name(name)?;
        self.client
            .all::<Pod>()
            .list(
                &ListOptions::default()
                    .fields(FieldSelector::new().eq("spec.nodeName", name).to_string()),
            )
            .await
    }

    /// Cordons the node and evicts its pods through the eviction API
    /// (honoring PodDisruptionBudgets: a blocked eviction is retried every
    /// [`DrainOptions::retry_interval`] until [`DrainOptions::timeout`]),
    /// then waits for them to be gone. Pods that would block the drain
    /// (unmanaged, emptyDir, DaemonSet — per the options) are reported as
    /// an Invalid error *before* anything is changed.
    ///
    /// The whole drain, every API call included, ends by the timeout
    /// (`Duration::MAX`: no limit): evictions bypass the client's retry
    /// layer, so a PodDisruptionBudget's `429 Retry-After` is handled here,
    /// on the drain's own interval. On failure the [`DrainError`] keeps
    /// what was evicted and what was not; the node stays cordoned.
    pub async fn drain(
        &self,
        name: &str,
        opts: &DrainOptions,
    ) -> std::result::Result<DrainReport, DrainError> {
        let deadline = deadline_after(opts.timeout);
        let mut report = DrainReport::default();
        let node_target = format!("Node {name}");
        if let Err(e) = within(deadline, &node_target, self.get(name)).await {
            return Err(DrainError::early(name, e, report));
        }
        let pods = match within(deadline, &node_target, self.pods_on(name)).await {
            Ok(p) => p,
            Err(e) => return Err(DrainError::early(name, e, report)),
        };
        let mut to_evict = Vec::new();
        let mut problems = Vec::new();
        for p in pods {
            let k = key(&p);
            if p.annotations().contains_key(MIRROR) {
                report.skipped.push((k, "mirror (static) pod".into()));
                continue;
            }
            if p.metadata.deletion_timestamp.is_some() {
                report.skipped.push((k, "already terminating".into()));
                continue;
            }
            let ctrl = controller_kind(&p);
            if ctrl.as_deref() == Some("DaemonSet") {
                if opts.ignore_daemonsets {
                    report.skipped.push((k, "managed by a DaemonSet".into()));
                } else {
                    problems.push((k, "is managed by a DaemonSet".to_string()));
                }
                continue;
            }
            if ctrl.is_none() && !finished(&p) && !opts.delete_unmanaged {
                problems.push((k, "is not managed by a controller".to_string()));
                continue;
            }
            if uses_empty_dir(&p) && !finished(&p) && !opts.delete_emptydir_data {
                problems.push((k, "uses emptyDir data".to_string()));
                continue;
            }
            to_evict.push(p);
        }
        if !problems.is_empty() {
            problems.sort();
            let text: Vec<String> = problems
                .iter()
                .map(|(k, why)| format!("{k} {why}"))
                .collect();
            let error = Error::invalid(format!("cannot drain node {name}: {}", text.join("; ")));
            return Err(DrainError {
                failed: problems,
                ..DrainError::early(name, error, report)
            });
        }
        if let Err(e) = within(deadline, &node_target, self.cordon(name)).await {
            return Err(DrainError::early(name, e, report));
        }
        let client = self.client.clone();
        let results: Vec<(String, Result<()>)> = futures::stream::iter(to_evict)
            .map(|p| {
                let client = client.clone();
                async move { (key(&p), evict_until(&client, &p, opts, deadline).await) }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        let mut failures = Vec::new();
        for (k, r) in results {
            match r {
                Ok(()) => report.evicted.push(k),
                Err(e) => failures.push((k, e)),
            }
        }
        report.evicted.sort();
        match primary(failures) {
            None => Ok(report),
            Some((failed, error)) => Err(DrainError {
                node: name.to_string(),
                error,
                report,
                failed,
                cordoned: true,
            }),
        }
    }
}

/// The `POST /api/v1/namespaces/{ns}/pods/{name}/eviction` request, with a
/// `policy/v1` `Eviction` body.
///
/// Built here rather than by kube's `Api::evict`: kube 5 puts the delete
/// options under a `delete_options` key, which the API server ignores
/// (the field is `deleteOptions`), so a requested grace period would be
/// silently dropped. The path keeps the shape the retry layer recognises
/// (see `layers::is_eviction`): evictions are never retried there.
fn eviction_request(
    ns: &str,
    name: &str,
    grace_period_secs: Option<u32>,
) -> Result<http::Request<Vec<u8>>> {
    // Both become path segments: never let input reshape the path.
    check_namespace(ns)?;
    check_name(name)?;
    let mut body = serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns},
    });
    if let Some(secs) = grace_period_secs {
        body["deleteOptions"] = serde_json::json!({ "gracePeriodSeconds": secs });
    }
    let body = serde_json::to_vec(&body)
        .map_err(|e| Error::internal(format!("eviction body of {ns}/{name}: {e}")))?;
    let mut req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| Error::invalid(format!("eviction of {ns}/{name}: {e}")))?;
    // The same marker kube's own `evict` sets (kube's trace layer names the
    // request's span after it).
    req.extensions_mut().insert("evict");
    Ok(req)
}

/// Sends one eviction; the answer's body (a `Status`) is not needed.
async fn evict_once(client: &Client, ns: &str, name: &str, opts: &DrainOptions) -> Result<()> {
    let req = eviction_request(ns, name, opts.grace_period_secs)?;
    let target = format!("Pod {ns}/{name}");
    client
        .run("evict", &target, client.kube().request_text(req))
        .await
        .map(drop)
}

/// Whether a failed eviction is worth asking again: 429 (a disruption
/// budget says "not now") or the API server being briefly unavailable.
fn eviction_retryable(e: &Error) -> bool {
    match e.api() {
        Some(f) => f.code == 429 || f.code == 503,
        None => e.kind() == ErrorKind::Unavailable,
    }
}

async fn evict_until(
    client: &Client,
    p: &Pod,
    opts: &DrainOptions,
    deadline: Option<Instant>,
) -> Result<()> {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let uid = p.uid();
    let pods = client.pods(&ns);
    let target = format!("Pod {ns}/{name}");
    loop {
        // Not retried by the client's retry layer (see `layers`): a blocked
        // eviction comes straight back here.
        let res = within(
            deadline,
            &format!("eviction of {target}"),
            evict_once(client, &ns, &name, opts),
        )
        .await;
        match res {
            Ok(_) => break,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if eviction_retryable(&e) => {
                let next = Instant::now().checked_add(opts.retry_interval);
                if let Some(d) = deadline
                    && next.is_none_or(|n| n > d)
                {
                    return Err(Error::Timeout(format!(
                        "eviction of {target} still blocked when the drain timed out: {e}"
                    )));
                }
                tracing::debug!(pod = %target, error = %e, "eviction refused for now; retrying");
                tokio::time::sleep(opts.retry_interval).await;
            }
            Err(e) => return Err(e),
        }
    }
    // Wait until this incarnation of the pod is gone.
    loop {
        match within(deadline, &target, pods.get_opt(&name)).await {
            Ok(None) => return Ok(()),
            Ok(Some(cur)) if cur.uid() != uid => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) if e.kind() == ErrorKind::Unavailable => {}
            Err(e) if e.kind() == ErrorKind::Timeout => {
                return Err(Error::Timeout(format!(
                    "{target} was evicted but is still terminating: {e}"
                )));
            }
            Err(e) => return Err(e),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout(format!(
                "{target} was evicted but is still terminating"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_failure_is_a_real_problem_before_a_timeout() {
        let fails = vec![
            ("b/x".to_string(), Error::Timeout("blocked".into())),
            ("c/y".to_string(), Error::invalid("bad")),
            ("a/z".to_string(), Error::Timeout("blocked too".into())),
        ];
        let (listed, e) = primary(fails).expect("failures");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a/z", "b/x", "c/y"]);
        let (_, e) = primary(vec![
            ("b".to_string(), Error::Timeout("second".into())),
            ("a".to_string(), Error::Timeout("first".into())),
        ])
        .expect("failures");
        assert!(e.to_string().contains("first"), "{e}");
        assert!(primary(Vec::new()).is_none());
    }

    #[test]
    fn a_drain_error_keeps_the_report_and_its_kind() {
        let e = DrainError {
            node: "n1".into(),
            error: Error::Timeout("eviction of Pod a/p still blocked".into()),
            report: DrainReport {
                evicted: vec!["a/q".into()],
                skipped: Vec::new(),
            },
            failed: vec![("a/p".into(), "blocked".into())],
            cordoned: true,
        };
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(HasErrorKind::kind(&e), ErrorKind::Timeout);
        let text = e.to_string();
        assert!(
            text.contains("blocked") && text.contains("n1 stays cordoned"),
            "{text}"
        );
        assert!(text.contains("1 pod(s) evicted"), "{text}");
        let plain: Error = e.into();
        assert_eq!(plain.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn blocked_and_unavailable_evictions_are_retried_others_not() {
        let status = |code: u16, reason: &str| {
            Error::Api(crate::error::ApiFailure {
                kind: crate::error::kind_of_status(code, reason),
                code,
                reason: reason.into(),
                message: String::new(),
                causes: Vec::new(),
                retry_after_secs: None,
            })
        };
        assert!(eviction_retryable(&status(429, "TooManyRequests")));
        assert!(eviction_retryable(&status(503, "ServiceUnavailable")));
        assert!(eviction_retryable(&Error::Unavailable("refused".into())));
        // A 500 (e.g. a pod covered by two budgets) is a real problem.
        assert!(!eviction_retryable(&status(500, "InternalError")));
        assert!(!eviction_retryable(&status(403, "Forbidden")));
        assert!(!eviction_retryable(&Error::Timeout("t".into())));
    }

    #[test]
    fn the_eviction_request_carries_camel_case_delete_options() {
        let req = eviction_request("shop", "web-1", Some(7)).expect("request");
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.uri().path(),
            "/api/v1/namespaces/shop/pods/web-1/eviction"
        );
        assert_eq!(req.extensions().get::<&'static str>(), Some(&"evict"));
        let body: serde_json::Value = serde_json::from_slice(req.body()).expect("json");
        assert_eq!(
            body,
            serde_json::json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": "web-1", "namespace": "shop"},
                "deleteOptions": {"gracePeriodSeconds": 7}
            })
        );
        // No grace period asked: each pod's own applies, no options sent.
        let req = eviction_request("shop", "web-1", None).expect("request");
        let body: serde_json::Value = serde_json::from_slice(req.body()).expect("json");
        assert!(body.get("deleteOptions").is_none(), "{body}");
        assert!(body.get("delete_options").is_none(), "{body}");
        // Input that would reshape the path never becomes a request.
        for (ns, name) in [
            ("shop", "a/b"),
            ("shop", "x?dryRun=All"),
            ("a/b", "p"),
            ("", "p"),
        ] {
            let err = eviction_request(ns, name, None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{ns:?} {name:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn within_gives_up_at_the_deadline_and_no_deadline_waits() {
        let d = deadline_after(Duration::from_secs(1));
        let err = within(d, "x", std::future::pending::<Result<()>>())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        let v = within(None, "x", async { Ok(7) })
            .await
            .expect("no deadline");
        assert_eq!(v, 7);
    }
}
