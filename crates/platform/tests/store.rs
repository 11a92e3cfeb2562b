//! The platform store's suite, run unchanged on SQLite (in memory and in a
//! file) and on the local environment's PostgreSQL (a fresh schema per
//! test, dropped afterwards, so tests run concurrently without colliding).
//!
//! Tests that read the raw tables or open a second store on the same
//! database run on the file and PostgreSQL backends only (an in-memory
//! database is private to its store).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kubepkg_platform::crypto::Keyring;
use kubepkg_platform::store::*;
use kubepkg_platform::{Error, Store};
use kubepkg_util::ErrorKind;
use kubepkg_util::secret::Secret;
use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

// ---------------------------------------------------------------- fixture

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Memory,
    File,
    Postgres,
}

/// A direct connection to the store's database, for looking under the hood.
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

struct Fixture {
    kind: Kind,
    store: Store,
    keys: Keyring,
    url: String,
    schema: Option<String>,
    raw: Option<Raw>,
    dir: Option<tempfile::TempDir>,
}

fn key_a() -> [u8; 32] {
    [0xA1; 32]
}

fn key_b() -> [u8; 32] {
    [0xB2; 32]
}

fn two_keys() -> Keyring {
    Keyring::new("k1", key_a())
        .and_then(|k| k.with_key("k2", key_b()))
        .expect("keyring")
}

fn pg_schema() -> String {
    kubepkg_testenv::unique_name("kp_store").replace('-', "_")
}

fn pg_options(schema: &str) -> StoreOptions {
    StoreOptions {
        max_connections: 4,
        postgres_schema: Some(schema.to_owned()),
        ..StoreOptions::default()
    }
}

impl Fixture {
    async fn new(kind: Kind) -> Fixture {
        let keys = two_keys();
        match kind {
            Kind::Memory => Fixture {
                kind,
                store: Store::open("sqlite::memory:", keys.clone())
                    .await
                    .expect("open sqlite::memory:"),
                keys,
                url: "sqlite::memory:".into(),
                schema: None,
                raw: None,
                dir: None,
            },
            Kind::File => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("data").join("kubepkg.db");
                let url = format!("sqlite://{}", path.display());
                let store = Store::open(&url, keys.clone())
                    .await
                    .expect("open sqlite file");
                let raw = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(SqliteConnectOptions::new().filename(&path))
                    .await
                    .expect("raw sqlite connection");
                Fixture {
                    kind,
                    store,
                    keys,
                    url,
                    schema: None,
                    raw: Some(Raw::Sqlite(raw)),
                    dir: Some(dir),
                }
            }
            Kind::Postgres => {
                let pg = kubepkg_testenv::postgres();
                let schema = pg_schema();
                let store = Store::open_with(&pg.url, keys.clone(), pg_options(&schema))
                    .await
                    .expect("open PostgreSQL store");
                let options = PgConnectOptions::from_url(&pg.url.parse().expect("url"))
                    .expect("pg options")
                    .options([("search_path", schema.as_str())]);
                let raw = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .expect("raw PostgreSQL connection");
                Fixture {
                    kind,
                    store,
                    keys,
                    url: pg.url.clone(),
                    schema: Some(schema),
                    raw: Some(Raw::Postgres(raw)),
                    dir: None,
                }
            }
        }
    }

    /// A second store on the same database, with other keys.
    async fn reopen(&self, keys: Keyring) -> Store {
        match self.kind {
            Kind::Memory => panic!("an in-memory store cannot be reopened"),
            Kind::File => Store::open(&self.url, keys).await.expect("reopen"),
            Kind::Postgres => {
                let schema = self.schema.as_deref().expect("schema");
                Store::open_with(&self.url, keys, pg_options(schema))
                    .await
                    .expect("reopen")
            }
        }
    }

    fn raw(&self) -> &Raw {
        self.raw
            .as_ref()
            .expect("raw access (not for in-memory stores)")
    }

    async fn cleanup(&self) {
        self.store.close().await;
        match &self.raw {
            Some(Raw::Postgres(pool)) => {
                let schema = self.schema.as_deref().expect("schema");
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(pool)
                    .await
                    .expect("drop the test schema");
                pool.close().await;
            }
            Some(Raw::Sqlite(pool)) => pool.close().await,
            None => {}
        }
    }
}

/// The raw row of a credential: key id, nonce, ciphertext.
type RawSealed = (String, Vec<u8>, Vec<u8>);

macro_rules! on_raw {
    ($raw:expr, $pool:ident => $body:expr) => {
        match $raw {
            Raw::Sqlite($pool) => $body,
            Raw::Postgres($pool) => $body,
        }
    };
}

impl Raw {
    async fn sealed(&self, owner_kind: &str, owner_name: &str) -> RawSealed {
        const SQL: &str = "SELECT key_id, nonce, ciphertext FROM credentials \
                           WHERE owner_kind = $1 AND owner_name = $2";
        on_raw!(self, pool => sqlx::query_as::<_, RawSealed>(SQL)
            .bind(owner_kind)
            .bind(owner_name)
            .fetch_one(pool)
            .await)
        .expect("raw credential row")
    }

    async fn set_sealed(&self, owner_kind: &str, owner_name: &str, sealed: &RawSealed) {
        const SQL: &str = "UPDATE credentials SET key_id = $1, nonce = $2, ciphertext = $3 \
                           WHERE owner_kind = $4 AND owner_name = $5";
        let done = on_raw!(self, pool => sqlx::query(SQL)
            .bind(sealed.0.as_str())
            .bind(sealed.1.as_slice())
            .bind(sealed.2.as_slice())
            .bind(owner_kind)
            .bind(owner_name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .expect("raw update");
        assert_eq!(done, 1);
    }

    async fn count(&self, sql: &str, bind: &str) -> i64 {
        on_raw!(self, pool => sqlx::query_scalar::<_, i64>(sql)
            .bind(bind)
            .fetch_one(pool)
            .await)
        .expect("raw count")
    }
}

/// Runs `body` on a fresh fixture of `kind`, then cleans up even when the
/// body panicked (and re-raises the panic).
async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let f = Arc::new(Fixture::new(kind).await);
    let outcome = tokio::spawn(body(Arc::clone(&f))).await;
    f.cleanup().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// One test per backend for each suite function.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() { run(Kind::Memory, super::$name).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_file() { run(Kind::File, super::$name).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run(Kind::Postgres, super::$name).await }
        }
    )*};
}

