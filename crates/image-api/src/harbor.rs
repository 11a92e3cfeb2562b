//! The Harbor backend of [`ImageRegistry`]: Harbor's REST API v2.0
//! (`/api/v2.0`, HTTP basic auth with a user or robot account), falling back
//! to the [`distribution`](crate::distribution) backend for what Harbor
//! serves at `/v2/` (manifests, digests).
//!
//! Namespaces are Harbor *projects* (public flag, storage quota). Beyond the
//! trait, [`HarborRegistry`] offers robot accounts for CI pushes, project
//! members, project quotas, a garbage-collection trigger and system info.
//!
//! Calls follow Harbor's published swagger (`api/v2.0/swagger.yaml`); each
//! method names the `operationId` it uses. Errors come back as
//! `{"errors":[{"code","message"}]}`; lists are paginated with `page` /
//! `page_size` and the `Link` / `X-Total-Count` headers, all of which are
//! followed here (a `Link` to another origin is refused, as in
//! [`distribution`](crate::distribution), whose timeouts, retries and body
//! limits apply here too; POST and PUT calls are retried only when the
//! connection could not be made).
//!
//! Project and robot names are checked against Harbor's own rule
//! ([`validate_project_name`]) before any request, and every URL is built
//! by pushing escaped path segments — never by joining caller text — so a
//! name such as `..`, `a/b` or `?x` is an [`Error::Invalid`] that sends
//! nothing, not a request to some other endpoint.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;
use url::Url;

use crate::config::{RegistryConfig, RegistryKind};
use crate::distribution::DistributionRegistry;
use crate::http::{self, Budget, HttpClient, error_from_response, next_page, transport};
use crate::registry::{
    Artifact, ArtifactRef, ImageRegistry, Manifest, Namespace, NamespaceSpec, Platform,
    RegistryInfo, Repository, Visibility, validate_digest, validate_repository, validate_tag,
};
use crate::{Error, Result};
use kubepkg_util::secret::Secret;

const BACKEND: &str = "harbor";
/// Harbor's maximum `page_size`.
const PAGE_SIZE: usize = 100;

/// A Harbor instance. Cheap to clone.
#[derive(Clone)]
pub struct HarborRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    api: Url,
    host: String,
    http: HttpClient,
    username: Option<String>,
    password: Option<Secret<String>>,
    v2: DistributionRegistry,
}

impl std::fmt::Debug for HarborRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarborRegistry")
            .field("api", &self.inner.api.as_str())
            .field("username", &self.inner.username)
            .field("password", &self.inner.password)
            .finish()
    }
}

/// Harbor's `GeneralInfo` (getSystemInfo), the fields this crate reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SystemInfo {
    /// e.g. `v2.11.0-abcdef`.
    #[serde(default)]
    pub harbor_version: Option<String>,
    /// The registry's external URL.
    #[serde(default)]
    pub external_url: Option<String>,
    /// The registry host as used in image names.
    #[serde(default)]
    pub registry_url: Option<String>,
    /// `db_auth`, `ldap_auth`, `oidc_auth`…
    #[serde(default)]
    pub auth_mode: Option<String>,
    /// Who may create projects: `everyone` or `adminonly`.
    #[serde(default)]
    pub project_creation_restriction: Option<String>,
    /// Whether Harbor is in read-only mode.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Storage driver name.
    #[serde(default)]
    pub registry_storage_provider_name: Option<String>,
}

/// One permission of a robot account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotAccess {
    /// e.g. `repository`, `artifact`, `tag`.
    pub resource: String,
    /// e.g. `pull`, `push`, `delete`, `list`.
    pub action: String,
}

impl RobotAccess {
    /// `resource` / `action`.
    pub fn new(resource: impl Into<String>, action: impl Into<String>) -> Self {
        RobotAccess {
            resource: resource.into(),
            action: action.into(),
        }
    }

    /// Pull and push on the project's repositories: what a CI job needs.
    pub fn pull_push() -> Vec<RobotAccess> {
        vec![
            RobotAccess::new("repository", "pull"),
            RobotAccess::new("repository", "push"),
        ]
    }
}

