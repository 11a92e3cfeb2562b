//! Events of a namespace or of one object, newest first, from either API.
//!
//! ```text
//! KUBECONFIG=target/kubepkg-env/kubeconfig cargo run --example k8s_events                       # kube-system
//! KUBECONFIG=... cargo run --example k8s_events -- NAMESPACE [KIND NAME] [--events-v1]
//! ```

use kubepkg::k8s::events::{EventApi, ObjectRef};
use kubepkg::k8s::global;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = global::client().await?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let api = if args.iter().any(|a| a == "--events-v1") {
        EventApi::EventsV1
    } else {
        EventApi::CoreV1
    };
    args.retain(|a| !a.starts_with("--"));
    let ns = args
        .first()
        .cloned()
        .unwrap_or_else(|| "kube-system".into());
    let events = match (args.get(1), args.get(2)) {
        (Some(kind), Some(name)) => {
            let target = ObjectRef {
                namespace: ns.clone(),
                kind: kind.clone(),
                name: name.clone(),
                uid: None,
            };
            client.events_for(&target, api).await?
        }
        _ => client.namespace_events(&ns, api).await?,
    };
    println!("{} events in {ns} ({api:?}), newest first", events.len());
    for e in events.iter().take(30) {
        let when = e
            .when()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{when:<32} {:<8} {:<22} {}/{}: {} (x{})",
            e.type_, e.reason, e.object_kind, e.object_name, e.message, e.count
        );
    }
    Ok(())
}
