//! The bad-input catalog: each request gets a 4xx envelope (never a 5xx),
//! and afterwards the store, the cluster and the object store hold what
//! they held before.

use crate::common::{Server, assert_error, send};
use reqwest::{Method, StatusCode};

/// `(method, path, content type, body, expected status)`.
type Case = (&'static str, String, Option<&'static str>, Vec<u8>, u16);

fn cases(c: &str) -> Vec<Case> {
    let j = Some("application/json");
    let y = Some("application/yaml");
    let ns = format!("/clusters/{c}/namespaces/default");
    let big = vec![b'a'; 70_000];
    let mut big_json = b"{\"name\":\"".to_vec();
    big_json.extend(vec![b'x'; 70_000]);
    big_json.extend(b"\",\"role\":\"viewer\"}");
    let s = |x: &str| x.as_bytes().to_vec();
    vec![
        // Bodies: size, type, syntax, shape.
        ("POST", "/tokens".into(), j, big_json, 413),
        ("POST", format!("/clusters/{c}/apply"), y, big.clone(), 413),
        (
            "POST",
            "/tokens".into(),
            Some("text/plain"),
            s(r#"{"name":"a","role":"viewer"}"#),
            415,
        ),
        (
            "POST",
            "/tokens".into(),
            None,
            s(r#"{"name":"a","role":"viewer"}"#),
            415,
        ),
        (
            "POST",
            "/tokens".into(),
            Some("application/xml"),
            s("<a/>"),
            415,
        ),
        (
            "POST",
            format!("/clusters/{c}/apply"),
            Some("application/octet-stream"),
            s("kind: Pod"),
            415,
        ),
        ("POST", "/tokens".into(), j, s("{"), 400),
        ("POST", "/tokens".into(), j, s("not json"), 400),
        ("POST", "/tokens".into(), j, s(""), 400),
        ("POST", "/tokens".into(), j, s("[]"), 400),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"viewer","extra":1}"#),
            400,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"root"}"#),
            400,
        ),
        ("POST", "/tokens".into(), j, s(r#"{"name":"a"}"#), 400),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"","role":"viewer"}"#),
            422,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a\nb","role":"viewer"}"#),
            422,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"viewer","clusters":["../etc"]}"#),
            422,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"viewer","clusters":["x'; DROP TABLE api_tokens;--"]}"#),
            422,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"viewer","ttl_secs":0}"#),
            422,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"viewer","ttl_secs":-5}"#),
            400,
        ),
        (
            "POST",
            "/tokens".into(),
            j,
            s(r#"{"name":"a","role":"viewer","ttl_secs":99999999999999}"#),
            422,
        ),
        // Imports.
        (
            "POST",
            "/clusters".into(),
            j,
            s(
                r#"{"name":"Bad_Name","source":{"source":"token","server":"https://127.0.0.1:1","token":"t"}}"#,
            ),
            422,
        ),
        (
            "POST",
            "/clusters".into(),
            j,
            s(
                r#"{"name":"../x","source":{"source":"token","server":"https://127.0.0.1:1","token":"t"}}"#,
            ),
            422,
        ),
        (
            "POST",
            "/clusters".into(),
            j,
            s(
                r#"{"name":"x' OR '1'='1","source":{"source":"token","server":"https://127.0.0.1:1","token":"t"}}"#,
            ),
            422,
        ),
        (
            "POST",
            "/clusters".into(),
            j,
            s(r#"{"name":"ok","source":{"source":"kubeconfig","text":"not: [yaml"}}"#),
            422,
        ),
        (
            "POST",
            "/clusters".into(),
            j,
            s(r#"{"name":"ok","source":{"source":"kubeconfig_base64","data":"%%%"}}"#),
            422,
        ),
        (
            "POST",
            "/clusters".into(),
            j,
            s(r#"{"name":"ok","source":{"source":"kubeconfig_file","path":"/etc/passwd"}}"#),
            400,
        ),
        (
            "POST",
            "/clusters".into(),
            j,
            s(r#"{"name":"ok","source":{"source":"teleport"}}"#),
            400,
        ),
        ("POST", "/clusters".into(), j, s(r#"{"name":"ok"}"#), 400),
        (
            "POST",
            "/clusters".into(),
            j,
            s(r#"{"name":"ok","source":{"source":"provider","provider":"nope","cluster_id":"1"}}"#),
            404,
        ),
        // Unknown things.
        ("GET", "/clusters/nope".into(), None, vec![], 404),
        ("GET", "/clusters/nope/summary".into(), None, vec![], 404),
        (
            "GET",
            "/clusters/..%2F..%2Fetc/summary".into(),
            None,
            vec![],
            422,
        ),
        ("DELETE", "/clusters/nope".into(), None, vec![], 404),
        ("GET", format!("{ns}/workloads/widgets"), None, vec![], 404),
        (
            "GET",
            format!("/clusters/{c}/namespaces/default/resources/nodes"),
            None,
            vec![],
            404,
        ),
        ("GET", "/no/such/route".into(), None, vec![], 404),
        ("PATCH", "/clusters".into(), j, s("{}"), 405),
        ("GET", "/tokens/abc".into(), None, vec![], 405),
        // Names and namespaces that are not names.
        (
            "GET",
            format!("/clusters/{c}/namespaces/Bad_NS/pods"),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("/clusters/{c}/namespaces/default/pods/a%2Fb"),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("/clusters/{c}/namespaces/default/pods/..%2F..%2Fsecrets"),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("/clusters/{c}/namespaces/default/pods/%3F%23"),
            None,
            vec![],
            422,
        ),
        // Queries.
        (
            "GET",
            "/clusters?page_size=100000000".into(),
            None,
            vec![],
            422,
        ),
        ("GET", "/clusters?page=0".into(), None, vec![], 422),
        ("GET", "/clusters?page=-1".into(), None, vec![], 400),
        ("GET", "/clusters?page_size=abc".into(), None, vec![], 400),
        ("GET", "/clusters?unknown=1".into(), None, vec![], 400),
        (
            "GET",
            "/clusters?selector=a%20in%20(".into(),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("{ns}/pods?page_size=5000"),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("{ns}/pods/x/logs?tail_lines=-1"),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("{ns}/pods/x/logs?since_seconds=0"),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            format!("{ns}/pods/x/logs?tail_lines=abc"),
            None,
            vec![],
            400,
        ),
        ("GET", "/search".into(), None, vec![], 400),
        ("GET", "/search?kind=Pod&limit=0".into(), None, vec![], 422),
        (
            "GET",
            "/search?kind=Pod&limit=100000".into(),
            None,
            vec![],
            422,
        ),
        (
            "GET",
            "/search?kind=Pod&continue=garbage".into(),
            None,
            vec![],
            422,
        ),
        ("GET", "/audit?limit=0".into(), None, vec![], 422),
        ("GET", format!("/clusters/{c}/watch"), None, vec![], 400),
        (
            "GET",
            format!("/clusters/{c}/watch?kind=NoSuchKind"),
            None,
            vec![],
            404,
        ),
        // Workload operations.
        (
            "POST",
            format!("{ns}/workloads/deployments/x/scale"),
            j,
            s(r#"{"replicas":-1}"#),
            422,
        ),
        (
            "POST",
            format!("{ns}/workloads/deployments/x/scale"),
            j,
            s(r#"{"replicas":"many"}"#),
            400,
        ),
        (
            "POST",
            format!("{ns}/workloads/deployments/x/scale"),
            j,
            s(r#"{"replicas":99999999999}"#),
            400,
        ),
        (
            "POST",
            format!("{ns}/workloads/daemonsets/x/scale"),
            j,
            s(r#"{"replicas":1}"#),
            422,
        ),
        (
            "POST",
            format!("{ns}/workloads/jobs/x/restart"),
            None,
            vec![],
            422,
        ),
        (
            "POST",
            format!("{ns}/workloads/statefulsets/x/rollback"),
            None,
            vec![],
            422,
        ),
        (
            "POST",
            format!("{ns}/workloads/deployments/x/suspend"),
            None,
            vec![],
            422,
        ),
        (
            "POST",
            format!("/clusters/{c}/nodes/kwok-node-0/drain"),
            j,
            s(r#"{"timeout_secs":0}"#),
            422,
        ),
        // Bundles.
        (
            "POST",
            format!("/clusters/{c}/apply"),
            y,
            s("kind: [unclosed"),
            400,
        ),
        (
            "POST",
            format!("/clusters/{c}/apply"),
            y,
            s("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\nkind: [broken"),
            400,
        ),
        ("POST", format!("/clusters/{c}/apply"), y, s(""), 422),
        (
            "POST",
            format!("/clusters/{c}/apply"),
            y,
            vec![0xff, 0xfe, 0x00],
            400,
        ),
        (
            "POST",
            format!("/clusters/{c}/apply?prune=true"),
            y,
            s("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
            422,
        ),
        (
            "POST",
            format!("/clusters/{c}/apply?dry_run=maybe"),
            y,
            s("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
            400,
        ),
        // Objects and queues.
        (
            "GET",
            "/object-stores/nope/buckets".into(),
            None,
            vec![],
            404,
        ),
        (
            "POST",
            "/object-stores/default/buckets".into(),
            j,
            s(r#"{"name":"Bad..Bucket"}"#),
            422,
        ),
        (
            "GET",
            "/object-stores/default/buckets/default/objects?limit=0".into(),
            None,
            vec![],
            422,
        ),
        (
            "POST",
            "/message-queues/default/publish".into(),
            j,
            s(&format!(
                r#"{{"routing_key":"{}","body":"x"}}"#,
                "k".repeat(300)
            )),
            422,
        ),
        (
            "POST",
            "/message-queues/default/queues/q/receive".into(),
            j,
            s(r#"{"wait_secs":3600}"#),
            422,
        ),
        (
            "POST",
            "/registries/nope/namespaces".into(),
            j,
            s(r#"{"name":"a"}"#),
            404,
        ),
        ("GET", "/registries/local/tags".into(), None, vec![], 400),
    ]
}

#[tokio::test]
async fn each_bad_request_gets_a_4xx_envelope_and_changes_nothing() {
    let s = Server::start();
    let cluster = kubepkg_testenv::unique_name("bad");
    s.import_local(&cluster).await;
    let (_, tokens_before) = s.admin(Method::GET, "/tokens", None).await;
    let (_, clusters_before) = s.admin(Method::GET, "/clusters", None).await;
    let k8s_ns_before = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/default/resources/configmaps"),
            None,
        )
        .await
        .1["data"]["total"]
        .clone();
    let all = cases(&cluster);
    assert!(all.len() >= 50, "the catalog has {} cases", all.len());
    for (method, path, ct, body, want) in &all {
        let mut b = s.req(method.parse().unwrap(), path, Some(&s.admin));
        if let Some(ct) = ct {
            b = b.header("content-type", *ct);
        }
        if !body.is_empty() {
            b = b.body(body.clone());
        }
        let (status, v) = send(b).await;
        assert!(status.is_client_error(), "{method} {path}: {status} {v}");
        assert_error(status, &v, *want, &format!("{method} {path}"));
    }
    let (_, tokens_after) = s.admin(Method::GET, "/tokens", None).await;
    assert_eq!(
        tokens_before["data"], tokens_after["data"],
        "no token was created"
    );
    let (_, clusters_after) = s.admin(Method::GET, "/clusters", None).await;
    assert_eq!(
        clusters_before["data"]["total"],
        clusters_after["data"]["total"]
    );
    let after = s
        .admin(
            Method::GET,
            &format!("/clusters/{cluster}/namespaces/default/resources/configmaps"),
            None,
        )
        .await
        .1["data"]["total"]
        .clone();
    assert_eq!(k8s_ns_before, after, "no ConfigMap was applied");
    let (status, _) = s
        .admin(Method::DELETE, &format!("/clusters/{cluster}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
