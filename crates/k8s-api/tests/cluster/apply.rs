//! apply / delete of bundles: ordering, per-object results, bad input,
//! dry run, prune.

use crate::common::{TestNs, admin};
use kubepkg_k8s_api::apply::BUNDLE_LABEL;
use kubepkg_k8s_api::{ApplyOptions, Error, Outcome};
use kubepkg_util::ErrorKind;
use std::time::Duration;

fn bundle(ns: &str, group: &str, cm_value: &str) -> String {
    // Deliberately out of order: the custom resource and the ConfigMaps come
    // before their Namespace and CRD.
    format!(
        r#"apiVersion: {group}/v1
kind: Widget
metadata: {{name: w1, namespace: {ns}}}
spec: {{size: 2}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cm-a, namespace: {ns}}}
data: {{k: "{cm_value}"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cm-b, namespace: {ns}}}
data: {{k: b}}
---
this: is: not: yaml
---
apiVersion: example.invalid/v1
kind: Nope
metadata: {{name: n, namespace: {ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: Bad_Name, namespace: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers: [{{name: app, image: busybox}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{group}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
"#
    )
}

fn outcome_of(report: &kubepkg_k8s_api::ApplyReport, name: &str) -> Outcome {
    let r = report
        .results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result for {name}: {report:?}"));
    match &r.result {
        Ok(o) => *o,
        Err(e) => panic!("{name} failed: {e}"),
    }
}

#[tokio::test]
async fn bundle_applies_in_order_with_typed_errors_dry_run_and_delete() {
    let c = admin().await;
    let ns = kubepkg_testenv::unique_name("kp-apply");
    let group = format!("{}.kubepkg.test", kubepkg_testenv::unique_name("w"));
    let text = bundle(&ns, &group, "a");
    let opts = ApplyOptions::default();
    let report = c.apply(&text, &opts).await;
    assert_eq!(report.results.len(), 9, "{report:?}");
    for name in [
        "w1",
        "cm-a",
        "cm-b",
        "app",
        &format!("widgets.{group}"),
        &ns,
    ] {
        assert_eq!(outcome_of(&report, name), Outcome::Created, "{name}");
    }
    // The three bad documents, each with its own typed error.
    let parse = &report.results[3];
    match &parse.result {
        Err(Error::Parse { index, line, .. }) => assert_eq!((*index, *line), (3, 16)),
        other => panic!("expected a parse error, got {other:?}"),
    }
    let nope = report
        .results
        .iter()
        .find(|r| r.kind == "Nope")
        .expect("nope");
    assert_eq!(
        nope.result.as_ref().unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let bad = report
        .results
        .iter()
        .find(|r| r.name == "Bad_Name")
        .expect("bad");
    let err = bad.result.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(report.failures().count(), 3);
    assert_eq!(report.count(Outcome::Created), 6);
    // Nothing was made of the bad documents.
    assert!(
        c.config_maps(&ns)
            .get_opt("Bad_Name")
            .await
            .expect("get")
            .is_none()
    );
    let widgets = c
        .dynamic(&format!("{group}/v1"), "Widget", Some(&ns))
        .await
        .expect("widgets");
    assert_eq!(widgets.get("w1").await.expect("w1").data["spec"]["size"], 2);

    // Applying again changes nothing (the Deployment's status and the
    // Namespace's managed fields moved meanwhile: not changes of ours).
    let again = c.apply(&text, &opts).await;
    for name in [
        "w1",
        "cm-a",
        "cm-b",
        "app",
        &ns,
        &format!("widgets.{group}"),
    ] {
        assert_eq!(outcome_of(&again, name), Outcome::Unchanged, "{name}");
    }

    // Dry run of a change: reported, not persisted.
    let changed = bundle(&ns, &group, "changed");
    let dry = c
        .apply(
            &changed,
            &ApplyOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(outcome_of(&dry, "cm-a"), Outcome::Configured);
    assert_eq!(outcome_of(&dry, "cm-b"), Outcome::Unchanged);
    let cm_a = dry.results.iter().find(|r| r.name == "cm-a").expect("cm-a");
    assert_eq!(cm_a.changes.len(), 1, "{:?}", cm_a.changes);
    assert_eq!(cm_a.changes[0].path, "data.k");
    assert_eq!(cm_a.changes[0].after, Some(serde_json::json!("changed")));
    let live = c.config_maps(&ns).get("cm-a").await.expect("cm-a");
    assert_eq!(
        live.data.unwrap_or_default()["k"],
        "a",
        "dry run must not persist"
    );

    // A real change: only cm-a is configured, and the change is reported.
    let real = c.apply(&changed, &opts).await;
    assert_eq!(outcome_of(&real, "cm-a"), Outcome::Configured);
    let cm_a = real
        .results
        .iter()
        .find(|r| r.name == "cm-a")
        .expect("cm-a");
    assert_eq!(
        cm_a.changes
            .iter()
            .map(|c| c.path.as_str())
            .collect::<Vec<_>>(),
        ["data.k"]
    );
    assert_eq!(outcome_of(&real, "cm-b"), Outcome::Unchanged);

    // Delete in reverse order: custom resource, then the rest, CRD and Namespace last.
    let del = c.delete_bundle(&changed, &opts).await;
    for name in [
        "w1",
        "cm-a",
        "cm-b",
        "app",
        &format!("widgets.{group}"),
        &ns,
    ] {
        assert_eq!(outcome_of(&del, name), Outcome::Deleted, "{name}");
    }
    c.namespaces()
        .wait_deleted(&ns, Duration::from_secs(120))
        .await
        .expect("namespace gone");
}

#[tokio::test]
async fn json_lists_and_prune_by_bundle_label() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-prune").await;
    let cm = |n: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": n}, "data": {"x": n}})
    };
    let three = serde_json::json!([cm("one"), cm("two"), cm("three")]).to_string();
    let opts = ApplyOptions {
        namespace: Some(ns.name.clone()),
        bundle: Some("b1".into()),
        prune: true,
        ..Default::default()
    };
    let r = c.apply(&three, &opts).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.count(Outcome::Created), 3);
    let labelled = c.config_maps(&ns.name).get("two").await.expect("two");
    assert_eq!(
        labelled.metadata.labels.unwrap_or_default()[BUNDLE_LABEL],
        "b1"
    );
    // An unrelated ConfigMap without the label must survive pruning.
    let mut keep = k8s_openapi::api::core::v1::ConfigMap::default();
    keep.metadata.name = Some("unrelated".into());
    c.config_maps(&ns.name)
        .create(&keep)
        .await
        .expect("unrelated");

    let list =
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [cm("one"), cm("three")]})
            .to_string();
    // A failing document blocks prune.
    let with_bad = format!(
        "{}\n",
        serde_json::json!([cm("one"), cm("three"), cm("Bad_Name")])
    );
    let r = c.apply(&with_bad, &opts).await;
    assert!(r.prune_skipped.is_some());
    assert!(r.pruned.is_empty());
    assert!(
        c.config_maps(&ns.name)
            .get_opt("two")
            .await
            .expect("get")
            .is_some()
    );

    let r = c.apply(&list, &opts).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.pruned.len(), 1, "{r:?}");
    assert_eq!(r.pruned[0].name, "two");
    assert!(matches!(r.pruned[0].result, Ok(Outcome::Deleted)));
    assert!(
        c.config_maps(&ns.name)
            .get_opt("two")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        c.config_maps(&ns.name)
            .get_opt("unrelated")
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(r.count(Outcome::Unchanged), 2);
}

#[tokio::test]
async fn garbage_input_changes_nothing() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-garbage").await;
    for input in [
        "{not json",
        "kind: [",
        "- a\n- b\n",
        "apiVersion: v1\nkind: ConfigMap\n",
        "apiVersion: \"../../api/v1\"\nkind: ConfigMap\nmetadata: {name: up}\n",
        "apiVersion: v1?dryRun=All\nkind: ConfigMap\nmetadata: {name: q}\n",
    ] {
        let r = c
            .apply(
                input,
                &ApplyOptions {
                    namespace: Some(ns.name.clone()),
                    ..Default::default()
                },
            )
            .await;
        assert!(!r.results.is_empty(), "{input:?}");
        assert!(
            r.results
                .iter()
                .all(|o| matches!(o.result, Err(Error::Parse { .. }))),
            "{input:?}: {r:?}"
        );
    }
    let left = c
        .config_maps(&ns.name)
        .list(&Default::default())
        .await
        .expect("list");
    // Only the namespace's own root CA ConfigMap.
    assert!(
        left.iter()
            .all(|c| c.metadata.name.as_deref() == Some("kube-root-ca.crt")),
        "{left:?}"
    );
}

