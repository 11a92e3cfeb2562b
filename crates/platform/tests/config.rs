//! `PlatformConfig`: files, environment overrides, error messages, redaction.
//!
//! Pure tests: no server is involved. The environment is always passed
//! explicitly through `PlatformConfig::from_sources`, never set on the
//! process, so these tests run in parallel with anything.

use std::path::{Path, PathBuf};

use kubepkg_image_api::RegistryKind;
use kubepkg_k8s_api::ClusterSource;
use kubepkg_log_api::Format;
use kubepkg_platform::{Error, PlatformConfig};
use kubepkg_storage_api::{QueueConfig, StorageConfig};
use kubepkg_util::ErrorKind;

/// base64 of 32 bytes (`0123456789abcdef` twice): a well-formed test key.
const KEY1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// base64 of 32 other bytes (`fedcba9876543210` twice).
const KEY2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the test config");
    path
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The setting and message of a config error (panics on any other error).
fn config_error(err: Error) -> (String, String) {
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    match err {
        Error::Config { setting, message } => (setting, message),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

const TOML_FULL: &str = r#"
data_dir = "/var/lib/kubepkg"

[store]
url = "postgres://kubepkg:pg-secret-1@127.0.0.1:5432/kubepkg"
max_connections = 20
connect_timeout_secs = 3

[encryption]
active_key = "k2"
keys = { k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", k2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=" }

[log]
filter = "info,kube=warn"
format = "json"
outputs = ["stderr", { type = "file", path = "/tmp/kubepkg.log", rotation = "daily", keep = 3 }]

[kubernetes]
source = "token"
server = "https://127.0.0.1:6443"
token = "k8s-token-secret"
qps = 50
burst = 100

[registries.default]
url = "http://127.0.0.1:5000"
allow_http = true
username = "ci"
password = "registry-secret"

[registries.harbor]
kind = "harbor"
url = "https://harbor.example.com"

[engines.default]
host = "unix:///run/docker.sock"

[object_stores.default]
backend = "minio"
endpoint = "http://127.0.0.1:9000"
access_key = "admin"
secret_key = "minio-secret"

[object_stores.scratch]
backend = "memory"

[queues.default]
backend = "amqp"
url = "amqp://app:amqp-secret@127.0.0.1:5672/%2f"

[providers.tke-gz]
kind = "tke"
region = "ap-guangzhou"
access_key_id = "AKIDEXAMPLE"
access_key_secret = "tke-secret"
options = { project_id = "option-secret" }

[providers.rancher]
kind = "rancher"
endpoint = "https://rancher.example.com"
token = "rancher-secret"

[health]
interval_secs = 60
timeout_secs = 10
max_backoff_secs = 600

[search]
concurrency = 4
"#;

const YAML_FULL: &str = r#"
data_dir: /var/lib/kubepkg
store:
  url: "postgres://kubepkg:pg-secret-1@127.0.0.1:5432/kubepkg"
  max_connections: 20
  connect_timeout_secs: 3
encryption:
  active_key: k2
  keys:
    k1: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
    k2: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=
log:
  filter: info,kube=warn
  format: json
  outputs:
    - stderr
    - { type: file, path: /tmp/kubepkg.log, rotation: daily, keep: 3 }
kubernetes:
  source: token
  server: https://127.0.0.1:6443
  token: k8s-token-secret
  qps: 50
  burst: 100
registries:
  default:
    url: http://127.0.0.1:5000
    allow_http: true
    username: ci
    password: registry-secret
  harbor:
    kind: harbor
    url: https://harbor.example.com
engines:
  default:
    host: unix:///run/docker.sock
object_stores:
  default:
    backend: minio
    endpoint: http://127.0.0.1:9000
    access_key: admin
    secret_key: minio-secret
  scratch:
    backend: memory
queues:
  default:
    backend: amqp
    url: amqp://app:amqp-secret@127.0.0.1:5672/%2f
providers:
  tke-gz:
    kind: tke
    region: ap-guangzhou
    access_key_id: AKIDEXAMPLE
    access_key_secret: tke-secret
    options:
      project_id: option-secret
  rancher:
    kind: rancher
    endpoint: https://rancher.example.com
    token: rancher-secret
health:
  interval_secs: 60
  timeout_secs: 10
  max_backoff_secs: 600
search:
  concurrency: 4
"#;

/// Every secret value the full configs hold.
const SECRETS: &[&str] = &[
    "pg-secret-1",
    KEY1,
    KEY2,
    "k8s-token-secret",
    "registry-secret",
    "minio-secret",
    "amqp-secret",
    "tke-secret",
    "option-secret",
    "rancher-secret",
];

/// The exposed secrets of a config, in a fixed order, for comparisons.
fn exposed(config: &PlatformConfig) -> Vec<String> {
    let mut out = vec![config.store_url().expose().clone()];
    out.extend(config.encryption.keys.values().map(|k| k.expose().clone()));
    if let Some(ClusterSource::Token { token, .. }) = config.kubernetes.as_ref().map(|k| &k.source)
    {
        out.push(token.expose().clone());
    }
    for r in config.registries.values() {
        out.push(
            r.password
                .as_ref()
                .map(|p| p.expose().clone())
                .unwrap_or_default(),
        );
    }
    if let Some(StorageConfig::Minio(m)) = config.object_stores.get("default") {
        out.push(m.secret_key.expose().clone());
    }
    if let Some(QueueConfig::Amqp(a)) = config.queues.get("default") {
        out.push(a.url.expose().clone());
    }
    for p in config.providers.values() {
        out.push(
            p.access_key_secret
                .as_ref()
                .map(|s| s.expose().clone())
                .unwrap_or_default(),
        );
        out.push(
            p.token
                .as_ref()
                .map(|s| s.expose().clone())
                .unwrap_or_default(),
        );
        out.extend(p.options.values().cloned());
    }
    out
}

#[test]
fn toml_and_yaml_give_the_same_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = PlatformConfig::load_from(&write(&dir, "kubepkg.toml", TOML_FULL));
    let yaml = PlatformConfig::load_from(&write(&dir, "kubepkg.yaml", YAML_FULL));
    let yml = PlatformConfig::load_from(&write(&dir, "kubepkg.yml", YAML_FULL));
    assert_eq!(format!("{toml:?}"), format!("{yaml:?}"));
    assert_eq!(format!("{toml:?}"), format!("{yml:?}"));
    assert_eq!(exposed(&toml), exposed(&yaml));
    // The same from text.
    let from_text = PlatformConfig::from_toml_str(TOML_FULL).expect("TOML text");
    assert_eq!(format!("{toml:?}"), format!("{from_text:?}"));
    let from_yaml_text = PlatformConfig::from_yaml_str(YAML_FULL).expect("YAML text");
    assert_eq!(exposed(&toml), exposed(&from_yaml_text));

    // And the values landed where they belong.
    assert_eq!(toml.data_dir, Path::new("/var/lib/kubepkg"));
    assert_eq!(toml.store.max_connections, 20);
    assert_eq!(toml.store.connect_timeout().as_secs(), 3);
    assert_eq!(toml.encryption.active_key, "k2");
    assert_eq!(toml.log.format, Format::Json);
    assert_eq!(toml.log.outputs.len(), 2);
    let k8s = toml.kubernetes.as_ref().expect("kubernetes section");
    assert_eq!(k8s.qps, 50.0);
    assert!(
        matches!(&k8s.source, ClusterSource::Token { server, .. } if server == "https://127.0.0.1:6443")
    );
    assert_eq!(toml.registries["harbor"].kind, RegistryKind::Harbor);
    assert!(toml.registries["default"].allow_http);
    assert_eq!(
        toml.engines["default"].host.as_deref(),
        Some("unix:///run/docker.sock")
    );
    assert!(matches!(
        toml.object_stores["scratch"],
        StorageConfig::Memory
    ));
    assert!(
        matches!(&toml.object_stores["default"], StorageConfig::Minio(m) if m.access_key == "admin")
    );
    assert_eq!(toml.providers["tke-gz"].kind, "tke");
    assert_eq!(
        toml.providers["tke-gz"].region.as_deref(),
        Some("ap-guangzhou")
    );
    assert_eq!(toml.health.interval().as_secs(), 60);
    assert_eq!(toml.health.max_backoff_secs, 600);
    assert_eq!(toml.search.concurrency, 4);
}

/// `load` without the process environment.
trait LoadFrom {
    fn load_from(path: &Path) -> PlatformConfig;
}

impl LoadFrom for PlatformConfig {
    fn load_from(path: &Path) -> PlatformConfig {
        PlatformConfig::from_sources(Some(path), no_env())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

#[test]
fn defaults_without_any_file() {
    let config = PlatformConfig::from_sources(None, no_env()).expect("defaults");
    assert_eq!(config.data_dir, Path::new("./kubepkg-data"));
    assert_eq!(
        config.store_url().expose(),
        "sqlite://./kubepkg-data/kubepkg.db"
    );
    assert_eq!(config.health.interval_secs, 30);
    assert_eq!(config.health.timeout_secs, 5);
    assert_eq!(config.health.max_backoff_secs, 300);
    assert_eq!(config.search.concurrency, 16);
    assert!(config.kubernetes.is_none());
    assert!(config.registries.is_empty() && config.object_stores.is_empty());
    // An empty file and a file of comments are the same.
    let empty = PlatformConfig::from_toml_str("").expect("empty TOML");
    assert_eq!(format!("{empty:?}"), format!("{config:?}"));
    let comments = PlatformConfig::from_yaml_str("# nothing here\n").expect("comment-only YAML");
    assert_eq!(format!("{comments:?}"), format!("{config:?}"));
}

#[test]
fn env_overrides_beat_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "kubepkg.toml", TOML_FULL);
    let config = PlatformConfig::from_sources(
        Some(&path),
        env(&[
            ("KUBEPKG_STORE__URL", "sqlite:///srv/kubepkg/platform.db"),
            ("KUBEPKG_STORE__MAX_CONNECTIONS", "7"),
            ("KUBEPKG_DATA_DIR", "/srv/kubepkg"),
            // A new map entry, and the active key moved to it.
            ("KUBEPKG_ENCRYPTION__KEYS__K3", KEY1),
            ("KUBEPKG_ENCRYPTION__ACTIVE_KEY", "k3"),
            // Digits only, into string settings: stay strings.
            ("KUBEPKG_REGISTRIES__DEFAULT__USERNAME", "100012345678"),
            ("KUBEPKG_REGISTRIES__DEFAULT__PASSWORD", "123456"),
            // A whole new named entry.
            (
                "KUBEPKG_REGISTRIES__MIRROR__URL",
                "https://mirror.example.com",
            ),
            // Inside a section tagged by `backend`, including a secret
            // that looks like a number.
            ("KUBEPKG_OBJECT_STORES__DEFAULT__MAX_ATTEMPTS", "5"),
            ("KUBEPKG_OBJECT_STORES__DEFAULT__SECRET_KEY", "987654"),
            // Inside k8s-api's flattened ClusterConfig.
            ("KUBEPKG_KUBERNETES__QPS", "20"),
            ("KUBEPKG_KUBERNETES__INSECURE_SKIP_TLS_VERIFY", "false"),
            ("KUBEPKG_HEALTH__INTERVAL_SECS", "120"),
            ("KUBEPKG_HEALTH__MAX_BACKOFF_SECS", "900"),
            ("KUBEPKG_SEARCH__CONCURRENCY", "32"),
            // log-api's own overrides apply to the log section.
            ("KUBEPKG_LOG", "debug"),
            ("KUBEPKG_LOG_FORMAT", "text"),
            // Other crates' variables and unrelated ones are not settings.
            ("KUBEPKG_CONFIG", "/elsewhere.toml"),
            ("KUBEPKG_S3_ENDPOINT", "http://ignored"),
            ("KUBEPKG_ENV_FILE", "/tmp/env.json"),
            ("HOME", "/root"),
        ]),
    )
    .expect("file + environment");
    assert_eq!(
        config.store.url.as_ref().map(|u| u.expose().as_str()),
        Some("sqlite:///srv/kubepkg/platform.db")
    );
    assert_eq!(config.store.max_connections, 7);
    assert_eq!(
        config.store.connect_timeout_secs, 3,
        "untouched keys keep the file's value"
    );
    assert_eq!(config.data_dir, Path::new("/srv/kubepkg"));
    assert_eq!(config.encryption.active_key, "k3");
    let ids: Vec<&str> = config.encryption.keys.keys().map(String::as_str).collect();
    assert_eq!(ids, ["k1", "k2", "k3"]);
    let registry = &config.registries["default"];
    assert_eq!(registry.username.as_deref(), Some("100012345678"));
    assert_eq!(
        registry.password.as_ref().map(|p| p.expose().as_str()),
        Some("123456")
    );
    assert_eq!(registry.url, "http://127.0.0.1:5000");
    assert_eq!(
        config.registries["mirror"].url,
        "https://mirror.example.com"
    );
    let StorageConfig::Minio(minio) = &config.object_stores["default"] else {
        panic!(
            "object store default is not minio: {:?}",
            config.object_stores["default"]
        );
    };
    assert_eq!(minio.max_attempts, 5);
    assert_eq!(minio.secret_key.expose(), "987654");
    assert_eq!(minio.access_key, "admin");
    let k8s = config.kubernetes.as_ref().expect("kubernetes");
    assert_eq!(k8s.qps, 20.0);
    assert_eq!(k8s.burst, 100);
    assert_eq!(config.health.interval_secs, 120);
    assert_eq!(config.health.max_backoff_secs, 900);
    assert_eq!(config.search.concurrency, 32);
    assert_eq!(config.log.filter, "debug");
    assert_eq!(config.log.format, Format::Text);
}

#[test]
fn env_without_a_file_and_quoted_strings() {
    let config = PlatformConfig::from_sources(
        None,
        env(&[
            ("KUBEPKG_QUEUES__DEFAULT__BACKEND", "amqp"),
            (
                "KUBEPKG_QUEUES__DEFAULT__URL",
                "amqp://u:p@127.0.0.1:5672/%2f",
            ),
            ("KUBEPKG_QUEUES__DEFAULT__PUBLISH_CHANNELS", "2"),
            ("KUBEPKG_PROVIDERS__ACK__KIND", "ack"),
            ("KUBEPKG_PROVIDERS__ACK__ACCESS_KEY_SECRET", "true"),
            ("KUBEPKG_PROVIDERS__ACK__OPTIONS__RESOURCE_GROUP", "\"42\""),
        ]),
    )
    .expect("environment only");
    let QueueConfig::Amqp(amqp) = &config.queues["default"] else {
        panic!("not amqp");
    };
    assert_eq!(amqp.publish_channels, 2);
    assert_eq!(amqp.url.expose(), "amqp://u:p@127.0.0.1:5672/%2f");
    let ack = &config.providers["ack"];
    assert_eq!(
        ack.access_key_secret.as_ref().map(|s| s.expose().as_str()),
        Some("true")
    );
    assert_eq!(ack.options["resource_group"], "42");
}

#[test]
fn unknown_keys_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str)] = &[
        ("top.toml", "colour = \"blue\"\n", "colour"),
        (
            "store.toml",
            "[store]\nurll = \"sqlite://x.db\"\n",
            "store.urll",
        ),
        (
            "registry.toml",
            "[registries.default]\nurl = \"https://r.example.com\"\nfoo = 1\n",
            "registries.default.foo",
        ),
        (
            "log.toml",
            "[log]\nfilter = \"info\"\n[log.buffer]\ncapacty = 10\n",
            "log.buffer.capacty",
        ),
        (
            "minio.toml",
            "[object_stores.default]\nbackend = \"minio\"\nendpoint = \"http://127.0.0.1:9000\"\nsecret = \"x\"\n",
            "object_stores.default.secret",
        ),
        (
            "memory.toml",
            "[object_stores.scratch]\nbackend = \"memory\"\nroot = \"/tmp\"\n",
            "object_stores.scratch.root",
        ),
        (
            "queue.toml",
            "[queues.events]\nbackend = \"memory\"\nurl = \"amqp://x\"\n",
            "queues.events.url",
        ),
        (
            "k8s.toml",
            "[kubernetes]\nsource = \"kubeconfig_file\"\npath = \"/etc/kube/config\"\ncontex = \"prod\"\n",
            "kubernetes.contex",
        ),
        (
            "k8s-token.toml",
            "[kubernetes]\nsource = \"in_cluster\"\npath = \"/etc/kube/config\"\n",
            "kubernetes.path",
        ),
        (
            "provider.toml",
            "[providers.tke]\nkind = \"tke\"\nsecret_id = \"x\"\n",
            "providers.tke.secret_id",
        ),
        (
            "health.yaml",
            "health:\n  intervall_secs: 3\n",
            "health.intervall_secs",
        ),
    ];
    for (file, text, key) in cases {
        let path = write(&dir, file, text);
        let err = PlatformConfig::from_sources(Some(&path), no_env())
            .expect_err(&format!("{file} has an unknown key"));
        let shown = err.to_string();
        let (setting, message) = config_error(err);
        assert_eq!(&setting, key, "{file}: {shown}");
        assert!(message.contains("unknown key"), "{file}: {shown}");
        assert!(
            message.contains(&path.display().to_string()),
            "{file}: the error names the file: {shown}"
        );
    }
}