/// Like `suite!`, for tests that need raw access or a second store.
macro_rules! persistent_suite {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_file() { run(Kind::File, super::$name).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run(Kind::Postgres, super::$name).await }
        }
    )*};
}

suite!(
    cluster_crud,
    cluster_bad_input_stores_nothing,
    concurrent_cluster_updates_conflict,
    concurrent_credential_replacement_conflicts,
    credential_round_trip,
    nodes,
    registries_and_permissions,
    operations,
    lists_never_contain_secrets,
    deletes_cascade,
);

persistent_suite!(
    ciphertext_at_rest,
    wrong_key_is_a_decrypt_error,
    tampered_rows_are_decrypt_errors,
    rotate_key,
    failed_rotation_changes_nothing,
);

// ---------------------------------------------------------------- helpers

fn new_cluster(name: &str) -> NewCluster {
    NewCluster {
        name: name.to_owned(),
        display_name: format!("Cluster {name}"),
        provider: "imported".into(),
        provider_cluster_id: Some(format!("cls-{name}")),
        region: Some("ap-guangzhou".into()),
        api_server: format!("https://{name}.example.invalid:6443"),
        ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        labels: BTreeMap::from([("env".into(), "test".into())]),
        credential_expires_at: None,
    }
}

fn secret(text: &str) -> Secret<String> {
    Secret::new(text.to_owned())
}

fn cluster_owner(name: &str) -> CredentialOwner {
    CredentialOwner::Cluster(name.to_owned())
}

#[track_caller]
fn assert_kind<T: std::fmt::Debug>(result: Result<T, Error>, kind: ErrorKind) -> Error {
    match result {
        Ok(v) => panic!("expected a {kind} error, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "unexpected error: {e}");
            e
        }
    }
}

// ---------------------------------------------------------------- suite

async fn cluster_crud(f: Arc<Fixture>) {
    let s = &f.store;
    let a = s
        .create_cluster(
            &new_cluster("alpha"),
            CredentialKind::Token,
            &secret("tok-alpha"),
        )
        .await
        .expect("create alpha");
    assert_eq!(a.version, 1);
    assert_eq!(a.name, "alpha");
    assert_eq!(a.display_name, "Cluster alpha");
    assert_eq!(a.labels["env"], "test");
    assert!(a.conditions.is_empty());
    assert_eq!(a.created_at, a.updated_at);
    assert_eq!(s.get_cluster("alpha").await.expect("get"), a);

    // An empty display name becomes the name.
    let mut n = new_cluster("beta");
    n.display_name.clear();
    n.ca_pem = None;
    let b = s
        .create_cluster(&n, CredentialKind::Kubeconfig, &secret("kubeconfig-beta"))
        .await
        .expect("create beta");
    assert_eq!(b.display_name, "beta");
    assert_eq!(b.ca_pem, None);

    let names: Vec<String> = s
        .list_clusters()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"]);

    let mut changed = a.clone();
    changed.display_name = "Alpha (prod)".into();
    changed.region = None;
    changed.labels.insert("tier".into(), "gold".into());
    changed.conditions = vec![Condition {
        type_: ConditionType::Reachable,
        status: ConditionStatus::True,
        reason: "Probed".into(),
        message: "readyz ok".into(),
        last_transition: jiff::Timestamp::from_second(1_700_000_000).expect("ts"),
    }];
    let expiry = jiff::Timestamp::from_millisecond(1_900_000_000_123).expect("ts");
    changed.credential_expires_at = Some(expiry);
    let updated = s.update_cluster(&changed).await.expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.display_name, "Alpha (prod)");
    assert_eq!(updated.region, None);
    assert_eq!(updated.labels.len(), 2);
    assert_eq!(updated.conditions, changed.conditions);
    assert_eq!(updated.credential_expires_at, Some(expiry));
    assert_eq!(updated.created_at, a.created_at);
    assert!(updated.updated_at >= a.updated_at);
    assert_eq!(s.get_cluster("alpha").await.expect("get"), updated);

    s.delete_cluster("alpha").await.expect("delete");
    assert_kind(s.get_cluster("alpha").await, ErrorKind::NotFound);
    assert_kind(s.delete_cluster("alpha").await, ErrorKind::NotFound);
    assert_kind(s.update_cluster(&updated).await, ErrorKind::NotFound);
    assert_eq!(s.list_clusters().await.expect("list").len(), 1);
}

async fn cluster_bad_input_stores_nothing(f: Arc<Fixture>) {
    let s = &f.store;
    let too_long = "a".repeat(64);
    for bad in [
        "",
        "Upper",
        "under_score",
        "dot.ted",
        "-lead",
        "trail-",
        too_long.as_str(),
    ] {
        let e = assert_kind(
            s.create_cluster(&new_cluster(bad), CredentialKind::Token, &secret("t"))
                .await,
            ErrorKind::Invalid,
        );
        assert!(e.to_string().contains("cluster name"), "{e}");
    }
    let mut n = new_cluster("ok-name");
    n.labels.insert("bad key!".into(), "v".into());
    assert_kind(
        s.create_cluster(&n, CredentialKind::Token, &secret("t"))
            .await,
        ErrorKind::Invalid,
    );
    let mut n = new_cluster("ok-name");
    n.provider.clear();
    assert_kind(
        s.create_cluster(&n, CredentialKind::Token, &secret("t"))
            .await,
        ErrorKind::Invalid,
    );
    let mut n = new_cluster("ok-name");
    n.api_server = "https://x\n".into();
    assert_kind(
        s.create_cluster(&n, CredentialKind::Token, &secret("t"))
            .await,
        ErrorKind::Invalid,
    );
    // An empty secret is refused, and the cluster is not stored either.
    assert_kind(
        s.create_cluster(&new_cluster("ok-name"), CredentialKind::Token, &secret(""))
            .await,
        ErrorKind::Invalid,
    );
    assert!(s.list_clusters().await.expect("list").is_empty());
    assert!(s.list_credentials().await.expect("list").is_empty());

    // A taken name: AlreadyExists, and the first cluster and its
    // credential are untouched.
    let first = s
        .create_cluster(
            &new_cluster("taken"),
            CredentialKind::Token,
            &secret("first"),
        )
        .await
        .expect("create");
    let mut again = new_cluster("taken");
    again.region = Some("elsewhere".into());
    assert_kind(
        s.create_cluster(&again, CredentialKind::Token, &secret("second"))
            .await,
        ErrorKind::AlreadyExists,
    );
    assert_eq!(s.get_cluster("taken").await.expect("get"), first);
    let cred = s.credential(&cluster_owner("taken")).await.expect("cred");
    assert_eq!(cred.secret.expose(), "first");

    // A bad update changes nothing.
    let mut bad = first.clone();
    bad.labels.insert("k".into(), "bad value!".into());
    assert_kind(s.update_cluster(&bad).await, ErrorKind::Invalid);
    assert_eq!(s.get_cluster("taken").await.expect("get"), first);
    assert_kind(s.get_cluster("missing").await, ErrorKind::NotFound);
}