#[tokio::test]
async fn field_managers_conflict_until_forced() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-force").await;
    let doc = |v: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: owned, namespace: {}}}\ndata: {{k: \"{v}\"}}\n",
            ns.name
        )
    };
    let alice = ApplyOptions {
        field_manager: "alice".into(),
        ..Default::default()
    };
    let r = c.apply(&doc("a"), &alice).await;
    assert_eq!(outcome_of(&r, "owned"), Outcome::Created);

    // Another manager setting the same field to another value conflicts,
    // and the object is left as it was.
    let bob = ApplyOptions {
        field_manager: "bob".into(),
        ..Default::default()
    };
    let r = c.apply(&doc("b"), &bob).await;
    let err = r.results[0].result.as_ref().expect_err("conflict expected");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("alice"), "names the owner: {err}");
    let cm = c.config_maps(&ns.name).get("owned").await.expect("get");
    assert_eq!(
        cm.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("a")
    );

    // With force, bob takes the field over.
    let r = c
        .apply(
            &doc("b"),
            &ApplyOptions {
                force: true,
                ..bob.clone()
            },
        )
        .await;
    assert_eq!(outcome_of(&r, "owned"), Outcome::Configured);
    let cm = c.config_maps(&ns.name).get("owned").await.expect("get");
    assert_eq!(
        cm.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("b")
    );
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == "bob"), "{managers:?}");
}