#[test]
fn unknown_keys_from_the_environment_name_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "kubepkg.toml", "[store]\nmax_connections = 3\n");
    for (var, setting) in [
        ("KUBEPKG_STORE__URLL", "store.urll"),
        ("KUBEPKG_STOR__URL", "stor"),
        (
            "KUBEPKG_REGISTRIES__DEFAULT__PASWORD",
            "registries.default.pasword",
        ),
        ("KUBEPKG_KUBERNETES__CONTEX", "kubernetes.contex"),
    ] {
        let mut vars = env(&[(var, "value")]);
        if var.starts_with("KUBEPKG_REGISTRIES") {
            vars.push((
                "KUBEPKG_REGISTRIES__DEFAULT__URL".into(),
                "https://r.example.com".into(),
            ));
        }
        if var.starts_with("KUBEPKG_KUBERNETES") {
            vars.push(("KUBEPKG_KUBERNETES__SOURCE".into(), "default".into()));
        }
        let err = PlatformConfig::from_sources(Some(&path), vars).expect_err(var);
        let shown = err.to_string();
        let (got, message) = config_error(err);
        assert_eq!(got, setting, "{shown}");
        assert!(message.contains(var), "the error names {var}: {shown}");
    }
    // A malformed variable name.
    let err = PlatformConfig::from_sources(None, env(&[("KUBEPKG_STORE____URL", "x")]))
        .expect_err("empty segment");
    assert!(err.to_string().contains("KUBEPKG_STORE____URL"), "{err}");
}