async fn concurrent_cluster_updates_conflict(f: Arc<Fixture>) {
    let s = &f.store;
    s.create_cluster(&new_cluster("race"), CredentialKind::Token, &secret("t"))
        .await
        .expect("create");
    for round in 0..10 {
        let read = s.get_cluster("race").await.expect("read");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for who in ["left", "right"] {
            let store = s.clone();
            let barrier = Arc::clone(&barrier);
            let mut mine = read.clone();
            mine.region = Some(format!("{who}-{round}"));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (who, store.update_cluster(&mine).await)
            }));
        }
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for t in tasks {
            let (who, result) = t.await.expect("task");
            match result {
                Ok(rec) => winners.push((who, rec)),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Conflict, "round {round}: {e}");
                    conflicts += 1;
                }
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one update wins");
        assert_eq!(conflicts, 1, "round {round}: the other one conflicts");
        let (who, rec) = &winners[0];
        assert_eq!(rec.version, read.version + 1);
        let now = s.get_cluster("race").await.expect("read back");
        assert_eq!(
            now.region.as_deref(),
            Some(format!("{who}-{round}").as_str())
        );
        assert_eq!(now.version, read.version + 1);
    }
}

async fn concurrent_credential_replacement_conflicts(f: Arc<Fixture>) {
    let s = &f.store;
    let c = s
        .create_cluster(&new_cluster("swap"), CredentialKind::Token, &secret("t0"))
        .await
        .expect("create");
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut tasks = Vec::new();
    for who in ["one", "two"] {
        let store = s.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = store
                .replace_cluster_credential(
                    "swap",
                    c.version,
                    CredentialKind::Token,
                    &secret(&format!("token-{who}")),
                    Some(&format!("https://{who}.example.invalid")),
                    None,
                    None,
                )
                .await;
            (who, r)
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        let (who, r) = t.await.expect("task");
        match r {
            Ok(_) => won.push(who),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one replacement wins");
    // The winner's credential and API server, together: the loser's
    // transaction left nothing behind.
    let cred = s.credential(&cluster_owner("swap")).await.expect("cred");
    assert_eq!(cred.secret.expose(), &format!("token-{}", won[0]));
    let now = s.get_cluster("swap").await.expect("get");
    assert_eq!(
        now.api_server,
        format!("https://{}.example.invalid", won[0])
    );
    assert_eq!(now.version, 2);
}

async fn credential_round_trip(f: Arc<Fixture>) {
    let s = &f.store;
    let c = s
        .create_cluster(
            &new_cluster("cred"),
            CredentialKind::Token,
            &secret("tok-1"),
        )
        .await
        .expect("create");
    let cred = s.credential(&cluster_owner("cred")).await.expect("read");
    assert_eq!(cred.secret.expose(), "tok-1");
    assert_eq!(cred.info.kind, CredentialKind::Token);
    assert_eq!(cred.info.key_id, "k1");
    assert_eq!(cred.info.owner, cluster_owner("cred"));

    // Replace: new secret, API server, CA cleared, expiry set, version bumped.
    let expires = jiff::Timestamp::from_millisecond(2_000_000_000_000).expect("ts");
    let kubeconfig =
        "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: s3cr3t\n";
    let after = s
        .replace_cluster_credential(
            "cred",
            c.version,
            CredentialKind::Kubeconfig,
            &secret(kubeconfig),
            Some("https://new.example.invalid:6443"),
            Some(None),
            Some(expires),
        )
        .await
        .expect("replace");
    assert_eq!(after.version, c.version + 1);
    assert_eq!(after.api_server, "https://new.example.invalid:6443");
    assert_eq!(after.ca_pem, None);
    assert_eq!(after.credential_expires_at, Some(expires));
    assert_eq!(after.region, c.region, "fields not given stay");
    let cred = s.credential(&cluster_owner("cred")).await.expect("read");
    assert_eq!(cred.secret.expose(), kubeconfig);
    assert_eq!(cred.info.kind, CredentialKind::Kubeconfig);

    // API server and CA left alone when not given; a CA can be set again.
    let again = s
        .replace_cluster_credential(
            "cred",
            after.version,
            CredentialKind::Token,
            &secret("tok-3"),
            None,
            Some(Some(
                "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
            )),
            None,
        )
        .await
        .expect("replace again");
    assert_eq!(again.api_server, after.api_server);
    assert!(again.ca_pem.is_some());
    assert_eq!(again.credential_expires_at, None);

    // A stale version: Conflict, and the credential is untouched (the whole
    // transaction rolled back).
    assert_kind(
        s.replace_cluster_credential(
            "cred",
            c.version,
            CredentialKind::Token,
            &secret("stale"),
            None,
            None,
            None,
        )
        .await,
        ErrorKind::Conflict,
    );
    assert_eq!(
        s.credential(&cluster_owner("cred"))
            .await
            .expect("read")
            .secret
            .expose(),
        "tok-3"
    );
    assert_kind(
        s.replace_cluster_credential(
            "gone",
            1,
            CredentialKind::Token,
            &secret("x"),
            None,
            None,
            None,
        )
        .await,
        ErrorKind::NotFound,
    );

    // Provider access keys need no row of their own; cluster and registry
    // owners must exist.
    let provider = CredentialOwner::Provider("tke".into());
    let info = s
        .put_credential(
            &provider,
            CredentialKind::AccessKey,
            &secret(r#"{"id":"AKID","secret":"x"}"#),
        )
        .await
        .expect("put provider key");
    assert_eq!(info.owner, provider);
    assert_eq!(info.created_at, info.updated_at);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let info2 = s
        .put_credential(
            &provider,
            CredentialKind::AccessKey,
            &secret(r#"{"id":"AKID2","secret":"y"}"#),
        )
        .await
        .expect("replace provider key");
    assert_eq!(
        info2.created_at, info.created_at,
        "an upsert keeps the creation time"
    );
    assert!(info2.updated_at > info.updated_at);
    assert_eq!(
        s.credential(&provider).await.expect("read").secret.expose(),
        r#"{"id":"AKID2","secret":"y"}"#
    );
    assert_kind(
        s.put_credential(&cluster_owner("nope"), CredentialKind::Token, &secret("x"))
            .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        s.put_credential(
            &CredentialOwner::Registry("nope".into()),
            CredentialKind::Login,
            &secret("x"),
        )
        .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        s.put_credential(
            &cluster_owner("Bad Name"),
            CredentialKind::Token,
            &secret("x"),
        )
        .await,
        ErrorKind::Invalid,
    );

    let owners: Vec<CredentialOwner> = s
        .list_credentials()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.owner)
        .collect();
    assert_eq!(owners, [cluster_owner("cred"), provider.clone()]);

    s.delete_credential(&provider).await.expect("delete");
    assert_kind(s.credential(&provider).await, ErrorKind::NotFound);
    assert_kind(s.delete_credential(&provider).await, ErrorKind::NotFound);
}

async fn nodes(f: Arc<Fixture>) {
    let s = &f.store;
    s.create_cluster(&new_cluster("nodes"), CredentialKind::Token, &secret("t"))
        .await
        .expect("create");
    let node = |name: &str, id: &str, pool: Option<&str>| NodeRecord {
        cluster: "nodes".into(),
        node_name: name.into(),
        provider_instance_id: id.into(),
        node_pool: pool.map(str::to_owned),
        created_at: jiff::Timestamp::UNIX_EPOCH,
    };
    s.upsert_node(&node("node-b.internal", "ins-2", Some("np-1")))
        .await
        .expect("upsert");
    s.upsert_node(&node("node-a.internal", "ins-1", None))
        .await
        .expect("upsert");
    let list = s.list_nodes("nodes").await.expect("list");
    let names: Vec<&str> = list.iter().map(|n| n.node_name.as_str()).collect();
    assert_eq!(names, ["node-a.internal", "node-b.internal"]);
    assert!(
        list[0].created_at > jiff::Timestamp::UNIX_EPOCH,
        "the store sets created_at"
    );

    let by_id = s
        .node_by_instance("nodes", "ins-2")
        .await
        .expect("by instance");
    assert_eq!(by_id.node_name, "node-b.internal");
    assert_eq!(by_id.node_pool.as_deref(), Some("np-1"));

    // Update in place: new pool, same creation time.
    s.upsert_node(&node("node-b.internal", "ins-2", Some("np-2")))
        .await
        .expect("re-upsert");
    let again = s
        .node_by_instance("nodes", "ins-2")
        .await
        .expect("by instance");
    assert_eq!(again.node_pool.as_deref(), Some("np-2"));
    assert_eq!(again.created_at, by_id.created_at);

    // One instance is one node.
    assert_kind(
        s.upsert_node(&node("node-c.internal", "ins-1", None)).await,
        ErrorKind::AlreadyExists,
    );
    let mut orphan = node("node-z", "ins-9", None);
    orphan.cluster = "no-such-cluster".into();
    assert_kind(s.upsert_node(&orphan).await, ErrorKind::NotFound);
    assert_kind(
        s.upsert_node(&node("Bad_Node", "ins-3", None)).await,
        ErrorKind::Invalid,
    );
    assert_kind(
        s.upsert_node(&node("node-d", "", None)).await,
        ErrorKind::Invalid,
    );
    assert_eq!(s.list_nodes("nodes").await.expect("list").len(), 2);

    assert_kind(
        s.node_by_instance("nodes", "ins-404").await,
        ErrorKind::NotFound,
    );
    assert_kind(s.list_nodes("no-such-cluster").await, ErrorKind::NotFound);
    s.delete_node("nodes", "node-a.internal")
        .await
        .expect("delete");
    assert_kind(
        s.delete_node("nodes", "node-a.internal").await,
        ErrorKind::NotFound,
    );
    assert_eq!(s.list_nodes("nodes").await.expect("list").len(), 1);
}

async fn registries_and_permissions(f: Arc<Fixture>) {
    let s = &f.store;
    let new = NewRegistry {
        name: "harbor-main".into(),
        provider: "harbor".into(),
        endpoint: "https://harbor.example.invalid".into(),
        labels: BTreeMap::from([("team".into(), "infra".into())]),
    };
    let r = s
        .create_registry(
            &new,
            Some(&secret(r#"{"username":"robot","password":"pw"}"#)),
        )
        .await
        .expect("create");
    assert_eq!(r.version, 1);
    assert_eq!(s.get_registry("harbor-main").await.expect("get"), r);
    let login = s
        .credential(&CredentialOwner::Registry("harbor-main".into()))
        .await
        .expect("login");
    assert_eq!(login.info.kind, CredentialKind::Login);
    assert_eq!(
        login.secret.expose(),
        r#"{"username":"robot","password":"pw"}"#
    );

    let plain = NewRegistry {
        name: "dist".into(),
        provider: "distribution".into(),
        endpoint: "http://127.0.0.1:5000".into(),
        labels: BTreeMap::new(),
    };
    s.create_registry(&plain, None)
        .await
        .expect("create without login");
    assert_kind(
        s.credential(&CredentialOwner::Registry("dist".into()))
            .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        s.create_registry(&plain, None).await,
        ErrorKind::AlreadyExists,
    );
    let mut bad = plain.clone();
    bad.name = "Not A Name".into();
    assert_kind(s.create_registry(&bad, None).await, ErrorKind::Invalid);
    let mut bad = plain.clone();
    bad.name = "no-endpoint".into();
    bad.endpoint.clear();
    assert_kind(s.create_registry(&bad, None).await, ErrorKind::Invalid);
    let names: Vec<String> = s
        .list_registries()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["dist", "harbor-main"]);

    let mut changed = r.clone();
    changed.endpoint = "https://harbor2.example.invalid".into();
    let updated = s.update_registry(&changed).await.expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.endpoint, "https://harbor2.example.invalid");
    assert_kind(s.update_registry(&changed).await, ErrorKind::Conflict);
    let mut gone = changed.clone();
    gone.name = "gone".into();
    assert_kind(s.update_registry(&gone).await, ErrorKind::NotFound);

    // Permissions.
    let p = s
        .grant("harbor-main", "library", "alice", Access::Pull)
        .await
        .expect("grant");
    assert_eq!(p.access, Access::Pull);
    s.grant("harbor-main", "library", "bob", Access::Push)
        .await
        .expect("grant");
    s.grant("harbor-main", "apps", "alice", Access::Push)
        .await
        .expect("grant");
    assert!(
        s.may("harbor-main", "library", "alice", Access::Pull)
            .await
            .expect("may")
    );
    assert!(
        !s.may("harbor-main", "library", "alice", Access::Push)
            .await
            .expect("may")
    );
    assert!(
        s.may("harbor-main", "library", "bob", Access::Pull)
            .await
            .expect("may"),
        "push implies pull"
    );
    assert!(
        s.may("harbor-main", "library", "bob", Access::Push)
            .await
            .expect("may")
    );
    assert!(
        !s.may("harbor-main", "library", "carol", Access::Pull)
            .await
            .expect("may")
    );
    assert!(
        !s.may("harbor-main", "other", "alice", Access::Pull)
            .await
            .expect("may")
    );
    assert!(
        !s.may("dist", "library", "alice", Access::Pull)
            .await
            .expect("may")
    );
    assert_kind(
        s.may("no-registry", "library", "alice", Access::Pull).await,
        ErrorKind::NotFound,
    );

    // Grant is an upsert: alice now pushes to library, same creation time.
    let up = s
        .grant("harbor-main", "library", "alice", Access::Push)
        .await
        .expect("regrant");
    assert_eq!(up.created_at, p.created_at);
    assert!(
        s.may("harbor-main", "library", "alice", Access::Push)
            .await
            .expect("may")
    );

    let perms = s.permissions("harbor-main").await.expect("permissions");
    let keys: Vec<(&str, &str, Access)> = perms
        .iter()
        .map(|p| (p.namespace.as_str(), p.subject.as_str(), p.access))
        .collect();
    assert_eq!(
        keys,
        [
            ("apps", "alice", Access::Push),
            ("library", "alice", Access::Push),
            ("library", "bob", Access::Push),
        ]
    );
    assert!(s.permissions("dist").await.expect("empty").is_empty());
    assert_kind(s.permissions("no-registry").await, ErrorKind::NotFound);
    assert_kind(
        s.grant("no-registry", "library", "alice", Access::Pull)
            .await,
        ErrorKind::NotFound,
    );
    assert_kind(
        s.grant("harbor-main", "", "alice", Access::Pull).await,
        ErrorKind::Invalid,
    );
    assert_kind(
        s.grant("harbor-main", "library", "line\nbreak", Access::Pull)
            .await,
        ErrorKind::Invalid,
    );

    s.revoke("harbor-main", "library", "bob")
        .await
        .expect("revoke");
    assert!(
        !s.may("harbor-main", "library", "bob", Access::Pull)
            .await
            .expect("may")
    );
    assert_kind(
        s.revoke("harbor-main", "library", "bob").await,
        ErrorKind::NotFound,
    );
    assert_eq!(s.permissions("harbor-main").await.expect("perms").len(), 2);

    s.delete_registry("dist").await.expect("delete");
    assert_kind(s.get_registry("dist").await, ErrorKind::NotFound);
    assert_kind(s.delete_registry("dist").await, ErrorKind::NotFound);
}

async fn operations(f: Arc<Fixture>) {
    let s = &f.store;
    let first = s
        .create_operation("create_cluster", "tke", "prod", Some("req-1"))
        .await
        .expect("create");
    assert_eq!(first.state, OperationState::Pending);
    assert_eq!(first.version, 1);
    assert_eq!(first.vendor_request_id.as_deref(), Some("req-1"));
    assert!(uuid::Uuid::parse_str(&first.id).is_ok(), "{}", first.id);
    assert_eq!(s.get_operation(&first.id).await.expect("get"), first);

    let second = s
        .create_operation("add_nodes", "ack", "prod/np-1", None)
        .await
        .expect("create");
    let third = s
        .create_operation("delete_cluster", "rancher", "old", None)
        .await
        .expect("create");
    assert_ne!(first.id, second.id);

    let mut running = first.clone();
    running.state = OperationState::Running;
    running.vendor_request_id = Some("req-2".into());
    let running = s.update_operation(&running).await.expect("update");
    assert_eq!(running.version, 2);
    assert_eq!(running.vendor_request_id.as_deref(), Some("req-2"));
    // The stale copy conflicts.
    let mut stale = first.clone();
    stale.state = OperationState::Failed;
    assert_kind(s.update_operation(&stale).await, ErrorKind::Conflict);

    let mut failed = third.clone();
    failed.state = OperationState::Failed;
    failed.last_error = Some("x".repeat(20_000));
    let failed = s.update_operation(&failed).await.expect("fail it");
    assert!(
        failed.last_error.as_ref().expect("error").len() < 20_000,
        "long errors are cut"
    );

    let all: Vec<String> = s
        .list_operations(false)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(
        all,
        [third.id.clone(), second.id.clone(), first.id.clone()],
        "newest first"
    );
    let active: Vec<String> = s
        .list_operations(true)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(active, [second.id.clone(), first.id.clone()]);

    assert_kind(s.get_operation("no-such-id").await, ErrorKind::NotFound);
    let mut missing = running.clone();
    missing.id = "no-such-id".into();
    assert_kind(s.update_operation(&missing).await, ErrorKind::NotFound);
    assert_kind(
        s.create_operation("", "tke", "x", None).await,
        ErrorKind::Invalid,
    );
    assert_kind(
        s.create_operation("k", "tke", "", None).await,
        ErrorKind::Invalid,
    );
}

async fn lists_never_contain_secrets(f: Arc<Fixture>) {
    let s = &f.store;
    let secrets = [
        "cluster-secret-7f3a9",
        "registry-secret-1c2d",
        "provider-secret-99ee",
    ];
    s.create_cluster(
        &new_cluster("listed"),
        CredentialKind::Token,
        &secret(secrets[0]),
    )
    .await
    .expect("create");
    let reg = NewRegistry {
        name: "listed-reg".into(),
        provider: "harbor".into(),
        endpoint: "https://r.example.invalid".into(),
        labels: BTreeMap::new(),
    };
    s.create_registry(&reg, Some(&secret(secrets[1])))
        .await
        .expect("registry");
    s.grant("listed-reg", "ns", "someone", Access::Pull)
        .await
        .expect("grant");
    s.put_credential(
        &CredentialOwner::Provider("ack".into()),
        CredentialKind::AccessKey,
        &secret(secrets[2]),
    )
    .await
    .expect("provider key");
    s.create_operation("create_cluster", "ack", "listed", None)
        .await
        .expect("op");

    let mut dumps = Vec::new();
    let clusters = s.list_clusters().await.expect("list");
    dumps.push(serde_json::to_string(&clusters).expect("json"));
    dumps.push(format!("{clusters:?} {clusters:#?}"));
    let creds = s.list_credentials().await.expect("list");
    assert_eq!(creds.len(), 3);
    dumps.push(serde_json::to_string(&creds).expect("json"));
    dumps.push(format!("{creds:?}"));
    let regs = s.list_registries().await.expect("list");
    dumps.push(serde_json::to_string(&regs).expect("json"));
    dumps.push(format!("{regs:?}"));
    let perms = s.permissions("listed-reg").await.expect("perms");
    dumps.push(serde_json::to_string(&perms).expect("json"));
    let ops = s.list_operations(false).await.expect("ops");
    dumps.push(serde_json::to_string(&ops).expect("json"));
    dumps.push(format!("{ops:?}"));
    let cluster = s.get_cluster("listed").await.expect("get");
    dumps.push(serde_json::to_string(&cluster).expect("json"));
    // A decrypted credential redacts its secret in Debug.
    let cred = s.credential(&cluster_owner("listed")).await.expect("cred");
    dumps.push(format!("{cred:?} {cred:#?}"));
    dumps.push(format!("{s:?}"));
    let everything = dumps.join("\n");
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into a list or Debug output"
        );
    }
    assert!(everything.contains("[redacted]"));
    assert_eq!(
        cred.secret.expose(),
        secrets[0],
        "it is still readable on purpose"
    );
}

async fn deletes_cascade(f: Arc<Fixture>) {
    let s = &f.store;
    s.create_cluster(&new_cluster("doomed"), CredentialKind::Token, &secret("t"))
        .await
        .expect("create");
    for i in 0..3 {
        s.upsert_node(&NodeRecord {
            cluster: "doomed".into(),
            node_name: format!("n{i}"),
            provider_instance_id: format!("ins-{i}"),
            node_pool: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        })
        .await
        .expect("node");
    }
    s.create_cluster(&new_cluster("kept"), CredentialKind::Token, &secret("k"))
        .await
        .expect("create");
    s.delete_cluster("doomed").await.expect("delete");
    assert_kind(
        s.credential(&cluster_owner("doomed")).await,
        ErrorKind::NotFound,
    );
    assert_kind(
        s.node_by_instance("doomed", "ins-0").await,
        ErrorKind::NotFound,
    );
    // A new cluster of the same name starts with no nodes.
    s.create_cluster(&new_cluster("doomed"), CredentialKind::Token, &secret("t2"))
        .await
        .expect("recreate");
    assert!(s.list_nodes("doomed").await.expect("nodes").is_empty());
    assert_eq!(
        s.credential(&cluster_owner("doomed"))
            .await
            .expect("cred")
            .secret
            .expose(),
        "t2"
    );
    // The other cluster is untouched.
    assert_eq!(
        s.credential(&cluster_owner("kept"))
            .await
            .expect("cred")
            .secret
            .expose(),
        "k"
    );

    let reg = NewRegistry {
        name: "doomed-reg".into(),
        provider: "harbor".into(),
        endpoint: "https://r.example.invalid".into(),
        labels: BTreeMap::new(),
    };
    s.create_registry(&reg, Some(&secret("login")))
        .await
        .expect("registry");
    s.grant("doomed-reg", "ns", "alice", Access::Push)
        .await
        .expect("grant");
    s.delete_registry("doomed-reg").await.expect("delete");
    assert_kind(
        s.credential(&CredentialOwner::Registry("doomed-reg".into()))
            .await,
        ErrorKind::NotFound,
    );
    s.create_registry(&reg, None).await.expect("recreate");
    assert!(s.permissions("doomed-reg").await.expect("perms").is_empty());
    assert!(
        !s.may("doomed-reg", "ns", "alice", Access::Pull)
            .await
            .expect("may")
    );
    let owners: Vec<CredentialOwner> = s
        .list_credentials()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.owner)
        .collect();
    assert_eq!(owners, [cluster_owner("doomed"), cluster_owner("kept")]);
}

