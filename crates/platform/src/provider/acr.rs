//! `acr`: Alibaba Cloud Container Registry (Enterprise Edition) through its
//! RPC-style API, version `2018-12-01` (`cr.<region>.aliyuncs.com`), every
//! request a `POST /` with its parameters in the query, signed with
//! [`ACS3-HMAC-SHA256`](super::sign::acs3) and sent through the shared
//! [`VendorHttp`] (throttling retried, auth errors not).
//!
//! Actions and fields follow the API reference and its SDK
//! (`alibabacloud-go/cr-20181201`, `client/client.go`): `ListInstance`,
//! `CreateNamespace` (`NamespaceName`, `DefaultRepoType` `PUBLIC` /
//! `PRIVATE`, `AutoCreateRepo`), `ListNamespace`, `DeleteNamespace`,
//! `ListRepository` (`RepoNamespaceName`, `RepoName`, `RepoStatus`),
//! `ListRepoTag` (`RepoId`). Lists page with `PageNo` / `PageSize` and a
//! `TotalCount` that ACR sends as a string. Answers carry `Code`,
//! `IsSuccess` and `RequestId`: a gateway error comes with an HTTP status
//! (`Throttling.*` is retried), a business error with HTTP 200 and
//! `IsSuccess: false`; both map to [`crate::Error::Provider`].
//!
//! Every action takes the instance id: `options.instance_id`, or, when it
//! is not set, the account's only instance in the region (`ListInstance`).
//!
//! ACR has no per-namespace robot accounts: pull and push rights are RAM
//! policies on the Alibaba Cloud account, and `GetAuthorizationToken`
//! issues a temporary login for the whole instance. So
//! [`RegistryProvider::grant_access`] is Unsupported here; the platform
//! still records the permission in its store.

use super::ack::{Acs3Call, Acs3Target, error_kind};
use super::http::{self, AccessKeyConfig, Answer, VendorHttp, missing, vendor_error};
use super::registry::Built;
use super::{AccessGrant, Namespace, RegistryProvider, Repository, Visibility, no_robot_accounts};
use crate::config::ProviderSettings;
use crate::store::Access;
use crate::{Error, Result};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The provider kind: `"acr"`.
pub const KIND: &str = "acr";
/// The API version.
pub const VERSION: &str = "2018-12-01";
/// How ACR grants what robot accounts grant elsewhere.
const ACCESS_INSTEAD: &str = "grant a RAM policy on the namespace to a RAM user or role \
     (GetAuthorizationToken only issues an instance-wide temporary login)";
/// The page size of list calls.
const PAGE_SIZE: u32 = 100;

/// How to reach one Alibaba Cloud account's ACR.
pub type AcrConfig = AccessKeyConfig;

/// `https://cr.<region>.aliyuncs.com`.
pub fn default_endpoint(region: &str) -> String {
    format!("https://cr.{region}.aliyuncs.com")
}

/// The registry's builder for this kind (`region`, `access_key_id`,
/// `access_key_secret`, optional `endpoint` and `options.instance_id`).
pub fn build(name: &str, s: &ProviderSettings) -> Result<Built> {
    let config = AcrConfig::from_settings(name, s, default_endpoint)?;
    Ok(Built::Registry(Arc::new(Acr::new(
        config,
        s.options.get("instance_id").cloned(),
    )?)))
}

