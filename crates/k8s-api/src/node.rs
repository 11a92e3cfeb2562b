//! Nodes: list / get (from [`Resources`]), cordon, uncordon, and drain
//! through the eviction API, so PodDisruptionBudgets are respected.

use crate::resource::{ListOptions, Resources, check_name};
use crate::{Client, Error, Result};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt as _;
use kube::api::{DeleteParams, EvictParams};
use kubepkg_util::ErrorKind;
use std::time::Duration;

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
    /// Give up after this long (default 5 minutes).
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
    /// `namespace/name` of the evicted pods.
    pub evicted: Vec<String>,
    /// `namespace/name` and why each pod was left alone.
    pub skipped: Vec<(String, String)>,
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
            .list(&ListOptions::default().fields(format!("spec.nodeName={name}")))
            .await
    }

    /// Cordons the node and evicts its pods through the eviction API
    /// (honoring PodDisruptionBudgets: a blocked eviction is retried until
    /// `timeout`), then waits for them to be gone. Pods that would block
    /// the drain (unmanaged, emptyDir, DaemonSet — per the options) are
    /// reported as an Invalid error *before* anything is changed.
    pub async fn drain(&self, name: &str, opts: &DrainOptions) -> Result<DrainReport> {
        let deadline = tokio::time::Instant::now() + opts.timeout;
        self.get(name).await?;
        let pods = self.pods_on(name).await?;
        let mut report = DrainReport::default();
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
                    problems.push(format!("{k} is managed by a DaemonSet"));
                }
                continue;
            }
            if ctrl.is_none() && !finished(&p) && !opts.delete_unmanaged {
                problems.push(format!("{k} is not managed by a controller"));
                continue;
            }
            if uses_empty_dir(&p) && !finished(&p) && !opts.delete_emptydir_data {
                problems.push(format!("{k} uses emptyDir data"));
                continue;
            }
            to_evict.push(p);
        }
        if !problems.is_empty() {
            return Err(Error::invalid(format!(
                "cannot drain node {name}: {}",
                problems.join("; ")
            )));
        }
        self.cordon(name).await?;
        let client = self.client.clone();
        let results: Vec<Result<String>> = futures::stream::iter(to_evict)
            .map(|p| {
                let client = client.clone();
                async move {
                    evict_until(&client, &p, opts, deadline)
                        .await
                        .map(|_| key(&p))
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            report.evicted.push(r?);
        }
        report.evicted.sort();
        Ok(report)
    }
}

async fn evict_until(
    client: &Client,
    p: &Pod,
    opts: &DrainOptions,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let uid = p.uid();
    let pods = client.pods(&ns);
    let ep = EvictParams {
        delete_options: Some(DeleteParams {
            grace_period_seconds: opts.grace_period_secs,
            ..Default::default()
        }),
        ..Default::default()
    };
    let target = format!("Pod {ns}/{name}");
    loop {
        let res = client
            .run("evict", &target, pods.api.evict(&name, &ep))
            .await;
        match res {
            Ok(_) => break,
            Err(e) if e.is_not_found() => return Ok(()),
            // 429: a PodDisruptionBudget does not allow it right now.
            Err(e) if e.api().is_some_and(|f| f.code == 429) => {
                if tokio::time::Instant::now() + opts.retry_interval > deadline {
                    return Err(Error::Timeout(format!(
                        "eviction of {target} still blocked when the drain timed out: {e}"
                    )));
                }
                tracing::debug!(pod = %target, "eviction blocked by a disruption budget; retrying");
                tokio::time::sleep(opts.retry_interval).await;
            }
            Err(e) => return Err(e),
        }
    }
    // Wait until this incarnation of the pod is gone.
    loop {
        match pods.get_opt(&name).await {
            Ok(None) => return Ok(()),
            Ok(Some(cur)) if cur.uid() != uid => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) if e.kind() == ErrorKind::Unavailable => {}
            Err(e) => return Err(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout(format!(
                "{target} was evicted but is still terminating"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