/// A project-level robot account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotSpec {
    /// Short name; Harbor prefixes it (e.g. `robot$project+name`).
    pub name: String,
    /// The project it may act on.
    pub project: String,
    /// Description.
    pub description: Option<String>,
    /// Lifetime in days; `-1` never expires.
    pub duration_days: i64,
    /// What it may do in the project.
    pub access: Vec<RobotAccess>,
}

impl RobotSpec {
    /// A CI robot (pull + push) for `project`, valid `duration_days` days.
    pub fn ci(name: impl Into<String>, project: impl Into<String>, duration_days: i64) -> Self {
        RobotSpec {
            name: name.into(),
            project: project.into(),
            description: None,
            duration_days,
            access: RobotAccess::pull_push(),
        }
    }
}

/// A created robot account: its secret is shown only now.
#[derive(Debug, Clone)]
pub struct RobotCredentials {
    /// Robot id.
    pub id: i64,
    /// Full user name to log in with.
    pub name: String,
    /// The password.
    pub secret: Secret<String>,
    /// Expiry, Unix seconds (`-1`: never).
    pub expires_at: Option<i64>,
}

/// A robot account as listed (ListRobot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Robot {
    /// Robot id.
    pub id: i64,
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `project` or `system`.
    #[serde(default)]
    pub level: Option<String>,
    /// Disabled?
    #[serde(default)]
    pub disable: bool,
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A member's role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectRole {
    /// Full control (role id 1).
    ProjectAdmin,
    /// Push and pull (role id 2).
    Developer,
    /// Pull (role id 3).
    Guest,
    /// Push, pull, delete, manage tags (role id 4).
    Maintainer,
    /// Pull, without seeing members / logs (role id 5).
    LimitedGuest,
}

impl ProjectRole {
    /// Harbor's numeric role id.
    pub fn id(self) -> i64 {
        match self {
            ProjectRole::ProjectAdmin => 1,
            ProjectRole::Developer => 2,
            ProjectRole::Guest => 3,
            ProjectRole::Maintainer => 4,
            ProjectRole::LimitedGuest => 5,
        }
    }

    /// The role of a numeric id.
    pub fn from_id(id: i64) -> Option<Self> {
        Some(match id {
            1 => ProjectRole::ProjectAdmin,
            2 => ProjectRole::Developer,
            3 => ProjectRole::Guest,
            4 => ProjectRole::Maintainer,
            5 => ProjectRole::LimitedGuest,
            _ => return None,
        })
    }
}

/// A project member (ProjectMemberEntity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Membership id (for removal).
    pub id: i64,
    /// User or group name.
    pub entity_name: String,
    /// `u` (user) or `g` (group).
    pub entity_type: String,
    /// The role.
    pub role: Option<ProjectRole>,
}

// ---- wire types (swagger definitions) ----

#[derive(Deserialize)]
struct ProjectWire {
    project_id: i64,
    name: String,
    #[serde(default)]
    creation_time: Option<String>,
    #[serde(default)]
    repo_count: Option<u64>,
    #[serde(default)]
    metadata: Option<ProjectMetadataWire>,
}

#[derive(Deserialize, Default)]
struct ProjectMetadataWire {
    #[serde(default)]
    public: Option<String>,
}

#[derive(Deserialize)]
struct QuotaWire {
    id: i64,
    #[serde(default, rename = "ref")]
    reference: Option<HashMap<String, serde_json::Value>>,
    #[serde(default)]
    hard: HashMap<String, i64>,
    #[serde(default)]
    used: HashMap<String, i64>,
}

#[derive(Deserialize)]
struct RepositoryWire {
    name: String,
    #[serde(default)]
    artifact_count: Option<u64>,
    #[serde(default)]
    pull_count: Option<u64>,
    #[serde(default)]
    update_time: Option<String>,
}

#[derive(Deserialize)]
struct ArtifactWire {
    digest: String,
    #[serde(default)]
    manifest_media_type: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    push_time: Option<String>,
    #[serde(default)]
    tags: Option<Vec<TagWire>>,
    #[serde(default)]
    references: Option<Vec<ReferenceWire>>,
}

#[derive(Deserialize)]
struct TagWire {
    name: String,
}

