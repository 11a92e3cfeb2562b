//! The same registry scenarios on every registry provider, each against
//! its simulator (harbor, tkestack, acr: **simulated endpoints**):
//! namespaces with visibility and repository counts, repositories and
//! tags, per-namespace access (robot accounts, or Unsupported saying why
//! with nothing sent), throttling retried, auth errors not retried, not
//! found, and no credential in errors, `Debug` or logs. The cluster
//! providers' suite is in `conformance.rs`; the real local registry's run
//! is in `local_registry.rs`.

use crate::common::{self, assert_absent, capture_logs};
use kubepkg_platform::provider::{RegistryProvider, Visibility};
use kubepkg_platform::store::Access;
use kubepkg_util::ErrorKind;
use kubepkg_vendor_sim::{SimHandle, SimOptions};
use std::sync::Arc;

/// One registry vendor under test.
pub struct Vendor {
    pub sim: SimHandle,
    pub good: Arc<dyn RegistryProvider>,
    pub bad: Arc<dyn RegistryProvider>,
    /// Whether it has per-namespace robot accounts.
    pub robots: bool,
}

pub async fn vendor(kind: &str) -> Vendor {
    let options = SimOptions::default();
    match kind {
        "harbor" => {
            let sim = kubepkg_vendor_sim::harbor::start(options).await;
            let good = Arc::new(common::harbor(&sim, None, None));
            let bad = Arc::new(common::harbor(&sim, None, Some("not-the-admin-password")));
            Vendor {
                sim,
                good,
                bad,
                robots: true,
            }
        }
        "tkestack" => {
            let sim = kubepkg_vendor_sim::tkestack::start(options).await;
            let good = Arc::new(common::tkestack(&sim, None));
            let bad = Arc::new(common::tkestack(&sim, Some("not-the-tkestack-token")));
            Vendor {
                sim,
                good,
                bad,
                robots: false,
            }
        }
        "acr" => {
            let sim = kubepkg_vendor_sim::acr::start(options).await;
            let good = Arc::new(common::acr(&sim, None));
            let bad = Arc::new(common::acr(&sim, Some("not-the-access-key-secret")));
            Vendor {
                sim,
                good,
                bad,
                robots: false,
            }
        }
        other => panic!("no such registry vendor {other}"),
    }
}

pub async fn namespaces_repositories_tags(kind: &str) {
    let v = vendor(kind).await;
    let p = &v.good;
    let public = p
        .create_namespace("conf-pub", Visibility::Public)
        .await
        .expect("create public");
    assert_eq!(
        (public.name.as_str(), public.visibility),
        ("conf-pub", Visibility::Public)
    );
    p.create_namespace("conf-priv", Visibility::Private)
        .await
        .expect("create private");
    let err = p
        .create_namespace("conf-pub", Visibility::Public)
        .await
        .expect_err("a second namespace of that name");
    assert!(
        matches!(err.kind(), ErrorKind::AlreadyExists | ErrorKind::Conflict),
        "{err}"
    );
    v.sim.push_image("conf-pub/app", "v1");
    v.sim.push_image("conf-pub/app", "v2");
    v.sim.push_image("conf-pub/tools", "latest");
    let all = p.list_namespaces().await.expect("list namespaces");
    let get = |n: &str| all.iter().find(|x| x.name == n).cloned();
    let pubns = get("conf-pub").expect("conf-pub listed");
    assert_eq!(pubns.visibility, Visibility::Public);
    assert_eq!(pubns.repository_count, Some(2), "{pubns:?}");
    let privns = get("conf-priv").expect("conf-priv listed");
    assert_eq!(privns.visibility, Visibility::Private);
    assert_eq!(privns.repository_count, Some(0), "{privns:?}");

    let mut repos: Vec<String> = p
        .list_repositories(Some("conf-pub"))
        .await
        .expect("repositories of one namespace")
        .into_iter()
        .map(|r| r.name)
        .collect();
    repos.sort();
    assert_eq!(repos, ["conf-pub/app", "conf-pub/tools"]);
    let every = p.list_repositories(None).await.expect("every repository");
    assert_eq!(every.len(), 2, "{every:?}");
    assert_eq!(
        p.list_tags("conf-pub/app").await.expect("tags"),
        ["v1", "v2"]
    );
    assert!(
        p.list_repositories(Some("conf-priv"))
            .await
            .expect("empty namespace")
            .is_empty()
    );

    p.delete_namespace("conf-priv").await.expect("delete empty");
    let after = p.list_namespaces().await.expect("list again");
    assert!(after.iter().all(|n| n.name != "conf-priv"), "{after:?}");
}

