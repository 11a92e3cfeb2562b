//! [`Resources<K>`]: the typed handle every family builds on — list (all
//! pages, one page, or a lazy stream following continue tokens), get,
//! create, server-side apply, merge patch, delete — each call in a tracing
//! span and mapped to kubepkg's [`Error`].
//!
//! # Input checks
//!
//! kube formats namespaces and names into the request path unescaped, so
//! every call checks them before anything is sent:
//!
//! - object names must be usable as a path segment: not empty, `.` or
//!   `..`, no `/` or `%` (the API server's path-segment rules), no `?`,
//!   `#`, whitespace or control characters (which kube would send
//!   unescaped), at most 253 bytes; kind-specific rules stay the API
//!   server's to enforce;
//! - namespaces must be DNS-1123 labels, as the API server requires.
//!
//! The handle constructors ([`Client::namespaced`], `client.pods(ns)`,
//! `client.config_maps(ns)`…) stay infallible so they chain nicely: a bad
//! namespace is reported as [`Error::Invalid`] by every call made through
//! the handle, and nothing leaves the process.
//!
//! ```no_run
//! # async fn demo(client: kubepkg_k8s_api::Client) {
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubepkg_util::ErrorKind;
//!
//! let cms = client.namespaced::<ConfigMap>("team-a/../kube-system");
//! let err = cms.get("settings").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//! # }
//! ```

use crate::{Client, Error, Result};
use futures::stream::{self, BoxStream, StreamExt as _};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The field manager kubepkg uses for server-side apply unless told otherwise.
pub const FIELD_MANAGER: &str = "kubepkg";

/// What the kube `Api` of a handle with an invalid namespace is bound to
/// instead of that namespace. A space is not allowed in a URI, so kube
/// fails to build any request through it (an Invalid error, nothing
/// sent): a defence in depth for code that uses [`Resources::api`]
/// directly rather than the checked calls of [`Resources`].
const UNUSABLE_NAMESPACE: &str = "invalid namespace";

/// Options of a list call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Label selector, e.g. `app=web,tier!=db`.
    pub label_selector: Option<String>,
    /// Field selector, e.g. `status.phase=Running`.
    pub field_selector: Option<String>,
    /// Page size (`None`: 500).
    pub page_size: Option<u32>,
}

impl ListOptions {
    /// Options with a label selector.
    pub fn labels(selector: impl Into<String>) -> Self {
        ListOptions {
            label_selector: Some(selector.into()),
            ..Default::default()
        }
    }

    /// Adds a field selector. Build it with
    /// [`kubepkg_util::selector::FieldSelector`] when values come from
    /// input: it escapes them.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Sets the page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }

    pub(crate) fn to_params(&self, continue_token: Option<String>) -> ListParams {
        ListParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            limit: Some(self.page_size.unwrap_or(500).max(1)),
            continue_token,
            ..Default::default()
        }
    }
}

/// `raw` (a JSON object) with `"apiVersion"` and `"kind"` (both already
/// JSON strings) in front, unless it has them.
fn with_type_meta(
    raw: Box<serde_json::value::RawValue>,
    api_version: &str,
    kind: &str,
) -> Result<Box<serde_json::value::RawValue>> {
    /// The top-level keys that matter; everything else is skipped unread.
    #[derive(serde::Deserialize)]
    struct Top {
        #[serde(rename = "apiVersion")]
        api_version: Option<serde::de::IgnoredAny>,
        kind: Option<serde::de::IgnoredAny>,
    }
    let text = raw.get();
    let Some(rest) = text.trim_start().strip_prefix('{') else {
        return Err(Error::Invalid("list: an item is not a JSON object".into()));
    };
    let top: Top = serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("list: an item is not valid JSON: {e}")))?;
    if top.api_version.is_some() && top.kind.is_some() {
        // Custom resources' list items carry both.
        return Ok(raw);
    }
    let rest = rest.trim_start();
    let sep = if rest.starts_with('}') { "" } else { "," };
    let out = format!("{{\"apiVersion\":{api_version},\"kind\":{kind}{sep}{rest}");
    serde_json::value::RawValue::from_string(out)
        .map_err(|e| Error::Invalid(format!("list: an item is not valid JSON: {e}")))
}

