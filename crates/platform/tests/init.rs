//! `kubepkg_platform::init` against the real local environment
//! (`cargo xtask env up`): one config, every crate's process-wide default
//! and named instances set, each checked with a real round trip.
//!
//! `init` sets process globals once, so everything that needs them is in
//! the one test below, alone in this test binary.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kubepkg_platform::{Error, PlatformConfig};
use kubepkg_storage_api::mq::{ConsumeOptions, Message, QueueSpec};
use kubepkg_util::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_sets_every_default_from_one_config() {
    let k8s = kubepkg_testenv::kubernetes();
    let minio = kubepkg_testenv::minio();
    let rabbit = kubepkg_testenv::rabbitmq();
    let registry = kubepkg_testenv::registry();
    let docker = kubepkg_testenv::docker();

    let dir = tempfile::tempdir().expect("tempdir");
    let log_file = dir.path().join("platform.log");
    let local_root = dir.path().join("objects");
    let archive = kubepkg_testenv::unique_name("archive");
    // The file holds addresses and user names; the secrets come from the
    // environment, as in production.
    let text = format!(
        r#"
data_dir = "{data_dir}"

[log]
filter = "info"
format = "json"
outputs = [{{ type = "file", path = "{log_file}" }}]

[kubernetes]
source = "kubeconfig_file"
path = "{kubeconfig}"

[registries.default]
url = "{registry_url}"
allow_http = true
username = "{registry_user}"

[engines.default]
host = "{docker_host}"

[object_stores.default]
backend = "minio"
endpoint = "{minio_endpoint}"
access_key = "{minio_user}"
region = "{minio_region}"

[object_stores.{archive}]
backend = "minio"
endpoint = "{minio_endpoint}"
access_key = "{minio_user}"
region = "{minio_region}"

[object_stores.scratch]
backend = "local"
root = "{local_root}"

[queues.default]
backend = "amqp"
connection_name = "kubepkg-platform-init-test"

[queues.events]
backend = "memory"
"#,
        data_dir = dir.path().display(),
        log_file = log_file.display(),
        kubeconfig = k8s.kubeconfig.display(),
        registry_url = registry.url,
        registry_user = registry.username,
        docker_host = docker.host,
        minio_endpoint = minio.endpoint,
        minio_user = minio.access_key,
        minio_region = minio.region,
        local_root = local_root.display(),
    );
    let path = dir.path().join("kubepkg.toml");
    std::fs::write(&path, text).expect("write the config");
    let archive_secret_var = format!(
        "KUBEPKG_OBJECT_STORES__{}__SECRET_KEY",
        archive.to_ascii_uppercase()
    );
    let env = vec![
        (
            "KUBEPKG_REGISTRIES__DEFAULT__PASSWORD".to_owned(),
            registry.password.clone(),
        ),
        (
            "KUBEPKG_OBJECT_STORES__DEFAULT__SECRET_KEY".to_owned(),
            minio.secret_key.clone(),
        ),
        (archive_secret_var, minio.secret_key.clone()),
        (
            "KUBEPKG_QUEUES__DEFAULT__URL".to_owned(),
            rabbit.url.clone(),
        ),
    ];
    let config = PlatformConfig::from_sources(Some(&path), env).expect("the config loads");

    // A config that does not validate changes nothing, and init can be
    // called again afterwards.
    let mut broken = config.clone();
    broken.search.concurrency = 0;
    let err = kubepkg_platform::init(&broken)
        .await
        .expect_err("invalid config");
    assert!(
        matches!(&err, Error::Config { setting, .. } if setting == "search.concurrency"),
        "{err}"
    );
    assert!(
        kubepkg_k8s_api::global::try_client().is_none(),
        "nothing was set"
    );
    assert!(
        kubepkg_image_api::global::config().is_none(),
        "nothing was set"
    );

    let mut init = kubepkg_platform::init(&config).await.expect("init");

    // The report.
    let report = init.kubernetes.clone().expect("a default cluster");
    assert_eq!(report.server, k8s.server);
    assert_eq!(report.version.as_deref(), Some(k8s.version.as_str()));
    assert_eq!(init.registries, ["default"]);
    assert_eq!(init.engines, ["default"]);
    let mut stores = vec!["default".to_owned(), "scratch".to_owned(), archive.clone()];
    stores.sort();
    assert_eq!(init.object_stores, stores);
    assert_eq!(init.queues, ["default", "events"]);
    assert!(init.log_guard().is_some());

    // Kubernetes: the process default is the configured cluster.
    let client = kubepkg_k8s_api::global::client()
        .await
        .expect("default client");
    assert_eq!(client.server(), k8s.server);
    let version = client.version().await.expect("GET /version");
    assert_eq!(version.git_version, k8s.version);

    // Object stores: the default, the same instance by name, a second
    // named MinIO and a local one.
    use kubepkg_storage_api::global as storage;
    let default_store = storage::get().expect("default object store");
    assert!(Arc::ptr_eq(
        &default_store,
        &storage::named("default").expect("named default")
    ));
    let bucket = kubepkg_testenv::unique_name("init");
    default_store
        .create_bucket(&bucket)
        .await
        .expect("create bucket");
    let listed = storage::named(&archive)
        .expect("named archive store")
        .list_buckets()
        .await
        .expect("list buckets through the named store");
    assert!(
        listed.iter().any(|b| b.name == bucket),
        "the named store sees the bucket the default made"
    );
    default_store
        .delete_bucket(&bucket)
        .await
        .expect("delete bucket");
    let scratch = storage::named("scratch").expect("named scratch store");
    scratch
        .create_bucket("scratch")
        .await
        .expect("local bucket");
    assert!(
        local_root.join("scratch").is_dir(),
        "the local store writes under its root"
    );
    assert_eq!(
        storage::named("nope").expect_err("not configured").kind(),
        ErrorKind::NotFound
    );

    // Queues: a round trip through RabbitMQ on the default.
    let queue = storage::queue().expect("default queue");
    assert_eq!(queue.backend(), "amqp");
    let name = kubepkg_testenv::unique_name("init");
    queue
        .declare_queue(&QueueSpec::new(&name))
        .await
        .expect("declare");
    queue
        .publish("", &name, &Message::new("hello from init"))
        .await
        .expect("publish");
    let mut consumer = queue
        .consume(&name, &ConsumeOptions::default())
        .await
        .expect("consume");
    let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("a delivery within 30 s")
        .expect("the stream is open")
        .expect("a delivery");
    assert_eq!(&delivery.message.body[..], b"hello from init");
    delivery.ack().await.expect("ack");
    drop(consumer);
    queue.delete_queue(&name).await.expect("delete queue");
    assert_eq!(
        storage::named_queue("events")
            .expect("named events")
            .backend(),
        "memory"
    );
    assert_eq!(
        storage::named_queue("default")
            .expect("named default")
            .backend(),
        "amqp"
    );

    // Registry and engine.
    use kubepkg_image_api::global as image;
    let default_registry = image::registry().expect("default registry");
    assert_eq!(default_registry.host(), registry.host);
    default_registry
        .check_credentials()
        .await
        .expect("the password from the environment is accepted");
    image::named_registry("default")
        .expect("named default registry")
        .check_credentials()
        .await
        .expect("named default registry credentials");
    image::engine()
        .expect("default engine")
        .ping()
        .await
        .expect("docker ping");
    image::named_engine("default")
        .expect("named default engine")
        .version()
        .await
        .expect("docker version");

    // Once per process.
    let again = kubepkg_platform::init(&config)
        .await
        .expect_err("second init");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    let direct = kubepkg_k8s_api::global::init(config.kubernetes.as_ref().expect("k8s"))
        .await
        .expect_err("the default cluster is set");
    assert_eq!(direct.kind(), ErrorKind::Invalid, "{direct}");

    // Logging went to the configured file, as JSON lines.
    tracing::info!(marker = "init-test", "after init");
    let guard = init.take_log_guard().expect("log guard");
    guard.flush().expect("flush the log");
    let logged = std::fs::read_to_string(&log_file).expect("the log file");
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "kubepkg platform initialised"),
        "{logged}"
    );
    assert!(lines.iter().any(|l| l["marker"] == "init-test"), "{logged}");
    for secret in [&minio.secret_key, &registry.password, &rabbit.password] {
        assert!(
            !logged.contains(secret.as_str()),
            "a secret reached the log"
        );
    }
    drop(guard);
}