/// Maps an ACR answer: an HTTP error or `IsSuccess: false` to the
/// platform error (`ACR`'s `NAMESPACE_NOT_EXIST`-style codes included),
/// else the body.
pub fn map_answer(answer: Answer) -> Result<Value> {
    let rid = answer.request_id.clone();
    let body = super::ack::map_answer(KIND, answer)?;
    if body.get("IsSuccess").and_then(Value::as_bool) == Some(false) {
        let code = s(&body, "Code").unwrap_or_else(|| "UNKNOWN".into());
        let message = s(&body, "Message").unwrap_or_else(|| code.clone());
        return Err(vendor_error(
            KIND,
            error_kind(&code.replace('_', ""), 200),
            code,
            message,
            s(&body, "RequestId").or(rid),
        ));
    }
    Ok(body)
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// The ACR adapter. See the module docs.
#[derive(Debug)]
pub struct Acr {
    config: AcrConfig,
    url: url::Url,
    host: String,
    http: VendorHttp,
    instance: OnceCell<String>,
}

impl Acr {
    /// An adapter for one account; `instance_id` `None` means the
    /// region's only instance, looked up on first use.
    pub fn new(config: AcrConfig, instance_id: Option<String>) -> Result<Acr> {
        let url = http::parse_endpoint(KIND, &config.endpoint)?;
        let host = http::host_of(KIND, &url)?;
        let http = VendorHttp::new(KIND, &config.http)?;
        let instance = match instance_id {
            Some(id) if !id.trim().is_empty() => OnceCell::new_with(Some(id)),
            _ => OnceCell::new(),
        };
        Ok(Acr {
            config,
            url,
            host,
            http,
            instance,
        })
    }

    async fn call(&self, action: &str, params: &[(&str, String)]) -> Result<Value> {
        let query: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let call = Acs3Call {
            method: "POST",
            path: "/",
            query: &query,
            action,
            version: VERSION,
            body: None,
        };
        let target = Acs3Target {
            http: &self.http,
            url: &self.url,
            host: &self.host,
            account: &self.config,
        };
        target.send(&call, map_answer).await
    }

    /// Every page of a list action; `field` names the array.
    async fn list(
        &self,
        action: &str,
        params: &[(&str, String)],
        field: &str,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for page in 1u32.. {
            let mut q = params.to_vec();
            q.push(("PageNo", page.to_string()));
            q.push(("PageSize", PAGE_SIZE.to_string()));
            let r = self.call(action, &q).await?;
            let rid = s(&r, "RequestId");
            let list = r
                .get(field)
                .and_then(Value::as_array)
                .ok_or_else(|| missing(KIND, field, rid))?;
            out.extend(list.iter().cloned());
            // TotalCount is a string in this API; accept a number too.
            let total = r
                .get("TotalCount")
                .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
                .unwrap_or(0);
            if list.is_empty() || out.len() as u64 >= total {
                break;
            }
        }
        Ok(out)
    }

    /// The account's instances in the region (`ListInstance`):
    /// (`InstanceId`, `InstanceName`, `InstanceStatus`).
    pub async fn instances(&self) -> Result<Vec<(String, String, String)>> {
        let list = self.list("ListInstance", &[], "Instances").await?;
        Ok(list
            .iter()
            .filter_map(|i| {
                Some((
                    s(i, "InstanceId")?,
                    s(i, "InstanceName").unwrap_or_default(),
                    s(i, "InstanceStatus").unwrap_or_default(),
                ))
            })
            .collect())
    }

    /// The instance every call acts on.
    pub async fn instance_id(&self) -> Result<String> {
        self.instance
            .get_or_try_init(|| async {
                let all = self.instances().await?;
                match all.as_slice() {
                    [(id, _, _)] => Ok(id.clone()),
                    [] => Err(Error::NotFound(format!(
                        "{KIND}: the account has no Container Registry instance in {}",
                        self.config.region
                    ))),
                    many => Err(Error::Invalid(format!(
                        "{KIND}: {} instances in {}; set options.instance_id to one of {}",
                        many.len(),
                        self.config.region,
                        many.iter()
                            .map(|i| i.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            })
            .await
            .cloned()
    }

    async fn repositories(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut q = vec![
            ("InstanceId", self.instance_id().await?),
            ("RepoStatus", "ALL".to_string()),
        ];
        if let Some(ns) = namespace {
            q.push(("RepoNamespaceName", ns.to_string()));
        }
        if let Some(n) = name {
            q.push(("RepoName", n.to_string()));
        }
        self.list("ListRepository", &q, "Repositories").await
    }

    fn namespace_of(v: &Value, count: Option<u64>) -> Result<Namespace> {
        let name = s(v, "NamespaceName")
            .ok_or_else(|| missing(KIND, "Namespaces[].NamespaceName", None))?;
        Ok(Namespace {
            name,
            visibility: match s(v, "DefaultRepoType").as_deref() {
                Some("PUBLIC") => Visibility::Public,
                _ => Visibility::Private,
            },
            repository_count: count,
            quota_bytes: None,
            used_bytes: None,
            created: None,
        })
    }
}

#[async_trait]
impl RegistryProvider for Acr {
    fn kind(&self) -> &str {
        KIND
    }

    async fn create_namespace(&self, name: &str, visibility: Visibility) -> Result<Namespace> {
        if name.is_empty() || name.len() > 120 {
            return Err(Error::Invalid(format!(
                "{KIND}: namespace name {name:?} must have 1 to 120 characters"
            )));
        }
        let repo_type = match visibility {
            Visibility::Public => "PUBLIC",
            Visibility::Private => "PRIVATE",
        };
        self.call(
            "CreateNamespace",
            &[
                ("InstanceId", self.instance_id().await?),
                ("NamespaceName", name.to_string()),
                ("DefaultRepoType", repo_type.to_string()),
                ("AutoCreateRepo", "true".to_string()),
            ],
        )
        .await?;
        Self::namespace_of(
            &json!({"NamespaceName": name, "DefaultRepoType": repo_type}),
            Some(0),
        )
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        let instance = self.instance_id().await?;
        let namespaces = self
            .list("ListNamespace", &[("InstanceId", instance)], "Namespaces")
            .await?;
        // One paginated repository list counted by namespace, not one call
        // per namespace.
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for r in self.repositories(None, None).await? {
            if let Some(ns) = s(&r, "RepoNamespaceName") {
                *counts.entry(ns).or_default() += 1;
            }
        }
        namespaces
            .iter()
            .map(|n| {
                let count =
                    s(n, "NamespaceName").map(|name| counts.get(&name).copied().unwrap_or(0));
                Self::namespace_of(n, count)
            })
            .collect()
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        self.call(
            "DeleteNamespace",
            &[
                ("InstanceId", self.instance_id().await?),
                ("NamespaceName", name.to_string()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>> {
        self.repositories(namespace, None)
            .await?
            .iter()
            .map(|r| {
                let ns = s(r, "RepoNamespaceName")
                    .ok_or_else(|| missing(KIND, "Repositories[].RepoNamespaceName", None))?;
                let name = s(r, "RepoName")
                    .ok_or_else(|| missing(KIND, "Repositories[].RepoName", None))?;
                Ok(Repository {
                    name: format!("{ns}/{name}"),
                    artifact_count: None,
                    pull_count: None,
                    // Milliseconds since the epoch in this API.
                    updated: r
                        .get("ModifiedTime")
                        .and_then(Value::as_i64)
                        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                        .map(|t| t.to_string()),
                })
            })
            .collect()
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let (ns, name) = repository.split_once('/').ok_or_else(|| {
            Error::Invalid(format!(
                "{KIND}: repository {repository:?} must be <namespace>/<name>"
            ))
        })?;
        let repos = self.repositories(Some(ns), Some(name)).await?;
        let repo = repos
            .iter()
            .find(|r| s(r, "RepoName").as_deref() == Some(name))
            .ok_or_else(|| Error::NotFound(format!("{KIND}: repository {repository:?}")))?;
        let id = s(repo, "RepoId").ok_or_else(|| missing(KIND, "Repositories[].RepoId", None))?;
        let q = [("InstanceId", self.instance_id().await?), ("RepoId", id)];
        let mut tags: Vec<String> = self
            .list("ListRepoTag", &q, "Images")
            .await?
            .iter()
            .filter_map(|i| s(i, "Tag"))
            .collect();
        tags.sort();
        Ok(tags)
    }

    async fn grant_access(
        &self,
        namespace: &str,
        subject: &str,
        _access: Access,
    ) -> Result<AccessGrant> {
        Err(no_robot_accounts(KIND, namespace, subject, ACCESS_INSTEAD))
    }

    async fn revoke_access(&self, namespace: &str, subject: &str) -> Result<()> {
        Err(no_robot_accounts(KIND, namespace, subject, ACCESS_INSTEAD))
    }
}
