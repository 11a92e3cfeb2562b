//! `ack`: Alibaba Cloud Container Service for Kubernetes through its
//! ROA-style API (version `2015-12-15`, `cs.<region>.aliyuncs.com`), every
//! request signed with [`ACS3-HMAC-SHA256`](super::sign::acs3).
//!
//! Paths and field names follow the API reference and the SDK
//! (`alibabacloud-go/cs-20151215`, `client/client.go`):
//! `POST /clusters` (CreateCluster), `GET /clusters/{id}`
//! (DescribeClusterDetail), `GET /api/v1/clusters` (DescribeClustersV1),
//! `DELETE /clusters/{id}`, `POST /clusters/{id}/nodepools`
//! (CreateClusterNodePool), `PUT /clusters/{id}/nodepools/{pool}`
//! (ModifyClusterNodePool), `POST /clusters/{id}/attach`
//! (AttachInstances), `POST /clusters/{id}/nodes/remove`
//! (DeleteClusterNodes), `GET /clusters/{id}/nodes`
//! (DescribeClusterNodes), `GET /tasks/{task}` (DescribeTaskInfo),
//! `GET /k8s/{id}/user_config` (DescribeClusterUserKubeconfig). Errors
//! are `{"code", "message", "requestId"}` with an HTTP status; codes map
//! to kinds in [`error_kind`] (`Throttling*` is retried).
//!
//! Operations are tracked by the task id every change returns; a deleted
//! cluster is done once it is no longer found.

use super::http::{self, AccessKeyConfig, Answer, VendorHttp, missing, vendor_error};
use super::registry::Built;
use super::sign::acs3;
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
use std::sync::Arc;

/// The provider kind: `"ack"`.
pub const KIND: &str = "ack";
/// The API version.
pub const VERSION: &str = "2015-12-15";

/// How to reach one Alibaba Cloud account's ACK (`key_id` is the
/// AccessKey id, `secret` the AccessKey secret).
pub type AckConfig = AccessKeyConfig;

/// `https://cs.<region>.aliyuncs.com`.
pub fn default_endpoint(region: &str) -> String {
    format!("https://cs.{region}.aliyuncs.com")
}

/// The registry's builder for this kind.
pub fn build(name: &str, s: &ProviderSettings) -> Result<Built> {
    Ok(Built::Cluster(Arc::new(Ack::new(
        AckConfig::from_settings(name, s, default_endpoint)?,
    )?)))
}

/// The shared kind of an Alibaba Cloud error code (ROA and RPC alike),
/// falling back to the HTTP status.
pub fn error_kind(code: &str, status: u16) -> ErrorKind {
    let c = code.to_ascii_lowercase();
    if c.starts_with("throttling") || c.contains("flowcontrol") || c == "serviceunavailable" {
        ErrorKind::Unavailable
    } else if c.starts_with("invalidaccesskeyid")
        || c.starts_with("signaturedoesnotmatch")
        || c.starts_with("incompletesignature")
        || c.starts_with("invalidsecuritytoken")
        || c == "signaturenoncenotunique"
    {
        ErrorKind::Unauthorized
    } else if c.starts_with("forbidden") || c.contains("nopermission") || c.contains("unauthorized")
    {
        ErrorKind::Forbidden
    } else if c.contains("notfound") || c.contains("not_found") || c.contains("notexist") {
        ErrorKind::NotFound
    } else if c.contains("alreadyexist") || c.contains("exists") {
        ErrorKind::AlreadyExists
    } else {
        http::status_kind(status)
    }
}

/// Maps an Alibaba Cloud answer (`code` / `Code`, `message` / `Message`,
/// `requestId` / `RequestId`) to its body or the platform error.
pub fn map_answer(provider: &str, answer: Answer) -> Result<Value> {
    let body: Value = if answer.body.is_empty() {
        json!({})
    } else {
        http::json(provider, &answer)?
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| body.get(*n).and_then(Value::as_str))
            .map(str::to_string)
    };
    let rid = field(&["requestId", "RequestId", "request_id"]).or(answer.request_id.clone());
    if answer.status >= 400 {
        let code = field(&["code", "Code"]).unwrap_or_else(|| format!("HTTP{}", answer.status));
        let message = field(&["message", "Message"]).unwrap_or_default();
        return Err(vendor_error(
            provider,
            error_kind(&code, answer.status),
            code,
            message,
            rid,
        ));
    }
    Ok(body)
}

