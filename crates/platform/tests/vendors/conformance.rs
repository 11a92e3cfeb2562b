//! The same scenarios on every cluster provider, each against its
//! simulator: success paths, throttling retried, auth errors not retried,
//! not found, an operation that stays pending and then fails, a deadline,
//! and no credential in errors or `Debug`.

use crate::common::{self, assert_absent, wait};
use kubepkg_platform::Error;
use kubepkg_platform::provider::{ClusterProvider, ClusterSpec, NodePoolSpec, PollResult};
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::{SimHandle, SimOptions};
use std::sync::Arc;
use std::time::Duration;

/// One vendor under test: its simulator, an adapter with the right
/// credentials and one with a wrong secret.
pub struct Vendor {
    pub sim: SimHandle,
    pub good: Arc<dyn ClusterProvider>,
    pub bad: Arc<dyn ClusterProvider>,
    /// Whether the vendor sends request ids (Rancher does not).
    pub request_ids: bool,
}

pub async fn vendor(kind: &str, options: SimOptions) -> Vendor {
    match kind {
        "tke" => {
            let sim = kubepkg_vendor_sim::tke::start(options).await;
            let good = Arc::new(common::tke(&sim, None));
            let bad = Arc::new(common::tke(&sim, Some("not-the-secret-key")));
            Vendor {
                sim,
                good,
                bad,
                request_ids: true,
            }
        }
        "ack" => {
            let sim = kubepkg_vendor_sim::ack::start(options).await;
            let good = Arc::new(common::ack(&sim, None));
            let bad = Arc::new(common::ack(&sim, Some("not-the-access-key-secret")));
            Vendor {
                sim,
                good,
                bad,
                request_ids: true,
            }
        }
        "rancher" => {
            let sim = kubepkg_vendor_sim::rancher::start(options).await;
            let good = Arc::new(common::rancher(&sim, None));
            let bad = Arc::new(common::rancher(&sim, Some("token-wrong:not-the-key")));
            Vendor {
                sim,
                good,
                bad,
                request_ids: false,
            }
        }
        other => panic!("no such vendor {other}"),
    }
}

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        kubernetes_version: Some("1.30.0".into()),
        node_pools: vec![NodePoolSpec {
            name: "default".into(),
            instance_type: "S5.MEDIUM4".into(),
            count: 0,
            ..NodePoolSpec::default()
        }],
        ..ClusterSpec::default()
    }
}

async fn poll_until_done(
    p: &dyn ClusterProvider,
    op: &kubepkg_platform::provider::VendorOperation,
) -> PollResult {
    for _ in 0..50 {
        match p.poll(op).await.expect("poll") {
            PollResult::Running => tokio::time::sleep(Duration::from_millis(10)).await,
            done => return done,
        }
    }
    panic!("{} did not end", op.kind);
}

pub async fn create_describe_list_delete(kind: &str) {
    let v = vendor(kind, SimOptions::default()).await;
    let op = v
        .good
        .create_cluster(&spec("conf-ok"))
        .await
        .expect("create");
    assert!(!op.done && !op.target.is_empty(), "{op:?}");
    assert_eq!(
        op.request_id.is_some(),
        v.request_ids,
        "the vendor's request id is kept"
    );
    assert_eq!(poll_until_done(&*v.good, &op).await, PollResult::Succeeded);
    let c = v.good.describe_cluster(&op.target).await.expect("describe");
    assert_eq!(c.id, op.target);
    assert_eq!(c.state, kubepkg_platform::provider::VendorState::Running);
    let all = v.good.list_clusters().await.expect("list");
    assert!(all.iter().any(|c| c.id == op.target), "{all:?}");
    let del = v.good.delete_cluster(&op.target).await.expect("delete");
    assert_eq!(poll_until_done(&*v.good, &del).await, PollResult::Succeeded);
    let err = v.good.describe_cluster(&op.target).await.expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

pub async fn throttling_is_retried(kind: &str) {
    let v = vendor(kind, SimOptions::default()).await;
    v.sim.throttle_next(2);
    let before = v.sim.requests();
    v.good
        .list_clusters()
        .await
        .expect("retried past two throttled answers");
    assert_eq!(
        v.sim.requests() - before,
        3,
        "two throttled attempts, then the answer"
    );
    // More throttling than the client retries: Unavailable, with the vendor's code.
    v.sim.throttle_next(10);
    let err = v.good.list_clusters().await.expect_err("still throttled");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(matches!(err, Error::Provider { .. }), "{err:?}");
}

pub async fn auth_errors_are_not_retried(kind: &str) {
    let v = vendor(kind, SimOptions::default()).await;
    let before = v.sim.requests();
    let err = v.bad.list_clusters().await.expect_err("wrong secret");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(
        v.sim.requests() - before,
        1,
        "an auth failure is not retried"
    );
    match &err {
        Error::Provider {
            code, request_id, ..
        } => {
            assert!(!code.is_empty());
            assert_eq!(request_id.is_some(), v.request_ids, "{err:?}");
        }
        other => panic!("not a provider error: {other:?}"),
    }
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{:?}", v.bad),
        format!("{:?}", v.good),
    ] {
        assert_absent("error or Debug", &shown, &v.sim.secret);
        assert!(
            !shown.contains(&v.sim.key_id) || v.sim.key_id.is_empty(),
            "{shown}"
        );
    }
}

