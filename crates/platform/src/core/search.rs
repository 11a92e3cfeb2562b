//! Multi-cluster search: one list of any kind across all clusters, or those
//! whose labels match a selector, asked concurrently with a bound.
//!
//! Each item is tagged with its cluster; a cluster that fails (down,
//! forbidden, kind not served) is reported beside the results instead of
//! failing the search, and is left out of later pages.
//!
//! # Paging across clusters
//!
//! A page holds at most `limit` items, merged from every cluster in one
//! order — the API server's own list order, `namespace/name` — so a page
//! draws from all clusters fairly and the order is stable. The continue
//! token is opaque (base64url JSON) and carries, per cluster still to be
//! read, the Kubernetes continue token of its current batch and how many
//! items of that batch were already returned, plus a fingerprint of the
//! query: it stays valid across clusters, and a token used with another
//! query is Invalid. Kubernetes continue tokens expire after a few
//! minutes (etcd compaction); a cluster whose token expired is reported
//! with its error.

use super::Platform;
use crate::{Error, Result};
use base64::Engine as _;
use futures::StreamExt as _;
use kubepkg_k8s_api::ListOptions;
use kubepkg_k8s_api::dynamic::DynamicObject;
use kubepkg_util::ErrorKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tracing::Instrument as _;

/// The largest page a search returns.
pub const MAX_LIMIT: u32 = 1000;

/// What to search for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// `v1`, `apps/v1`, `example.com/v1`…
    pub api_version: String,
    /// `Pod`, `Deployment`, `Event`, any kind the clusters serve.
    pub kind: String,
    /// One namespace, or all (`None`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector on the objects.
    #[serde(default)]
    pub label_selector: Option<String>,
    /// Field selector on the objects.
    #[serde(default)]
    pub field_selector: Option<String>,
    /// These clusters only (`None`: every cluster, or those matching
    /// `cluster_selector`).
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    /// Label selector on the clusters' labels.
    #[serde(default)]
    pub cluster_selector: Option<String>,
    /// Page size (1..=[`MAX_LIMIT`]).
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// The token of the previous page.
    #[serde(default)]
    pub continue_token: Option<String>,
}

fn default_limit() -> u32 {
    100
}

impl SearchQuery {
    /// A search of `kind` (of `api_version`) in every cluster and namespace.
    pub fn new(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        SearchQuery {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            label_selector: None,
            field_selector: None,
            clusters: None,
            cluster_selector: None,
            limit: default_limit(),
            continue_token: None,
        }
    }

    /// Pods.
    pub fn pods() -> Self {
        SearchQuery::new("v1", "Pod")
    }

    /// Deployments.
    pub fn deployments() -> Self {
        SearchQuery::new("apps/v1", "Deployment")
    }

    /// Events (core/v1).
    pub fn events() -> Self {
        SearchQuery::new("v1", "Event")
    }

    /// In one namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// With a label selector on the objects.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// With a label selector on the clusters.
    pub fn cluster_selector(mut self, selector: impl Into<String>) -> Self {
        self.cluster_selector = Some(selector.into());
        self
    }

    /// Page size.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = n;
        self
    }

    /// Continues after a page.
    pub fn after(mut self, token: impl Into<String>) -> Self {
        self.continue_token = Some(token.into());
        self
    }

    fn fingerprint(&self) -> String {
        // Everything that changes the result set, not the paging.
        let v = serde_json::json!([
            self.api_version,
            self.kind,
            self.namespace,
            self.label_selector,
            self.field_selector,
        ]);
        v.to_string()
    }
}

/// One object found, with its cluster.
#[derive(Debug, Clone, Serialize)]
pub struct SearchItem {
    /// The cluster it lives in.
    pub cluster: String,
    /// The object.
    pub object: DynamicObject,
}

/// A cluster that could not be searched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchError {
    /// The cluster.
    pub cluster: String,
    /// The error's kind.
    pub kind: ErrorKind,
    /// The error's message.
    pub message: String,
}