#[test]
fn malformed_values_name_the_setting_and_source_but_not_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "type.toml",
            "[store]\nmax_connections = \"lots-of-them\"\n",
            "store.max_connections",
            "lots-of-them",
        ),
        (
            "secret-type.toml",
            "[registries.default]\nurl = \"https://r.example.com\"\npassword = 918273645\n",
            "registries.default.password",
            "918273645",
        ),
        (
            "tagged.toml",
            "[object_stores.default]\nbackend = \"minio\"\nendpoint = \"http://h:9000\"\nsecret_key = 55501234\n",
            "object_stores.default.secret_key",
            "55501234",
        ),
        (
            "variant.yaml",
            "log:\n  format: fancy\n",
            "log.format",
            "\u{0}",
        ),
        (
            "url.toml",
            "[store]\nurl = \"mysql://root:db-secret-77@h/x\"\n",
            "store.url",
            "db-secret-77",
        ),
        (
            "amqp.toml",
            "[queues.default]\nbackend = \"amqp\"\nurl = \"http://u:amqp-pw-33@h\"\n",
            "queues.default.url",
            "amqp-pw-33",
        ),
        (
            "key.toml",
            "[encryption]\nactive_key = \"k1\"\nkeys = { k1 = \"not*base64*key-material-91\" }\n",
            "encryption.keys.k1",
            "key-material-91",
        ),
        (
            "short-key.toml",
            "[encryption]\nactive_key = \"k1\"\nkeys = { k1 = \"c2hvcnQta2V5LTQ0\" }\n",
            "encryption.keys.k1",
            "c2hvcnQta2V5LTQ0",
        ),
        (
            "kind.toml",
            "[providers.x]\nkind = \"gke\"\n",
            "providers.x.kind",
            "\u{0}",
        ),
        (
            "health.toml",
            "[health]\ninterval_secs = 5\ntimeout_secs = 10\n",
            "health.timeout_secs",
            "\u{0}",
        ),
    ];
    for (file, text, key, secret) in cases {
        let path = write(&dir, file, text);
        let err = PlatformConfig::from_sources(Some(&path), no_env())
            .expect_err(&format!("{file} is malformed"));
        let shown = err.to_string();
        let (setting, message) = config_error(err);
        assert_eq!(&setting, key, "{file}: {shown}");
        assert!(
            message.contains(&path.display().to_string()),
            "{file}: the error names the file: {shown}"
        );
        assert!(
            !shown.contains(secret),
            "{file}: the error shows the value: {shown}"
        );
    }
}

