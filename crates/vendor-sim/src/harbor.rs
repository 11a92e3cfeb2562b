//! A simulated Harbor REST API v2.0 (`/api/v2.0/`, as Harbor's published
//! `swagger.yaml` describes it): every request's HTTP basic auth checked
//! (the admin account, or a robot account this simulator created);
//! projects (public flag, quota record), repositories and artifacts (from
//! the images recorded with [`SimHandle::push_image`]), and project robot
//! accounts whose secret is shown once. Errors are
//! `{"errors": [{"code", "message"}]}` with Harbor's status codes (409 for
//! a name in use, 412 for deleting a project that still holds
//! repositories), throttling a 429 with `Retry-After`, and every answer
//! carries `X-Request-Id`. Lists page with `page` / `page_size` and
//! `X-Total-Count`.

use crate::ack::{decode, query_pairs};
use crate::server::{Faults, Injected, SimHandle, SimOptions, lock, rand_id, serve_sync};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The name of this simulator.
pub const NAME: &str = "harbor";
/// The admin account it accepts.
pub const ADMIN: &str = "admin";

#[derive(Debug, Clone)]
struct Project {
    id: i64,
    public: bool,
    created: String,
}

#[derive(Debug, Clone)]
struct Robot {
    id: i64,
    name: String,
    project_id: i64,
    secret: String,
    access: Vec<Value>,
}

#[derive(Default)]
struct State {
    next_id: i64,
    projects: BTreeMap<String, Project>,
    robots: Vec<Robot>,
}

struct Sim {
    password: String,
    faults: Arc<Mutex<Faults>>,
    state: Mutex<State>,
}

/// Starts a Harbor simulator with a fresh admin password (the handle's
/// `key_id` is the user name, `secret` the password).
pub async fn start(_options: SimOptions) -> SimHandle {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let sim = Arc::new(Sim {
        password: format!("Harbor{}", rand_id(24)),
        faults: faults.clone(),
        state: Mutex::new(State::default()),
    });
    let (endpoint, task) = serve_sync(sim.clone(), handle).await;
    SimHandle {
        endpoint,
        key_id: ADMIN.into(),
        secret: sim.password.clone(),
        region: String::new(),
        faults,
        task,
        owner: Arc::new(crate::kube::Owner::new(NAME)),
    }
}

fn reply(status: u16, body: Value, total: Option<usize>) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut r = (st, axum::Json(body)).into_response();
    let h = r.headers_mut();
    if let Ok(v) = uuid::Uuid::new_v4().to_string().parse() {
        h.insert("x-request-id", v);
    }
    if let Some(t) = total.and_then(|t| HeaderValue::from_str(&t.to_string()).ok()) {
        h.insert("x-total-count", t);
    }
    r
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let mut r = reply(
        status,
        json!({"errors": [{"code": code, "message": message}]}),
        None,
    );
    if status == 429 {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("0"));
    }
    r
}