// ------------------------------------------------- raw-access suite

async fn ciphertext_at_rest(f: Arc<Fixture>) {
    let s = &f.store;
    let plaintext = "eyJhbGciOiJSUzI1NiJ9.plaintext-marker-5d1e";
    s.create_cluster(
        &new_cluster("enc-a"),
        CredentialKind::Token,
        &secret(plaintext),
    )
    .await
    .expect("create");
    s.create_cluster(
        &new_cluster("enc-b"),
        CredentialKind::Token,
        &secret(plaintext),
    )
    .await
    .expect("create");
    let (key_a, nonce_a, ct_a) = f.raw().sealed("cluster", "enc-a").await;
    let (_, nonce_b, ct_b) = f.raw().sealed("cluster", "enc-b").await;
    assert_eq!(key_a, "k1");
    assert_eq!(nonce_a.len(), 12);
    assert_eq!(
        ct_a.len(),
        plaintext.len() + 16,
        "ciphertext plus a 16-byte tag"
    );
    assert!(
        !ct_a
            .windows(8)
            .any(|w| plaintext.as_bytes().windows(8).any(|p| p == w)),
        "no 8 bytes of the plaintext appear in the ciphertext"
    );
    assert_ne!(nonce_a, nonce_b, "a fresh nonce per write");
    assert_ne!(ct_a, ct_b, "the same secret encrypts differently");

    // No stored text column holds it either.
    let hits = f
        .raw()
        .count(
            "SELECT COUNT(*) FROM clusters WHERE labels LIKE $1 OR api_server LIKE $1 \
             OR display_name LIKE $1 OR conditions LIKE $1",
            &format!("%{}%", "plaintext-marker"),
        )
        .await;
    assert_eq!(hits, 0);

    if f.kind == Kind::File {
        // Nor anywhere in the database files (main file and write-ahead log).
        s.close().await;
        let dir = f.dir.as_ref().expect("dir").path().join("data");
        let mut scanned = 0;
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read file");
            scanned += bytes.len();
            assert!(
                !bytes.windows(16).any(|w| w == &plaintext.as_bytes()[..16]),
                "the plaintext is in a database file"
            );
        }
        assert!(scanned > 0);
    }
}

