//! `apply` / `delete` of a bundle of any kinds.
//!
//! - Input: multi-document YAML, JSON objects or arrays, `kind: List`
//!   ([`crate::bundle`]); a document that does not parse is reported with
//!   its index and line and the others still go through.
//! - Kinds are resolved through discovery (cached, refreshed on a miss); an
//!   unknown kind is a NotFound result for that document only.
//! - Server-side apply with a field manager (`force` optional) and strict
//!   field validation; `dry_run` asks the server and reports, per object,
//!   which fields would change.
//! - Ordering: Namespaces and CRDs first; custom resources whose CRD is in
//!   the bundle wait until it is Established; everything else in between.
//!   Inside a tier, up to `concurrency` requests are in flight.
//! - Each object gets a result: created / configured / unchanged, or its
//!   typed error.
//! - Optional bundle label on every object and prune of labelled objects
//!   the bundle no longer holds (skipped when any document failed, so a
//!   typo never deletes what it meant to keep).
//! - [`delete`] removes a bundle in reverse order.

use crate::bundle::{self, Doc};
use crate::discovery::ResolvedKind;
use crate::dynamic::DynamicObject;
use crate::resource::{DeleteOptions, ListOptions, Resources};
use crate::{Client, Error, Result};
use futures::StreamExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt as _;
use kube::api::{Patch, PatchParams, ValidationDirective};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Label key carrying the bundle name when [`ApplyOptions::bundle`] is set.
pub const BUNDLE_LABEL: &str = "kubepkg.io/bundle";

/// Options of [`apply`] and [`delete`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOptions {
    /// Server-side apply field manager (default `kubepkg`).
    pub field_manager: String,
    /// Take over fields owned by other managers.
    pub force: bool,
    /// Server-side dry run: nothing is persisted; results say what would change.
    pub dry_run: bool,
    /// Namespace for namespaced objects that name none (default: the client's).
    pub namespace: Option<String>,
    /// Requests in flight at once inside a tier (default 16).
    pub concurrency: usize,
    /// Bundle name: every object gets label `kubepkg.io/bundle=<name>`.
    pub bundle: Option<String>,
    /// Delete objects labelled with the bundle that it no longer holds
    /// (needs `bundle`). Kinds scanned: those in the bundle plus `prune_kinds`.
    pub prune: bool,
    /// Extra `(apiVersion, kind)` pairs to scan when pruning.
    pub prune_kinds: Vec<(String, String)>,
    /// How long a custom resource waits for its CRD to be Established (default 60 s).
    pub crd_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            field_manager: crate::resource::FIELD_MANAGER.into(),
            force: false,
            dry_run: false,
            namespace: None,
            concurrency: 16,
            bundle: None,
            prune: false,
            prune_kinds: Vec::new(),
            crd_timeout: Duration::from_secs(60),
        }
    }
}

/// What happened to one object. `Configured` / `Unchanged` compare the
/// object before and after the apply, ignoring what the server keeps for
/// itself (status, managed fields, resourceVersion, generation, uid,
/// creation time); a change made by someone else between the two reads
/// would count as `Configured`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist and was (or would be) created.
    Created,
    /// It existed and changed (or would change).
    Configured,
    /// It existed and nothing changed.
    Unchanged,
    /// It was deleted (by [`delete`] or by prune).
    Deleted,
    /// [`delete`] found nothing to delete.
    Absent,
}

/// One field a dry run would change.
///
/// The values of a Secret's `data` and `stringData` are never carried:
/// they are replaced by [`REDACTED`], so a report can be logged or printed
/// safely; the path still says which key was added, changed or removed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// Dotted path, e.g. `data.key` or `spec.replicas`.
    pub path: String,
    /// Value before (`None`: absent).
    pub before: Option<Value>,
    /// Value after (`None`: removed).
    pub after: Option<Value>,
}

/// What stands in for a Secret's value in a [`FieldChange`].
pub const REDACTED: &str = "<redacted>";

/// Whether `(api_version, kind)` is a core Secret, whose values must
/// never leave the process in a report.
fn is_secret(api_version: &str, kind: &str) -> bool {
    api_version == "v1" && kind == "Secret"
}

