//! The cluster overview: server version, nodes and their readiness,
//! namespaces, pod counts by phase, allocatable vs requested CPU / memory per
//! node (summed exactly with [`Quantity`]), and metrics-server usage when its
//! API is served (reported as [`Metrics::Absent`] when it is not installed,
//! [`Metrics::Unavailable`] when it is registered but not answering — never
//! an error of the whole overview).

use crate::resource::ListOptions;
use crate::{Client, Error, Result};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::ResourceExt as _;
use kubepkg_util::quantity::Quantity;
use std::collections::{BTreeMap, HashMap};

/// Measured usage of one node (metrics-server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// CPU in use.
    pub cpu: Quantity,
    /// Memory in use.
    pub memory: Quantity,
}

/// One node in the overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// Condition Ready=True.
    pub ready: bool,
    /// Cordoned.
    pub unschedulable: bool,
    /// `status.allocatable.cpu`.
    pub allocatable_cpu: Quantity,
    /// `status.allocatable.memory`.
    pub allocatable_memory: Quantity,
    /// Sum of the CPU requests of the node's non-terminated pods.
    pub requested_cpu: Quantity,
    /// Sum of the memory requests of the node's non-terminated pods.
    pub requested_memory: Quantity,
    /// Non-terminated pods on the node.
    pub pods: usize,
    /// Measured usage, when metrics-server is present.
    pub usage: Option<Usage>,
}

/// Whether metrics-server's API (`metrics.k8s.io`) is served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metrics {
    /// Served; node usage is filled in.
    Available,
    /// Not installed (discovery does not know `metrics.k8s.io/v1beta1`);
    /// usage fields are `None`.
    Absent,
    /// Registered but not answering: the API server could not reach
    /// metrics-server (its APIService is unavailable, typically a 503) or
    /// the call timed out. Usage fields are `None`; the text says why.
    Unavailable(String),
}

impl Metrics {
    /// Whether node usage is included.
    pub fn is_available(&self) -> bool {
        matches!(self, Metrics::Available)
    }
}

/// Whether a failure of the metrics API means "not answering right now"
/// rather than a problem of the caller (Forbidden, Invalid…), which stays
/// an error.
fn metrics_unavailable(e: &Error) -> bool {
    e.is_retryable()
}

/// The cluster overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// `gitVersion` of the API server.
    pub version: String,
    /// `platform` of the API server, e.g. `linux/amd64`.
    pub platform: String,
    /// Every node.
    pub nodes: Vec<NodeSummary>,
    /// Nodes with Ready=True.
    pub ready_nodes: usize,
    /// Namespace names, sorted.
    pub namespaces: Vec<String>,
    /// Pod counts by phase across the cluster.
    pub pods_by_phase: BTreeMap<String, usize>,
    /// Cluster-wide totals: allocatable and requested CPU / memory.
    pub totals: Totals,
    /// Whether metrics-server data is included.
    pub metrics: Metrics,
}

/// Cluster-wide sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Allocatable CPU of all nodes.
    pub allocatable_cpu: Quantity,
    /// Allocatable memory of all nodes.
    pub allocatable_memory: Quantity,
    /// Requested CPU of all scheduled, non-terminated pods.
    pub requested_cpu: Quantity,
    /// Requested memory of all scheduled, non-terminated pods.
    pub requested_memory: Quantity,
}

fn q(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
) -> Result<Quantity> {
    match map.and_then(|m| m.get(key)) {
        Some(v) => v.0.parse().map_err(|e| {
            Error::internal(format!(
                "server sent an unparsable {key} quantity {:?}: {e}",
                v.0
            ))
        }),
        None => Ok(Quantity::default()),
    }
}

/// What one pod requests, the way the scheduler counts it: the larger of
/// the sum over its containers and the largest init container, plus the
/// pod overhead.
pub fn pod_requests(p: &Pod) -> Result<(Quantity, Quantity)> {
    let Some(spec) = &p.spec else {
        return Ok((Quantity::default(), Quantity::default()));
    };
    let mut cpu = Quantity::default();
    let mut mem = Quantity::default();
    for c in &spec.containers {
        let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        cpu = cpu.saturating_add(q(req, "cpu")?);
        mem = mem.saturating_add(q(req, "memory")?);
    }
    for c in spec.init_containers.iter().flatten() {
        let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        cpu = cpu.max(q(req, "cpu")?);
        mem = mem.max(q(req, "memory")?);
    }
    let overhead = spec.overhead.as_ref();
    Ok((
        cpu.saturating_add(q(overhead, "cpu")?),
        mem.saturating_add(q(overhead, "memory")?),
    ))
}

