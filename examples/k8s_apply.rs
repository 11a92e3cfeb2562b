//! Apply a bundle of any kinds: server-side apply with ordering, per-object
//! results, dry run, prune and delete.
//!
//! ```text
//! KUBECONFIG=target/kubepkg-env/kubeconfig cargo run --example k8s_apply            # built-in demo bundle
//! KUBECONFIG=... cargo run --example k8s_apply -- bundle.yaml [--dry-run] [--delete]
//! ```
//!
//! The demo bundle holds a Namespace, a CRD and one of its custom
//! resources, a ConfigMap, a Deployment, and two broken documents, out of
//! order; it is applied, applied again, dry-run with a change, and deleted.

use kubepkg::k8s::apply::ObjectResult;
use kubepkg::k8s::{ApplyOptions, ApplyReport, global};

fn print(title: &str, r: &ApplyReport) {
    println!("== {title}");
    let show = |o: &ObjectResult| match &o.result {
        Ok(outcome) => println!(
            "  [{}:{}] {:<40} {outcome:?}",
            o.index,
            o.line,
            o.describe()
        ),
        Err(e) => println!(
            "  [{}:{}] {:<40} ERROR {} ({e})",
            o.index,
            o.line,
            o.describe(),
            e.kind()
        ),
    };
    r.results.iter().for_each(show);
    r.pruned.iter().for_each(show);
    for o in &r.results {
        for c in &o.changes {
            println!("      {}: {:?} -> {:?}", c.path, c.before, c.after);
        }
    }
}

fn demo(ns: &str, value: &str) -> String {
    format!(
        r#"apiVersion: kubepkg.example/v1
kind: Gizmo
metadata: {{name: g1, namespace: {ns}}}
spec: {{color: blue}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{greeting: "{value}"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: busybox}}]}}
---
this is: [not valid yaml
---
apiVersion: v1
kind: NoSuchKind
metadata: {{name: x, namespace: {ns}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: gizmos.kubepkg.example}}
spec:
  group: kubepkg.example
  scope: Namespaced
  names: {{plural: gizmos, singular: gizmo, kind: Gizmo}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
"#
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = global::client().await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let delete = args.iter().any(|a| a == "--delete");
    if let Some(path) = args.iter().find(|a| !a.starts_with("--")) {
        let text = std::fs::read_to_string(path)?;
        let opts = ApplyOptions {
            dry_run,
            ..Default::default()
        };
        let r = if delete {
            client.delete_bundle(&text, &opts).await
        } else {
            client.apply(&text, &opts).await
        };
        print(path, &r);
        std::process::exit(if r.is_ok() { 0 } else { 1 });
    }

    let ns = "kubepkg-apply-demo";
    let opts = ApplyOptions::default();
    print(
        "first apply",
        &client.apply(&demo(ns, "hello"), &opts).await,
    );
    print(
        "apply again",
        &client.apply(&demo(ns, "hello"), &opts).await,
    );
    let dry = ApplyOptions {
        dry_run: true,
        ..Default::default()
    };
    print(
        "dry run of a change",
        &client.apply(&demo(ns, "bonjour"), &dry).await,
    );
    print(
        "delete",
        &client.delete_bundle(&demo(ns, "hello"), &opts).await,
    );
    Ok(())
}
