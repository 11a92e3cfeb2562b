//! `rancher`: clusters through Rancher's v3 API with a bearer API key.
//!
//! Resources and actions follow the Rancher v3 API guide and its
//! framework's error shape (`rancher/norman`: `{"type": "error", "status",
//! "code", "message"}`): `POST /v3/clusters` (a cluster Rancher provisions
//! or imports), `GET|DELETE /v3/clusters/{id}`,
//! `POST /v3/clusters/{id}?action=generateKubeconfig`,
//! `POST /v3/clusterregistrationtokens` (the manifest that imports an
//! existing cluster), `POST|PUT /v3/nodepools[/{id}]`, `GET /v3/nodes`,
//! `DELETE /v3/nodes/{id}`. Collections are `{"data": […],
//! "pagination": {"next"}}`. Existing machines join through the
//! registration command, so adding them by id is Unsupported here.

use super::http::{self, Answer, HttpOptions, VendorHttp, missing, vendor_error};
use super::registry::{Built, required, required_secret};
use super::{
    AddNodes, ClusterProvider, ClusterSpec, PollResult, VendorCluster, VendorNode, VendorOperation,
    VendorState,
};
use crate::config::ProviderSettings;
use crate::{Error, Result};
use async_trait::async_trait;
use kubepkg_util::ErrorKind;
use kubepkg_util::secret::Secret;
use serde_json::{Value, json};
use std::fmt;
use std::sync::Arc;

/// The provider kind: `"rancher"`.
pub const KIND: &str = "rancher";

/// A Rancher server and an API key. `Debug` never shows the key.
#[derive(Clone)]
pub struct RancherConfig {
    /// The server, `https://rancher.example.com`.
    pub endpoint: String,
    /// The API key (`token-xxxxx:secret`).
    pub token: Secret<String>,
    /// Connection knobs.
    pub http: HttpOptions,
}

impl fmt::Debug for RancherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RancherConfig")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The registry's builder for this kind (`endpoint`, `token`).
pub fn build(name: &str, s: &ProviderSettings) -> Result<Built> {
    let config = RancherConfig {
        endpoint: required(name, "endpoint", &s.endpoint)?.to_string(),
        token: required_secret(name, "token", &s.token)?,
        http: HttpOptions::default(),
    };
    Ok(Built::Cluster(Arc::new(Rancher::new(config)?)))
}

/// The Rancher adapter. See the module docs.
#[derive(Debug)]
pub struct Rancher {
    config: RancherConfig,
    url: url::Url,
    http: VendorHttp,
}

