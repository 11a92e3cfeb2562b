//! The process-wide default cluster, lazily built from the default chain
//! (`$KUBECONFIG`, `:`-separated, missing files skipped). Its own test
//! binary because it sets `KUBECONFIG` for the whole process.

use kubepkg_k8s_api::{ClusterConfig, global};
use kubepkg_util::ErrorKind;

#[tokio::test]
async fn default_client_comes_from_kubeconfig_and_is_set_once() {
    let env = kubepkg_testenv::kubernetes();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-kubeconfig");
    let list = std::env::join_paths([missing.as_path(), env.kubeconfig.as_path()]).expect("join");
    // SAFETY: this test binary has a single test and sets the variable
    // before any other thread reads the environment.
    unsafe {
        std::env::set_var("KUBECONFIG", &list);
        std::env::remove_var("KUBERNETES_SERVICE_HOST");
    }
    assert!(global::try_client().is_none());
    let c = global::client().await.expect("default client");
    assert_eq!(c.name(), "default");
    assert_eq!(c.version().await.expect("version").git_version, env.version);
    assert!(global::try_client().is_some());
    // Already set: init refuses instead of silently replacing it.
    let err = global::init(&ClusterConfig::default_chain())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    // The named registry is process-wide too.
    global::clusters()
        .add("env", ClusterConfig::default_chain())
        .await
        .expect("add");
    assert_eq!(global::clusters().names(), vec!["env".to_string()]);
}