/// Replaces the values of a Secret's `data` / `stringData` keys (and of
/// those maps as a whole) with [`REDACTED`].
fn redact_secret_values(changes: &mut [FieldChange]) {
    let sensitive = |p: &str| {
        ["data", "stringData"]
            .iter()
            .any(|root| p == *root || p.strip_prefix(root).is_some_and(|r| r.starts_with('.')))
    };
    for c in changes.iter_mut().filter(|c| sensitive(&c.path)) {
        for v in [&mut c.before, &mut c.after].into_iter().flatten() {
            *v = match v {
                // A whole map added or removed: keep its keys, hide the values.
                Value::Object(m) => Value::Object(
                    m.keys()
                        .map(|k| (k.clone(), Value::String(REDACTED.into())))
                        .collect(),
                ),
                _ => Value::String(REDACTED.into()),
            };
        }
    }
}

/// The result for one object of the bundle.
#[derive(Debug)]
pub struct ObjectResult {
    /// Index of the document in the bundle (`usize::MAX` for pruned objects).
    pub index: usize,
    /// Line where its document starts (0 for pruned objects).
    pub line: usize,
    /// `apiVersion` (empty when the document did not parse).
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// Namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What happened, or the typed error.
    pub result: Result<Outcome>,
    /// The fields that changed (for a dry run: would change); empty for
    /// objects created by a real apply.
    pub changes: Vec<FieldChange>,
}

impl ObjectResult {
    fn from_doc(d: &Doc, result: Result<Outcome>) -> Self {
        ObjectResult {
            index: d.index,
            line: d.line,
            api_version: d.api_version().into(),
            kind: d.kind().into(),
            namespace: d.namespace().map(str::to_string),
            name: d.name().into(),
            result,
            changes: Vec::new(),
        }
    }

    /// `kind namespace/name` (or `kind name`).
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// The outcome of a bundle operation.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// One result per document (or list item), in bundle order.
    pub results: Vec<ObjectResult>,
    /// Objects deleted by prune.
    pub pruned: Vec<ObjectResult>,
    /// Why prune was skipped, when it was requested but not done.
    pub prune_skipped: Option<String>,
}

impl ApplyReport {
    /// Whether every object succeeded.
    pub fn is_ok(&self) -> bool {
        self.results
            .iter()
            .chain(&self.pruned)
            .all(|r| r.result.is_ok())
    }

    /// The failed objects.
    pub fn failures(&self) -> impl Iterator<Item = &ObjectResult> {
        self.results
            .iter()
            .chain(&self.pruned)
            .filter(|r| r.result.is_err())
    }

    /// How many objects had `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results
            .iter()
            .chain(&self.pruned)
            .filter(|r| matches!(r.result, Ok(o) if o == outcome))
            .count()
    }
}

/// Ordering tiers.
const TIER_FIRST: u8 = 0;
const TIER_MIDDLE: u8 = 1;
const TIER_CUSTOM: u8 = 2;

fn is_first_tier(d: &Doc) -> bool {
    (d.kind() == "Namespace" && d.api_version() == "v1")
        || (d.kind() == "CustomResourceDefinition"
            && d.api_version().starts_with("apiextensions.k8s.io/"))
}

/// `(group, kind) -> CRD name` for the CRDs in the bundle.
/// Namespaces and CRDs first, custom resources of the bundle's own CRDs
/// last, everything else in between.
fn split_tiers(docs: Vec<Doc>, crds: &HashMap<(String, String), String>) -> [Vec<Doc>; 3] {
    let mut tiers: [Vec<Doc>; 3] = Default::default();
    for d in docs {
        let tier = if is_first_tier(&d) {
            TIER_FIRST
        } else if crds.contains_key(&(group_of(d.api_version()).to_string(), d.kind().to_string()))
        {
            TIER_CUSTOM
        } else {
            TIER_MIDDLE
        };
        tiers[usize::from(tier)].push(d);
    }
    tiers
}

