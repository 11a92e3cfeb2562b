//! The `cnat` operator ("cloud native at"): a custom resource `At` that
//! runs a command at a given time, and its controller. Shared by the
//! `cnat` example and `tests/cnat.rs`.
//!
//! ```yaml
//! apiVersion: cnat.kubepkg.io/v1alpha1
//! kind: At
//! metadata: {name: hello}
//! spec: {schedule: "2030-01-01T12:00:00Z", command: ["echo", "hello"]}
//! ```
//!
//! `status.phase` moves Pending → Running → Done:
//!
//! - **Pending** until `spec.schedule`: the reconcile requeues itself after
//!   the time that is left (a schedule in the past runs at once);
//! - **Running** once the controller has created the `At`'s Job
//!   (`<name>-run`, one Pod, `restartPolicy: Never`, no retries) — owned
//!   by the `At`, so the controller is told of every change to it;
//! - **Done** when that Job has finished: `status.result` is `Succeeded`
//!   (its Pod ran the command and exited 0) or `Failed`.
//!
//! Why a Job rather than a bare Pod: on the local environment the Pods run
//! on kwok's simulated nodes, and kwok (with the stages it applies by
//! default, which xtask does not change) makes every Pod Running but
//! completes — phase Succeeded, exit code 0 — only Pods owned by a Job. A
//! bare Pod would stay Running forever there and Done would mean nothing;
//! through a Job, Done means the same on kwok as on a real cluster: the
//! Pod reached Succeeded. (kwok runs no containers: the command itself is
//! not executed there.)
//!
//! Errors (the API server unreachable, a Job of that name that belongs to
//! someone else) requeue the `At` with a per-object exponential backoff
//! ([`RequeueBackoff`]); a success resets it. Deleting an `At` deletes its
//! Job and so its Pod: a finalizer does it at once (the Job deleted with
//! background propagation), and the owner reference lets the garbage
//! collector do it should the finalizer be removed by hand.

use futures::{Stream, StreamExt as _};
use kube::api::{Patch, PatchParams};
use kube::{CustomResource, CustomResourceExt as _, Resource as _, ResourceExt as _};
use kubepkg_k8s_api::apply::ApplyOptions;
use kubepkg_k8s_api::k8s_openapi::api::batch::v1::Job;
use kubepkg_k8s_api::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kubepkg_k8s_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kubepkg_k8s_api::k8s_openapi::jiff;
use kubepkg_k8s_api::runtime::finalizer::{self, Event as Finalized};
use kubepkg_k8s_api::runtime::{Action, RequeueBackoff, watcher};
use kubepkg_k8s_api::{Client, DeleteOptions, Error, Resources, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The finalizer that deletes an `At`'s Job before the `At` goes.
pub const FINALIZER: &str = "cnat.kubepkg.io/cleanup";
/// The label on every Job the controller creates: the `At`'s name.
pub const AT_LABEL: &str = "cnat.kubepkg.io/at";

/// What to run, and when.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "cnat.kubepkg.io",
    version = "v1alpha1",
    kind = "At",
    namespaced,
    status = "AtStatus",
    shortname = "at",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#
)]
pub struct AtSpec {
    /// When to run: an RFC 3339 time, e.g. `2030-01-01T12:00:00Z`.
    pub schedule: String,
    /// The command (and its arguments) the Pod runs.
    pub command: Vec<String>,
}

/// Where an `At` is.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AtStatus {
    /// `Pending`, `Running` or `Done`.
    pub phase: String,
    /// The Job that runs the command, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// `Succeeded` or `Failed`, once Done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why the `At` cannot go on (an unreadable schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The phases.
pub const PENDING: &str = "Pending";
/// See [`PENDING`].
pub const RUNNING: &str = "Running";
/// See [`PENDING`].
pub const DONE: &str = "Done";

/// One reconcile, as the context records it (the test reads these).
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The `At`'s name.
    pub name: String,
    /// When the reconcile ended.
    pub at: Instant,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// What every reconcile shares.
pub struct Ctx {
    /// The cluster.
    pub client: Client,
    /// The requeue delays of failing `At`s.
    pub backoff: RequeueBackoff,
    /// Every reconcile so far.
    pub attempts: Mutex<Vec<Attempt>>,
}