async fn wrong_key_is_a_decrypt_error(f: Arc<Fixture>) {
    let s = &f.store;
    s.create_cluster(
        &new_cluster("locked"),
        CredentialKind::Token,
        &secret("tok"),
    )
    .await
    .expect("create");

    // The same key id with other key bytes: authentication fails.
    let impostor = f
        .reopen(Keyring::new("k1", [0x33; 32]).expect("keyring"))
        .await;
    let e = assert_kind(
        impostor.credential(&cluster_owner("locked")).await,
        ErrorKind::Invalid,
    );
    match &e {
        Error::Decrypt { owner, key_id, .. } => {
            assert_eq!(owner, "cluster/locked");
            assert_eq!(key_id, "k1");
        }
        other => panic!("expected Error::Decrypt, got {other:?}"),
    }
    // Metadata is still listed without the key.
    assert_eq!(impostor.list_credentials().await.expect("list").len(), 1);
    impostor.close().await;

    // A keyring without the row's key id.
    let stranger = f
        .reopen(Keyring::new("other", key_a()).expect("keyring"))
        .await;
    let e = stranger.credential(&cluster_owner("locked")).await;
    assert!(matches!(e, Err(Error::Decrypt { .. })), "{e:?}");
    stranger.close().await;

    // The right keys still read it.
    let friend = f.reopen(f.keys.clone()).await;
    assert_eq!(
        friend
            .credential(&cluster_owner("locked"))
            .await
            .expect("read")
            .secret
            .expose(),
        "tok"
    );
    friend.close().await;
}