#[test]
fn malformed_env_values_name_the_variable() {
    let err =
        PlatformConfig::from_sources(None, env(&[("KUBEPKG_HEALTH__INTERVAL_SECS", "soon-ish")]))
            .expect_err("not a number");
    let shown = err.to_string();
    let (setting, message) = config_error(err);
    assert_eq!(setting, "health.interval_secs");
    assert!(message.contains("KUBEPKG_HEALTH__INTERVAL_SECS"), "{shown}");
    assert!(!shown.contains("soon-ish"), "{shown}");

    // A bad key from the environment: named, not shown.
    let err = PlatformConfig::from_sources(
        None,
        env(&[
            ("KUBEPKG_ENCRYPTION__ACTIVE_KEY", "k1"),
            ("KUBEPKG_ENCRYPTION__KEYS__K1", "env-key-material-5"),
        ]),
    )
    .expect_err("bad key");
    let shown = err.to_string();
    let (setting, message) = config_error(err);
    assert_eq!(setting, "encryption.keys.k1");
    assert!(message.contains("KUBEPKG_ENCRYPTION__KEYS__K1"), "{shown}");
    assert!(!shown.contains("env-key-material-5"), "{shown}");

    // Inside a section tagged by `backend` (serde buffers it): the key is
    // still found.
    let err = PlatformConfig::from_sources(
        None,
        env(&[
            ("KUBEPKG_OBJECT_STORES__M__BACKEND", "minio"),
            ("KUBEPKG_OBJECT_STORES__M__MAX_ATTEMPTS", "many"),
        ]),
    )
    .expect_err("not a number");
    let shown = err.to_string();
    let (setting, message) = config_error(err);
    assert_eq!(setting, "object_stores.m.max_attempts", "{shown}");
    assert!(
        message.contains("KUBEPKG_OBJECT_STORES__M__MAX_ATTEMPTS"),
        "{shown}"
    );
    assert!(!message.contains("__BACKEND"), "{shown}");

    // log-api's own variable.
    let err = PlatformConfig::from_sources(None, env(&[("KUBEPKG_LOG_BACKEND", "zerolog")]))
        .expect_err("unknown backend");
    assert!(err.to_string().contains("KUBEPKG_LOG_BACKEND"), "{err}");
}