#[tokio::test]
async fn secret_values_never_appear_in_the_report() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-secret-apply").await;
    let doc = |v: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: {}}}\ntype: Opaque\nstringData: {{password: \"{v}\"}}\n",
            ns.name
        )
    };
    let dry = ApplyOptions {
        dry_run: true,
        ..Default::default()
    };
    let r = c.apply(&doc("first-s3cret-value"), &dry).await;
    assert_eq!(outcome_of(&r, "creds"), Outcome::Created);
    assert!(
        r.results[0].changes.iter().any(|ch| ch.path == "data"
            && ch.after == Some(serde_json::json!({"password": kubepkg_k8s_api::apply::REDACTED}))),
        "the changed key is still named: {r:?}"
    );
    c.apply(&doc("first-s3cret-value"), &ApplyOptions::default())
        .await;
    let r = c.apply(&doc("second-s3cret-value"), &dry).await;
    assert_eq!(outcome_of(&r, "creds"), Outcome::Configured);
    let text = format!("{r:?}");
    for leaked in [
        "first-s3cret-value",
        "second-s3cret-value",
        "Zmlyc3QtczNjcmV0LXZhbHVl",
        "c2Vjb25kLXMzY3JldC12YWx1ZQ",
    ] {
        assert!(!text.contains(leaked), "{leaked} leaked into {text}");
    }
    assert!(text.contains(kubepkg_k8s_api::apply::REDACTED), "{text}");
}