async fn tampered_rows_are_decrypt_errors(f: Arc<Fixture>) {
    let s = &f.store;
    for name in ["tamper-a", "tamper-b", "tamper-c"] {
        s.create_cluster(
            &new_cluster(name),
            CredentialKind::Token,
            &secret(&format!("tok-{name}")),
        )
        .await
        .expect("create");
    }
    // One flipped bit.
    let (k, n, mut ct) = f.raw().sealed("cluster", "tamper-a").await;
    ct[0] ^= 0x01;
    f.raw().set_sealed("cluster", "tamper-a", &(k, n, ct)).await;
    let e = s.credential(&cluster_owner("tamper-a")).await;
    assert!(matches!(e, Err(Error::Decrypt { .. })), "{e:?}");

    // b's whole encrypted value copied onto c's row: bound to its owner, it
    // does not decrypt there.
    let b = f.raw().sealed("cluster", "tamper-b").await;
    f.raw().set_sealed("cluster", "tamper-c", &b).await;
    let e = s.credential(&cluster_owner("tamper-c")).await;
    assert!(matches!(e, Err(Error::Decrypt { .. })), "{e:?}");
    assert_eq!(
        s.credential(&cluster_owner("tamper-b"))
            .await
            .expect("b is intact")
            .secret
            .expose(),
        "tok-tamper-b"
    );

    // A malformed nonce.
    let (k, n, ct) = f.raw().sealed("cluster", "tamper-b").await;
    f.raw()
        .set_sealed("cluster", "tamper-b", &(k, n[..8].to_vec(), ct))
        .await;
    let e = s.credential(&cluster_owner("tamper-b")).await;
    assert!(matches!(e, Err(Error::Decrypt { .. })), "{e:?}");
}