/// One page of a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// The items, in `namespace/name` order across clusters.
    pub items: Vec<SearchItem>,
    /// Clusters that failed on this page.
    pub errors: Vec<SearchError>,
    /// The clusters asked for this page.
    pub clusters: Vec<String>,
    /// Token of the next page; `None` when every cluster is done.
    pub continue_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Kubernetes continue token of the current batch (`None`: the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    /// Items of that batch already returned.
    #[serde(default)]
    s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    v: u8,
    q: String,
    c: BTreeMap<String, Cursor>,
}

impl Token {
    fn encode(&self) -> Result<String> {
        let json =
            serde_json::to_vec(self).map_err(|e| Error::Invalid(format!("continue token: {e}")))?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(s: &str, fingerprint: &str) -> Result<Token> {
        let bad = || Error::Invalid("the continue token is not one this search issued".into());
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| bad())?;
        let t: Token = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if t.v != 1 {
            return Err(bad());
        }
        if t.q != fingerprint {
            return Err(Error::Invalid(
                "the continue token belongs to another query (kind, namespace or selectors differ)"
                    .into(),
            ));
        }
        Ok(t)
    }
}

/// The list-order key of an object: `namespace/name`, or `name`.
fn order_key(o: &DynamicObject) -> String {
    match &o.metadata.namespace {
        Some(ns) => format!("{ns}/{}", o.metadata.name.as_deref().unwrap_or_default()),
        None => o.metadata.name.clone().unwrap_or_default(),
    }
}

struct Batch {
    cluster: String,
    cursor: Cursor,
    items: Vec<DynamicObject>,
    next: Option<String>,
}

impl Platform {
    /// One page of a multi-cluster search. See the module docs.
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        if q.limit == 0 || q.limit > MAX_LIMIT {
            return Err(Error::Invalid(format!(
                "limit {} is out of range 1..={MAX_LIMIT}",
                q.limit
            )));
        }
        if let Some(ns) = &q.namespace
            && !kubepkg_util::names::is_dns1123_label(ns)
        {
            return Err(Error::Invalid(format!(
                "namespace {ns:?} is not a DNS-1123 label"
            )));
        }
        let fingerprint = q.fingerprint();
        let cursors: BTreeMap<String, Cursor> = match &q.continue_token {
            Some(t) => Token::decode(t, &fingerprint)?.c,
            None => self
                .search_targets(q)
                .await?
                .into_iter()
                .map(|c| (c, Cursor { k: None, s: 0 }))
                .collect(),
        };
        let clusters: Vec<String> = cursors.keys().cloned().collect();
        let limit = q.limit;
        let opts = ListOptions {
            label_selector: q.label_selector.clone(),
            field_selector: q.field_selector.clone(),
            page_size: None,
        };
        let fetched = futures::stream::iter(cursors)
            .map(|(cluster, cursor)| {
                let opts = opts.clone().page_size(limit.saturating_add(cursor.s));
                async move {
                    let res = self
                        .with_client(&cluster, |c| {
                            let cursor = cursor.clone();
                            async move {
                                let handle = c
                                    .dynamic(&q.api_version, &q.kind, q.namespace.as_deref())
                                    .await?;
                                handle.list_page(&opts, cursor.k.clone()).await
                            }
                        })
                        .await;
                    (cluster, cursor, res)
                }
            })
            .buffer_unordered(self.options().concurrency.max(1))
            .collect::<Vec<_>>()
            .instrument(tracing::info_span!(
                "search",
                backend = "kubernetes",
                operation = "search",
                target = %format!("{}/{}", q.api_version, q.kind),
                clusters = clusters.len()
            ))
            .await;

        let mut errors = Vec::new();
        let mut batches = Vec::new();
        for (cluster, cursor, res) in fetched {
            match res {
                Ok(page) => {
                    let skip = usize::try_from(cursor.s).unwrap_or(usize::MAX);
                    let mut items: Vec<DynamicObject> = page.items.into_iter().skip(skip).collect();
                    items.sort_by_cached_key(order_key);
                    batches.push(Batch {
                        cluster,
                        cursor,
                        items,
                        next: page.continue_token,
                    });
                }
                Err(e) => errors.push(SearchError {
                    cluster,
                    kind: e.kind(),
                    message: e.to_string(),
                }),
            }
        }
        errors.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        batches.sort_by(|a, b| a.cluster.cmp(&b.cluster));