pub async fn access(kind: &str) {
    let v = vendor(kind).await;
    v.good
        .create_namespace("conf-acc", Visibility::Private)
        .await
        .expect("namespace");
    let before = v.sim.requests();
    let granted = v.good.grant_access("conf-acc", "ci", Access::Push).await;
    if !v.robots {
        let err = granted.expect_err("no robot accounts");
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("robot"), "says why: {err}");
        let err = v
            .good
            .revoke_access("conf-acc", "ci")
            .await
            .expect_err("no robot accounts");
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert_eq!(v.sim.requests(), before, "nothing was sent");
        return;
    }
    let grant = granted.expect("robot created");
    assert_eq!(grant.namespace, "conf-acc");
    assert_eq!(grant.access, Access::Push);
    let secret = grant.secret.clone().expect("the robot's secret, once");
    assert_absent("grant Debug", &format!("{grant:?}"), secret.expose());
    // The robot's own credentials work.
    v.sim.push_image("conf-acc/app", "v1");
    let robot = common::harbor(&v.sim, Some(&grant.subject), Some(secret.expose()));
    let repos = robot
        .list_repositories(Some("conf-acc"))
        .await
        .expect("the robot logs in");
    assert_eq!(repos.len(), 1);
    // Pull only is a second robot.
    let pull = v
        .good
        .grant_access("conf-acc", "reader", Access::Pull)
        .await
        .expect("pull robot");
    assert_eq!(pull.access, Access::Pull);
    // Revoked by the subject or by the full name; twice is NotFound.
    v.good
        .revoke_access("conf-acc", "ci")
        .await
        .expect("revoke by subject");
    v.good
        .revoke_access("conf-acc", &pull.subject)
        .await
        .expect("revoke by full name");
    let err = v
        .good
        .revoke_access("conf-acc", "ci")
        .await
        .expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = robot
        .list_repositories(Some("conf-acc"))
        .await
        .expect_err("a revoked robot is refused");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let (logs, _) = capture_logs();
    assert_absent("logs", &logs.text(), secret.expose());
}

pub async fn throttling_is_retried(kind: &str) {
    let v = vendor(kind).await;
    // Warm up (ACR looks its instance up once), then count one call.
    v.good.list_repositories(None).await.expect("warm up");
    let before = v.sim.requests();
    v.good.list_repositories(None).await.expect("unthrottled");
    let one = v.sim.requests() - before;
    v.sim.throttle_next(2);
    let before = v.sim.requests();
    v.good
        .list_repositories(None)
        .await
        .expect("retried past two throttled answers");
    assert_eq!(
        v.sim.requests() - before,
        one + 2,
        "two throttled attempts, then the answers"
    );
    v.sim.throttle_next(20);
    let err = v
        .good
        .list_repositories(None)
        .await
        .expect_err("still throttled");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

pub async fn auth_errors_are_not_retried(kind: &str) {
    let v = vendor(kind).await;
    let before = v.sim.requests();
    let err = v.bad.list_namespaces().await.expect_err("wrong secret");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(
        v.sim.requests() - before,
        1,
        "an auth failure is not retried"
    );
    let (logs, _) = capture_logs();
    for (what, shown) in [
        ("error", err.to_string()),
        ("error Debug", format!("{err:?}")),
        ("adapter Debug", format!("{:?}", v.bad)),
        ("adapter Debug", format!("{:?}", v.good)),
        ("logs", logs.text()),
    ] {
        assert_absent(what, &shown, &v.sim.secret);
        assert_absent(what, &shown, "not-the-access-key-secret");
        if v.sim.key_id.len() > 8 {
            assert_absent(what, &shown, &v.sim.key_id);
        }
    }
}

pub async fn not_found(kind: &str) {
    let v = vendor(kind).await;
    let err = v
        .good
        .delete_namespace("no-such-namespace")
        .await
        .expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = v
        .good
        .list_tags("no-such-namespace/none")
        .await
        .expect_err("none");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

macro_rules! registry_conformance {
    ($($vendor:ident),*) => {
        $(mod $vendor {
            #[tokio::test]
            async fn namespaces_repositories_tags() { super::namespaces_repositories_tags(stringify!($vendor)).await }
            #[tokio::test]
            async fn access() { super::access(stringify!($vendor)).await }
            #[tokio::test]
            async fn throttling_is_retried() { super::throttling_is_retried(stringify!($vendor)).await }
            #[tokio::test]
            async fn auth_errors_are_not_retried() { super::auth_errors_are_not_retried(stringify!($vendor)).await }
            #[tokio::test]
            async fn not_found() { super::not_found(stringify!($vendor)).await }
        })*
    };
}

registry_conformance!(harbor, tkestack, acr);