fn bundle_crds(docs: &[Doc]) -> HashMap<(String, String), String> {
    docs.iter()
        .filter(|d| d.kind() == "CustomResourceDefinition")
        .filter_map(|d| {
            let spec = &d.object["spec"];
            Some((
                (
                    spec["group"].as_str()?.to_string(),
                    spec["names"]["kind"].as_str()?.to_string(),
                ),
                d.name().to_string(),
            ))
        })
        .collect()
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Prepared work for one document.
struct Job {
    doc: Doc,
    rk: ResolvedKind,
    namespace: Option<String>,
}

impl Job {
    fn api(&self, client: &Client) -> Resources<DynamicObject> {
        client.dynamic_for(&self.rk, self.namespace.as_deref())
    }

    fn group_key(&self) -> (String, String, Option<String>) {
        (
            self.rk.resource.api_version.clone(),
            self.rk.resource.kind.clone(),
            self.namespace.clone(),
        )
    }
}

fn result_for(job: &Job, result: Result<Outcome>) -> ObjectResult {
    let mut r = ObjectResult::from_doc(&job.doc, result);
    r.namespace = job.namespace.clone();
    r
}

/// Resolves a document's kind and namespace; sets the bundle label.
async fn prepare(
    client: &Client,
    mut doc: Doc,
    opts: &ApplyOptions,
    default_ns: &str,
) -> Result<Job> {
    let rk = client
        .resolve_kind(doc.api_version(), doc.kind())
        .await
        .map_err(|e| match e {
            Error::NotFound(m) => {
                Error::NotFound(format!("document {} (line {}): {m}", doc.index, doc.line))
            }
            Error::Invalid(m) => {
                Error::Invalid(format!("document {} (line {}): {m}", doc.index, doc.line))
            }
            other => other,
        })?;
    crate::resource::check_name(doc.name())?;
    let namespace = if rk.namespaced {
        let ns = doc.namespace().unwrap_or(default_ns).to_string();
        crate::resource::check_name(&ns)?;
        doc.object["metadata"]["namespace"] = Value::String(ns.clone());
        Some(ns)
    } else {
        if let Some(m) = doc.object["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        None
    };
    if let Some(b) = &opts.bundle {
        let meta = &mut doc.object["metadata"];
        if !meta["labels"].is_object() {
            meta["labels"] = Value::Object(Default::default());
        }
        meta["labels"][BUNDLE_LABEL] = Value::String(b.clone());
    }
    Ok(Job { doc, rk, namespace })
}

/// The existing objects the jobs would touch, per (apiVersion, kind,
/// namespace) group: one paged list for large groups, gets for small ones.
/// A group that cannot be read is left out (its objects then count as
/// created).
async fn existing_objects(
    client: &Client,
    jobs: &[Job],
    concurrency: usize,
) -> HashMap<String, DynamicObject> {
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<&Job>> = BTreeMap::new();
    for j in jobs {
        groups.entry(j.group_key()).or_default().push(j);
    }
    let mut out = HashMap::new();
    for (_, members) in groups {
        let Some(first) = members.first() else {
            continue;
        };
        let api = first.api(client);
        if members.len() >= 8 {
            let wanted: BTreeSet<&str> = members.iter().map(|j| j.doc.name()).collect();
            let opts = ListOptions::default().page_size(1000);
            let mut token = None;
            loop {
                let page = match api.list_page(&opts, token.take()).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read existing objects; outcomes may say created");
                        break;
                    }
                };
                for o in page.items {
                    let n = o.name_any();
                    if wanted.contains(n.as_str()) {
                        out.insert(object_key(first, &n), o);
                    }
                }
                match page.continue_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        } else {
            // The futures are built first and borrow nothing from the jobs,
            // so the whole future stays Send (a server's handler needs it).
            let lookups: Vec<_> = members
                .iter()
                .map(|j| {
                    let api = j.api(client);
                    let name = j.doc.name().to_string();
                    let key = object_key(j, &name);
                    async move {
                        let o = api.get_opt(&name).await.ok().flatten()?;
                        Some((key, o))
                    }
                })
                .collect();
            let found: Vec<Option<(String, DynamicObject)>> = futures::stream::iter(lookups)
                .buffer_unordered(concurrency)
                .collect()
                .await;
            out.extend(found.into_iter().flatten());
        }
    }
    out
}

fn object_key(j: &Job, name: &str) -> String {
    format!(
        "{}/{}/{}/{}",
        j.rk.resource.api_version,
        j.rk.resource.kind,
        j.namespace.as_deref().unwrap_or(""),
        name
    )
}

const VOLATILE_META: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

fn normalise(mut v: Value) -> Value {
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in VOLATILE_META {
            m.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// Leaf-level differences between two JSON values.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<FieldChange>) {
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(&p, x.get(k), y.get(k), out);
                }
            }
            (a, b) if a == b => {}
            (a, b) => out.push(FieldChange {
                path: path.to_string(),
                before: a.cloned(),
                after: b.cloned(),
            }),
        }
    }
    let mut out = Vec::new();
    walk("", Some(before), Some(after), &mut out);
    out
}

