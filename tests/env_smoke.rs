//! One real round trip to each server of the local environment
//! (`cargo xtask env up`). Each test fails with a message naming the server
//! and how to start it when the server is missing.

use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn kubernetes_pod_reaches_running_on_a_kwok_node() {
    use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
    use kube::api::{Api, DeleteParams, PostParams};

    let env = kubepkg_testenv::kubernetes();
    rt().block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&env.kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig to config");
        let client = kube::Client::try_from(config).expect("client");
        let version = client.apiserver_version().await.expect("GET /version");
        assert_eq!(
            format!("v{}.{}", version.major, version.minor),
            env.version.rsplit_once('.').unwrap().0
        );

        let nodes: Api<Node> = Api::all(client.clone());
        let names: Vec<String> = nodes
            .list(&Default::default())
            .await
            .expect("list nodes")
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        for n in &env.nodes {
            assert!(names.contains(n), "node {n} missing from {names:?}");
        }

        let ns_name = kubepkg_testenv::unique_name("smoke");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": ns_name}
        }))
        .unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");

        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "smoke"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}
        }))
        .unwrap();
        // The namespace's default service account appears asynchronously.
        let mut created = None;
        for _ in 0..60 {
            match pods.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    created = Some(p);
                    break;
                }
                Err(kube::Error::Api(e))
                    if e.code == 403 || e.message.contains("serviceaccount") =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("create pod: {e}"),
            }
        }
        assert!(created.is_some(), "pod could not be created");

        let mut phase = String::new();
        let mut node = String::new();
        for _ in 0..120 {
            let p = pods.get("smoke").await.expect("get pod");
            phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            if phase == "Running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        namespaces
            .delete(&ns_name, &DeleteParams::default())
            .await
            .expect("delete namespace");
        assert_eq!(phase, "Running", "pod did not reach Running");
        assert!(
            env.nodes.contains(&node),
            "pod ran on {node:?}, not a kwok node"
        );
    });
}

#[test]
fn minio_bucket_put_get() {
    let env = kubepkg_testenv::minio();
    rt().block_on(async {
        let creds = aws_sdk_s3::config::Credentials::new(
            &env.access_key,
            &env.secret_key,
            None,
            None,
            "env",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(env.region.clone()))
            .endpoint_url(&env.endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(config);
        let bucket = kubepkg_testenv::unique_name("smoke");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");
        s3.put_object()
            .bucket(&bucket)
            .key("hello.txt")
            .body(b"hello minio".to_vec().into())
            .send()
            .await
            .expect("put object");
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key("hello.txt")
            .send()
            .await
            .expect("get object");
        let body = got.body.collect().await.expect("read body").into_bytes();
        assert_eq!(&body[..], b"hello minio");
        s3.delete_object()
            .bucket(&bucket)
            .key("hello.txt")
            .send()
            .await
            .expect("delete object");
        s3.delete_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("delete bucket");
    });
}

#[test]
fn rabbitmq_publish_confirm_and_get() {
    use lapin::options::{
        BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    };
    use lapin::{BasicProperties, Connection, ConnectionProperties, types::FieldTable};

    let env = kubepkg_testenv::rabbitmq();
    rt().block_on(async {
        let conn = Connection::connect(&env.url, ConnectionProperties::default())
            .await
            .expect("AMQP connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        let queue = kubepkg_testenv::unique_name("smoke");
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declare queue");
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                b"hello rabbit",
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "broker did not ack the publish");
        let msg = ch
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
            .expect("message waiting in the queue");
        assert_eq!(msg.delivery.data, b"hello rabbit");
        ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("delete queue");
        conn.close(200, "bye".into()).await.expect("close");
    });
}

#[test]
fn docker_engine_answers_version() {
    let env = kubepkg_testenv::docker();
    rt().block_on(async {
        let docker = bollard::Docker::connect_with_unix(
            &env.socket.to_string_lossy(),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("negotiate API version");
        let v = docker.version().await.expect("GET /version");
        assert!(
            v.version.as_deref().is_some_and(|s| !s.is_empty()),
            "engine reported no version"
        );
        let pong = docker.ping().await.expect("ping");
        assert_eq!(pong, "OK");
    });
}

#[test]
fn registry_requires_credentials_and_lists_catalog() {
    let env = kubepkg_testenv::registry();
    rt().block_on(async {
        let http = reqwest::Client::new();
        let anon = http
            .get(format!("{}/v2/", env.url))
            .send()
            .await
            .expect("GET /v2/");
        assert_eq!(anon.status(), 401, "registry must require auth");
        let catalog: serde_json::Value = http
            .get(format!("{}/v2/_catalog", env.url))
            .basic_auth(&env.username, Some(&env.password))
            .send()
            .await
            .expect("GET /v2/_catalog")
            .error_for_status()
            .expect("catalog status")
            .json()
            .await
            .expect("catalog json");
        assert!(
            catalog["repositories"].is_array(),
            "unexpected catalog {catalog}"
        );
    });
}

#[test]
fn postgres_answers_a_query() {
    let env = kubepkg_testenv::postgres();
    rt().block_on(async {
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host={} port={} user={} password={} dbname={}",
                env.host, env.port, env.username, env.password, env.database
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        let row = client
            .query_one("SELECT 40 + 2, current_database()", &[])
            .await
            .expect("query");
        let n: i32 = row.get(0);
        let db: String = row.get(1);
        assert_eq!(n, 42);
        assert_eq!(db, env.database);
    });
}
