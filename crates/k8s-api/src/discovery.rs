//! Discovery: resolving `apiVersion` + `kind` to a resource (plural, scope,
//! verbs), cached per client and per group-version, refreshed on a miss so a
//! freshly established CRD is found without rebuilding anything.
//!
//! The `apiVersion` becomes part of the discovery URL (`/apis/{group}/{version}`),
//! so it is checked first, before any request: the group (when there is
//! one) must be a DNS-1123 subdomain (`apps`, `example.com`) and the
//! version a DNS-1123 label (`v1`, `v1beta2`, or a custom resource's own
//! version name). Anything else (`../../api/v1`, `apps/v1?x=1`, `/v1`) is
//! an [`Error::Invalid`] — see [`check_api_version`].

use crate::{Client, Error, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::discovery::ApiResource;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What discovery knows about one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKind {
    /// Group, version, kind and plural, as kube's dynamic API wants them.
    pub resource: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Verbs the resource supports (`get`, `list`, `patch`…).
    pub verbs: Vec<String>,
}

impl ResolvedKind {
    /// Whether `verb` is supported.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

#[derive(Debug, Default)]
pub(crate) struct DiscoveryCache {
    by_gv: RwLock<HashMap<String, Arc<HashMap<String, ResolvedKind>>>>,
    fetch: tokio::sync::Mutex<()>,
}

impl DiscoveryCache {
    fn lookup(&self, gv: &str, kind: &str) -> (bool, Option<ResolvedKind>) {
        let map = match self.by_gv.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match map.get(gv) {
            Some(kinds) => (true, kinds.get(kind).cloned()),
            None => (false, None),
        }
    }

    fn store(&self, gv: &str, kinds: HashMap<String, ResolvedKind>) {
        let mut map = match self.by_gv.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.insert(gv.to_string(), Arc::new(kinds));
    }

    pub(crate) fn clear(&self) {
        match self.by_gv.write() {
            Ok(mut g) => g.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }
}

/// Checks that `api_version` is `version` or `group/version` with a
/// DNS-1123 subdomain group and a DNS-1123 label version, so that it can
/// go into a URL path as it is. Fails with [`Error::Invalid`]; see the
/// [module docs](self).
///
/// ```
/// use kubepkg_k8s_api::discovery::check_api_version;
///
/// assert!(check_api_version("v1").is_ok());
/// assert!(check_api_version("apps/v1").is_ok());
/// assert!(check_api_version("example.com/v1alpha1").is_ok());
/// for bad in ["../../api/v1", "apps/v1?x=1", "apps/v1#f", "/v1", "apps/", "a/b/v1", "V1", ""] {
///     assert!(check_api_version(bad).is_err(), "{bad}");
/// }
/// ```
pub fn check_api_version(api_version: &str) -> Result<()> {
    use kubepkg_util::names::{is_dns1123_label, is_dns1123_subdomain};
    let problem = match api_version.split_once('/') {
        _ if api_version.is_empty() => Some("it is empty"),
        None if !is_dns1123_label(api_version) => {
            Some("a version must be a DNS-1123 label such as v1 or v1beta1")
        }
        None => None,
        Some((group, version)) => {
            if !is_dns1123_subdomain(group) {
                Some("the group must be a DNS-1123 subdomain such as apps or example.com")
            } else if !is_dns1123_label(version) {
                Some("the version must be a DNS-1123 label such as v1 or v1beta1")
            } else {
                None
            }
        }
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::invalid(format!(
            "apiVersion {:?} is not a valid group/version: {why}",
            // Bounded, so a pasted blob does not fill the error.
            api_version.chars().take(100).collect::<String>()
        ))),
    }
}

fn split_gv(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn kinds_of(list: APIResourceList, api_version: &str) -> HashMap<String, ResolvedKind> {
    let (group, version) = split_gv(api_version);
    list.resources
        .into_iter()
        // Subresources (`pods/log`) are not kinds of their own.
        .filter(|r| !r.name.contains('/'))
        .map(|r| {
            let ar = ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: api_version.to_string(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
            };
            (
                r.kind,
                ResolvedKind {
                    resource: ar,
                    namespaced: r.namespaced,
                    verbs: r.verbs,
                },
            )
        })
        .collect()
}

impl Client {
    /// Resolves `apiVersion` + `kind` (e.g. `apps/v1`, `Deployment`) through
    /// discovery. Cached; a miss refreshes that group-version once, then
    /// answers [`Error::NotFound`]. An `apiVersion` that is not a valid
    /// group/version ([`check_api_version`]) is [`Error::Invalid`], and
    /// nothing is sent.
    pub async fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<ResolvedKind> {
        if api_version.is_empty() || kind.is_empty() {
            return Err(Error::invalid("apiVersion and kind must both be set"));
        }
        check_api_version(api_version)?;
        if let (_, Some(hit)) = self.discovery.lookup(api_version, kind) {
            return Ok(hit);
        }
        let _one_fetch_at_a_time = self.discovery.fetch.lock().await;
        // Someone else may have refreshed it while we waited.
        if let (_, Some(hit)) = self.discovery.lookup(api_version, kind) {
            return Ok(hit);
        }
        let kinds = self.fetch_group_version(api_version).await?;
        let found = kinds.get(kind).cloned();
        self.discovery.store(api_version, kinds);
        found.ok_or_else(|| {
            Error::NotFound(format!(
                "kind {kind} is not served by {api_version} on cluster {}",
                self.name()
            ))
        })
    }

    /// Drops every cached discovery answer.
    pub fn forget_discovery(&self) {
        self.discovery.clear();
    }

    async fn fetch_group_version(
        &self,
        api_version: &str,
    ) -> Result<HashMap<String, ResolvedKind>> {
        let target = format!("/apis/{api_version}");
        let (group, _) = split_gv(api_version);
        let res = if group.is_empty() {
            self.run(
                "discovery",
                &target,
                self.kube().list_core_api_resources(api_version),
            )
            .await
        } else {
            self.run(
                "discovery",
                &target,
                self.kube().list_api_group_resources(api_version),
            )
            .await
        };
        match res {
            Ok(list) => Ok(kinds_of(list, api_version)),
            Err(e) if e.is_not_found() => Err(Error::NotFound(format!(
                "API group version {api_version} is not served by cluster {}",
                self.name()
            ))),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    #[test]
    fn api_versions_that_are_no_path_segments_are_rejected() {
        for ok in [
            "v1",
            "apps/v1",
            "rbac.authorization.k8s.io/v1",
            "x.io/v2beta3",
            "a.b/custom",
        ] {
            assert!(check_api_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../../api/v1",
            "apps/v1?x=1",
            "apps/v1#frag",
            "apps/v1/",
            "/v1",
            "apps/",
            "apps/../v1",
            "apps/v1%2F..",
            "Apps/v1",
            "apps/V1",
            "a b/v1",
            "apps/v1\n",
        ] {
            let err = check_api_version(bad).unwrap_err();
            assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid, "{bad}");
            assert!(err.to_string().contains("apiVersion"), "{err}");
        }
        let long = "a".repeat(10_000);
        assert!(check_api_version(&long).unwrap_err().to_string().len() < 300);
    }

    #[test]
    fn group_versions_split() {
        assert_eq!(split_gv("v1"), ("", "v1"));
        assert_eq!(split_gv("apps/v1"), ("apps", "v1"));
    }

    #[test]
    fn subresources_are_dropped() {
        let list = APIResourceList {
            group_version: "apps/v1".into(),
            resources: vec![
                APIResource {
                    name: "deployments".into(),
                    kind: "Deployment".into(),
                    namespaced: true,
                    verbs: vec!["get".into(), "patch".into()],
                    ..Default::default()
                },
                APIResource {
                    name: "deployments/scale".into(),
                    kind: "Scale".into(),
                    namespaced: true,
                    ..Default::default()
                },
            ],
        };
        let kinds = kinds_of(list, "apps/v1");
        assert_eq!(kinds.len(), 1);
        let d = &kinds["Deployment"];
        assert_eq!(d.resource.plural, "deployments");
        assert_eq!(d.resource.group, "apps");
        assert!(d.namespaced && d.supports("patch") && !d.supports("watch"));
    }
}