async fn apply_one(
    client: &Client,
    job: &Job,
    opts: &ApplyOptions,
    before: Option<&DynamicObject>,
) -> ObjectResult {
    let api = job.api(client);
    let name = job.doc.name().to_string();
    let obj: DynamicObject = match serde_json::from_value(job.doc.object.clone()) {
        Ok(o) => o,
        Err(e) => {
            return result_for(
                job,
                Err(Error::Parse {
                    index: job.doc.index,
                    line: job.doc.line,
                    message: e.to_string(),
                }),
            );
        }
    };
    let pp = PatchParams {
        dry_run: opts.dry_run,
        force: opts.force,
        field_manager: Some(opts.field_manager.clone()),
        field_validation: Some(ValidationDirective::Strict),
    };
    let op = if opts.dry_run {
        "apply.dry_run"
    } else {
        "apply"
    };
    let res = client
        .run(
            op,
            &api.target(Some(&name)),
            api.api().patch(&name, &pp, &Patch::Apply(&obj)),
        )
        .await;
    let after = match res {
        Err(e) => return result_for(job, Err(e)),
        Ok(a) => a,
    };
    let mut r = outcome_of(job, opts, before, &after);
    if is_secret(&job.rk.resource.api_version, &job.rk.resource.kind) {
        redact_secret_values(&mut r.changes);
    }
    r
}

/// Created / configured / unchanged, and the changed fields, from the
/// object before (if it existed) and the server's answer.
fn outcome_of(
    job: &Job,
    opts: &ApplyOptions,
    before: Option<&DynamicObject>,
    after: &DynamicObject,
) -> ObjectResult {
    match before {
        None => {
            let mut r = result_for(job, Ok(Outcome::Created));
            if opts.dry_run {
                let after_v = normalise(serde_json::to_value(after).unwrap_or_default());
                r.changes = diff(&Value::Object(Default::default()), &after_v);
            }
            r
        }
        // Nothing was written (a dry run never writes: compare instead).
        Some(b)
            if !opts.dry_run
                && b.resource_version().is_some()
                && b.resource_version() == after.resource_version() =>
        {
            result_for(job, Ok(Outcome::Unchanged))
        }
        Some(b) => {
            // A new version: did the content change, or only bookkeeping
            // (status written by a controller, managed fields)?
            let before_v = normalise(serde_json::to_value(b).unwrap_or_default());
            let after_v = normalise(serde_json::to_value(after).unwrap_or_default());
            let changes = diff(&before_v, &after_v);
            let outcome = if changes.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            };
            let mut r = result_for(job, Ok(outcome));
            r.changes = changes;
            r
        }
    }
}

async fn run_tier(client: &Client, jobs: Vec<Job>, opts: &ApplyOptions) -> Vec<ObjectResult> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let before = existing_objects(client, &jobs, opts.concurrency.max(1)).await;
    let before = &before;
    futures::stream::iter(jobs)
        .map(|job| async move {
            let key = object_key(&job, job.doc.name());
            apply_one(client, &job, opts, before.get(&key)).await
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await
}

async fn wait_established(client: &Client, crd: &str, timeout: Duration) -> Result<()> {
    client
        .cluster::<CustomResourceDefinition>()
        .wait_for(crd, timeout, |c| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
                .then_some(())
        })
        .await
}

/// Applies a bundle. See the module docs.
pub async fn apply(client: &Client, input: &str, opts: &ApplyOptions) -> ApplyReport {
    use tracing::Instrument as _;
    let span = bundle_span(client, opts, "apply.bundle", "apply.bundle.dry_run");
    apply_inner(client, input, opts).instrument(span).await
}

/// The span of a whole bundle operation (`op`, or `dry_op` for a dry run).
fn bundle_span(
    client: &Client,
    opts: &ApplyOptions,
    op: &'static str,
    dry_op: &'static str,
) -> tracing::Span {
    let op = if opts.dry_run { dry_op } else { op };
    client.span(op, opts.bundle.as_deref().unwrap_or("bundle"))
}

