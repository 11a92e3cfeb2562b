//! A resilient watch: it resumes after dropped connections and re-lists on
//! `410 Gone` without losing or repeating events.
//!
//! ```text
//! KUBECONFIG=target/kubepkg-env/kubeconfig cargo run --example k8s_watch                # demo
//! KUBECONFIG=... cargo run --example k8s_watch -- NAMESPACE       # watch ConfigMaps until Ctrl-C
//! ```
//!
//! The demo watches ConfigMaps of a demo namespace while it creates,
//! changes and deletes one, then cleans up.

use futures::StreamExt as _;
use kubepkg::k8s::k8s_openapi::api::core::v1::ConfigMap;
use kubepkg::k8s::{Event, WatchOptions, global};
use std::time::Duration;

fn describe(e: &Event<ConfigMap>) -> String {
    let (what, cm) = match e {
        Event::Added(c) => ("added", c),
        Event::Modified(c) => ("modified", c),
        Event::Deleted(c) => ("deleted", c),
    };
    format!(
        "{what:<9} {} rv={} data={:?}",
        cm.metadata.name.as_deref().unwrap_or("?"),
        cm.metadata.resource_version.as_deref().unwrap_or("?"),
        cm.data.clone().unwrap_or_default()
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = global::client().await?;
    if let Some(ns) = std::env::args().nth(1) {
        let mut w = client.config_maps(&ns).watch(WatchOptions::default());
        while let Some(ev) = w.next().await {
            println!("{}", describe(&ev?));
        }
        return Ok(());
    }
    let ns = "kubepkg-watch-demo";
    client.namespaces().ensure(ns, &Default::default()).await?;
    let cms = client.config_maps(ns);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("greeting".into());
    cm.metadata.labels = Some([("demo".to_string(), "watch".to_string())].into());
    cm.data = Some([("text".to_string(), "hello".to_string())].into());
    cms.create(&cm).await?;
    // A stream does nothing until polled: take the first event (the
    // existing object) before changing anything.
    let mut w = cms.watch(WatchOptions::labels("demo=watch"));
    if let Some(ev) = w.next().await {
        println!("{}", describe(&ev?));
    }
    let writer = {
        let cms = cms.clone();
        tokio::spawn(async move {
            for word in ["bonjour", "hallo", "ciao"] {
                cms.merge_patch("greeting", &serde_json::json!({"data": {"text": word}}))
                    .await?;
            }
            cms.delete("greeting", &Default::default()).await?;
            Ok::<_, kubepkg::k8s::Error>(())
        })
    };
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_secs(20), w.next()).await {
            Ok(Some(ev)) => println!("{}", describe(&ev?)),
            _ => break,
        }
    }
    writer.await??;
    client.namespaces().delete(ns, &Default::default()).await?;
    Ok(())
}