/// A signed Alibaba Cloud request (shared by [`Ack`] and the ACR adapter).
pub struct Acs3Call<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, not yet encoded.
    pub path: &'a str,
    /// Query pairs.
    pub query: &'a [(String, String)],
    /// The action (`x-acs-action`).
    pub action: &'a str,
    /// The API version.
    pub version: &'a str,
    /// A JSON body.
    pub body: Option<&'a Value>,
}

/// Builds the signed reqwest request of `call` (fresh date and nonce).
pub fn signed_request(
    client: &reqwest::Client,
    base: &url::Url,
    host: &str,
    access_key_id: &str,
    secret: &Secret<String>,
    call: &Acs3Call<'_>,
) -> Result<reqwest::RequestBuilder> {
    let body = match call.body {
        Some(b) => {
            serde_json::to_vec(b).map_err(|e| Error::Invalid(format!("{}: {e}", call.action)))?
        }
        None => Vec::new(),
    };
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let req = acs3::Acs3Request {
        method: call.method,
        host,
        path: call.path,
        query: call.query,
        content_type: call.body.map(|_| "application/json"),
        action: call.action,
        version: call.version,
        date: &date,
        nonce: &nonce,
        body: &body,
    };
    let signed = acs3::sign(&req, access_key_id, secret);
    let mut url = base.clone();
    url.set_path(&acs3::canonical_uri(call.path));
    let query = super::sign::canonical_query(call.query);
    url.set_query((!query.is_empty()).then_some(query.as_str()));
    let method = reqwest::Method::from_bytes(call.method.as_bytes())
        .map_err(|_| Error::Invalid(format!("HTTP method {:?}", call.method)))?;
    let mut b = client
        .request(method, url)
        .header("Authorization", signed.authorization);
    for (k, v) in signed.headers.iter().filter(|(k, _)| k != "host") {
        b = b.header(k.as_str(), v.as_str());
    }
    Ok(b.body(body))
}

/// Where a signed Alibaba Cloud call goes: the client, the endpoint, its
/// `host` and the account that signs.
pub struct Acs3Target<'a> {
    /// The client.
    pub http: &'a VendorHttp,
    /// The endpoint.
    pub url: &'a url::Url,
    /// Its `host[:port]`.
    pub host: &'a str,
    /// The signing account.
    pub account: &'a AccessKeyConfig,
}

impl Acs3Target<'_> {
    /// Sends `call`, signed afresh on every attempt, and maps the answer.
    pub async fn send<T>(
        &self,
        call: &Acs3Call<'_>,
        map: impl Fn(Answer) -> Result<T>,
    ) -> Result<T> {
        let build = |c: &reqwest::Client| {
            signed_request(
                c,
                self.url,
                self.host,
                &self.account.key_id,
                &self.account.secret,
                call,
            )
        };
        self.http.call(call.action, call.path, build, map).await
    }
}

/// The ACK adapter. See the module docs.
#[derive(Debug)]
pub struct Ack {
    config: AckConfig,
    url: url::Url,
    host: String,
    http: VendorHttp,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

impl Ack {
    /// An adapter for one account.
    pub fn new(config: AckConfig) -> Result<Ack> {
        let url = http::parse_endpoint(KIND, &config.endpoint)?;
        let host = http::host_of(KIND, &url)?;
        let http = VendorHttp::new(KIND, &config.http)?;
        Ok(Ack {
            config,
            url,
            host,
            http,
        })
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        action: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let call = Acs3Call {
            method,
            path,
            query,
            action,
            version: VERSION,
            body,
        };
        let target = Acs3Target {
            http: &self.http,
            url: &self.url,
            host: &self.host,
            account: &self.config,
        };
        target.send(&call, |a| map_answer(KIND, a)).await
    }