#[test]
fn a_missing_active_key_is_named_without_the_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let absent = write(
        &dir,
        "absent.toml",
        &format!("[encryption]\nactive_key = \"k9\"\nkeys = {{ k1 = \"{KEY1}\" }}\n"),
    );
    let unset = write(
        &dir,
        "unset.yaml",
        &format!("encryption:\n  keys:\n    k1: {KEY1}\n    k2: {KEY2}\n"),
    );
    let no_keys = write(&dir, "none.toml", "[encryption]\nactive_key = \"k1\"\n");
    for path in [&absent, &unset, &no_keys] {
        let err = PlatformConfig::from_sources(Some(path), no_env()).expect_err("no active key");
        let shown = err.to_string();
        let (setting, message) = config_error(err);
        assert_eq!(setting, "encryption.active_key", "{shown}");
        assert!(!shown.contains(KEY1) && !shown.contains(KEY2), "{shown}");
        assert!(!message.is_empty());
    }
    // The message helps: it lists the ids there are.
    let err = PlatformConfig::from_sources(Some(&absent), no_env()).expect_err("k9");
    assert!(err.to_string().contains("k1"), "{err}");
    // No keys and no active key: encryption is simply not configured.
    PlatformConfig::from_toml_str("[encryption]\n").expect("no encryption");
}