/// A list answer with its items undecoded.
#[derive(serde::Deserialize)]
struct RawList {
    #[serde(default)]
    metadata: kube::core::ListMeta,
    #[serde(default)]
    items: Vec<Box<serde_json::value::RawValue>>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<K> {
    /// The objects of this page.
    pub items: Vec<K>,
    /// Token for the next page; `None` on the last page.
    pub continue_token: Option<String>,
    /// The list's resourceVersion (a consistent snapshot across pages).
    pub resource_version: Option<String>,
}

/// How a delete propagates to dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// The server's own default for the kind. Beware: for `batch/v1` Jobs
    /// and CronJobs that orphans the dependents (a deleted Job's pods keep
    /// running).
    Default,
    /// Dependents are deleted in the background by the garbage collector
    /// (the default here, as in `kubectl delete`).
    #[default]
    Background,
    /// The owner waits for its dependents.
    Foreground,
    /// Dependents are left behind.
    Orphan,
}

/// Options of a delete call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Grace period in seconds (`Some(0)`: immediately).
    pub grace_period_secs: Option<u32>,
    /// Dependents handling (default [`Propagation::Background`], as
    /// `kubectl delete` does).
    pub propagation: Propagation,
    /// Server-side dry run.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Delete with this grace period.
    pub fn grace(secs: u32) -> Self {
        DeleteOptions {
            grace_period_secs: Some(secs),
            ..Default::default()
        }
    }

    /// Delete dependents in the background.
    pub fn background() -> Self {
        DeleteOptions {
            propagation: Propagation::Background,
            ..Default::default()
        }
    }

    pub(crate) fn to_params(&self) -> DeleteParams {
        DeleteParams {
            dry_run: self.dry_run,
            grace_period_seconds: self.grace_period_secs,
            propagation_policy: match self.propagation {
                Propagation::Default => None,
                Propagation::Background => Some(PropagationPolicy::Background),
                Propagation::Foreground => Some(PropagationPolicy::Foreground),
                Propagation::Orphan => Some(PropagationPolicy::Orphan),
            },
            ..Default::default()
        }
    }
}

/// A typed handle on one resource type, in one namespace, across all
/// namespaces, or cluster-wide.
#[derive(Clone)]
pub struct Resources<K> {
    pub(crate) client: Client,
    pub(crate) api: Api<K>,
    pub(crate) namespace: Option<String>,
    pub(crate) kind: std::sync::Arc<str>,
}

impl<K> Debug for Resources<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("cluster", &self.client.name())
            .finish()
    }
}

impl Client {
    /// A namespaced resource type in `namespace`.
    ///
    /// Infallible: when `namespace` is not a DNS-1123 label every call on
    /// the handle answers [`Error::Invalid`] without sending anything (see
    /// the [module docs](crate::resource#input-checks)).
    pub fn namespaced<K>(&self, namespace: &str) -> Resources<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        let bound = if check_namespace(namespace).is_ok() {
            namespace
        } else {
            UNUSABLE_NAMESPACE
        };
        Resources {
            client: self.clone(),
            api: Api::namespaced(self.kube().clone(), bound),
            namespace: Some(namespace.to_string()),
            kind: std::sync::Arc::from(K::kind(&Default::default()).as_ref()),
        }
    }

    /// A resource type across all namespaces (or a cluster-scoped one).
    pub fn all<K>(&self) -> Resources<K>
    where
        K: Resource,
        K::DynamicType: Default,
    {
        Resources {
            client: self.clone(),
            api: Api::all(self.kube().clone()),
            namespace: None,
            kind: std::sync::Arc::from(K::kind(&Default::default()).as_ref()),
        }
    }

    /// A cluster-scoped resource type (Nodes, Namespaces, PVs…).
    pub fn cluster<K>(&self) -> Resources<K>
    where
        K: Resource<Scope = k8s_openapi::ClusterResourceScope>,
        K::DynamicType: Default,
    {
        self.all()
    }
}