async fn rotate_key(f: Arc<Fixture>) {
    let s = &f.store;
    assert_eq!(s.keyring().active_id(), "k1");
    let mut expected = BTreeMap::new();
    for i in 0..5 {
        let name = format!("rot-{i}");
        let value = format!("token-{i}");
        s.create_cluster(&new_cluster(&name), CredentialKind::Token, &secret(&value))
            .await
            .expect("create");
        expected.insert(cluster_owner(&name), value);
    }
    s.create_registry(
        &NewRegistry {
            name: "rot-reg".into(),
            provider: "harbor".into(),
            endpoint: "https://r.example.invalid".into(),
            labels: BTreeMap::new(),
        },
        Some(&secret("registry-login")),
    )
    .await
    .expect("registry");
    expected.insert(
        CredentialOwner::Registry("rot-reg".into()),
        "registry-login".into(),
    );
    let provider = CredentialOwner::Provider("tke".into());
    s.put_credential(&provider, CredentialKind::AccessKey, &secret("ak"))
        .await
        .expect("provider");
    expected.insert(provider, "ak".into());

    const BY_KEY: &str = "SELECT COUNT(*) FROM credentials WHERE key_id = $1";
    assert_eq!(f.raw().count(BY_KEY, "k1").await, 7);

    // Unknown ids name the setting.
    let e = assert_kind(s.rotate_key("k1", "k9").await, ErrorKind::Invalid);
    assert!(
        matches!(&e, Error::Config { setting, .. } if setting == "encryption.keys"),
        "{e:?}"
    );
    assert_kind(s.rotate_key("k0", "k2").await, ErrorKind::Invalid);

    let rotated = s.rotate_key("k1", "k2").await.expect("rotate");
    assert_eq!(rotated, 7);
    assert_eq!(s.keyring().active_id(), "k2");
    assert_eq!(f.raw().count(BY_KEY, "k1").await, 0);
    assert_eq!(f.raw().count(BY_KEY, "k2").await, 7);
    for info in s.list_credentials().await.expect("list") {
        assert_eq!(info.key_id, "k2");
    }
    // New writes use the new key.
    s.create_cluster(
        &new_cluster("after"),
        CredentialKind::Token,
        &secret("after-token"),
    )
    .await
    .expect("create");
    expected.insert(cluster_owner("after"), "after-token".into());
    assert_eq!(f.raw().sealed("cluster", "after").await.0, "k2");

    // A store holding only the new key reads everything.
    let fresh = f
        .reopen(Keyring::new("k2", key_b()).expect("keyring"))
        .await;
    for (owner, value) in &expected {
        let cred = fresh
            .credential(owner)
            .await
            .expect("read with the new key");
        assert_eq!(cred.secret.expose(), value);
    }
    fresh.close().await;
    // Rotating again finds nothing under the old key.
    assert_eq!(s.rotate_key("k1", "k2").await.expect("rotate"), 0);
}

async fn failed_rotation_changes_nothing(f: Arc<Fixture>) {
    let s = &f.store;
    for i in 0..4 {
        s.create_cluster(
            &new_cluster(&format!("keep-{i}")),
            CredentialKind::Token,
            &secret(&format!("v{i}")),
        )
        .await
        .expect("create");
    }
    // Corrupt one row: the rotation must fail on it and roll back the rest.
    let (k, n, mut ct) = f.raw().sealed("cluster", "keep-2").await;
    let last = ct.len() - 1;
    ct[last] ^= 0x80;
    f.raw().set_sealed("cluster", "keep-2", &(k, n, ct)).await;

    let e = s.rotate_key("k1", "k2").await;
    assert!(matches!(e, Err(Error::Decrypt { .. })), "{e:?}");
    assert_eq!(s.keyring().active_id(), "k1", "the active key stays");
    const BY_KEY: &str = "SELECT COUNT(*) FROM credentials WHERE key_id = $1";
    assert_eq!(f.raw().count(BY_KEY, "k1").await, 4);
    assert_eq!(f.raw().count(BY_KEY, "k2").await, 0);
    for i in [0, 1, 3] {
        assert_eq!(
            s.credential(&cluster_owner(&format!("keep-{i}")))
                .await
                .expect("still readable")
                .secret
                .expose(),
            &format!("v{i}")
        );
    }
}