#[derive(Deserialize)]
struct ReferenceWire {
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct MemberWire {
    id: i64,
    #[serde(default)]
    entity_name: String,
    #[serde(default)]
    entity_type: String,
    #[serde(default)]
    role_id: Option<i64>,
}

#[derive(Deserialize)]
struct RobotCreatedWire {
    id: i64,
    name: String,
    secret: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// Checks a Harbor project name as Harbor does (`src/pkg/project/manager.go`):
/// 1 to 255 characters, runs of lowercase letters and digits joined by
/// single `.`, `_` or `-`. Every project name this crate puts in a URL
/// passes this first, so it is always exactly one path segment (no `/`,
/// `..`, `%`, `?` or `#`).
pub fn validate_project_name(name: &str) -> Result<()> {
    validate_harbor_name("project", name)
}

/// Checks a robot account's short name (Harbor's rule for robot names is the
/// project-name rule; `+` and `$` are Harbor's own prefix characters).
pub fn validate_robot_name(name: &str) -> Result<()> {
    validate_harbor_name("robot", name)
}

fn validate_harbor_name(what: &str, name: &str) -> Result<()> {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    let runs_ok = name
        .split(['.', '_', '-'])
        .all(|run| !run.is_empty() && run.bytes().all(alnum));
    if bytes.is_empty() || bytes.len() > 255 || !runs_ok {
        return Err(Error::Invalid(format!(
            "{what} name {name:?}: Harbor wants 1-255 lowercase letters and digits, \
             joined by single '.', '_' or '-'"
        )));
    }
    Ok(())
}

/// `project/rest/of/name` → (`project`, `rest/of/name`), both checked.
fn split_repository(repository: &str) -> Result<(&str, &str)> {
    validate_repository(repository)?;
    let (project, rest) = repository.split_once('/').ok_or_else(|| {
        Error::Invalid(format!(
            "Harbor repository {repository:?} must be <project>/<name>"
        ))
    })?;
    validate_project_name(project)?;
    Ok((project, rest))
}

/// The path segment of a repository name inside a project: Harbor wants a
/// `/` in it URL-encoded twice (`a/b` → `a%2Fb` → `a%252Fb`); this encodes
/// it once, and pushing it as a path segment encodes the `%` again.
/// (`rest` passed [`validate_repository`], so `/` is its only special byte.)
fn repository_segment(rest: &str) -> String {
    rest.replace('/', "%2F")
}

fn artifact_from(repository: &str, a: ArtifactWire) -> Artifact {
    let mut tags: Vec<String> = a
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .collect();
    tags.sort();
    Artifact {
        repository: repository.to_string(),
        digest: a.digest,
        media_type: a.manifest_media_type.or(a.media_type).unwrap_or_default(),
        tags,
        size: a.size.unwrap_or(0),
        pushed: a.push_time,
        platforms: a
            .references
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.platform)
            .collect(),
    }
}

fn namespace_from(p: ProjectWire, quota: Option<&QuotaWire>) -> Namespace {
    let public = p
        .metadata
        .and_then(|m| m.public)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Namespace {
        name: p.name,
        visibility: if public {
            Visibility::Public
        } else {
            Visibility::Private
        },
        repository_count: p.repo_count,
        quota_bytes: quota.and_then(|q| q.hard.get("storage").copied()),
        used_bytes: quota
            .and_then(|q| q.used.get("storage").copied())
            .and_then(|u| u64::try_from(u).ok()),
        created: p.creation_time,
    }
}

impl HarborRegistry {
    /// Builds a client (no I/O yet).
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        let mut base = config.base_url()?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let api = base
            .join("api/v2.0/")
            .map_err(|e| Error::Config(format!("harbor url: {e}")))?;
        let http = HttpClient::new(config, BACKEND)?;
        let v2 = DistributionRegistry::with_client(config, base, http.clone(), BACKEND)?;
        Ok(HarborRegistry {
            inner: Arc::new(Inner {
                api,
                host: config.host()?,
                http,
                username: config.username.clone(),
                password: config.password.clone(),
                v2,
            }),
        })
    }

    /// The `/v2/` client Harbor's manifests are read through.
    pub fn distribution(&self) -> &DistributionRegistry {
        &self.inner.v2
    }