#[test]
fn syntax_errors_show_the_position_not_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = write(
        &dir,
        "broken.toml",
        "[registries.default]\nurl = \"https://r\"\npassword = \"syntax-secret-12\n",
    );
    let err = PlatformConfig::from_sources(Some(&toml), no_env()).expect_err("unterminated");
    let shown = err.to_string();
    assert!(!shown.contains("syntax-secret-12"), "{shown}");
    assert!(shown.contains(&toml.display().to_string()), "{shown}");
    assert!(shown.contains("line 3"), "{shown}");

    let yaml = write(&dir, "broken.yaml", "store:\n  url: \"sqlite://x\n  : [\n");
    let err = PlatformConfig::from_sources(Some(&yaml), no_env()).expect_err("bad YAML");
    assert!(
        err.to_string().contains(&yaml.display().to_string()),
        "{err}"
    );
}

#[test]
fn files_are_chosen_by_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = write(&dir, "kubepkg.json", "{}");
    let (setting, message) =
        config_error(PlatformConfig::from_sources(Some(&json), no_env()).expect_err("json"));
    assert_eq!(setting, json.display().to_string());
    assert!(message.contains(".toml"), "{message}");

    let missing = dir.path().join("missing.toml");
    let (setting, _) = config_error(PlatformConfig::load(&missing).expect_err("missing file"));
    assert_eq!(setting, missing.display().to_string());

    // Upper-case extensions count.
    let upper = write(&dir, "KUBEPKG.YML", "search:\n  concurrency: 2\n");
    assert_eq!(PlatformConfig::load_from(&upper).search.concurrency, 2);
}

