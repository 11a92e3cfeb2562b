//! `tke`: Tencent Kubernetes Engine through Tencent Cloud API 3.0
//! (service `tke`, version `2018-05-25`), every request a JSON POST signed
//! with [`TC3-HMAC-SHA256`](super::sign::tc3).
//!
//! Actions and field names follow the API reference and the SDK's models
//! (`TencentCloud/tencentcloud-sdk-go`, `tencentcloud/tke/v20180525/models.go`):
//! `CreateCluster`, `DescribeClusters`, `DeleteCluster`,
//! `AddExistedInstances`, `CreateClusterNodePool`,
//! `ModifyNodePoolDesiredCapacityAboutAsg`, `DeleteClusterInstances`,
//! `DescribeClusterInstances`, `DescribeClusterKubeconfig`. Answers are
//! `{"Response": {…, "RequestId"}}`, errors
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`; codes map
//! to kinds in [`error_kind`] (`RequestLimitExceeded` is throttling,
//! retried; `AuthFailure.*` is never retried).
//!
//! Operations: a created cluster is polled with `DescribeClusters` until
//! `Running`; a deleted one until it is no longer listed; added, removed
//! or scaled nodes with `DescribeClusterInstances`. Node names are the
//! instances' LAN IPs, as TKE names them.

use super::http::{self, AccessKeyConfig, Answer, VendorHttp, missing, vendor_error};
use super::registry::Built;
use super::sign::tc3;
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

/// The provider kind: `"tke"`.
pub const KIND: &str = "tke";
/// The API 3.0 service name.
pub const SERVICE: &str = "tke";
/// The API version.
pub const VERSION: &str = "2018-05-25";
/// The public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://tke.tencentcloudapi.com";

/// How to reach one Tencent Cloud account's TKE (`key_id` is the
/// SecretId, `secret` the SecretKey).
pub type TkeConfig = AccessKeyConfig;

/// The public endpoint, whatever the region (the region goes in `X-TC-Region`).
pub fn default_endpoint(_region: &str) -> String {
    DEFAULT_ENDPOINT.into()
}

/// The registry's builder for this kind.
pub fn build(name: &str, s: &ProviderSettings) -> Result<Built> {
    Ok(Built::Cluster(Arc::new(Tke::new(
        TkeConfig::from_settings(name, s, default_endpoint)?,
    )?)))
}

/// The TKE adapter. See the module docs.
#[derive(Debug)]
pub struct Tke {
    config: TkeConfig,
    url: url::Url,
    host: String,
    http: VendorHttp,
}

/// The shared kind of a Tencent Cloud error code.
pub fn error_kind(code: &str) -> ErrorKind {
    let top = code.split('.').next().unwrap_or(code);
    match top {
        "RequestLimitExceeded" => ErrorKind::Unavailable,
        "AuthFailure" if code == "AuthFailure.UnauthorizedOperation" => ErrorKind::Forbidden,
        "AuthFailure" => ErrorKind::Unauthorized,
        "UnauthorizedOperation" | "OperationDenied" => ErrorKind::Forbidden,
        "ResourceNotFound" | "ResourceUnavailable" => ErrorKind::NotFound,
        _ if code.contains("NotFound") => ErrorKind::NotFound,
        "InvalidParameter"
        | "InvalidParameterValue"
        | "MissingParameter"
        | "UnknownParameter"
        | "LimitExceeded"
        | "InvalidAction" => ErrorKind::Invalid,
        "ResourceInUse" => ErrorKind::Conflict,
        "UnsupportedOperation" | "UnsupportedRegion" => ErrorKind::Unsupported,
        _ => ErrorKind::Internal,
    }
}

impl Tke {
    /// An adapter for one account.
    pub fn new(config: TkeConfig) -> Result<Tke> {
        let url = http::parse_endpoint(KIND, &config.endpoint)?;
        let host = http::host_of(KIND, &url)?;
        let http = VendorHttp::new(KIND, &config.http)?;
        Ok(Tke {
            config,
            url,
            host,
            http,
        })
    }

    /// Calls `action` with `params`; returns the `Response` object.
    pub async fn call(&self, action: &str, target: &str, params: &Value) -> Result<Value> {
        let payload =
            serde_json::to_vec(params).map_err(|e| Error::Invalid(format!("tke {action}: {e}")))?;
        let build = |client: &reqwest::Client| {
            let timestamp = jiff::Timestamp::now().as_second();
            let content_type = "application/json; charset=utf-8";
            let req = tc3::Tc3Request {
                method: "POST",
                host: &self.host,
                path: "/",
                query: &[],
                content_type,
                action,
                payload: &payload,
                timestamp,
                service: SERVICE,
            };
            let signed =
                tc3::sign(&req, &self.config.key_id, &self.config.secret).ok_or_else(|| {
                    vendor_error(
                        KIND,
                        ErrorKind::Internal,
                        "ClockOutOfRange",
                        "cannot sign",
                        None,
                    )
                })?;
            Ok(client
                .post(self.url.clone())
                .header("Authorization", signed.authorization)
                .header("Content-Type", content_type)
                .header("X-TC-Action", action)
                .header("X-TC-Timestamp", timestamp.to_string())
                .header("X-TC-Version", VERSION)
                .header("X-TC-Region", &self.config.region)
                .body(payload.clone()))
        };
        self.http.call(action, target, build, map_answer).await
    }

    async fn describe_raw(&self, id: &str) -> Result<Option<(Value, Option<String>)>> {
        let r = self
            .call("DescribeClusters", id, &json!({"ClusterIds": [id]}))
            .await?;
        let rid = request_id(&r);
        let clusters = r
            .get("Clusters")
            .and_then(Value::as_array)
            .ok_or_else(|| missing(KIND, "Clusters", rid.clone()))?;
        Ok(clusters
            .iter()
            .find(|c| c.get("ClusterId").and_then(Value::as_str) == Some(id))
            .map(|c| (c.clone(), rid)))
    }

    async fn instances(&self, id: &str, filters: Value) -> Result<Vec<VendorNode>> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let mut params = json!({"ClusterId": id, "Offset": offset, "Limit": 100});
            if let (Some(obj), Some(f)) = (params.as_object_mut(), filters.as_object()) {
                obj.extend(f.clone());
            }
            let r = self.call("DescribeClusterInstances", id, &params).await?;
            let rid = request_id(&r);
            let set = r
                .get("InstanceSet")
                .and_then(Value::as_array)
                .ok_or_else(|| missing(KIND, "InstanceSet", rid.clone()))?;
            for i in set {
                let instance_id = str_field(i, "InstanceId")
                    .ok_or_else(|| missing(KIND, "InstanceSet[].InstanceId", rid.clone()))?;
                out.push(VendorNode {
                    instance_id,
                    node_name: str_field(i, "LanIP").filter(|s| !s.is_empty()),
                    node_pool: str_field(i, "NodePoolId").filter(|s| !s.is_empty()),
                    state: str_field(i, "InstanceState").unwrap_or_default(),
                });
            }
            let total = r.get("TotalCount").and_then(Value::as_u64).unwrap_or(0);
            offset += set.len() as u64;
            if set.is_empty() || offset >= total {
                return Ok(out);
            }
        }
    }
}

fn request_id(r: &Value) -> Option<String> {
    str_field(r, "RequestId")
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Maps an API 3.0 answer to its `Response` object or the platform error.
fn map_answer(answer: Answer) -> Result<Value> {
    let body: Value = http::json(KIND, &answer)?;
    let response = body
        .get("Response")
        .cloned()
        .ok_or_else(|| missing(KIND, "Response", answer.request_id.clone()))?;
    let rid = request_id(&response).or(answer.request_id);
    if let Some(err) = response.get("Error") {
        let code = str_field(err, "Code").unwrap_or_else(|| "UnknownError".into());
        let message = str_field(err, "Message").unwrap_or_default();
        return Err(vendor_error(KIND, error_kind(&code), code, message, rid));
    }
    if answer.status >= 400 {
        return Err(vendor_error(
            KIND,
            http::status_kind(answer.status),
            format!("HTTP{}", answer.status),
            "the answer carries no error",
            rid,
        ));
    }
    Ok(response)
}

fn state_of(status: &str) -> VendorState {
    match status {
        "Creating" | "Initializing" => VendorState::Creating,
        "Running" => VendorState::Running,
        "Upgrading" | "Scaling" | "Recovering" => VendorState::Updating,
        "Deleting" => VendorState::Deleting,
        "Abnormal" | "Failed" => VendorState::Failed,
        other => VendorState::Other(other.to_string()),
    }
}

fn cluster_of(c: &Value, region: &str, rid: Option<String>) -> Result<VendorCluster> {
    let id = str_field(c, "ClusterId").ok_or_else(|| missing(KIND, "ClusterId", rid.clone()))?;
    let status =
        str_field(c, "ClusterStatus").ok_or_else(|| missing(KIND, "ClusterStatus", rid.clone()))?;
    Ok(VendorCluster {
        name: str_field(c, "ClusterName").unwrap_or_else(|| id.clone()),
        id,
        state: state_of(&status),
        version: str_field(c, "ClusterVersion"),
        endpoint: None,
        region: Some(region.to_string()),
    })
}

fn op(kind: &str, target: &str, handle: Option<String>, r: &Value) -> VendorOperation {
    VendorOperation {
        kind: kind.into(),
        target: target.into(),
        handle,
        request_id: request_id(r),
        done: false,
    }
}

/// The CVM `RunInstances` parameters of a pool, as the JSON string TKE takes.
fn run_instances_para(pool: &super::NodePoolSpec, zone: Option<&str>, vpc: Option<&str>) -> String {
    let mut p = json!({
        "InstanceType": pool.instance_type,
        "InstanceCount": pool.count,
        "InstanceName": pool.name,
    });
    if let Some(z) = pool.zone.as_deref().or(zone) {
        p["Placement"] = json!({"Zone": z});
    }
    if let Some(v) = vpc {
        p["VirtualPrivateCloud"] = json!({"VpcId": v});
    }
    p.to_string()
}

fn labels(pool: &super::NodePoolSpec) -> Value {
    Value::Array(
        pool.labels
            .iter()
            .map(|(k, v)| json!({"Name": k, "Value": v}))
            .collect(),
    )
}

#[async_trait]
impl ClusterProvider for Tke {
    fn kind(&self) -> &str {
        KIND
    }

    async fn create_cluster(&self, spec: &ClusterSpec) -> Result<VendorOperation> {
        let mut basic = json!({"ClusterName": spec.name});
        if let Some(v) = &spec.kubernetes_version {
            basic["ClusterVersion"] = json!(v);
        }
        if let Some(v) = &spec.network_id {
            basic["VpcId"] = json!(v);
        }
        let mut cidr = json!({});
        if let Some(c) = &spec.pod_cidr {
            cidr["ClusterCIDR"] = json!(c);
        }
        if let Some(c) = &spec.service_cidr {
            cidr["ServiceCIDR"] = json!(c);
        }
        let mut params = json!({
            "ClusterType": "MANAGED_CLUSTER",
            "ClusterBasicSettings": basic,
            "ClusterCIDRSettings": cidr,
        });
        if !spec.node_pools.is_empty() {
            params["RunInstancesForNode"] = json!([{
                "NodeRole": "WORKER",
                "RunInstancesPara": spec.node_pools.iter()
                    .map(|p| run_instances_para(p, spec.zone.as_deref(), spec.network_id.as_deref()))
                    .collect::<Vec<_>>(),
            }]);
        }
        if !spec.existing_instances.is_empty() {
            params["ExistedInstancesForNode"] = json!([{
                "NodeRole": "WORKER",
                "ExistedInstancesPara": {"InstanceIds": spec.existing_instances},
            }]);
        }
        let r = self.call("CreateCluster", &spec.name, &params).await?;
        let id =
            str_field(&r, "ClusterId").ok_or_else(|| missing(KIND, "ClusterId", request_id(&r)))?;
        Ok(op("create_cluster", &id, None, &r))
    }

    async fn describe_cluster(&self, id: &str) -> Result<VendorCluster> {
        match self.describe_raw(id).await? {
            Some((c, rid)) => cluster_of(&c, &self.config.region, rid),
            None => Err(Error::NotFound(format!("tke cluster {id:?}"))),
        }
    }

    async fn delete_cluster(&self, id: &str) -> Result<VendorOperation> {
        let r = self
            .call(
                "DeleteCluster",
                id,
                &json!({"ClusterId": id, "InstanceDeleteMode": "terminate"}),
            )
            .await?;
        Ok(op("delete_cluster", id, None, &r))
    }

    async fn add_nodes(&self, id: &str, nodes: &AddNodes) -> Result<VendorOperation> {
        match nodes {
            AddNodes::Existing { instance_ids } => {
                let r = self
                    .call(
                        "AddExistedInstances",
                        id,
                        &json!({"ClusterId": id, "InstanceIds": instance_ids}),
                    )
                    .await?;
                let ok: Vec<String> =
                    serde_json::from_value(r.get("SuccInstanceIds").cloned().unwrap_or(json!([])))
                        .unwrap_or_default();
                if ok.is_empty() && !instance_ids.is_empty() {
                    let reasons = r
                        .get("FailedReasons")
                        .map(Value::to_string)
                        .unwrap_or_default();
                    return Err(vendor_error(
                        KIND,
                        ErrorKind::Invalid,
                        "FailedOperation.AddExistedInstances",
                        format!("no instance was added: {reasons}"),
                        request_id(&r),
                    ));
                }
                Ok(op(
                    "add_nodes",
                    id,
                    Some(format!("instances:{}", ok.join(","))),
                    &r,
                ))
            }
            AddNodes::New { pool } => {
                let asg = json!({
                    "MinSize": 0, "MaxSize": pool.count.max(1), "DesiredCapacity": pool.count,
                })
                .to_string();
                let launch = json!({"InstanceType": pool.instance_type}).to_string();
                let r = self
                    .call(
                        "CreateClusterNodePool",
                        id,
                        &json!({
                            "ClusterId": id,
                            "Name": pool.name,
                            "AutoScalingGroupPara": asg,
                            "LaunchConfigurePara": launch,
                            "EnableAutoscale": false,
                            "Labels": labels(pool),
                        }),
                    )
                    .await?;
                let np = str_field(&r, "NodePoolId")
                    .ok_or_else(|| missing(KIND, "NodePoolId", request_id(&r)))?;
                Ok(op(
                    "add_nodes",
                    id,
                    Some(format!("pool:{np}:{}", pool.count)),
                    &r,
                ))
            }
        }
    }

    async fn remove_nodes(&self, id: &str, instance_ids: &[String]) -> Result<VendorOperation> {
        let r = self
            .call(
                "DeleteClusterInstances",
                id,
                &json!({"ClusterId": id, "InstanceIds": instance_ids, "InstanceDeleteMode": "terminate"}),
            )
            .await?;
        Ok(op(
            "remove_nodes",
            id,
            Some(format!("gone:{}", instance_ids.join(","))),
            &r,
        ))
    }

    async fn scale_node_pool(&self, id: &str, pool: &str, desired: u32) -> Result<VendorOperation> {
        let r = self
            .call(
                "ModifyNodePoolDesiredCapacityAboutAsg",
                id,
                &json!({"ClusterId": id, "NodePoolId": pool, "DesiredCapacity": desired}),
            )
            .await?;
        Ok(op(
            "scale_node_pool",
            id,
            Some(format!("pool:{pool}:{desired}")),
            &r,
        ))
    }

    async fn kubeconfig(&self, id: &str) -> Result<Secret<String>> {
        let r = self
            .call(
                "DescribeClusterKubeconfig",
                id,
                &json!({"ClusterId": id, "IsExtranet": false}),
            )
            .await?;
        let text = r
            .get("Kubeconfig")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(KIND, "Kubeconfig", request_id(&r)))?;
        Ok(Secret::new(text.to_string()))
    }

    async fn list_clusters(&self) -> Result<Vec<VendorCluster>> {
        let mut out = Vec::new();
        loop {
            let r = self
                .call(
                    "DescribeClusters",
                    "",
                    &json!({"Offset": out.len(), "Limit": 100}),
                )
                .await?;
            let rid = request_id(&r);
            let page = r
                .get("Clusters")
                .and_then(Value::as_array)
                .ok_or_else(|| missing(KIND, "Clusters", rid.clone()))?;
            for c in page {
                out.push(cluster_of(c, &self.config.region, rid.clone())?);
            }
            let total = r.get("TotalCount").and_then(Value::as_u64).unwrap_or(0);
            if page.is_empty() || out.len() as u64 >= total {
                return Ok(out);
            }
        }
    }

    async fn poll(&self, op: &VendorOperation) -> Result<PollResult> {
        if op.done {
            return Ok(PollResult::Succeeded);
        }
        let id = op.target.as_str();
        match op.kind.as_str() {
            "create_cluster" => match self.describe_raw(id).await? {
                None => Ok(PollResult::Running),
                Some((c, rid)) => Ok(match cluster_of(&c, &self.config.region, rid)?.state {
                    VendorState::Running => PollResult::Succeeded,
                    VendorState::Failed => PollResult::Failed {
                        // TKE's Cluster has no failure reason, only its status.
                        message: format!(
                            "the cluster is {}",
                            str_field(&c, "ClusterStatus").unwrap_or_default()
                        ),
                        code: Some("ClusterAbnormal".into()),
                    },
                    _ => PollResult::Running,
                }),
            },
            "delete_cluster" => Ok(match self.describe_raw(id).await? {
                None => PollResult::Succeeded,
                Some(_) => PollResult::Running,
            }),
            _ => {
                let handle = op.handle.as_deref().unwrap_or_default();
                let nodes = self.instances(id, json!({})).await?;
                Ok(http::nodes_poll(handle, &nodes, "running", "failed"))
            }
        }
    }

    async fn list_nodes(&self, id: &str) -> Result<Vec<VendorNode>> {
        self.instances(id, json!({"InstanceRole": "WORKER"})).await
    }
}
