//! The process-wide default cluster, lazily built from the default chain
//! (`$KUBECONFIG`, `:`-separated, missing files skipped, merged first file
//! wins). Its own test binary because it sets `KUBECONFIG` for the whole
//! process — so it has a single test function: tests run on parallel
//! threads and must not race on the environment.

use kubepkg_k8s_api::{ClusterConfig, connect, global};
use kubepkg_util::ErrorKind;
use std::path::Path;

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

    // The default is built; from here on only the chain itself is read.
    kubeconfig_list_merges_first_file_wins(env, dir.path()).await;
}

fn write_yaml(path: &Path, doc: serde_json::Value) {
    // JSON is YAML.
    std::fs::write(path, doc.to_string())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn set_kubeconfig(files: &[&Path]) {
    let list = std::env::join_paths(files).expect("join");
    // SAFETY: called from the binary's only test, between awaited calls,
    // while no other thread reads the environment.
    unsafe { std::env::set_var("KUBECONFIG", &list) };
}

/// client-go's merge rules over `$KUBECONFIG`: for every cluster, user and
/// context name the first file defining it wins, and so does the first
/// `current-context`; entries only a later file defines are still merged in.
async fn kubeconfig_list_merges_first_file_wins(env: &kubepkg_testenv::Kubernetes, dir: &Path) {
    let a = dir.join("a.yaml");
    let b = dir.join("b.yaml");
    // A: the real cluster, user and context, but no current-context.
    write_yaml(
        &a,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": {
                "server": env.server, "certificate-authority": env.ca_file}}],
            "users": [{"name": "admin", "user": {"token": env.admin_token}}],
            "contexts": [{"name": "work", "context": {
                "cluster": "local", "user": "admin", "namespace": "from-a"}}],
        }),
    );
    // B: the current-context, a context only it has, and losing
    // definitions of A's names (an unreachable server, a wrong token).
    write_yaml(
        &b,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "admin", "user": {"token": "not-a-token"}}],
            "contexts": [
                {"name": "work", "context": {"cluster": "local", "user": "admin", "namespace": "from-b"}},
                {"name": "only-b", "context": {"cluster": "local", "user": "admin", "namespace": "b-ns"}}
            ],
            "current-context": "work",
        }),
    );

    set_kubeconfig(&[&a, &b]);
    let chain = ClusterConfig::default_chain();
    let kc = chain.to_kube_config().await.expect("merged A:B");
    assert_eq!(
        kc.cluster_url.to_string().trim_end_matches('/'),
        env.server.trim_end_matches('/'),
        "A's cluster wins"
    );
    assert_eq!(kc.default_namespace, "from-a", "A's context wins");
    let c = connect(&chain).await.expect("client from A:B");
    assert_eq!(
        c.version().await.expect("A's user wins").git_version,
        env.version
    );
    let c = connect(&chain.clone().with_context("only-b"))
        .await
        .expect("client for B's context");
    assert_eq!(c.default_namespace(), "b-ns");
    assert_eq!(
        c.version()
            .await
            .expect("B's context with A's cluster and user")
            .git_version,
        env.version
    );

    // Reversed: B's definitions win now.
    set_kubeconfig(&[&b, &a]);
    let kc = ClusterConfig::default_chain()
        .to_kube_config()
        .await
        .expect("merged B:A");
    assert_eq!(kc.cluster_url.port_u16(), Some(1), "B's cluster wins");
    assert_eq!(kc.default_namespace, "from-b");

    // The first current-context wins too.
    let c_file = dir.join("c.yaml");
    write_yaml(
        &c_file,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "contexts": [{"name": "c-ctx", "context": {
                "cluster": "local", "user": "admin", "namespace": "from-c"}}],
            "current-context": "c-ctx",
        }),
    );
    set_kubeconfig(&[&c_file, &b, &a]);
    let chain = ClusterConfig::default_chain();
    let kc = chain.to_kube_config().await.expect("merged C:B:A");
    assert_eq!(kc.default_namespace, "from-c");
    set_kubeconfig(&[&c_file, &a, &b]);
    let c = connect(&chain).await.expect("client from C:A:B");
    assert_eq!(c.default_namespace(), "from-c");
    assert_eq!(
        c.version()
            .await
            .expect("C's context, A's cluster and user")
            .git_version,
        env.version
    );
    // A context naming a cluster no file defines is a config error.
    set_kubeconfig(&[&c_file]);
    let err = connect(&ClusterConfig::default_chain()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}