#[test]
fn debug_never_shows_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "kubepkg.toml", TOML_FULL);
    let config = PlatformConfig::load_from(&path);
    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");
    for secret in SECRETS {
        assert!(!debug.contains(secret), "Debug shows {secret}: {debug}");
        assert!(!pretty.contains(secret), "pretty Debug shows {secret}");
    }
    assert!(debug.contains("[redacted]"));
    // Not everything is hidden: the config stays useful in a log line.
    assert!(
        debug.contains("AKIDEXAMPLE") && debug.contains("project_id"),
        "{debug}"
    );
    // The secrets are there for the code that connects.
    let values = exposed(&config);
    for secret in SECRETS {
        assert!(
            values.iter().any(|v| v.contains(secret)),
            "{secret} is lost"
        );
    }
}

#[test]
fn validation_rules() {
    let bad: &[(&str, &str)] = &[
        ("[search]\nconcurrency = 0\n", "search.concurrency"),
        ("[health]\ninterval_secs = 0\n", "health.interval_secs"),
        (
            "[health]\nmax_backoff_secs = 10\n",
            "health.max_backoff_secs",
        ),
        ("[store]\nmax_connections = 0\n", "store.max_connections"),
        (
            "[providers.p]\nendpoint = \"https://x\"\n",
            "providers.p.kind",
        ),
        (
            "[providers.p]\nkind = \"rancher\"\nendpoint = \"ftp://x\"\n",
            "providers.p.endpoint",
        ),
        (
            "[registries.r]\nurl = \"http://plain.example.com\"\n",
            "registries.r.url",
        ),
        ("[engines.e]\nhost = \"ssh://x\"\n", "engines.e.host"),
        ("[log]\nfilter = \"info,a=loud\"\n", "log"),
        (
            "[kubernetes]\nsource = \"default\"\nqps = -1\n",
            "kubernetes",
        ),
        (
            "[encryption]\nactive_key = \"bad id\"\nkeys = { \"bad id\" = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\" }\n",
            "encryption.keys.bad id",
        ),
    ];
    for (text, key) in bad {
        let err = PlatformConfig::from_toml_str(text).expect_err(text);
        let shown = err.to_string();
        let (setting, _) = config_error(err);
        assert_eq!(&setting, key, "{text}: {shown}");
    }
    // Each provider kind is accepted.
    for kind in kubepkg_platform::config::provider_kinds() {
        PlatformConfig::from_toml_str(&format!("[providers.p]\nkind = \"{kind}\"\n"))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    // validate() also checks a config built in code.
    let mut config = PlatformConfig::default();
    config.validate().expect("defaults are valid");
    config.encryption.active_key = "k1".into();
    let (setting, _) = config_error(config.validate().expect_err("no such key"));
    assert_eq!(setting, "encryption.active_key");
    config.encryption.keys.insert("k1".into(), KEY1.into());
    config.validate().expect("now it is there");
}

#[test]
fn the_reference_config_parses_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubepkg.toml");
    let config = PlatformConfig::load_from(&path);
    config.validate().expect("the reference config validates");
    // It covers every section.
    assert!(config.kubernetes.is_some());
    assert!(!config.encryption.keys.is_empty());
    assert!(config.registries.contains_key("default"));
    assert!(config.engines.contains_key("default"));
    assert!(config.object_stores.contains_key("default"));
    assert!(config.object_stores.len() >= 2);
    assert!(config.queues.contains_key("default"));
    assert!(!config.providers.is_empty());
    let kinds: Vec<&str> = config.providers.values().map(|p| p.kind.as_str()).collect();
    for kind in kubepkg_platform::config::provider_kinds() {
        assert!(
            kinds.contains(&kind),
            "the reference has no {kind} provider"
        );
    }
}