pub async fn not_found(kind: &str) {
    let v = vendor(kind, SimOptions::default()).await;
    let err = v
        .good
        .describe_cluster("no-such-cluster")
        .await
        .expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = v
        .good
        .kubeconfig("no-such-cluster")
        .await
        .expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

pub async fn pending_then_failed(kind: &str) {
    let v = vendor(
        kind,
        SimOptions {
            polls_to_ready: 3,
            ..SimOptions::default()
        },
    )
    .await;
    let platform = common::platform().await;
    platform.providers().insert_cluster("sim", v.good.clone());
    v.sim.fail_next_create(1);
    let op = platform
        .create_vendor_cluster("sim", &spec("conf-fail"))
        .await
        .expect("accepted");
    let err = platform
        .wait_operation(&op, &wait())
        .await
        .expect_err("fails");
    match &err {
        Error::Provider {
            code,
            message,
            request_id,
            ..
        } => {
            assert!(!code.is_empty() && !message.is_empty(), "{err}");
            assert_eq!(request_id, &op.vendor.request_id);
        }
        other => panic!("not a provider error: {other:?}"),
    }
    let rec = platform
        .store()
        .get_operation(&op.record.id)
        .await
        .expect("recorded");
    assert_eq!(rec.state, kubepkg_platform::store::OperationState::Failed);
    assert!(rec.last_error.is_some());
}

pub async fn deadline(kind: &str) {
    let v = vendor(
        kind,
        SimOptions {
            polls_to_ready: 10_000,
            ..SimOptions::default()
        },
    )
    .await;
    let platform = common::platform().await;
    platform.providers().insert_cluster("sim", v.good.clone());
    let op = platform
        .create_vendor_cluster("sim", &spec("conf-slow"))
        .await
        .expect("accepted");
    let opts = kubepkg_platform::core::WaitOptions {
        deadline: Duration::from_millis(300),
        ..wait()
    };
    let err = platform
        .wait_operation(&op, &opts)
        .await
        .expect_err("too slow");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let rec = platform
        .store()
        .get_operation(&op.record.id)
        .await
        .expect("recorded");
    assert_eq!(rec.state, kubepkg_platform::store::OperationState::Failed);
}

macro_rules! conformance {
    ($($vendor:ident),*) => {
        $(mod $vendor {
            #[tokio::test]
            async fn create_describe_list_delete() { super::create_describe_list_delete(stringify!($vendor)).await }
            #[tokio::test]
            async fn throttling_is_retried() { super::throttling_is_retried(stringify!($vendor)).await }
            #[tokio::test]
            async fn auth_errors_are_not_retried() { super::auth_errors_are_not_retried(stringify!($vendor)).await }
            #[tokio::test]
            async fn not_found() { super::not_found(stringify!($vendor)).await }
            #[tokio::test]
            async fn pending_then_failed() { super::pending_then_failed(stringify!($vendor)).await }
            #[tokio::test]
            async fn deadline() { super::deadline(stringify!($vendor)).await }
        })*
    };
}

conformance!(tke, ack, rancher);