    fn span(&self, operation: &'static str, target: &str) -> tracing::Span {
        tracing::info_span!("image.registry", backend = BACKEND, operation, target = %target)
    }

    /// `api/v2.0/` plus `segments`, each pushed as one escaped path segment
    /// (never joined as text, so no caller string can change the path's
    /// shape), plus the query.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url> {
        let mut url = self.inner.api.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::Config("harbor url cannot hold a path".into()))?;
            path.pop_if_empty();
            for seg in segments {
                // `extend` silently drops "." and ".."; refuse them instead.
                if seg.is_empty() || *seg == "." || *seg == ".." {
                    return Err(Error::Invalid(format!("bad path segment {seg:?}")));
                }
                path.push(seg);
            }
        }
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends one API call; GET and DELETE are retried on 429 / 502 / 503 /
    /// 504 and transport failures, POST and PUT only when the connection
    /// could not be made (see [`HttpClient::retrying`]). Non-success
    /// statuses are errors.
    async fn send(
        &self,
        operation: &'static str,
        target: &str,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response> {
        let body = body.map(|b| b.to_string());
        let http = &self.inner.http;
        http.retrying(&method, || async {
            let mut req = http
                .budget(
                    http.client.request(method.clone(), url.clone()),
                    Budget::Api,
                )
                .header(reqwest::header::ACCEPT, "application/json")
                // name-or-id path parameters are names here
                .header("X-Is-Resource-Name", "true");
            if let Some(user) = &self.inner.username {
                req = req.basic_auth(user, self.inner.password.as_ref().map(|p| p.expose()));
            }
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| transport(BACKEND, operation, target, e))?;
            if resp.status().is_success() {
                Ok(resp)
            } else {
                Err(error_from_response(BACKEND, operation, target, resp).await)
            }
        })
        .await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        target: &str,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<T> {
        let url = self.url(path, query)?;
        let resp = self.send(operation, target, Method::GET, url, None).await?;
        http::json(resp, BACKEND, operation, target).await
    }

    /// GETs every page of a list: `page` / `page_size`, following `Link:
    /// rel="next"` (only within the same origin: a link to another scheme,
    /// host or port is [`Error::Refused`]), bounded by `X-Total-Count`.
    async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        target: &str,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<Vec<T>> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("page", "1".into()));
        q.push(("page_size", PAGE_SIZE.to_string()));
        let mut next = Some(self.url(path, &q)?);
        let mut out: Vec<T> = Vec::new();
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100_000 {
                return Err(Error::Protocol {
                    backend: BACKEND,
                    operation,
                    target: target.to_string(),
                    message: "pagination does not end".into(),
                });
            }
            let resp = self
                .send(operation, target, Method::GET, url.clone(), None)
                .await?;
            let total: Option<usize> = resp
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let following = next_page(&url, resp.headers(), BACKEND, operation, target)?;
            let page: Vec<T> = http::json(resp, BACKEND, operation, target).await?;
            let got = page.len();
            out.extend(page);
            if got == 0 || total.is_some_and(|t| out.len() >= t) {
                break;
            }
            next = following.filter(|n| *n != url);
        }
        Ok(out)
    }

    async fn project(&self, name: &str) -> Result<ProjectWire> {
        // operationId: getProject
        validate_project_name(name)?;
        self.get("get_namespace", name, &["projects", name], &[])
            .await
    }

    async fn project_quota(&self, project_id: i64) -> Result<Option<QuotaWire>> {
        // operationId: listQuotas (reference=project, reference_id=<project id>)
        let quotas: Vec<QuotaWire> = self
            .list_all(
                "list_quotas",
                &project_id.to_string(),
                &["quotas"],
                &[
                    ("reference", "project".into()),
                    ("reference_id", project_id.to_string()),
                ],
            )
            .await?;
        Ok(quotas.into_iter().next())
    }

    /// Facts about the Harbor instance (operationId: getSystemInfo).
    pub async fn system_info(&self) -> Result<SystemInfo> {
        self.get("system_info", "systeminfo", &["systeminfo"], &[])
            .instrument(self.span("system_info", "systeminfo"))
            .await
    }

    /// Sets a project's storage quota in bytes, `-1` for unlimited
    /// (operationIds: getProject, listQuotas, updateQuota).
    pub async fn set_project_quota(&self, project: &str, bytes: i64) -> Result<()> {
        let op = "set_project_quota";
        async {
            validate_project_name(project)?;
            if bytes < -1 {
                return Err(Error::Invalid(format!("quota {bytes} is below -1")));
            }
            let p = self.project(project).await?;
            let q = self
                .project_quota(p.project_id)
                .await?
                .ok_or_else(|| Error::Registry {
                    backend: BACKEND,
                    operation: op,
                    target: project.to_string(),
                    status: 404,
                    code: Some("NOT_FOUND".into()),
                    message: "the project has no quota record".into(),
                    retry_after: None,
                })?;
            let url = self.url(&["quotas", &q.id.to_string()], &[])?;
            self.send(
                op,
                project,
                Method::PUT,
                url,
                Some(json!({"hard": {"storage": bytes}})),
            )
            .await?;
            Ok(())
        }
        .instrument(self.span(op, project))
        .await
    }

    /// Creates a project-level robot account (operationId: CreateRobot).
    /// The secret is returned only here.
    pub async fn create_robot(&self, spec: &RobotSpec) -> Result<RobotCredentials> {
        let op = "create_robot";
        async {
            if spec.access.is_empty() {
                return Err(Error::Invalid(
                    "a robot needs at least one permission".into(),
                ));
            }
            validate_robot_name(&spec.name)?;
            validate_project_name(&spec.project)?;
            let body = json!({
                "name": spec.name,
                "description": spec.description.clone().unwrap_or_default(),
                "level": "project",
                "duration": spec.duration_days,
                "disable": false,
                "permissions": [{
                    "kind": "project",
                    "namespace": spec.project,
                    "access": spec.access.iter()
                        .map(|a| json!({"resource": a.resource, "action": a.action}))
                        .collect::<Vec<_>>(),
                }],
            });
            let url = self.url(&["robots"], &[])?;
            let resp = self
                .send(op, &spec.name, Method::POST, url, Some(body))
                .await?;
            let w: RobotCreatedWire = http::json(resp, BACKEND, op, &spec.name).await?;
            Ok(RobotCredentials {
                id: w.id,
                name: w.name,
                secret: Secret::new(w.secret),
                expires_at: w.expires_at,
            })
        }
        .instrument(self.span(op, &spec.name))
        .await
    }

    /// Lists the robot accounts of a project (operationIds: getProject, ListRobot
    /// with `q=Level=project,ProjectID=<id>`).
    pub async fn list_robots(&self, project: &str) -> Result<Vec<Robot>> {
        let op = "list_robots";
        async {
            let p = self.project(project).await?;
            self.list_all(
                op,
                project,
                &["robots"],
                &[("q", format!("Level=project,ProjectID={}", p.project_id))],
            )
            .await
        }
        .instrument(self.span(op, project))
        .await
    }

    /// Deletes a robot account (operationId: DeleteRobot).
    pub async fn delete_robot(&self, id: i64) -> Result<()> {
        let op = "delete_robot";
        let target = id.to_string();
        async {
            let url = self.url(&["robots", &id.to_string()], &[])?;
            self.send(op, &target, Method::DELETE, url, None).await?;
            Ok(())
        }
        .instrument(self.span(op, &target))
        .await
    }

    /// Lists a project's members (operationId: listProjectMembers).
    pub async fn list_members(&self, project: &str) -> Result<Vec<Member>> {
        let op = "list_members";
        async {
            validate_project_name(project)?;
            let wires: Vec<MemberWire> = self
                .list_all(op, project, &["projects", project, "members"], &[])
                .await?;
            Ok(wires
                .into_iter()
                .map(|m| Member {
                    id: m.id,
                    entity_name: m.entity_name,
                    entity_type: m.entity_type,
                    role: m.role_id.and_then(ProjectRole::from_id),
                })
                .collect())
        }
        .instrument(self.span(op, project))
        .await
    }

    /// Adds a user to a project; returns the membership id when Harbor's
    /// `Location` header gives it (operationId: createProjectMember).
    pub async fn add_member(
        &self,
        project: &str,
        username: &str,
        role: ProjectRole,
    ) -> Result<Option<i64>> {
        let op = "add_member";
        let target = format!("{project}/{username}");
        async {
            validate_project_name(project)?;
            if username.is_empty() {
                return Err(Error::Invalid("empty user name".into()));
            }
            let url = self.url(&["projects", project, "members"], &[])?;
            let body = json!({"role_id": role.id(), "member_user": {"username": username}});
            let resp = self
                .send(op, &target, Method::POST, url, Some(body))
                .await?;
            Ok(resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .and_then(|id| id.parse().ok()))
        }
        .instrument(self.span(op, &target))
        .await
    }

    /// Removes a membership (operationId: deleteProjectMember).
    pub async fn remove_member(&self, project: &str, member_id: i64) -> Result<()> {
        let op = "remove_member";
        let target = format!("{project}/{member_id}");
        async {
            validate_project_name(project)?;
            let url = self.url(
                &["projects", project, "members", &member_id.to_string()],
                &[],
            )?;
            self.send(op, &target, Method::DELETE, url, None).await?;
            Ok(())
        }
        .instrument(self.span(op, &target))
        .await
    }

    /// Starts a garbage collection now (operationId: createGCSchedule with
    /// schedule type `Manual`).
    pub async fn trigger_gc(&self, delete_untagged: bool) -> Result<()> {
        let op = "trigger_gc";
        async {
            let url = self.url(&["system", "gc", "schedule"], &[])?;
            let body = json!({
                "schedule": {"type": "Manual"},
                "parameters": {"delete_untagged": delete_untagged, "dry_run": false},
            });
            self.send(op, "gc", Method::POST, url, Some(body)).await?;
            Ok(())
        }
        .instrument(self.span(op, "gc"))
        .await
    }

    /// `projects/<project>/repositories/<name>/artifacts` plus `more` segments.
    fn artifacts_url(
        &self,
        repository: &str,
        more: &[&str],
        query: &[(&str, String)],
    ) -> Result<Url> {
        let (project, rest) = split_repository(repository)?;
        let name = repository_segment(rest);
        let mut segments = vec!["projects", project, "repositories", &name, "artifacts"];
        segments.extend_from_slice(more);
        self.url(&segments, query)
    }

    fn check_ref(reference: &ArtifactRef) -> Result<()> {
        match reference {
            ArtifactRef::Tag(t) => validate_tag(t),
            ArtifactRef::Digest(d) => validate_digest(d),
        }
    }
}