// ------------------------------------------------- single-backend tests

#[tokio::test]
async fn sqlite_file_reopens_with_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The directory does not exist yet: the store creates it.
    let path = dir.path().join("nested").join("deeper").join("kubepkg.db");
    let url = format!("sqlite://{}", path.display());
    let keys = Keyring::new("k1", key_a()).expect("keyring");
    let store = Store::open(&url, keys.clone()).await.expect("first open");
    assert_eq!(store.backend(), Backend::Sqlite);
    store
        .create_cluster(
            &new_cluster("durable"),
            CredentialKind::Token,
            &secret("tok"),
        )
        .await
        .expect("create");
    let op = store
        .create_operation("import", "imported", "durable", None)
        .await
        .expect("op");
    store.close().await;
    assert!(path.exists());
    assert_kind(store.get_cluster("durable").await, ErrorKind::Unavailable);

    // Reopening runs the migrations again: a no-op.
    for _ in 0..2 {
        let again = Store::open(&url, keys.clone()).await.expect("reopen");
        assert_eq!(
            again.get_cluster("durable").await.expect("get").name,
            "durable"
        );
        assert_eq!(again.get_operation(&op.id).await.expect("op"), op);
        assert_eq!(
            again
                .credential(&cluster_owner("durable"))
                .await
                .expect("cred")
                .secret
                .expose(),
            "tok"
        );
        again.close().await;
    }
}

#[tokio::test]
async fn sqlite_file_stores_share_one_database() {
    // Two stores (two pools) on one file: a write through one is seen by the
    // other, and their concurrent versioned updates still conflict.
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let keys = Keyring::new("k1", key_a()).expect("keyring");
    let one = Store::open(&url, keys.clone()).await.expect("open");
    let two = Store::open(&url, keys).await.expect("open");
    let c = one
        .create_cluster(&new_cluster("shared"), CredentialKind::Token, &secret("t"))
        .await
        .expect("create");
    assert_eq!(two.get_cluster("shared").await.expect("get"), c);
    let (mut a, mut b) = (c.clone(), c.clone());
    a.region = Some("a".into());
    b.region = Some("b".into());
    let (ra, rb) = tokio::join!(one.update_cluster(&a), two.update_cluster(&b));
    assert_eq!(
        [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{ra:?} {rb:?}"
    );
    let loser = if ra.is_ok() { rb } else { ra };
    assert_kind(loser, ErrorKind::Conflict);
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn bad_urls_are_config_errors_without_the_password() {
    let keys = Keyring::new("k1", key_a()).expect("keyring");
    for url in [
        "mysql://root:hunter2@127.0.0.1/db",
        "postgres://user:hunter2@[not-a-host/db",
        "postgres://user:hunter2@127.0.0.1:99999/db",
        "postgres://user:hunter2@127.0.0.1/db?sslmode=sometimes",
        "",
    ] {
        let e = assert_kind(Store::open(url, keys.clone()).await, ErrorKind::Invalid);
        match &e {
            Error::Config { setting, message } => {
                assert_eq!(setting, "store.url", "{url}");
                assert!(!message.contains("hunter2"), "{url}: {message}");
            }
            other => panic!("{url}: expected a Config error, got {other:?}"),
        }
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
    let e = Store::open_with(
        "sqlite::memory:",
        keys.clone(),
        StoreOptions {
            postgres_schema: Some("s".into()),
            ..StoreOptions::default()
        },
    )
    .await;
    assert!(matches!(e, Err(Error::Config { .. })), "{e:?}");
    let e = Store::open_with(
        "postgres://u:hunter2@127.0.0.1:1/db",
        keys,
        StoreOptions {
            postgres_schema: Some("Bad-Schema".into()),
            ..StoreOptions::default()
        },
    )
    .await;
    assert!(
        matches!(e, Err(Error::Config { ref setting, .. }) if setting == "store.postgres_schema"),
        "{e:?}"
    );
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let keys = Keyring::new("k1", key_a()).expect("keyring");
    let e = Store::open_with(
        "postgres://kubepkg:hunter2@127.0.0.1:1/kubepkg",
        keys,
        StoreOptions {
            connect_timeout: Duration::from_secs(2),
            ..StoreOptions::default()
        },
    )
    .await;
    let e = assert_kind(e, ErrorKind::Unavailable);
    assert!(matches!(e, Error::Store { .. }));
    let text = format!("{e} {e:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
}

#[tokio::test]
async fn postgres_wrong_password_and_debug_hide_the_password() {
    let pg = kubepkg_testenv::postgres();
    let keys = Keyring::new("k1", key_a()).expect("keyring");
    let wrong = format!(
        "postgres://{}:not-the-password-4e1d@{}:{}/{}",
        pg.username, pg.host, pg.port, pg.database
    );
    let e = Store::open(&wrong, keys.clone()).await;
    let e = match e {
        Ok(s) => panic!("a wrong password was accepted: {s:?}"),
        Err(e) => e,
    };
    let text = format!("{e} {e:?}");
    assert!(!text.contains("not-the-password-4e1d"), "{text}");

    let schema = pg_schema();
    let store = Store::open_with(&pg.url, keys, pg_options(&schema))
        .await
        .expect("open");
    assert_eq!(store.backend(), Backend::Postgres);
    let shown = format!("{store:?}");
    assert!(!shown.contains(&pg.password), "{shown}");
    assert!(shown.contains(&pg.username), "{shown}");
    assert!(shown.contains("k1"), "{shown}");
    // Opening again on the same schema: migrations are idempotent.
    let again = Store::open_with(&pg.url, store.keyring(), pg_options(&schema))
        .await
        .expect("reopen");
    again.close().await;
    store.close().await;
    let raw = PgPool::connect(&pg.url).await.expect("connect");
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&raw)
        .await
        .expect("drop schema");
    raw.close().await;
}