/// The documents of `input`, and a report already holding a result for
/// each document that does not parse.
fn parse_bundle(input: &str) -> (ApplyReport, Vec<Doc>) {
    let mut report = ApplyReport::default();
    let mut docs = Vec::new();
    for d in bundle::parse(input) {
        match d {
            Ok(d) => docs.push(d),
            Err(e) => report.results.push(parse_failure(e)),
        }
    }
    (report, docs)
}

/// Where namespaced objects that name none go.
fn default_namespace(client: &Client, opts: &ApplyOptions) -> String {
    opts.namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string())
}

async fn apply_inner(client: &Client, input: &str, opts: &ApplyOptions) -> ApplyReport {
    let (mut report, docs) = parse_bundle(input);
    let default_ns = default_namespace(client, opts);
    if opts.prune && opts.bundle.is_none() {
        report.prune_skipped = Some("prune needs a bundle name".into());
    }
    let crds = bundle_crds(&docs);
    let tiers = split_tiers(docs, &crds);
    let mut applied_keys: BTreeSet<String> = BTreeSet::new();
    let mut scanned_kinds: BTreeSet<(String, String)> = BTreeSet::new();
    for (tier, docs) in tiers.into_iter().enumerate() {
        if docs.is_empty() {
            continue;
        }
        if tier == usize::from(TIER_CUSTOM) {
            let needed: BTreeSet<String> = docs
                .iter()
                .filter_map(|d| {
                    crds.get(&(group_of(d.api_version()).to_string(), d.kind().to_string()))
                })
                .cloned()
                .collect();
            let mut failed: HashMap<String, Arc<String>> = HashMap::new();
            for crd in needed {
                if opts.dry_run {
                    // Nothing is created by a dry run: only a CRD that is
                    // already established lets its resources be checked.
                    if wait_established(client, &crd, Duration::ZERO)
                        .await
                        .is_err()
                    {
                        failed.insert(
                            crd.clone(),
                            Arc::new(format!(
                                "its CustomResourceDefinition {crd} does not exist yet, so a dry run cannot check it"
                            )),
                        );
                    }
                } else if let Err(e) = wait_established(client, &crd, opts.crd_timeout).await {
                    failed.insert(
                        crd.clone(),
                        Arc::new(format!(
                            "CustomResourceDefinition {crd} not established: {e}"
                        )),
                    );
                }
            }
            let mut ready = Vec::new();
            for d in docs {
                let crd = crds
                    .get(&(group_of(d.api_version()).to_string(), d.kind().to_string()))
                    .cloned()
                    .unwrap_or_default();
                if let Some(msg) = failed.get(&crd) {
                    report.results.push(ObjectResult::from_doc(
                        &d,
                        Err(Error::NotFound(msg.to_string())),
                    ));
                } else {
                    ready.push(d);
                }
            }
            let jobs = prepare_all(client, ready, opts, &default_ns, &mut report, true).await;
            note_keys(&jobs, &mut applied_keys, &mut scanned_kinds);
            report.results.extend(run_tier(client, jobs, opts).await);
        } else {
            let jobs = prepare_all(client, docs, opts, &default_ns, &mut report, false).await;
            note_keys(&jobs, &mut applied_keys, &mut scanned_kinds);
            report.results.extend(run_tier(client, jobs, opts).await);
        }
    }
    report.results.sort_by_key(|r| r.index);
    if opts.prune
        && let Some(bundle) = &opts.bundle
    {
        if report.results.iter().any(|r| r.result.is_err()) {
            report.prune_skipped =
                Some("some objects of the bundle failed; nothing was pruned".into());
        } else {
            for (av, k) in &opts.prune_kinds {
                scanned_kinds.insert((av.clone(), k.clone()));
            }
            let namespaces: BTreeSet<String> = report
                .results
                .iter()
                .filter_map(|r| r.namespace.clone())
                .collect();
            report.pruned = prune(
                client,
                bundle,
                &scanned_kinds,
                &namespaces,
                &applied_keys,
                opts,
            )
            .await;
        }
    }
    report
}