    fn cluster_of(&self, c: &Value) -> Result<VendorCluster> {
        let rid = s(c, "request_id");
        let id = s(c, "cluster_id").ok_or_else(|| missing(KIND, "cluster_id", rid.clone()))?;
        let state = s(c, "state").ok_or_else(|| missing(KIND, "state", rid))?;
        let endpoint = s(c, "master_url")
            .and_then(|m| serde_json::from_str::<Value>(&m).ok())
            .and_then(|m| {
                s(&m, "intranet_api_server_endpoint").or_else(|| s(&m, "api_server_endpoint"))
            });
        Ok(VendorCluster {
            name: s(c, "name").unwrap_or_else(|| id.clone()),
            id,
            state: match state.as_str() {
                "initial" => VendorState::Creating,
                "running" => VendorState::Running,
                "updating" | "scaling" | "upgrading" | "removing" => VendorState::Updating,
                "deleting" => VendorState::Deleting,
                "failed" | "delete_failed" => VendorState::Failed,
                other => VendorState::Other(other.to_string()),
            },
            version: s(c, "current_version"),
            endpoint,
            region: s(c, "region_id").or_else(|| Some(self.config.region.clone())),
        })
    }

    fn op(&self, kind: &str, target: &str, r: &Value) -> Result<VendorOperation> {
        let task = s(r, "task_id");
        if task.is_none() && kind != "delete_cluster" {
            return Err(missing(KIND, "task_id", s(r, "request_id")));
        }
        Ok(VendorOperation {
            kind: kind.into(),
            target: target.into(),
            handle: task,
            request_id: s(r, "request_id"),
            done: false,
        })
    }
}

#[async_trait]
impl ClusterProvider for Ack {
    fn kind(&self) -> &str {
        KIND
    }