impl Client {
    /// Builds the overview. Lists nodes, namespaces and pods (paged) and,
    /// when served, node metrics. A metrics API that is absent or
    /// unavailable is reported in [`Overview::metrics`], not as an error.
    pub async fn overview(&self) -> Result<Overview> {
        let info = self.version().await?;
        let nodes: Vec<Node> = self.nodes().list(&ListOptions::default()).await?;
        let namespaces: Vec<Namespace> = self.namespaces().list(&ListOptions::default()).await?;
        let mut per_node: HashMap<String, (Quantity, Quantity, usize)> = HashMap::new();
        let mut pods_by_phase: BTreeMap<String, usize> = BTreeMap::new();
        let mut totals = Totals::default();
        let mut pods = self
            .all::<Pod>()
            .stream(&ListOptions::default().page_size(1000));
        use futures::StreamExt as _;
        while let Some(p) = pods.next().await {
            let p = p?;
            let phase = crate::pod::phase(&p).to_string();
            *pods_by_phase.entry(phase.clone()).or_default() += 1;
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                continue;
            };
            let (cpu, mem) = pod_requests(&p)?;
            let e = per_node.entry(node).or_default();
            e.0 = e.0.saturating_add(cpu);
            e.1 = e.1.saturating_add(mem);
            e.2 += 1;
            totals.requested_cpu = totals.requested_cpu.saturating_add(cpu);
            totals.requested_memory = totals.requested_memory.saturating_add(mem);
        }
        let (metrics, usage) = self.node_metrics().await?;
        let mut summaries = Vec::with_capacity(nodes.len());
        for n in &nodes {
            let name = n.name_any();
            let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
            let (rc, rm, count) = per_node.remove(&name).unwrap_or_default();
            let s = NodeSummary {
                ready: crate::node::node_ready(n),
                unschedulable: n
                    .spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false),
                allocatable_cpu: q(alloc, "cpu")?,
                allocatable_memory: q(alloc, "memory")?,
                requested_cpu: rc,
                requested_memory: rm,
                pods: count,
                usage: usage.get(&name).cloned(),
                name,
            };
            totals.allocatable_cpu = totals.allocatable_cpu.saturating_add(s.allocatable_cpu);
            totals.allocatable_memory = totals
                .allocatable_memory
                .saturating_add(s.allocatable_memory);
            summaries.push(s);
        }
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut ns: Vec<String> = namespaces.iter().map(|n| n.name_any()).collect();
        ns.sort();
        Ok(Overview {
            version: info.git_version,
            platform: info.platform,
            ready_nodes: summaries.iter().filter(|s| s.ready).count(),
            nodes: summaries,
            namespaces: ns,
            pods_by_phase,
            totals,
            metrics,
        })
    }

    /// Node usage from metrics-server. No usage, and
    /// [`Metrics::Absent`] when `metrics.k8s.io` is not served (discovery
    /// answers 404), [`Metrics::Unavailable`] when it is registered but
    /// discovery or the list fails as unavailable (e.g. 503 from an
    /// APIService whose backend is down) or times out. Other failures
    /// (Forbidden, an unparsable answer…) are errors.
    pub async fn node_metrics(&self) -> Result<(Metrics, HashMap<String, Usage>)> {
        let rk = match self
            .resolve_kind("metrics.k8s.io/v1beta1", "NodeMetrics")
            .await
        {
            Ok(rk) => rk,
            Err(e) if e.is_not_found() => return Ok((Metrics::Absent, HashMap::new())),
            Err(e) if metrics_unavailable(&e) => {
                tracing::debug!(error = %e, "metrics.k8s.io is registered but unavailable");
                return Ok((Metrics::Unavailable(e.to_string()), HashMap::new()));
            }
            Err(e) => return Err(e),
        };
        let items = match self
            .dynamic_for(&rk, None)
            .list(&ListOptions::default())
            .await
        {
            Ok(items) => items,
            // Unregistered between discovery and the list.
            Err(e) if e.is_not_found() => return Ok((Metrics::Absent, HashMap::new())),
            Err(e) if metrics_unavailable(&e) => {
                tracing::debug!(error = %e, "metrics.k8s.io is registered but unavailable");
                return Ok((Metrics::Unavailable(e.to_string()), HashMap::new()));
            }
            Err(e) => return Err(e),
        };
        let mut out = HashMap::new();
        for m in items {
            let usage = &m.data["usage"];
            let parse = |k: &str| -> Result<Quantity> {
                usage[k]
                    .as_str()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|e| Error::internal(format!("metrics-server sent a bad {k}: {e}")))
            };
            out.insert(
                m.name_any(),
                Usage {
                    cpu: parse("cpu")?,
                    memory: parse("memory")?,
                },
            );
        }
        Ok((Metrics::Available, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_requests_follow_scheduler_rules() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}}},
                    {"name": "c"}
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "16Mi"}}}
                ],
                "overhead": {"cpu": "10m"}
            }
        }))
        .unwrap();
        let (cpu, mem) = pod_requests(&p).unwrap();
        assert_eq!(cpu, "1010m".parse::<Quantity>().unwrap());
        assert_eq!(mem, "128Mi".parse::<Quantity>().unwrap());
    }

    #[test]
    fn only_unavailability_of_the_metrics_api_is_tolerated() {
        assert!(metrics_unavailable(&Error::Unavailable("503".into())));
        assert!(metrics_unavailable(&Error::Timeout("slow".into())));
        assert!(!metrics_unavailable(&Error::invalid("bad")));
        assert!(!metrics_unavailable(&Error::NotFound("gone".into())));
        assert!(!metrics_unavailable(&Error::internal("bug")));
        assert!(Metrics::Available.is_available());
        assert!(!Metrics::Unavailable("x".into()).is_available());
    }

    #[test]
    fn bad_quantities_are_errors_not_panics() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "lots"}}}]}
        }))
        .unwrap();
        assert!(pod_requests(&p).is_err());
    }
}