/// One page of `all` (`page` from 1, `page_size` up to 100).
fn page(q: &BTreeMap<String, String>, all: Vec<Value>) -> Response {
    let no: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size: usize = q
        .get("page_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip((no - 1) * size).take(size).collect();
    reply(200, Value::Array(items), Some(total))
}

fn authorized(sim: &Sim, h: &HeaderMap) -> bool {
    let Some(b64) = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Some(pair) = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let Some((user, pass)) = pair.split_once(':') else {
        return false;
    };
    if user == ADMIN {
        return pass == sim.password;
    }
    lock(&sim.state)
        .robots
        .iter()
        .any(|r| r.name == user && r.secret == pass)
}

fn project_json(name: &str, p: &Project, repos: usize) -> Value {
    json!({"project_id": p.id, "name": name, "owner_name": ADMIN, "creation_time": p.created,
           "update_time": p.created, "repo_count": repos,
           "metadata": {"public": p.public.to_string()}})
}

fn handle(sim: &Sim, m: &Method, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Response {
    lock(&sim.faults).requests += 1;
    if !authorized(sim, h) {
        return error(401, "UNAUTHORIZED", "unauthorized");
    }
    match lock(&sim.faults).take() {
        Injected::Throttle => return error(429, "TOO_MANY_REQUESTS", "too many requests"),
        Injected::Canned(c) => return c.into_response(),
        Injected::None => {}
    }
    let Some(rest) = uri.path().strip_prefix("/api/v2.0/") else {
        return error(404, "NOT_FOUND", "no such API");
    };
    let segs: Vec<String> = rest.split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q: BTreeMap<String, String> = query_pairs(uri).into_iter().collect();
    let p: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let images = lock(&sim.faults).images.clone();
    let mut st = lock(&sim.state);
    let repos = |project: &str| -> Vec<(String, BTreeMap<String, String>)> {
        images
            .iter()
            .filter(|(r, _)| r.split_once('/').is_some_and(|(p, _)| p == project))
            .map(|(r, t)| (r.clone(), t.clone()))
            .collect()
    };
    let repo_json = |name: &str, tags: &BTreeMap<String, String>, pid: i64| {
        json!({"id": pid * 1000 + tags.len() as i64, "name": name, "project_id": pid,
               "artifact_count": tags.len(), "pull_count": 0,
               "creation_time": "2026-12-01T00:00:00.000Z", "update_time": "2026-12-01T00:00:00.000Z"})
    };
    let not_found = |what: &str| error(404, "NOT_FOUND", &format!("{what} not found"));
    match (m.as_str(), segs.as_slice()) {
        ("GET", ["users", "current"]) => reply(200, json!({"user_id": 1, "username": ADMIN}), None),
        ("GET", ["systeminfo"]) => reply(
            200,
            json!({"harbor_version": "v2.11.0-sim", "auth_mode": "db_auth",
                   "project_creation_restriction": "everyone", "read_only": false}),
            None,
        ),
        ("POST", ["projects"]) => {
            let Some(name) = p.get("project_name").and_then(Value::as_str) else {
                return error(400, "BAD_REQUEST", "project_name is required");
            };
            if st.projects.contains_key(name) {
                return error(
                    409,
                    "CONFLICT",
                    &format!("The project named {name} already exists"),
                );
            }
            st.next_id += 1;
            let public = p.get("public").and_then(Value::as_bool).unwrap_or(false)
                || p.pointer("/metadata/public").and_then(Value::as_str) == Some("true");
            let id = st.next_id;
            st.projects.insert(
                name.to_string(),
                Project {
                    id,
                    public,
                    created: jiff::Timestamp::now().to_string(),
                },
            );
            let mut r = reply(201, json!(null), None);
            if let Ok(v) = format!("/api/v2.0/projects/{id}").parse() {
                r.headers_mut().insert("location", v);
            }
            r
        }
        ("GET", ["projects"]) => {
            let all = st
                .projects
                .iter()
                .map(|(n, pr)| project_json(n, pr, repos(n).len()))
                .collect();
            page(&q, all)
        }
        ("GET", ["projects", name]) => match st.projects.get(*name) {
            Some(pr) => reply(200, project_json(name, pr, repos(name).len()), None),
            None => not_found(&format!("project {name}")),
        },
        ("DELETE", ["projects", name]) => {
            if !st.projects.contains_key(*name) {
                return not_found(&format!("project {name}"));
            }
            if !repos(name).is_empty() {
                return error(
                    412,
                    "PRECONDITION",
                    "the project contains repositories, can not be deleted",
                );
            }
            st.projects.remove(*name);
            st.robots
                .retain(|r| !r.name.starts_with(&format!("robot${name}+")));
            reply(200, json!(null), None)
        }
        ("GET", ["quotas"]) => {
            let want: Option<i64> = q.get("reference_id").and_then(|v| v.parse().ok());
            let all = st
                .projects
                .iter()
                .filter(|(_, pr)| want.is_none_or(|w| w == pr.id))
                .map(|(n, pr)| {
                    json!({"id": pr.id, "ref": {"id": pr.id, "name": n, "owner_name": ADMIN},
                           "hard": {"storage": -1}, "used": {"storage": repos(n).len() * 1024}})
                })
                .collect();
            page(&q, all)
        }
        ("GET", ["projects", name, "repositories"]) => match st.projects.get(*name) {
            Some(pr) => page(
                &q,
                repos(name)
                    .iter()
                    .map(|(r, t)| repo_json(r, t, pr.id))
                    .collect(),
            ),
            None => not_found(&format!("project {name}")),
        },
        ("GET", ["repositories"]) => {
            let all = st
                .projects
                .iter()
                .flat_map(|(n, pr)| {
                    repos(n)
                        .iter()
                        .map(|(r, t)| repo_json(r, t, pr.id))
                        .collect::<Vec<_>>()
                })
                .collect();
            page(&q, all)
        }
        ("GET", ["projects", name, "repositories", repo, "artifacts"]) => {
            let full = format!("{name}/{}", decode(repo));
            match images.get(&full).filter(|_| st.projects.contains_key(*name)) {
                Some(tags) => page(
                    &q,
                    tags.iter()
                        .map(|(t, d)| {
                            json!({"digest": d, "size": 1024, "push_time": "2026-12-01T00:00:00.000Z",
                                   "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
                                   "tags": [{"name": t}]})
                        })
                        .collect(),
                ),
                None => not_found(&format!("repository {full}")),
            }
        }
        ("POST", ["robots"]) => {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let perm = p.pointer("/permissions/0");
            let project = perm
                .and_then(|x| x.get("namespace"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let access = perm
                .and_then(|x| x.get("access"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if name.is_empty() || access.is_empty() {
                return error(400, "BAD_REQUEST", "a robot needs a name and permissions");
            }
            let Some(pid) = st.projects.get(project).map(|pr| pr.id) else {
                return not_found(&format!("project {project}"));
            };
            let full = format!("robot${project}+{name}");
            if st.robots.iter().any(|r| r.name == full) {
                return error(
                    409,
                    "CONFLICT",
                    &format!("robot account {full} already exists"),
                );
            }
            st.next_id += 1;
            let robot = Robot {
                id: st.next_id,
                name: full,
                project_id: pid,
                secret: rand_id(32),
                access,
            };
            let out = json!({"id": robot.id, "name": robot.name, "secret": robot.secret,
                             "creation_time": jiff::Timestamp::now().to_string(), "expires_at": -1});
            st.robots.push(robot);
            reply(201, out, None)
        }
        ("GET", ["robots"]) => {
            // q=Level=project,ProjectID=<id>
            let pid: Option<i64> = q.get("q").and_then(|f| {
                f.split(',')
                    .find_map(|kv| kv.strip_prefix("ProjectID="))
                    .and_then(|v| v.parse().ok())
            });
            let all = st
                .robots
                .iter()
                .filter(|r| pid.is_none_or(|p| p == r.project_id))
                .map(|r| {
                    json!({"id": r.id, "name": r.name, "level": "project", "disable": false,
                           "expires_at": -1, "permissions": [{"kind": "project", "access": r.access}]})
                })
                .collect();
            page(&q, all)
        }
        ("DELETE", ["robots", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            let before = st.robots.len();
            st.robots.retain(|r| r.id != id);
            if st.robots.len() == before {
                return not_found(&format!("robot {id}"));
            }
            reply(200, json!(null), None)
        }
        _ => error(404, "NOT_FOUND", "no such API"),
    }
}