/// Maps a norman answer to its body or the platform error.
fn map_answer(answer: Answer) -> Result<Value> {
    if answer.status == 204 || answer.body.is_empty() {
        return Ok(json!({}));
    }
    let body: Value = http::json(KIND, &answer)?;
    if answer.status >= 400 || body.get("type").and_then(Value::as_str) == Some("error") {
        let code = s(&body, "code").unwrap_or_else(|| format!("HTTP{}", answer.status));
        let kind = match code.as_str() {
            "NotFound" => ErrorKind::NotFound,
            "Unauthorized" => ErrorKind::Unauthorized,
            "PermissionDenied" | "Forbidden" => ErrorKind::Forbidden,
            "Conflict" => ErrorKind::Conflict,
            "NotUnique" | "AlreadyExists" => ErrorKind::AlreadyExists,
            "InvalidBodyContent" | "InvalidFormat" | "MissingRequired" | "InvalidReference"
            | "InvalidOption" | "InvalidType" | "InvalidAction" => ErrorKind::Invalid,
            "ActionNotAvailable" | "MethodNotAllowed" => ErrorKind::Unsupported,
            _ => http::status_kind(answer.status),
        };
        let message = s(&body, "message").unwrap_or_default();
        return Err(vendor_error(KIND, kind, code, message, answer.request_id));
    }
    Ok(body)
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn cluster_of(c: &Value) -> Result<VendorCluster> {
    let id = s(c, "id").ok_or_else(|| missing(KIND, "id", None))?;
    let state = s(c, "state").ok_or_else(|| missing(KIND, "state", None))?;
    Ok(VendorCluster {
        name: s(c, "name").unwrap_or_else(|| id.clone()),
        id,
        state: match state.as_str() {
            "provisioning" | "pending" | "waiting" | "initializing" => VendorState::Creating,
            "active" => VendorState::Running,
            "updating" | "upgrading" => VendorState::Updating,
            "removing" | "removed" => VendorState::Deleting,
            "error" | "failed" => VendorState::Failed,
            other => VendorState::Other(other.to_string()),
        },
        version: c
            .pointer("/version/gitVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        endpoint: None,
        region: None,
    })
}

fn op(kind: &str, target: &str, handle: Option<String>) -> VendorOperation {
    VendorOperation {
        kind: kind.into(),
        target: target.into(),
        handle,
        request_id: None,
        done: false,
    }
}

impl Rancher {
    /// An adapter for one Rancher server.
    pub fn new(config: RancherConfig) -> Result<Rancher> {
        let url = http::parse_endpoint(KIND, &config.endpoint)?;
        let http = VendorHttp::new(KIND, &config.http)?;
        Ok(Rancher { config, url, http })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut url = self.url.clone();
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        url.set_path(p);
        url.set_query((!q.is_empty()).then_some(q));
        let payload = body.map(Value::to_string);
        let build = |c: &reqwest::Client| {
            let mut b = c
                .request(method.clone(), url.clone())
                .bearer_auth(self.config.token.expose())
                .header("Accept", "application/json");
            if let Some(p) = &payload {
                b = b.header("Content-Type", "application/json").body(p.clone());
            }
            Ok(b)
        };
        self.http.call(method.as_str(), p, build, map_answer).await
    }

    async fn collection(&self, path: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let r = self.call(reqwest::Method::GET, &p, None).await?;
            let data = r
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| missing(KIND, "data", None))?;
            out.extend(data.iter().cloned());
            // Follow `pagination.next` only on the same server.
            next = r
                .pointer("/pagination/next")
                .and_then(Value::as_str)
                .and_then(|n| url::Url::parse(n).ok())
                .filter(|n| n.origin() == self.url.origin())
                .map(|n| match n.query() {
                    Some(q) => format!("{}?{q}", n.path()),
                    None => n.path().to_string(),
                });
        }
        Ok(out)
    }

    async fn create_pool(&self, id: &str, pool: &super::NodePoolSpec) -> Result<String> {
        let body = json!({
            "type": "nodePool", "clusterId": id, "hostnamePrefix": format!("{}-", pool.name),
            "quantity": pool.count, "nodeTemplateId": pool.instance_type,
            "worker": true, "etcd": false, "controlPlane": false, "labels": pool.labels,
        });
        let r = self
            .call(reqwest::Method::POST, "/v3/nodepools", Some(&body))
            .await?;
        s(&r, "id").ok_or_else(|| missing(KIND, "nodePool id", None))
    }
}

#[async_trait]
impl ClusterProvider for Rancher {
    fn kind(&self) -> &str {
        KIND
    }

    async fn create_cluster(&self, spec: &ClusterSpec) -> Result<VendorOperation> {
        let mut body = json!({"type": "cluster", "name": spec.name});
        if let Some(v) = &spec.kubernetes_version {
            body["rancherKubernetesEngineConfig"] = json!({"kubernetesVersion": v});
        }
        let r = self
            .call(reqwest::Method::POST, "/v3/clusters", Some(&body))
            .await?;
        let id = s(&r, "id").ok_or_else(|| missing(KIND, "id", None))?;
        for pool in &spec.node_pools {
            self.create_pool(&id, pool).await?;
        }
        Ok(op("create_cluster", &id, None))
    }

    async fn describe_cluster(&self, id: &str) -> Result<VendorCluster> {
        cluster_of(
            &self
                .call(reqwest::Method::GET, &format!("/v3/clusters/{id}"), None)
                .await?,
        )
    }

