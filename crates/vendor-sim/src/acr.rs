//! A simulated Alibaba Cloud Container Registry API (version 2018-12-01,
//! RPC style: `POST /` with the action in `x-acs-action` and the
//! parameters in the query): every request's ACS3-HMAC-SHA256 signature,
//! date and nonce checked; gateway errors as `{"RequestId", "HostId",
//! "Code", "Message"}` with an HTTP status, business errors as HTTP 200
//! with `IsSuccess: false`, successes with `Code: "success"` — the shapes
//! of the API reference and `alibabacloud-go/cr-20181201`.
//!
//! One Enterprise Edition instance; namespaces kept in memory;
//! repositories and tags are the images recorded with
//! [`SimHandle::push_image`] under an existing namespace.
//! Actions: ListInstance, CreateNamespace, ListNamespace, GetNamespace,
//! DeleteNamespace, ListRepository, ListRepoTag.

use crate::ack::{check_acs3, header, query_pairs};
use crate::server::{Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve_sync};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kubepkg_util::secret::Secret;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The name of this simulator.
pub const NAME: &str = "acr";

#[derive(Debug, Clone)]
struct Ns {
    id: String,
    repo_type: String,
}

#[derive(Default)]
struct State {
    namespaces: BTreeMap<String, Ns>,
    nonces: BTreeSet<String>,
}

struct Sim {
    key_id: String,
    secret: Secret<String>,
    instance: String,
    faults: Arc<Mutex<Faults>>,
    state: Mutex<State>,
}

/// Starts an ACR simulator for region `cn-hangzhou` with fresh
/// credentials and one instance (`cri-…`, which the adapter finds through
/// `ListInstance`).
pub async fn start(_options: SimOptions) -> SimHandle {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let sim = Arc::new(Sim {
        key_id: format!("LTAIsim{}", rand_id(16)),
        secret: Secret::new(rand_id(30)),
        instance: format!("cri-{}", rand_id(16)),
        faults: faults.clone(),
        state: Mutex::new(State::default()),
    });
    let (endpoint, task) = serve_sync(sim.clone(), handle).await;
    SimHandle {
        endpoint,
        key_id: sim.key_id.clone(),
        secret: sim.secret.expose().clone(),
        region: "cn-hangzhou".into(),
        faults,
        task,
        owner: Arc::new(crate::kube::Owner::new(NAME)),
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

fn gateway_error(status: u16, code: &str, message: &str) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"RequestId": request_id(), "HostId": "cr.cn-hangzhou.aliyuncs.com",
                      "Code": code, "Message": message});
    (st, axum::Json(body)).into_response()
}