    async fn create_cluster(&self, spec: &ClusterSpec) -> Result<VendorOperation> {
        let mut body = json!({
            "name": spec.name,
            "cluster_type": "ManagedKubernetes",
            "region_id": spec.region.clone().unwrap_or_else(|| self.config.region.clone()),
        });
        let set = |b: &mut Value, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                b[k] = json!(v);
            }
        };
        set(&mut body, "kubernetes_version", &spec.kubernetes_version);
        set(&mut body, "vpcid", &spec.network_id);
        set(&mut body, "container_cidr", &spec.pod_cidr);
        set(&mut body, "service_cidr", &spec.service_cidr);
        if !spec.node_pools.is_empty() {
            body["nodepools"] = Value::Array(spec.node_pools.iter().map(pool_body).collect());
        }
        if !spec.existing_instances.is_empty() {
            body["instances"] = json!(spec.existing_instances);
        }
        let r = self
            .call("POST", "/clusters", &[], "CreateCluster", Some(&body))
            .await?;
        let id =
            s(&r, "cluster_id").ok_or_else(|| missing(KIND, "cluster_id", s(&r, "request_id")))?;
        self.op("create_cluster", &id, &r)
    }

    async fn describe_cluster(&self, id: &str) -> Result<VendorCluster> {
        let r = self
            .call(
                "GET",
                &format!("/clusters/{id}"),
                &[],
                "DescribeClusterDetail",
                None,
            )
            .await?;
        self.cluster_of(&r)
    }

    async fn delete_cluster(&self, id: &str) -> Result<VendorOperation> {
        let r = self
            .call(
                "DELETE",
                &format!("/clusters/{id}"),
                &[],
                "DeleteCluster",
                None,
            )
            .await?;
        self.op("delete_cluster", id, &r)
    }

    async fn add_nodes(&self, id: &str, nodes: &AddNodes) -> Result<VendorOperation> {
        let r = match nodes {
            AddNodes::New { pool } => {
                let path = format!("/clusters/{id}/nodepools");
                self.call(
                    "POST",
                    &path,
                    &[],
                    "CreateClusterNodePool",
                    Some(&pool_body(pool)),
                )
                .await?
            }
            AddNodes::Existing { instance_ids } => {
                let path = format!("/clusters/{id}/attach");
                let body = json!({"instances": instance_ids});
                self.call("POST", &path, &[], "AttachInstances", Some(&body))
                    .await?
            }
        };
        self.op("add_nodes", id, &r)
    }

    async fn remove_nodes(&self, id: &str, instance_ids: &[String]) -> Result<VendorOperation> {
        let names: Vec<String> = self
            .list_nodes(id)
            .await?
            .into_iter()
            .filter(|n| instance_ids.contains(&n.instance_id))
            .filter_map(|n| n.node_name)
            .collect();
        if names.len() != instance_ids.len() {
            return Err(Error::NotFound(format!(
                "ack cluster {id:?}: not every instance of {instance_ids:?} is a node"
            )));
        }
        let body = json!({"nodes": names, "release_node": true, "drain_node": true});
        let path = format!("/clusters/{id}/nodes/remove");
        let r = self
            .call("POST", &path, &[], "DeleteClusterNodes", Some(&body))
            .await?;
        self.op("remove_nodes", id, &r)
    }

    async fn scale_node_pool(&self, id: &str, pool: &str, desired: u32) -> Result<VendorOperation> {
        let body = json!({"scaling_group": {"desired_size": desired}});
        let path = format!("/clusters/{id}/nodepools/{pool}");
        let r = self
            .call("PUT", &path, &[], "ModifyClusterNodePool", Some(&body))
            .await?;
        self.op("scale_node_pool", id, &r)
    }

    async fn kubeconfig(&self, id: &str) -> Result<Secret<String>> {
        let q = vec![("PrivateIpAddress".to_string(), "false".to_string())];
        let path = format!("/k8s/{id}/user_config");
        let r = self
            .call("GET", &path, &q, "DescribeClusterUserKubeconfig", None)
            .await?;
        let text = s(&r, "config")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| missing(KIND, "config", s(&r, "request_id")))?;
        Ok(Secret::new(text))
    }

    async fn list_clusters(&self) -> Result<Vec<VendorCluster>> {
        let mut out = Vec::new();
        for page in 1u32.. {
            let q = vec![
                ("page_number".to_string(), page.to_string()),
                ("page_size".to_string(), "100".to_string()),
            ];
            let r = self
                .call("GET", "/api/v1/clusters", &q, "DescribeClustersV1", None)
                .await?;
            let list = r
                .get("clusters")
                .and_then(Value::as_array)
                .ok_or_else(|| missing(KIND, "clusters", s(&r, "request_id")))?;
            for c in list {
                out.push(self.cluster_of(c)?);
            }
            let total = r
                .pointer("/page_info/total_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if list.is_empty() || out.len() as u64 >= total {
                break;
            }
        }
        Ok(out)
    }

    async fn poll(&self, op: &VendorOperation) -> Result<PollResult> {
        if op.done {
            return Ok(PollResult::Succeeded);
        }
        let Some(task) = &op.handle else {
            // A delete without a task: done once the cluster is gone.
            return match self.describe_cluster(&op.target).await {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(PollResult::Succeeded),
                Err(e) => Err(e),
                Ok(_) => Ok(PollResult::Running),
            };
        };
        let r = self
            .call(
                "GET",
                &format!("/tasks/{task}"),
                &[],
                "DescribeTaskInfo",
                None,
            )
            .await?;
        let state = s(&r, "state").ok_or_else(|| missing(KIND, "state", s(&r, "request_id")))?;
        Ok(match state.as_str() {
            "success" | "succeeded" => PollResult::Succeeded,
            "fail" | "failed" => PollResult::Failed {
                message: r
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the task failed")
                    .to_string(),
                code: r
                    .pointer("/error/code")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            _ => PollResult::Running,
        })
    }

    async fn list_nodes(&self, id: &str) -> Result<Vec<VendorNode>> {
        let mut out = Vec::new();
        for page in 1u32.. {
            let q = vec![
                ("pageNumber".to_string(), page.to_string()),
                ("pageSize".to_string(), "100".to_string()),
            ];
            let r = self
                .call(
                    "GET",
                    &format!("/clusters/{id}/nodes"),
                    &q,
                    "DescribeClusterNodes",
                    None,
                )
                .await?;
            let rid = s(&r, "request_id");
            let list = r
                .get("nodes")
                .and_then(Value::as_array)
                .ok_or_else(|| missing(KIND, "nodes", rid.clone()))?;
            for n in list {
                out.push(VendorNode {
                    instance_id: s(n, "instance_id")
                        .ok_or_else(|| missing(KIND, "nodes[].instance_id", rid.clone()))?,
                    node_name: s(n, "node_name").filter(|x| !x.is_empty()),
                    node_pool: s(n, "nodepool_id").filter(|x| !x.is_empty()),
                    state: s(n, "state").unwrap_or_default(),
                });
            }
            let total = r
                .pointer("/page/total_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if list.is_empty() || out.len() as u64 >= total {
                break;
            }
        }
        Ok(out)
    }
}

fn pool_body(p: &super::NodePoolSpec) -> Value {
    json!({
        "nodepool_info": {"name": p.name},
        "scaling_group": {"instance_types": [p.instance_type], "desired_size": p.count},
        "kubernetes_config": {"labels": p.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()},
    })
}