    async fn delete_cluster(&self, id: &str) -> Result<VendorOperation> {
        self.call(reqwest::Method::DELETE, &format!("/v3/clusters/{id}"), None)
            .await?;
        Ok(op("delete_cluster", id, None))
    }

    async fn add_nodes(&self, id: &str, nodes: &AddNodes) -> Result<VendorOperation> {
        match nodes {
            AddNodes::New { pool } => {
                let np = self.create_pool(id, pool).await?;
                Ok(op(
                    "add_nodes",
                    id,
                    Some(format!("pool:{np}:{}", pool.count)),
                ))
            }
            AddNodes::Existing { .. } => Err(Error::Unsupported(
                "rancher: existing machines join by running the cluster's registration \
                 command (POST /v3/clusterregistrationtokens) on them"
                    .into(),
            )),
        }
    }

    async fn remove_nodes(&self, id: &str, instance_ids: &[String]) -> Result<VendorOperation> {
        for n in instance_ids {
            self.call(reqwest::Method::DELETE, &format!("/v3/nodes/{n}"), None)
                .await?;
        }
        Ok(op(
            "remove_nodes",
            id,
            Some(format!("gone:{}", instance_ids.join(","))),
        ))
    }

    async fn scale_node_pool(&self, id: &str, pool: &str, desired: u32) -> Result<VendorOperation> {
        let body = json!({"quantity": desired});
        self.call(
            reqwest::Method::PUT,
            &format!("/v3/nodepools/{pool}"),
            Some(&body),
        )
        .await?;
        Ok(op(
            "scale_node_pool",
            id,
            Some(format!("pool:{pool}:{desired}")),
        ))
    }

    async fn kubeconfig(&self, id: &str) -> Result<Secret<String>> {
        let path = format!("/v3/clusters/{id}?action=generateKubeconfig");
        let r = self.call(reqwest::Method::POST, &path, None).await?;
        let config = s(&r, "config")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| missing(KIND, "config", None))?;
        Ok(Secret::new(config))
    }

    async fn list_clusters(&self) -> Result<Vec<VendorCluster>> {
        self.collection("/v3/clusters")
            .await?
            .iter()
            .map(cluster_of)
            .collect()
    }

    async fn poll(&self, op: &VendorOperation) -> Result<PollResult> {
        if op.done {
            return Ok(PollResult::Succeeded);
        }
        match op.kind.as_str() {
            "create_cluster" => {
                let raw = self
                    .call(
                        reqwest::Method::GET,
                        &format!("/v3/clusters/{}", op.target),
                        None,
                    )
                    .await?;
                Ok(match cluster_of(&raw)?.state {
                    VendorState::Running => PollResult::Succeeded,
                    VendorState::Failed => PollResult::Failed {
                        // norman resources say why in `transitioningMessage`.
                        message: s(&raw, "transitioningMessage")
                            .filter(|m| !m.is_empty())
                            .unwrap_or_else(|| "the cluster is in state error".into()),
                        code: Some("ClusterError".into()),
                    },
                    _ => PollResult::Running,
                })
            }
            "delete_cluster" => match self.describe_cluster(&op.target).await {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(PollResult::Succeeded),
                Err(e) => Err(e),
                Ok(_) => Ok(PollResult::Running),
            },
            _ => {
                let nodes = self.list_nodes(&op.target).await?;
                Ok(http::nodes_poll(
                    op.handle.as_deref().unwrap_or_default(),
                    &nodes,
                    "active",
                    "error",
                ))
            }
        }
    }

    async fn list_nodes(&self, id: &str) -> Result<Vec<VendorNode>> {
        let nodes = self
            .collection(&format!("/v3/nodes?clusterId={id}"))
            .await?;
        nodes
            .iter()
            .map(|n| {
                Ok(VendorNode {
                    instance_id: s(n, "id").ok_or_else(|| missing(KIND, "node id", None))?,
                    node_name: s(n, "nodeName").filter(|x| !x.is_empty()),
                    node_pool: s(n, "nodePoolId").filter(|x| !x.is_empty()),
                    state: s(n, "state").unwrap_or_default(),
                })
            })
            .collect()
    }
}