fn business_error(code: &str, message: &str) -> Response {
    let body =
        json!({"Code": code, "Message": message, "IsSuccess": false, "RequestId": request_id()});
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn success(mut body: Value) -> Response {
    if let Some(o) = body.as_object_mut() {
        o.insert("Code".into(), json!("success"));
        o.insert("IsSuccess".into(), json!(true));
        o.insert("RequestId".into(), json!(request_id()));
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// One page of `all` as ACR pages lists (`PageNo` from 1, `TotalCount`
/// as a string).
fn page(q: &BTreeMap<String, String>, field: &str, all: Vec<Value>) -> Response {
    let no: usize = q
        .get("PageNo")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size: usize = q
        .get("PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip((no - 1) * size).take(size).collect();
    success(json!({field: items, "TotalCount": total.to_string(),
                   "PageNo": no, "PageSize": size}))
}

fn repo_id(repository: &str) -> String {
    let h = kubepkg_platform::provider::sign::sha256_hex(repository.as_bytes());
    format!("crr-{}", &h[..16])
}

fn handle(sim: &Sim, m: &Method, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Response {
    lock(&sim.faults).requests += 1;
    {
        let mut st = lock(&sim.state);
        if let Err((status, code, message)) =
            check_acs3(&sim.key_id, &sim.secret, &mut st.nonces, m, uri, h, body)
        {
            return gateway_error(status, code, message);
        }
    }
    if header(h, "x-acs-version") != "2018-12-01" {
        return gateway_error(
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        );
    }
    if m != Method::POST || uri.path() != "/" {
        return gateway_error(404, "InvalidAction.NotFound", "Specified api is not found.");
    }
    match lock(&sim.faults).take() {
        Injected::Throttle => {
            return gateway_error(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            );
        }
        Injected::Canned(c) => return c.into_response(),
        Injected::None => {}
    }
    let q: BTreeMap<String, String> = query_pairs(uri).into_iter().collect();
    let action = header(h, "x-acs-action").to_string();
    if action != "ListInstance" && q.get("InstanceId") != Some(&sim.instance) {
        return business_error("INSTANCE_NOT_EXIST", "The instance does not exist.");
    }
    let images = lock(&sim.faults).images.clone();
    let mut st = lock(&sim.state);
    let ns_name = q.get("NamespaceName").cloned().unwrap_or_default();
    match action.as_str() {
        "ListInstance" => page(
            &q,
            "Instances",
            vec![
                json!({"InstanceId": sim.instance, "InstanceName": "kubepkg-sim",
                        "InstanceStatus": "RUNNING", "InstanceSpecification": "Enterprise_Basic",
                        "RegionId": "cn-hangzhou"}),
            ],
        ),
        "CreateNamespace" => {
            if ns_name.is_empty() {
                return gateway_error(
                    400,
                    "MissingNamespaceName",
                    "NamespaceName is mandatory for this action.",
                );
            }
            if st.namespaces.contains_key(&ns_name) {
                return business_error("NAMESPACE_ALREADY_EXIST", "The namespace already exists.");
            }
            let repo_type = q
                .get("DefaultRepoType")
                .cloned()
                .unwrap_or_else(|| "PRIVATE".into());
            st.namespaces.insert(
                ns_name,
                Ns {
                    id: format!("crn-{}", rand_id(16)),
                    repo_type,
                },
            );
            success(json!({}))
        }
        "ListNamespace" | "GetNamespace" => {
            let all: Vec<Value> = st
                .namespaces
                .iter()
                .filter(|(n, _)| ns_name.is_empty() || **n == ns_name)
                .map(|(n, ns)| {
                    json!({"NamespaceName": n, "NamespaceId": ns.id, "NamespaceStatus": "NORMAL",
                           "DefaultRepoType": ns.repo_type, "AutoCreateRepo": true,
                           "InstanceId": sim.instance})
                })
                .collect();
            if action == "GetNamespace" {
                return match all.into_iter().next() {
                    Some(mut n) => {
                        n["Code"] = json!("success");
                        success(n)
                    }
                    None => business_error("NAMESPACE_NOT_EXIST", "The namespace does not exist."),
                };
            }
            page(&q, "Namespaces", all)
        }
        "DeleteNamespace" => match st.namespaces.remove(&ns_name) {
            Some(_) => success(json!({})),
            None => business_error("NAMESPACE_NOT_EXIST", "The namespace does not exist."),
        },
        "ListRepository" => {
            let want_ns = q.get("RepoNamespaceName");
            let want_name = q.get("RepoName");
            let all: Vec<Value> = images
                .keys()
                .filter_map(|r| r.split_once('/').map(|(n, name)| (r, n, name)))
                .filter(|(_, n, _)| st.namespaces.contains_key(*n))
                .filter(|(_, n, _)| want_ns.is_none_or(|w| w == n))
                .filter(|(_, _, name)| want_name.is_none_or(|w| w == name))
                .map(|(r, n, name)| {
                    let ty = st.namespaces.get(n).map(|ns| ns.repo_type.clone());
                    json!({"RepoId": repo_id(r), "RepoName": name, "RepoNamespaceName": n,
                           "RepoType": ty, "RepoStatus": "NORMAL", "InstanceId": sim.instance,
                           "CreateTime": 1_764_633_600_000_i64, "ModifiedTime": 1_764_633_600_000_i64})
                })
                .collect();
            page(&q, "Repositories", all)
        }
        "ListRepoTag" => {
            let id = q.get("RepoId").cloned().unwrap_or_default();
            let Some((_, tags)) = images.iter().find(|(r, _)| repo_id(r) == id) else {
                return business_error("REPO_NOT_EXIST", "The repository does not exist.");
            };
            let all: Vec<Value> = tags
                .iter()
                .map(|(tag, digest)| {
                    json!({"Tag": tag, "Digest": digest.trim_start_matches("sha256:"),
                           "ImageId": digest.get(7..19).unwrap_or_default(), "ImageSize": 1024,
                           "Status": "NORMAL", "ImageCreate": "1764633600000",
                           "ImageUpdate": "1764633600000"})
                })
                .collect();
            page(&q, "Images", all)
        }
        _ => gateway_error(404, "InvalidAction.NotFound", "Specified api is not found."),
    }
}