        // k-way merge by list order, ties by cluster name (batches are
        // sorted by cluster). Keys are computed once; objects are moved.
        let mut queues: Vec<std::collections::VecDeque<(String, DynamicObject)>> = batches
            .iter_mut()
            .map(|b| {
                std::mem::take(&mut b.items)
                    .into_iter()
                    .map(|o| (order_key(&o), o))
                    .collect()
            })
            .collect();
        let lens: Vec<usize> = queues.iter().map(|q| q.len()).collect();
        let mut items = Vec::with_capacity(limit as usize);
        while items.len() < limit as usize {
            let mut best: Option<usize> = None;
            for (i, q) in queues.iter().enumerate() {
                if let Some((key, _)) = q.front()
                    && best.is_none_or(|b| queues[b].front().is_some_and(|(k, _)| key < k))
                {
                    best = Some(i);
                }
            }
            let Some(i) = best else { break };
            if let Some((_, object)) = queues[i].pop_front() {
                items.push(SearchItem {
                    cluster: batches[i].cluster.clone(),
                    object,
                });
            }
        }

        let mut next = BTreeMap::new();
        for (i, b) in batches.into_iter().enumerate() {
            let used = lens[i] - queues[i].len();
            if !queues[i].is_empty() {
                let consumed = u32::try_from(used).unwrap_or(u32::MAX);
                next.insert(
                    b.cluster,
                    Cursor {
                        k: b.cursor.k,
                        s: b.cursor.s.saturating_add(consumed),
                    },
                );
            } else if let Some(k) = b.next {
                next.insert(b.cluster, Cursor { k: Some(k), s: 0 });
            }
        }
        let continue_token = if next.is_empty() {
            None
        } else {
            Some(
                Token {
                    v: 1,
                    q: fingerprint,
                    c: next,
                }
                .encode()?,
            )
        };
        Ok(SearchPage {
            items,
            errors,
            clusters,
            continue_token,
        })
    }

    /// The clusters a first page asks: the named ones, or every cluster
    /// matching the selector.
    async fn search_targets(&self, q: &SearchQuery) -> Result<Vec<String>> {
        let records = self.clusters(q.cluster_selector.as_deref()).await?;
        Ok(match &q.clusters {
            None => records.into_iter().map(|r| r.name).collect(),
            Some(names) => {
                for n in names {
                    if !records.iter().any(|r| &r.name == n) {
                        return Err(Error::NotFound(format!("cluster {n:?}")));
                    }
                }
                let mut v = names.clone();
                v.sort();
                v.dedup();
                v
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepkg_k8s_api::{k8s_openapi, kube};

    #[test]
    fn tokens_round_trip_and_refuse_other_queries() {
        let q = SearchQuery::pods().namespace("a");
        let mut c = BTreeMap::new();
        c.insert(
            "x".to_string(),
            Cursor {
                k: Some("abc".into()),
                s: 3,
            },
        );
        let t = Token {
            v: 1,
            q: q.fingerprint(),
            c,
        };
        let s = t.encode().unwrap();
        assert_eq!(Token::decode(&s, &q.fingerprint()).unwrap(), t);
        let other = SearchQuery::pods().namespace("b");
        assert_eq!(
            Token::decode(&s, &other.fingerprint()).unwrap_err().kind(),
            ErrorKind::Invalid
        );
        assert_eq!(
            Token::decode("!!!", &q.fingerprint()).unwrap_err().kind(),
            ErrorKind::Invalid
        );
        // A page size does not change the result set.
        assert_eq!(q.clone().limit(5).fingerprint(), q.fingerprint());
    }

    #[test]
    fn list_order_matches_the_servers_key_order() {
        let obj = |ns: &str, name: &str| {
            let mut o = DynamicObject::new(
                name,
                &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
            );
            o.metadata.namespace = Some(ns.into());
            o
        };
        // etcd compares whole keys: "a-b/x" < "a/y" because '-' < '/'.
        assert!(order_key(&obj("a-b", "x")) < order_key(&obj("a", "y")));
    }
}