fn parse_failure(e: Error) -> ObjectResult {
    let (index, line) = match &e {
        Error::Parse { index, line, .. } => (*index, *line),
        _ => (usize::MAX, 0),
    };
    ObjectResult {
        index,
        line,
        api_version: String::new(),
        kind: String::new(),
        namespace: None,
        name: String::new(),
        result: Err(e),
        changes: Vec::new(),
    }
}

fn note_keys(jobs: &[Job], keys: &mut BTreeSet<String>, kinds: &mut BTreeSet<(String, String)>) {
    for j in jobs {
        keys.insert(object_key(j, j.doc.name()));
        kinds.insert((
            j.rk.resource.api_version.clone(),
            j.rk.resource.kind.clone(),
        ));
    }
}

async fn prepare_all(
    client: &Client,
    docs: Vec<Doc>,
    opts: &ApplyOptions,
    default_ns: &str,
    report: &mut ApplyReport,
    retry_resolution: bool,
) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(docs.len());
    for d in docs {
        let mut attempt = 0;
        loop {
            match prepare(client, d.clone(), opts, default_ns).await {
                Ok(j) => {
                    jobs.push(j);
                    break;
                }
                // A just-established CRD may take a moment to show in discovery.
                Err(e) if retry_resolution && e.is_not_found() && attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    report.results.push(ObjectResult::from_doc(&d, Err(e)));
                    break;
                }
            }
        }
    }
    jobs
}

async fn prune(
    client: &Client,
    bundle: &str,
    kinds: &BTreeSet<(String, String)>,
    namespaces: &BTreeSet<String>,
    keep: &BTreeSet<String>,
    opts: &ApplyOptions,
) -> Vec<ObjectResult> {
    let mut out = Vec::new();
    let selector = ListOptions::labels(format!("{BUNDLE_LABEL}={bundle}"));
    for (av, kind) in kinds {
        let rk = match client.resolve_kind(av, kind).await {
            Ok(rk) => rk,
            Err(_) => continue,
        };
        if !rk.supports("list") || !rk.supports("delete") {
            continue;
        }
        let scopes: Vec<Option<&str>> = if rk.namespaced {
            namespaces.iter().map(|n| Some(n.as_str())).collect()
        } else {
            vec![None]
        };
        for ns in scopes {
            let api = client.dynamic_for(&rk, ns);
            let items = match api.list(&selector).await {
                Ok(i) => i,
                Err(e) => {
                    out.push(ObjectResult {
                        index: usize::MAX,
                        line: 0,
                        api_version: av.clone(),
                        kind: kind.clone(),
                        namespace: ns.map(str::to_string),
                        name: String::new(),
                        result: Err(e),
                        changes: Vec::new(),
                    });
                    continue;
                }
            };
            for o in items {
                let name = o.name_any();
                let key = format!("{av}/{kind}/{}/{name}", ns.unwrap_or(""));
                if keep.contains(&key) {
                    continue;
                }
                let del = DeleteOptions {
                    dry_run: opts.dry_run,
                    propagation: crate::resource::Propagation::Background,
                    ..Default::default()
                };
                let result = api.delete(&name, &del).await.map(|existed| {
                    if existed {
                        Outcome::Deleted
                    } else {
                        Outcome::Absent
                    }
                });
                out.push(ObjectResult {
                    index: usize::MAX,
                    line: 0,
                    api_version: av.clone(),
                    kind: kind.clone(),
                    namespace: ns.map(str::to_string),
                    name,
                    result,
                    changes: Vec::new(),
                });
            }
        }
    }
    out
}

/// Deletes the objects of a bundle, in reverse order: custom resources
/// first, then the other kinds, then CRDs and Namespaces.
pub async fn delete(client: &Client, input: &str, opts: &ApplyOptions) -> ApplyReport {
    use tracing::Instrument as _;
    let span = bundle_span(client, opts, "delete.bundle", "delete.bundle.dry_run");
    delete_inner(client, input, opts).instrument(span).await
}

