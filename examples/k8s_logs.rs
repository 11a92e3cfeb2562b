//! Pod logs: tail, timestamps, and a followed stream.
//!
//! ```text
//! KUBECONFIG=target/kubepkg-env/kubeconfig cargo run --example k8s_logs                 # demo pod
//! KUBECONFIG=... cargo run --example k8s_logs -- NAMESPACE POD [CONTAINER]
//! ```
//!
//! Without arguments it creates a pod in a demo namespace, waits until it is
//! Running (kwok serves the simulated logs in the local environment), prints
//! the last lines with timestamps, follows the log for a few lines, and
//! deletes the namespace.

use futures::StreamExt as _;
use kubepkg::k8s::pod::LogOptions;
use kubepkg::k8s::{Client, global};
use std::time::Duration;

async fn show(
    client: &Client,
    ns: &str,
    pod: &str,
    container: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let pods = client.pods(ns);
    let tail = LogOptions {
        container: container.clone(),
        tail_lines: Some(5),
        timestamps: true,
        ..Default::default()
    };
    println!("== last 5 lines of {ns}/{pod}");
    print!("{}", pods.logs(pod, &tail).await?);
    println!("== following (first 3 lines)");
    let follow = LogOptions {
        container,
        ..Default::default()
    };
    let mut lines = pods.log_stream(pod, &follow).await?.take(3);
    while let Some(line) = lines.next().await {
        println!("{}", line?);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = global::client().await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() >= 2 {
        return show(&client, &args[0], &args[1], args.get(2).cloned()).await;
    }
    let ns = "kubepkg-logs-demo";
    client.namespaces().ensure(ns, &Default::default()).await?;
    client
        .service_accounts(ns)
        .wait_for("default", Duration::from_secs(30), |_| Some(()))
        .await?;
    let pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "talker"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}], "terminationGracePeriodSeconds": 0}
    }))?;
    if client.pods(ns).get_opt("talker").await?.is_none() {
        client.pods(ns).create(&pod).await?;
    }
    client
        .pods(ns)
        .wait_ready("talker", Duration::from_secs(60))
        .await?;
    let res = show(&client, ns, "talker", None).await;
    client.namespaces().delete(ns, &Default::default()).await?;
    res
}