impl<K> Resources<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// The cluster client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The namespace, when the handle is bound to one (as given, even when
    /// it is invalid).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The kube `Api` underneath. Calls through it skip kubepkg's name
    /// checks; when the handle's namespace is invalid, kube fails to build
    /// any request through it.
    pub fn api(&self) -> &Api<K> {
        &self.api
    }

    /// Checks the handle's namespace (a DNS-1123 label), so that no call
    /// goes out with a namespace that would be misread as part of a path.
    pub(crate) fn check_scope(&self) -> Result<()> {
        match &self.namespace {
            Some(ns) => check_namespace(ns),
            None => Ok(()),
        }
    }

    /// The kind this handle serves.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub(crate) fn target(&self, name: Option<&str>) -> String {
        let kind = &self.kind;
        match (&self.namespace, name) {
            (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
            (Some(ns), None) => format!("{kind} in {ns}"),
            (None, Some(n)) => format!("{kind} {n}"),
            (None, None) => format!("{kind} (all)"),
        }
    }

    /// One page.
    pub async fn list_page(
        &self,
        opts: &ListOptions,
        continue_token: Option<String>,
    ) -> Result<Page<K>> {
        self.check_scope()?;
        let lp = opts.to_params(continue_token);
        let list = self
            .client
            .run("list", &self.target(None), self.api.list(&lp))
            .await?;
        Ok(Page {
            continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
            resource_version: list.metadata.resource_version,
            items: list.items,
        })
    }

    /// One page with each object left as the API server sent it: JSON text,
    /// checked well-formed but not decoded into `K`. For a caller that only
    /// passes the objects on (a proxy, a REST service answering JSON) this
    /// skips building and dropping a typed object per item; the objects are
    /// what a typed list would re-serialize, plus any field `K` does not
    /// know.
    pub async fn list_page_json(
        &self,
        opts: &ListOptions,
        continue_token: Option<String>,
    ) -> Result<Page<Box<serde_json::value::RawValue>>>
    where
        K::DynamicType: Default,
    {
        self.check_scope()?;
        let lp = opts.to_params(continue_token);
        let request = kube::core::Request::new(self.api.resource_url())
            .list(&lp)
            .map_err(|e| Error::Invalid(format!("list request: {e}")))?;
        let client = self.api.clone().into_client();
        let list: RawList = self
            .client
            .run("list", &self.target(None), client.request(request))
            .await?;
        // A list's items carry no apiVersion / kind; a typed object
        // serializes both, so put them back for the same shape.
        let dt = K::DynamicType::default();
        let quoted =
            |v: &str| serde_json::to_string(v).map_err(|e| Error::Invalid(format!("list: {e}")));
        let api_version = quoted(&K::api_version(&dt))?;
        let kind = quoted(&K::kind(&dt))?;
        let items = list
            .items
            .into_iter()
            .map(|raw| with_type_meta(raw, &api_version, &kind))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
            resource_version: list.metadata.resource_version,
            items,
        })
    }

    /// Every object as the API server's JSON ([`Self::list_page_json`]),
    /// all pages collected.
    pub async fn list_json(
        &self,
        opts: &ListOptions,
    ) -> Result<Vec<Box<serde_json::value::RawValue>>>
    where
        K::DynamicType: Default,
    {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_page_json(opts, token).await?;
            out.extend(page.items);
            match page.continue_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Every object, following continue tokens, as a lazy stream: only one
    /// page is held in memory at a time.
    pub fn stream(&self, opts: &ListOptions) -> BoxStream<'static, Result<K>> {
        let this = self.clone();
        let opts = opts.clone();
        // State: None = done; Some(token) = next page to fetch.
        stream::unfold(Some(None::<String>), move |state| {
            let this = this.clone();
            let opts = opts.clone();
            async move {
                let token = state?;
                match this.list_page(&opts, token).await {
                    Ok(page) => {
                        let next = page.continue_token.map(Some);
                        let items = stream::iter(page.items.into_iter().map(Ok));
                        Some((items.boxed(), next))
                    }
                    Err(e) => Some((stream::iter(vec![Err(e)]).boxed(), None)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    /// Every object (all pages collected).
    pub async fn list(&self, opts: &ListOptions) -> Result<Vec<K>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_page(opts, token).await?;
            out.extend(page.items);
            match page.continue_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// One object by name.
    pub async fn get(&self, name: &str) -> Result<K> {
        self.check_scope()?;
        check_name(name)?;
        self.client
            .run("get", &self.target(Some(name)), self.api.get(name))
            .await
    }

    /// One object by name, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates `obj` (AlreadyExists when it exists).
    pub async fn create(&self, obj: &K) -> Result<K> {
        self.check_scope()?;
        let name = obj.meta().name.clone().unwrap_or_default();
        self.client
            .run(
                "create",
                &self.target(Some(&name)),
                self.api.create(&PostParams::default(), obj),
            )
            .await
    }

    /// Replaces `obj` (its resourceVersion guards against lost updates:
    /// Conflict when someone else changed it first).
    pub async fn replace(&self, obj: &K) -> Result<K> {
        self.check_scope()?;
        let name = obj.meta().name.clone().unwrap_or_default();
        check_name(&name)?;
        self.client
            .run(
                "replace",
                &self.target(Some(&name)),
                self.api.replace(&name, &PostParams::default(), obj),
            )
            .await
    }

    /// Server-side apply of `obj` with `field_manager` (`force` takes over
    /// fields owned by other managers).
    pub async fn apply(&self, obj: &K, field_manager: &str, force: bool) -> Result<K> {
        self.check_scope()?;
        let name = obj.meta().name.clone().unwrap_or_default();
        check_name(&name)?;
        let mut pp = PatchParams::apply(field_manager);
        pp.force = force;
        self.client
            .run(
                "apply",
                &self.target(Some(&name)),
                self.api.patch(&name, &pp, &Patch::Apply(obj)),
            )
            .await
    }

    /// JSON merge patch.
    pub async fn merge_patch(&self, name: &str, patch: &serde_json::Value) -> Result<K> {
        self.check_scope()?;
        check_name(name)?;
        self.client
            .run(
                "patch",
                &self.target(Some(name)),
                self.api
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch)),
            )
            .await
    }

    /// Strategic merge patch (built-in kinds only).
    pub async fn strategic_patch(&self, name: &str, patch: &serde_json::Value) -> Result<K> {
        self.check_scope()?;
        check_name(name)?;
        self.client
            .run(
                "patch",
                &self.target(Some(name)),
                self.api
                    .patch(name, &PatchParams::default(), &Patch::Strategic(patch)),
            )
            .await
    }

    /// Deletes one object. Returns `true` when the object is gone or going,
    /// `false` when it did not exist.
    pub async fn delete(&self, name: &str, opts: &DeleteOptions) -> Result<bool> {
        self.check_scope()?;
        check_name(name)?;
        let res = self
            .client
            .run(
                "delete",
                &self.target(Some(name)),
                self.api.delete(name, &opts.to_params()),
            )
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The deadline `timeout` from now; `None` (no deadline) when the sum does
/// not fit the clock, as for `Duration::MAX`.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<tokio::time::Instant> {
    tokio::time::Instant::now().checked_add(timeout)
}

/// Rejects names that cannot be a path segment of the API, so such input
/// never leaves the process: the API server's own path-segment rules
/// (not `.` or `..`, no `/` or `%`), plus what kube would misread because
/// it does not escape names (`?` starts a query, `#` a fragment), plus
/// empty names, whitespace, control characters and more than 253 bytes.
/// Kind-specific rules (DNS-1123 and friends) are the API server's to
/// enforce: it answers Invalid and changes nothing.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("may not be empty")
    } else if name == "." || name == ".." {
        Some("may not be '.' or '..'")
    } else if name.len() > 253 {
        Some("must be no more than 253 bytes")
    } else if name.contains(['/', '%']) {
        Some("may not contain '/' or '%'")
    } else if name.contains(['?', '#']) {
        Some("may not contain '?' or '#'")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("may not contain whitespace or control characters")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(Error::invalid(format!(
            "{name:?} is not a valid object name: it {p}"
        ))),
    }
}

/// Rejects namespaces that are not DNS-1123 labels (the API server's rule
/// for namespace names), with the API server's wording.
pub(crate) fn check_namespace(namespace: &str) -> Result<()> {
    let problems = kubepkg_util::names::dns1123_label_messages(namespace);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{namespace:?} is not a valid namespace: {}",
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<serde_json::value::RawValue> {
        serde_json::value::RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn list_items_get_their_type_meta_once() {
        let typed = |s: &str| {
            let out = with_type_meta(raw(s), "\"v1\"", "\"Pod\"").unwrap();
            serde_json::from_str::<serde_json::Value>(out.get()).unwrap()
        };
        // A built-in type's item: both added, nothing else changed; a
        // nested kind (an owner reference) does not count.
        let v = typed(
            r#" {"metadata": {"name": "a", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet"}]}}"#,
        );
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(
            typed("{}"),
            serde_json::json!({"apiVersion": "v1", "kind": "Pod"})
        );
        // A custom resource's item already has both: left as it is.
        let crd = r#"{"apiVersion":"x.io/v1","kind":"At","spec":{}}"#;
        assert_eq!(
            with_type_meta(raw(crd), "\"v1\"", "\"Pod\"").unwrap().get(),
            crd
        );
        // Not an object: Invalid, no panic.
        let e = with_type_meta(raw("[1]"), "\"v1\"", "\"Pod\"").unwrap_err();
        assert_eq!(e.kind(), kubepkg_util::ErrorKind::Invalid);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("web-1").is_ok());
        assert!(check_name("system:aggregate-to-admin").is_ok());
        assert!(
            check_name("a.b_c=d,e").is_ok(),
            "the server judges the rest"
        );
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a%2f",
            "a?dryRun=All",
            "x#frag",
            "?",
            "#",
            "tab\t",
            &"x".repeat(254),
        ] {
            let err = check_name(bad).unwrap_err();
            assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn namespaces_must_be_dns1123_labels() {
        for ok in ["default", "kube-system", "a", "team-1", &"n".repeat(63)] {
            assert!(check_namespace(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "Team",
            "a/b",
            "..",
            "a?x=1",
            "a#b",
            "a.b",
            "-a",
            "a-",
            "a%2f",
            &"n".repeat(64),
        ] {
            let err = check_namespace(bad).unwrap_err();
            assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid, "{bad:?}");
            assert!(err.to_string().contains("namespace"), "{err}");
        }
    }

    #[test]
    fn field_values_are_escaped_like_apimachinery() {
        // kubepkg builds field selectors with kubepkg-util's FieldSelector.
        let escape = |v: &str| {
            let s = kubepkg_util::selector::FieldSelector::new()
                .eq("f", v)
                .to_string();
            s["f=".len()..].to_string()
        };
        assert_eq!(escape(""), "");
        assert_eq!(escape("plain.name-1"), "plain.name-1");
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape("a=b"), "a\\=b");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(
            escape("x,involvedObject.kind=Secret"),
            "x\\,involvedObject.kind\\=Secret"
        );
    }

    #[tokio::test]
    async fn huge_timeouts_mean_no_deadline() {
        assert!(deadline_after(std::time::Duration::MAX).is_none());
        assert!(deadline_after(std::time::Duration::from_secs(5)).is_some());
    }

    #[test]
    fn list_options_map_to_params() {
        let p = ListOptions::labels("app=web")
            .fields("status.phase=Running")
            .page_size(7)
            .to_params(Some("tok".into()));
        assert_eq!(p.label_selector.as_deref(), Some("app=web"));
        assert_eq!(p.field_selector.as_deref(), Some("status.phase=Running"));
        assert_eq!(p.limit, Some(7));
        assert_eq!(p.continue_token.as_deref(), Some("tok"));
    }

    #[test]
    fn delete_options_map_to_params() {
        let d = DeleteOptions {
            grace_period_secs: Some(0),
            propagation: Propagation::Foreground,
            dry_run: true,
        }
        .to_params();
        assert_eq!(d.grace_period_seconds, Some(0));
        assert!(d.dry_run);
        assert!(matches!(
            d.propagation_policy,
            Some(PropagationPolicy::Foreground)
        ));
    }
}