async fn delete_inner(client: &Client, input: &str, opts: &ApplyOptions) -> ApplyReport {
    let (mut report, docs) = parse_bundle(input);
    let default_ns = default_namespace(client, opts);
    let crds = bundle_crds(&docs);
    let tiers = split_tiers(docs, &crds);
    let no_label = ApplyOptions {
        bundle: None,
        ..opts.clone()
    };
    for docs in tiers.into_iter().rev() {
        let mut jobs = Vec::new();
        for d in docs {
            match prepare(client, d.clone(), &no_label, &default_ns).await {
                Ok(j) => jobs.push(j),
                // The kind is gone (its CRD was deleted): so are its objects.
                Err(e)
                    if e.is_not_found()
                        && crds.contains_key(&(
                            group_of(d.api_version()).to_string(),
                            d.kind().to_string(),
                        )) =>
                {
                    report
                        .results
                        .push(ObjectResult::from_doc(&d, Ok(Outcome::Absent)))
                }
                Err(e) => report.results.push(ObjectResult::from_doc(&d, Err(e))),
            }
        }
        let del = DeleteOptions {
            dry_run: opts.dry_run,
            propagation: crate::resource::Propagation::Background,
            ..Default::default()
        };
        let del = &del;
        let results: Vec<ObjectResult> = futures::stream::iter(jobs)
            .map(|j| async move {
                let api = j.api(client);
                let r = api.delete(j.doc.name(), del).await.map(|existed| {
                    if existed {
                        Outcome::Deleted
                    } else {
                        Outcome::Absent
                    }
                });
                result_for(&j, r)
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        report.results.extend(results);
    }
    report.results.sort_by_key(|r| r.index);
    report
}

impl Client {
    /// [`apply`] on this client.
    pub async fn apply(&self, input: &str, opts: &ApplyOptions) -> ApplyReport {
        apply(self, input, opts).await
    }

    /// [`delete`] on this client.
    pub async fn delete_bundle(&self, input: &str, opts: &ApplyOptions) -> ApplyReport {
        delete(self, input, opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_leaf_changes() {
        let a = serde_json::json!({"data": {"k": "1", "gone": "x"}, "spec": {"replicas": 1}});
        let b = serde_json::json!({"data": {"k": "2", "new": "y"}, "spec": {"replicas": 1}});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["data.gone", "data.k", "data.new"]);
        assert_eq!(d[0].after, None);
        assert_eq!(d[2].before, None);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn secret_values_are_redacted_but_paths_kept() {
        let before =
            serde_json::json!({"data": {"token": "czNjcjN0", "same": "eA=="}, "type": "Opaque"});
        let after = serde_json::json!({"data": {"token": "bmV3", "added": "YQ==", "same": "eA=="},
                                       "stringData": {"pw": "plain"}, "type": "Opaque"});
        let mut changes = diff(&before, &after);
        redact_secret_values(&mut changes);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["data.added", "data.token", "stringData"]);
        assert_eq!(
            changes[2].after,
            Some(serde_json::json!({"pw": REDACTED})),
            "a whole map keeps its keys"
        );
        let text = format!("{changes:?}");
        for secret in ["czNjcjN0", "bmV3", "YQ==", "plain"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(changes[0].before, None, "absence is not a secret");
        assert_eq!(changes[1].after, Some(Value::String(REDACTED.into())));
        // Fields that merely start with "data" are not Secret values.
        let mut other = vec![FieldChange {
            path: "dataset".into(),
            before: None,
            after: Some(Value::from(1)),
        }];
        redact_secret_values(&mut other);
        assert_eq!(other[0].after, Some(Value::from(1)));
        assert!(is_secret("v1", "Secret") && !is_secret("example.com/v1", "Secret"));
    }

    #[test]
    fn normalise_drops_server_fields() {
        let v = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "5", "managedFields": []},
                                   "status": {"x": 1}, "data": {}});
        let n = normalise(v);
        assert_eq!(
            n,
            serde_json::json!({"metadata": {"name": "a"}, "data": {}})
        );
    }

    #[test]
    fn tiers_put_namespaces_and_crds_first() {
        let docs: Vec<Doc> = bundle::parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
             apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n\
             spec: {group: example.com, names: {kind: Widget, plural: widgets}}\n---\n\
             apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        )
        .into_iter()
        .filter_map(Result::ok)
        .collect();
        assert!(is_first_tier(&docs[0]) && is_first_tier(&docs[1]) && !is_first_tier(&docs[2]));
        let crds = bundle_crds(&docs);
        assert_eq!(
            crds.get(&("example.com".to_string(), "Widget".to_string()))
                .map(String::as_str),
            Some("widgets.example.com")
        );
    }
}