#[async_trait]
impl ImageRegistry for HarborRegistry {
    fn kind(&self) -> RegistryKind {
        RegistryKind::Harbor
    }

    fn host(&self) -> &str {
        &self.inner.host
    }

    async fn check_credentials(&self) -> Result<()> {
        // operationId: getCurrentUserInfo. Robot accounts get 412 there,
        // which still proves the credentials were accepted.
        let op = "check_credentials";
        async {
            if self.inner.username.is_none() {
                return Err(Error::Registry {
                    backend: BACKEND,
                    operation: op,
                    target: "users/current".into(),
                    status: 401,
                    code: Some("UNAUTHORIZED".into()),
                    message: "no credentials are configured".into(),
                    retry_after: None,
                });
            }
            let url = self.url(&["users", "current"], &[])?;
            match self.send(op, "users/current", Method::GET, url, None).await {
                Ok(_) => Ok(()),
                Err(Error::Registry { status: 412, .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        .instrument(self.span(op, self.inner.api.as_str()))
        .await
    }

    async fn info(&self) -> Result<RegistryInfo> {
        let s = self.system_info().await?;
        let mut extra = BTreeMap::new();
        for (k, v) in [
            ("external_url", s.external_url),
            ("registry_url", s.registry_url),
            ("auth_mode", s.auth_mode),
            (
                "project_creation_restriction",
                s.project_creation_restriction,
            ),
            ("storage_provider", s.registry_storage_provider_name),
            ("read_only", s.read_only.map(|b| b.to_string())),
        ] {
            if let Some(v) = v {
                extra.insert(k.to_string(), v);
            }
        }
        Ok(RegistryInfo {
            backend: BACKEND.into(),
            version: s.harbor_version,
            extra,
        })
    }

    async fn create_namespace(&self, spec: &NamespaceSpec) -> Result<Namespace> {
        // operationId: createProject, then getProject + listQuotas
        let op = "create_namespace";
        async {
            validate_project_name(&spec.name)?;
            let public = spec.visibility == Visibility::Public;
            let mut body = json!({
                "project_name": spec.name,
                "public": public,
                "metadata": {"public": public.to_string()},
            });
            if let Some(q) = spec.quota_bytes {
                body["storage_limit"] = json!(q);
            }
            let url = self.url(&["projects"], &[])?;
            self.send(op, &spec.name, Method::POST, url, Some(body))
                .await?;
            let p = self.project(&spec.name).await?;
            let quota = self.project_quota(p.project_id).await?;
            Ok(namespace_from(p, quota.as_ref()))
        }
        .instrument(self.span(op, &spec.name))
        .await
    }

    async fn get_namespace(&self, name: &str) -> Result<Namespace> {
        let op = "get_namespace";
        async {
            let p = self.project(name).await?;
            let quota = self.project_quota(p.project_id).await?;
            Ok(namespace_from(p, quota.as_ref()))
        }
        .instrument(self.span(op, name))
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        // operationIds: listProjects, listQuotas (reference=project), joined
        // on the project id: two paginated lists, not one call per project.
        let op = "list_namespaces";
        async {
            let projects: Vec<ProjectWire> = self
                .list_all(
                    op,
                    "projects",
                    &["projects"],
                    &[("with_detail", "true".into())],
                )
                .await?;
            let quotas: Vec<QuotaWire> = self
                .list_all(
                    op,
                    "quotas",
                    &["quotas"],
                    &[("reference", "project".into())],
                )
                .await?;
            let by_project: HashMap<i64, &QuotaWire> = quotas
                .iter()
                .filter_map(|q| {
                    let id = q.reference.as_ref()?.get("id")?.as_i64()?;
                    Some((id, q))
                })
                .collect();
            Ok(projects
                .into_iter()
                .map(|p| {
                    let q = by_project.get(&p.project_id).copied();
                    namespace_from(p, q)
                })
                .collect())
        }
        .instrument(self.span(op, "projects"))
        .await
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        // operationId: deleteProject (412 while it still holds repositories)
        let op = "delete_namespace";
        async {
            validate_project_name(name)?;
            let url = self.url(&["projects", name], &[])?;
            self.send(op, name, Method::DELETE, url, None).await?;
            Ok(())
        }
        .instrument(self.span(op, name))
        .await
    }

    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>> {
        // operationIds: listRepositories (one project) / listAllRepositories
        let op = "list_repositories";
        let target = namespace.unwrap_or("*").to_string();
        async {
            let path: Vec<&str> = match namespace {
                Some(ns) => {
                    validate_project_name(ns)?;
                    vec!["projects", ns, "repositories"]
                }
                None => vec!["repositories"],
            };
            let wires: Vec<RepositoryWire> = self.list_all(op, &target, &path, &[]).await?;
            Ok(wires
                .into_iter()
                .map(|r| Repository {
                    name: r.name,
                    artifact_count: r.artifact_count,
                    pull_count: r.pull_count,
                    updated: r.update_time,
                })
                .collect())
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        // operationId: deleteRepository
        let op = "delete_repository";
        async {
            let (project, rest) = split_repository(repository)?;
            let name = repository_segment(rest);
            let url = self.url(&["projects", project, "repositories", &name], &[])?;
            self.send(op, repository, Method::DELETE, url, None).await?;
            Ok(())
        }
        .instrument(self.span(op, repository))
        .await
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let mut tags: Vec<String> = self
            .list_artifacts(repository)
            .await?
            .into_iter()
            .flat_map(|a| a.tags)
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    async fn list_artifacts(&self, repository: &str) -> Result<Vec<Artifact>> {
        // operationId: listArtifacts (with_tag=true)
        let op = "list_artifacts";
        async {
            let (project, rest) = split_repository(repository)?;
            let name = repository_segment(rest);
            let path = ["projects", project, "repositories", &name, "artifacts"];
            let wires: Vec<ArtifactWire> = self
                .list_all(op, repository, &path, &[("with_tag", "true".into())])
                .await?;
            Ok(wires
                .into_iter()
                .map(|a| artifact_from(repository, a))
                .collect())
        }
        .instrument(self.span(op, repository))
        .await
    }

    async fn get_artifact(&self, repository: &str, reference: &ArtifactRef) -> Result<Artifact> {
        // operationId: getArtifact
        let op = "get_artifact";
        let target = format!("{repository}:{reference}");
        async {
            Self::check_ref(reference)?;
            let url = self.artifacts_url(
                repository,
                &[reference.as_str()],
                &[("with_tag", "true".into())],
            )?;
            let resp = self.send(op, &target, Method::GET, url, None).await?;
            let w: ArtifactWire = http::json(resp, BACKEND, op, &target).await?;
            Ok(artifact_from(repository, w))
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn delete_artifact(&self, repository: &str, reference: &ArtifactRef) -> Result<()> {
        // operationId: deleteArtifact
        let op = "delete_artifact";
        let target = format!("{repository}:{reference}");
        async {
            Self::check_ref(reference)?;
            let url = self.artifacts_url(repository, &[reference.as_str()], &[])?;
            self.send(op, &target, Method::DELETE, url, None).await?;
            Ok(())
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        // operationId: deleteTag (the artifact reference may be the tag itself)
        let op = "delete_tag";
        let target = format!("{repository}:{tag}");
        async {
            validate_tag(tag)?;
            let url = self.artifacts_url(repository, &[tag, "tags", tag], &[])?;
            self.send(op, &target, Method::DELETE, url, None).await?;
            Ok(())
        }
        .instrument(self.span(op, &target))
        .await
    }

    async fn get_manifest(&self, repository: &str, reference: &ArtifactRef) -> Result<Manifest> {
        self.inner.v2.get_manifest(repository, reference).await
    }

    async fn resolve(&self, repository: &str, reference: &ArtifactRef) -> Result<String> {
        self.inner.v2.resolve(repository, reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> HarborRegistry {
        HarborRegistry::new(
            &RegistryConfig::new("https://harbor.example.com/base").kind(RegistryKind::Harbor),
        )
        .unwrap()
    }

    #[test]
    fn repository_names_are_encoded_twice() {
        let h = client();
        let url = h
            .artifacts_url("lib/a/b", &["v1"], &[("with_tag", "true".into())])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://harbor.example.com/base/api/v2.0/projects/lib/repositories/a%252Fb/artifacts/v1?with_tag=true"
        );
        assert_eq!(split_repository("lib/a/b").unwrap(), ("lib", "a/b"));
        assert!(split_repository("noproject").is_err());
        // Docker's `__` separator is not a Harbor project name
        assert!(split_repository("a__b/c").is_err());
    }

    #[test]
    fn project_names_follow_harbors_rule() {
        for ok in ["library", "a", "team-a", "v1.2_x", &"a".repeat(255)] {
            assert!(validate_project_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            "%2e%2e",
            "a/b",
            "?x",
            "a?x",
            "a#b",
            "A",
            "a--b",
            "-a",
            "a-",
            "a b",
            "a%2Fb",
            "robot$x",
            &"a".repeat(256),
        ] {
            let e = validate_project_name(bad).unwrap_err();
            assert_eq!(e.kind(), kubepkg_util::ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn path_segments_are_escaped_not_joined() {
        let h = client();
        // a segment carrying URL syntax stays one segment
        let url = h.url(&["projects", "a/b?x#y", "members"], &[]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://harbor.example.com/base/api/v2.0/projects/a%2Fb%3Fx%23y/members"
        );
        assert!(h.url(&["projects", ".."], &[]).is_err());
        assert!(h.url(&["projects", ""], &[]).is_err());
    }

    #[test]
    fn roles_round_trip() {
        for r in [
            ProjectRole::ProjectAdmin,
            ProjectRole::Developer,
            ProjectRole::Guest,
            ProjectRole::Maintainer,
            ProjectRole::LimitedGuest,
        ] {
            assert_eq!(ProjectRole::from_id(r.id()), Some(r));
        }
        assert_eq!(ProjectRole::from_id(9), None);
    }
}