impl Ctx {
    /// A context with `backoff` for failures.
    pub fn new(client: Client, backoff: RequeueBackoff) -> Arc<Ctx> {
        Arc::new(Ctx {
            client,
            backoff,
            attempts: Mutex::new(Vec::new()),
        })
    }

    fn record(&self, name: String, error: Option<String>) {
        let attempt = Attempt {
            name,
            at: Instant::now(),
            error,
        };
        match self.attempts.lock() {
            Ok(mut v) => v.push(attempt),
            Err(p) => p.into_inner().push(attempt),
        }
    }

    /// The reconciles of `name` so far.
    pub fn attempts_of(&self, name: &str) -> Vec<Attempt> {
        let all = match self.attempts.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        all.into_iter().filter(|a| a.name == name).collect()
    }
}

/// The name of the `At` CRD.
pub fn crd_name() -> &'static str {
    At::crd_name()
}

/// Installs (or updates) the `At` CRD with server-side apply and waits
/// until the API server serves it.
pub async fn install_crd(client: &Client) -> Result<()> {
    let crd = serde_yaml::to_string(&At::crd())
        .map_err(|e| Error::Internal(format!("the At CRD: {e}")))?;
    let report = client.apply(&crd, &ApplyOptions::default()).await;
    if let Some(failed) = report.failures().next()
        && let Err(e) = &failed.result
    {
        return Err(Error::Internal(format!("applying the At CRD: {e}")));
    }
    client
        .cluster::<CustomResourceDefinition>()
        .wait_for(At::crd_name(), Duration::from_secs(60), |crd| {
            let conditions = crd.status.as_ref()?.conditions.as_ref()?;
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await
}

/// The controller for the `At`s of `namespace` (all namespaces with
/// `None`): it watches them and the Jobs it made. Poll the stream to run it.
pub fn controller(
    namespace: Option<&str>,
    ctx: Arc<Ctx>,
) -> Result<impl Stream<Item = ()> + Send + use<>> {
    let (ats, jobs) = match namespace {
        Some(ns) => (ctx.client.namespaced::<At>(ns), ctx.client.jobs(ns)),
        None => (ctx.client.all::<At>(), ctx.client.all::<Job>()),
    };
    let controller = ats.controller(watcher::Config::default())?.owns(
        jobs.api().clone(),
        watcher::Config::default().labels(AT_LABEL),
    );
    Ok(controller
        .run(reconcile, error_policy, ctx)
        .map(|result| match result {
            Ok((at, action)) => tracing::debug!(%at, ?action, "reconciled"),
            Err(e) => tracing::debug!(error = %e, "reconcile failed"),
        }))
}

/// The rate-limited requeue of a failed reconcile.
fn error_policy(at: Arc<At>, error: &Error, ctx: Arc<Ctx>) -> Action {
    let action = ctx.backoff.on_error(&*at);
    tracing::warn!(at = %at.name_any(), %error, ?action, "reconcile failed; requeued");
    action
}

async fn reconcile(at: Arc<At>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = at.name_any();
    let ns = at
        .namespace()
        .ok_or_else(|| Error::Invalid(format!("At {name} has no namespace")))?;
    let ats = ctx.client.namespaced::<At>(&ns);
    let key = at.clone();
    let result = finalizer::finalizer(ats.api(), FINALIZER, at, |event| async {
        match event {
            Finalized::Apply(at) => apply(&at, &ctx).await,
            Finalized::Cleanup(at) => cleanup(&at, &ctx).await,
        }
    })
    .await
    .map_err(from_finalizer);
    // The At went while we worked on it (the last finalizer patch races
    // its deletion): nothing is left to do.
    let result = match result {
        Err(e) if e.is_not_found() => Ok(Action::await_change()),
        other => other,
    };
    match &result {
        Ok(_) => {
            ctx.backoff.forget(&*key);
            ctx.record(name, None);
        }
        Err(e) => ctx.record(name, Some(e.to_string())),
    }
    result
}

fn from_finalizer(e: finalizer::Error<Error>) -> Error {
    match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => e.into(),
        other => Error::Internal(other.to_string()),
    }
}

async fn set_status(ats: &Resources<At>, name: &str, status: &AtStatus) -> Result<()> {
    let patch = serde_json::json!({ "status": status });
    ats.api()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn job_name(at: &At) -> String {
    format!("{}-run", at.name_any())
}

async fn apply(at: &At, ctx: &Ctx) -> Result<Action> {
    let name = at.name_any();
    let ns = at.namespace().unwrap_or_default();
    let ats = ctx.client.namespaced::<At>(&ns);
    let status = at.status.clone().unwrap_or_default();
    match status.phase.as_str() {
        "" => {
            // The first step is visible: the status change reconciles again.
            let pending = AtStatus {
                phase: PENDING.into(),
                ..AtStatus::default()
            };
            set_status(&ats, &name, &pending).await?;
            Ok(Action::await_change())
        }
        PENDING => {
            let schedule = match serde_json::from_value::<Time>(serde_json::json!(at.spec.schedule))
            {
                Ok(t) => t.0,
                Err(e) => {
                    // Retrying cannot fix it: say so and wait for a change.
                    let message = format!("spec.schedule {:?}: {e}", at.spec.schedule);
                    let pending = AtStatus {
                        phase: PENDING.into(),
                        message: Some(message),
                        ..AtStatus::default()
                    };
                    set_status(&ats, &name, &pending).await?;
                    return Ok(Action::await_change());
                }
            };
            let left = jiff::Timestamp::now().duration_until(schedule);
            if left.is_positive() {
                let left = Duration::try_from(left).unwrap_or(Duration::from_secs(1));
                return Ok(Action::requeue(left));
            }
            let job = ensure_job(at, ctx).await?;
            let running = AtStatus {
                phase: RUNNING.into(),
                job: Some(job),
                ..AtStatus::default()
            };
            set_status(&ats, &name, &running).await?;
            Ok(Action::await_change())
        }
        RUNNING => {
            let job = match ctx.client.jobs(&ns).get_opt(&job_name(at)).await? {
                Some(job) => job,
                // Deleted behind our back: run it again.
                None => {
                    ensure_job(at, ctx).await?;
                    return Ok(Action::await_change());
                }
            };
            let finished = job
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
            match finished {
                Some(c) => {
                    let result = if c.type_ == "Complete" {
                        "Succeeded"
                    } else {
                        "Failed"
                    };
                    let done = AtStatus {
                        phase: DONE.into(),
                        job: Some(job.name_any()),
                        result: Some(result.into()),
                        message: None,
                    };
                    set_status(&ats, &name, &done).await?;
                    Ok(Action::await_change())
                }
                // The Job's changes trigger the next reconcile; the
                // requeue is a safety net.
                None => Ok(Action::requeue(Duration::from_secs(60))),
            }
        }
        _ => Ok(Action::await_change()),
    }
}

/// Creates the `At`'s Job unless it exists; a Job of that name that the
/// `At` does not own is an error (AlreadyExists), retried with backoff.
async fn ensure_job(at: &At, ctx: &Ctx) -> Result<String> {
    let ns = at.namespace().unwrap_or_default();
    let jobs = ctx.client.jobs(&ns);
    let name = job_name(at);
    let uid = at.uid().unwrap_or_default();
    if let Some(existing) = jobs.get_opt(&name).await? {
        let ours = existing.owner_references().iter().any(|o| o.uid == uid);
        return if ours {
            Ok(name)
        } else {
            Err(Error::AlreadyExists(format!(
                "Job {ns}/{name} exists and is not owned by At {}",
                at.name_any()
            )))
        };
    }
    let owner: OwnerReference = at
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Invalid(format!("At {} has no uid yet", at.name_any())))?;
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": name,
            "labels": { AT_LABEL: at.name_any() },
            "ownerReferences": [owner],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": { "labels": { AT_LABEL: at.name_any() } },
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "nodeSelector": { "type": "kwok" },
                    "containers": [{
                        "name": "command",
                        "image": "busybox",
                        "command": at.spec.command,
                    }],
                },
            },
        },
    }))
    .map_err(|e| Error::Internal(format!("the Job of At {}: {e}", at.name_any())))?;
    // AlreadyExists (it appeared meanwhile) is retried: the next
    // reconcile checks whose it is.
    jobs.create(&job).await?;
    Ok(name)
}

async fn cleanup(at: &At, ctx: &Ctx) -> Result<Action> {
    let ns = at.namespace().unwrap_or_default();
    // Background propagation: the Job's Pods go with it.
    ctx.client
        .jobs(&ns)
        .delete(&job_name(at), &DeleteOptions::default())
        .await?;
    Ok(Action::await_change())
}
