use crate::common::*;
use crate::health::store_broken;
use kubepkg_platform::core::SearchQuery;
use kubepkg_util::ErrorKind;
use std::collections::BTreeMap;

#[tokio::test]
async fn one_search_over_several_names_and_a_broken_entry() {
    let p = platform().await;
    let label = unique("s");
    let ns = namespace_with_configmaps("search", 7, &label).await;
    let names: Vec<String> = (0..3).map(|i| unique(&format!("s{i}"))).collect();
    for n in &names {
        p.import_cluster(import_req(n).label("tier", "search"))
            .await
            .expect("import");
    }
    let broken = unique("sbroken");
    store_broken(&p, &broken).await;
    p.sync_clusters().await.expect("sync");

    let query = SearchQuery::new("v1", "ConfigMap")
        .namespace(&ns)
        .labels(format!("kubepkg-search={label}"))
        .limit(4);
    // Page through: every (cluster, object) exactly once, in one order.
    let mut seen: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut order = Vec::new();
    let mut q = query.clone();
    let mut pages = 0;
    let mut first_errors = None;
    loop {
        let page = p.search(&q).await.expect("search page");
        pages += 1;
        assert!(page.items.len() <= 4);
        if first_errors.is_none() {
            first_errors = Some(page.errors.clone());
            assert_eq!(page.clusters.len(), 4, "{:?}", page.clusters);
        }
        for it in &page.items {
            let name = it.object.metadata.name.clone().unwrap();
            assert_eq!(it.object.metadata.namespace.as_deref(), Some(ns.as_str()));
            *seen.entry((it.cluster.clone(), name.clone())).or_default() += 1;
            order.push((name, it.cluster.clone()));
        }
        match page.continue_token {
            Some(t) => q = query.clone().after(t),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), 3 * 7, "{seen:?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "an item came twice: {seen:?}"
    );
    for n in &names {
        assert_eq!(seen.keys().filter(|(c, _)| c == n).count(), 7);
    }
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        order, sorted,
        "pages follow namespace/name order across clusters"
    );
    assert_eq!(pages, 6, "21 items in pages of 4");

    // The broken entry is reported beside the results, not as a failure.
    let errors = first_errors.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].cluster, broken);
    assert_eq!(errors[0].kind, ErrorKind::Unavailable);
    // The second search gets the fast answer for it.
    let page = p.search(&query).await.unwrap();
    assert!(
        page.errors[0].message.contains("is down since"),
        "{:?}",
        page.errors
    );

    // Cluster selection by label leaves the broken one out.
    let page = p
        .search(&query.clone().cluster_selector("tier=search").limit(100))
        .await
        .unwrap();
    assert!(page.errors.is_empty());
    assert_eq!(page.items.len(), 21);
    assert_eq!(page.continue_token, None);

    // A token is bound to its query.
    let first = p.search(&query).await.unwrap();
    let token = first.continue_token.unwrap();
    let other = SearchQuery::new("v1", "Secret").namespace(&ns).after(token);
    assert_eq!(
        p.search(&other).await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
    let garbage = query.clone().after("not-a-token");
    assert_eq!(
        p.search(&garbage).await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
    for bad in [query.clone().limit(0), query.clone().limit(5000)] {
        assert_eq!(p.search(&bad).await.unwrap_err().kind(), ErrorKind::Invalid);
    }
    // Unknown kinds come back per cluster.
    let page = p
        .search(&SearchQuery::new("v1", "NoSuchKind").cluster_selector("tier=search"))
        .await
        .unwrap();
    assert_eq!(page.errors.len(), 3);
    assert!(
        page.errors.iter().all(|e| e.kind == ErrorKind::NotFound),
        "{:?}",
        page.errors
    );

    delete_namespace(&ns).await;
    for n in &names {
        cleanup(n).await;
    }
}

#[tokio::test]
async fn nodes_are_joined_with_vendor_ids_and_summaries_come_from_the_cluster() {
    let p = platform().await;
    let name = unique("nodes");
    p.import_cluster(import_req(&name)).await.expect("import");
    let node = k8s().nodes[0].clone();
    p.store()
        .upsert_node(&kubepkg_platform::store::NodeRecord {
            cluster: name.clone(),
            node_name: node.clone(),
            provider_instance_id: "ins-0001".into(),
            node_pool: Some("pool-a".into()),
            created_at: jiff::Timestamp::now(),
        })
        .await
        .expect("node record");
    let nodes = p.nodes(&name).await.expect("nodes");
    for n in &k8s().nodes {
        assert!(nodes.iter().any(|v| &v.name == n), "{n} listed");
    }
    let joined = nodes.iter().find(|v| v.name == node).unwrap();
    assert_eq!(joined.provider_instance_id.as_deref(), Some("ins-0001"));
    assert_eq!(joined.node_pool.as_deref(), Some("pool-a"));
    assert!(joined.ready);
    let other = nodes.iter().find(|v| v.name != node).unwrap();
    assert_eq!(other.provider_instance_id, None);

    let summary = p.summary(&name).await.expect("summary");
    assert!(summary.nodes.len() >= k8s().nodes.len());
    cleanup(&name).await;
}