/// The default store URL is one the store opens: the database file (and
/// the missing directories) appear under `data_dir`.
#[tokio::test]
async fn the_default_store_url_opens_under_data_dir() {
    use std::str::FromStr as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("nested").join("data");
    let config = PlatformConfig::from_sources(
        None,
        env(&[
            (
                "KUBEPKG_DATA_DIR",
                data_dir.to_str().expect("UTF-8 temp dir"),
            ),
            ("KUBEPKG_ENCRYPTION__ACTIVE_KEY", "k1"),
            ("KUBEPKG_ENCRYPTION__KEYS__K1", KEY1),
        ]),
    )
    .expect("config");
    let keyring = kubepkg_platform::Keyring::from_settings(
        &config.encryption.active_key,
        &config.encryption.keys,
        "encryption.keys",
    )
    .expect("keyring from the settings");
    let store = kubepkg_platform::Store::open_with(
        config.store_url().expose(),
        keyring,
        config.store.options(),
    )
    .await
    .expect("the store opens at the default URL");
    drop(store);
    assert!(data_dir.join("kubepkg.db").is_file());

    // The relative default names a file relative to the working directory.
    let url = PlatformConfig::default().store_url();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose()).expect("SQLite URL");
    assert_eq!(
        options.get_filename(),
        Path::new("./kubepkg-data/kubepkg.db")
    );
}
