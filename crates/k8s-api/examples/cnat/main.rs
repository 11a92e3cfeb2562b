//! The `cnat` operator of the client-go notes ("cloud native at"), on
//! kubepkg's `runtime` feature: a custom resource `At` whose controller
//! runs a command at a given time (see `operator.rs` for the phases and
//! what Done means on kwok's simulated nodes).
//!
//! ```text
//! KUBECONFIG=target/kubepkg-env/kubeconfig \
//!   cargo run -p kubepkg-k8s-api --features runtime --example cnat            # demo
//! KUBECONFIG=... cargo run -p kubepkg-k8s-api --features runtime --example cnat -- run   # operator until Ctrl-C
//! ```
//!
//! Any cluster works: the client comes from the default sources
//! (in-cluster, `$KUBECONFIG`, `~/.kube/config`). The demo installs the
//! CRD, runs the controller for a demo namespace, creates an `At` for
//! five seconds from now, follows it to Done, deletes it and checks that
//! its Job went with it. `run` installs the CRD and runs the controller
//! for every namespace.

// The test (`tests/cnat.rs`) reads the attempts the demo does not.
#[allow(dead_code)]
mod operator;

use futures::StreamExt as _;
use kubepkg_k8s_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubepkg_k8s_api::k8s_openapi::jiff;
use kubepkg_k8s_api::runtime::RequeueBackoff;
use kubepkg_k8s_api::{DeleteOptions, global};
use operator::{At, AtSpec, Ctx, DONE};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = global::client().await?;
    operator::install_crd(&client).await?;
    println!("CRD {} established", operator::crd_name());
    let backoff = RequeueBackoff::new(Duration::from_millis(200), Duration::from_secs(60));
    if std::env::args().nth(1).as_deref() == Some("run") {
        let ctx = Ctx::new(client, backoff);
        operator::controller(None, ctx)?
            .for_each(|()| async {})
            .await;
        return Ok(());
    }

    let ns = format!("cnat-demo-{}", std::process::id());
    client.namespaces().ensure(&ns, &Default::default()).await?;
    client
        .service_accounts(&ns)
        .wait_for("default", T, |_| Some(()))
        .await?;
    let ctx = Ctx::new(client.clone(), backoff);
    let running = tokio::spawn(operator::controller(Some(&ns), ctx)?.for_each(|()| async {}));

    let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
    let schedule = serde_json::to_value(Time(when))?;
    let schedule = schedule.as_str().unwrap_or_default().to_string();
    let at = At::new(
        "hello",
        AtSpec {
            schedule: schedule.clone(),
            command: vec!["echo".into(), "hello".into()],
        },
    );
    let ats = client.namespaced::<At>(&ns);
    ats.create(&at).await?;
    println!("At {ns}/hello created for {schedule}");
    let mut last = String::new();
    let done = ats
        .wait_for("hello", T, |at| {
            let status = at.status.clone().unwrap_or_default();
            if status.phase != last {
                println!("  phase {:?} (job {:?})", status.phase, status.job);
                last = status.phase.clone();
            }
            (status.phase == DONE).then_some(status)
        })
        .await?;
    println!("At done: result {:?}", done.result);

    ats.delete("hello", &DeleteOptions::default()).await?;
    ats.wait_deleted("hello", T).await?;
    client.jobs(&ns).wait_deleted("hello-run", T).await?;
    println!("At deleted, and its Job with it");
    running.abort();
    client
        .namespaces()
        .delete(&ns, &DeleteOptions::default())
        .await?;
    Ok(())
}
