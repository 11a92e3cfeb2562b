//! The platform store: the few records neither a vendor nor a cluster's etcd
//! keeps (see [`records`]), in SQLite (the embedded default) or PostgreSQL
//! (for a deployment that several platform processes share).
//!
//! - **Backends.** [`Store::open`] takes `sqlite::memory:`,
//!   `sqlite:///absolute/path/kubepkg.db` (created with its directory when
//!   missing) or `postgres://user:password@host:port/database`. The schema's
//!   migrations are embedded in the library and run on open; running them
//!   again is a no-op.
//! - **Credentials at rest** are AES-256-GCM ciphertext (see
//!   [`crate::crypto`]), bound to their owner, with the key id beside them.
//!   Only [`Store::credential`] decrypts; lists carry metadata only, and no
//!   record's `Debug` or serialised form can hold secret material.
//! - **Optimistic concurrency.** Clusters, registries and operations carry a
//!   `version`. An update quotes the version it read; when someone else
//!   updated the row first, the update is [`Error::Conflict`] and changes
//!   nothing, so no update is ever lost.
//! - **Atomicity.** Every call that touches several rows (a cluster and its
//!   credential, a key rotation, a delete with its dependants) runs in one
//!   transaction.
//! - **Observability.** Every call runs in a `tracing` span `store` with the
//!   fields `backend` (`sqlite` / `postgres`), `operation` and `target`.
//!
//! PostgreSQL connections use TLS with certificate and host-name
//! verification (`sslmode=verify-full`) unless the URL's `sslmode` says
//! otherwise, or the server is on the loopback interface or a Unix socket,
//! where the driver's default (`prefer`) applies. A URL that turns
//! verification off for a remote server is logged as a warning.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kubepkg_util::ErrorKind;
use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::crypto::Keyring;
use crate::error::{Error, Result};

pub mod records;

pub use api_access::{ApiTokenRecord, AuditEntry, NewApiToken};
pub use leases::ProbeLease;
pub use records::*;

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it
/// is: the body is compiled once per backend, so the same query text and
/// binds serve both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.inner.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

pub mod api_access;
mod clusters;
mod credentials;
mod leases;
mod operations;
mod registries;
mod rows;

/// The setting a store URL comes from, named in configuration errors.
const URL_SETTING: &str = "store.url";
/// The setting encryption keys come from, named in key errors.
pub(crate) const KEYS_SETTING: &str = "encryption.keys";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, embedded (a file, or memory).
    Sqlite,
    /// PostgreSQL, shared.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`, as in spans.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tuning of [`Store::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most connections the pool opens (an in-memory SQLite store always
    /// uses one). Default 8.
    pub max_connections: u32,
    /// How long to wait for a connection (connecting, or a free one from
    /// the pool) before the call fails as Unavailable. Default 10 s.
    pub connect_timeout: Duration,
    /// PostgreSQL only: keep the tables in this schema (created when
    /// missing) instead of the user's default `search_path`. Lower-case
    /// letters, digits and `_`, starting with a letter or `_`, at most 63.
    pub postgres_schema: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            postgres_schema: None,
        }
    }
}

/// The pool of whichever backend the store opened.
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

struct Inner {
    pool: Pool,
    /// The URL without its password, for `Debug`.
    shown_url: String,
    /// The current keyring; the active key changes on rotation.
    keys: RwLock<Keyring>,
    /// Held shared by every credential write from encryption to commit, and
    /// exclusively by a key rotation, so no write made with the old key can
    /// land after the rotation has read the rows it re-encrypts.
    key_gate: tokio::sync::RwLock<()>,
}

/// The platform store. Cheap to clone (the pool is shared); see the
/// [module docs](self).
///
/// ```
/// use kubepkg_platform::crypto::Keyring;
/// use kubepkg_platform::store::{CredentialKind, CredentialOwner, NewCluster, Store};
/// use kubepkg_util::secret::Secret;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let keys = Keyring::new("k1", Keyring::generate_key())?;
/// let store = Store::open("sqlite::memory:", keys).await?;
///
/// let new = NewCluster {
///     name: "prod".into(),
///     provider: "imported".into(),
///     api_server: "https://10.0.0.1:6443".into(),
///     ..Default::default()
/// };
/// let token = Secret::new("eyJhbGciOi...".to_owned());
/// let cluster = store.create_cluster(&new, CredentialKind::Token, &token).await?;
/// assert_eq!(cluster.version, 1);
///
/// // Change something: quote the version that was read.
/// let mut changed = cluster.clone();
/// changed.region = Some("eu-1".into());
/// let changed = store.update_cluster(&changed).await?;
/// assert_eq!(changed.version, 2);
/// // A second update from the stale copy is a Conflict, not a lost update.
/// assert!(store.update_cluster(&cluster).await.is_err());
///
/// let credential = store.credential(&CredentialOwner::Cluster("prod".into())).await?;
/// assert_eq!(credential.secret.expose(), "eyJhbGciOi...");
/// assert_eq!(format!("{:?}", credential.secret), "[redacted]");
/// store.close().await;
/// # Ok::<(), kubepkg_platform::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("url", &self.inner.shown_url)
            .field("keys", &self.keyring())
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` with the default [`StoreOptions`] and runs
    /// its migrations. See [`Store::open_with`].
    pub async fn open(url: &str, keys: Keyring) -> Result<Store> {
        Store::open_with(url, keys, StoreOptions::default()).await
    }

    /// Opens the store at `url` and runs its migrations.
    ///
    /// `url` is `sqlite::memory:` (a private database that lives as long as
    /// the store), `sqlite:///absolute/path.db` or `sqlite:relative.db`
    /// (created, with its directory, when missing), or
    /// `postgres://user:password@host:port/database` (`postgresql://` too).
    ///
    /// A URL that does not parse is an [`Error::Config`] naming `store.url`
    /// (the message never repeats the password); a database that cannot be
    /// reached is an [`Error::Store`] of kind Unavailable.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = url_backend(url), operation = "open", target = %url_target(url)))]
    pub async fn open_with(url: &str, keys: Keyring, opts: StoreOptions) -> Result<Store> {
        if opts.max_connections == 0 {
            return Err(Error::config("store.max_connections", "must be at least 1"));
        }
        let (pool, shown_url) = if url.starts_with("sqlite:") {
            if opts.postgres_schema.is_some() {
                return Err(Error::config(
                    "store.postgres_schema",
                    "applies to PostgreSQL only, and the URL is a SQLite one",
                ));
            }
            (open_sqlite(url, &opts).await?, url.to_owned())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (pool, shown) = open_postgres(url, &opts).await?;
            (pool, shown)
        } else {
            return Err(Error::config(
                URL_SETTING,
                "must start with sqlite: or postgres:// (e.g. sqlite:///var/lib/kubepkg/kubepkg.db)",
            ));
        };
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                shown_url,
                keys: RwLock::new(keys),
                key_gate: tokio::sync::RwLock::new(()),
            }),
        };
        store.migrate().await?;
        tracing::debug!("store opened");
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let result = match &self.inner.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| {
            let kind = match &e {
                sqlx::migrate::MigrateError::Execute(inner) => classify(inner),
                _ => ErrorKind::Internal,
            };
            Error::Store {
                kind,
                message: format!("running the store's migrations: {e}"),
                source: Some(Box::new(e)),
            }
        })
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The current keyring (its active key changes with
    /// [`Store::rotate_key`]).
    pub fn keyring(&self) -> Keyring {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_keyring(&self, keys: Keyring) {
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
    }

    pub(crate) fn key_gate(&self) -> &tokio::sync::RwLock<()> {
        &self.inner.key_gate
    }

    /// Closes the pool: waits for calls in progress, then closes every
    /// connection. Later calls fail as Unavailable. An in-memory SQLite
    /// database is gone afterwards.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "close", target = %self.inner.shown_url))]
    pub async fn close(&self) {
        match &self.inner.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The backend a URL names, for the span of [`Store::open_with`].
fn url_backend(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        Backend::Sqlite.as_str()
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres.as_str()
    } else {
        "unknown"
    }
}

/// A store URL as spans show it: without a password or query parameters
/// (either may carry one), and nothing of a URL that is not a store URL.
fn url_target(url: &str) -> String {
    match url_backend(url) {
        "sqlite" => url.to_owned(),
        "postgres" => match url::Url::parse(url) {
            Ok(mut parsed) => {
                let _ = parsed.set_password(None);
                parsed.set_query(None);
                parsed.to_string()
            }
            Err(_) => "postgres://(malformed)".to_owned(),
        },
        _ => "(not a store URL)".to_owned(),
    }
}

/// Whether `rest` (a SQLite URL without `sqlite:`) names an in-memory
/// database.
fn sqlite_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

async fn open_sqlite(url: &str, opts: &StoreOptions) -> Result<Pool> {
    let memory = sqlite_in_memory(url);
    let mut options = SqliteConnectOptions::from_str(url).map_err(|e| {
        Error::config(
            URL_SETTING,
            format!(
                "not a valid SQLite URL ({e}); use sqlite::memory: or sqlite:///absolute/path.db"
            ),
        )
    })?;
    options = options
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool_options = SqlitePoolOptions::new().acquire_timeout(opts.connect_timeout);
    let pool_options = if memory {
        // Every connection must share the one database, and it must never be
        // closed for idleness (the data would go with it).
        pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        if !query.split('&').any(|pair| pair.starts_with("mode=")) {
            options = options.create_if_missing(true);
        }
        options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            create_dir(dir)?;
        }
        pool_options.max_connections(opts.max_connections)
    };
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|e| store_error("opening the SQLite database", e))?;
    Ok(Pool::Sqlite(pool))
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::config(
            URL_SETTING,
            format!("cannot create the directory {}: {e}", dir.display()),
        )
    })
}

/// Whether a PostgreSQL host is this machine (loopback or a Unix socket).
fn is_local_host(host: &str) -> bool {
    if host.starts_with('/') || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// What to do about TLS to a PostgreSQL server.
#[derive(Debug, PartialEq, Eq)]
enum TlsPolicy {
    /// The URL says nothing and the server is remote: verify it.
    VerifyFull,
    /// Keep the URL's (or the driver's) mode.
    AsGiven,
    /// Keep the URL's mode, which does not verify a remote server: warn.
    AsGivenUnverified,
}

/// The TLS policy for an `sslmode` (lower-cased, when the URL has one) and
/// whether the server is on this machine.
fn tls_policy(sslmode: Option<&str>, local: bool) -> TlsPolicy {
    match sslmode {
        _ if local => TlsPolicy::AsGiven,
        None => TlsPolicy::VerifyFull,
        Some("disable" | "allow" | "prefer" | "require") => TlsPolicy::AsGivenUnverified,
        Some(_) => TlsPolicy::AsGiven,
    }
}

/// Checks a schema name: a plain lower-case SQL identifier.
fn check_schema(schema: &str) -> Result<()> {
    let mut bytes = schema.bytes();
    let ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && schema.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "store.postgres_schema",
            "must be lower-case letters, digits and '_', start with a letter or '_', at most 63 characters",
        ))
    }
}

/// Replaces every occurrence of `secret` in `text`.
fn redact(text: String, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, kubepkg_util::secret::REDACTED),
        _ => text,
    }
}

async fn open_postgres(url: &str, opts: &StoreOptions) -> Result<(Pool, String)> {
    let parsed = url::Url::parse(url).map_err(|e| {
        // `url`'s messages name the problem, never the input.
        Error::config(URL_SETTING, format!("not a valid PostgreSQL URL: {e}"))
    })?;
    let password = parsed.password().map(str::to_owned);
    let mut options = PgConnectOptions::from_url(&parsed).map_err(|e| {
        Error::config(
            URL_SETTING,
            redact(
                format!("not a valid PostgreSQL URL: {e}"),
                password.as_deref(),
            ),
        )
    })?;
    let host = options.get_host().to_owned();
    let local = is_local_host(&host);
    let explicit_mode = parsed
        .query_pairs()
        .find_map(|(k, v)| (k == "sslmode" || k == "ssl-mode").then(|| v.to_ascii_lowercase()));
    match tls_policy(explicit_mode.as_deref(), local) {
        TlsPolicy::VerifyFull => options = options.ssl_mode(PgSslMode::VerifyFull),
        TlsPolicy::AsGivenUnverified => tracing::warn!(
            %host,
            sslmode = explicit_mode.as_deref().unwrap_or(""),
            "the store's PostgreSQL connection does not verify the server's certificate"
        ),
        TlsPolicy::AsGiven => {}
    }
    options = options.application_name("kubepkg");
    if let Some(schema) = &opts.postgres_schema {
        check_schema(schema)?;
        options = options.options([("search_path", schema.as_str())]);
    }
    let shown = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        host,
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(opts.connect_timeout)
        .connect_with(options)
        .await
        .map_err(|e| {
            let kind = classify(&e);
            Error::Store {
                kind,
                message: redact(
                    format!("connecting to PostgreSQL at {host}: {e}"),
                    password.as_deref(),
                ),
                source: None,
            }
        })?;
    if let Some(schema) = &opts.postgres_schema {
        // The name was checked above: a plain identifier, safe to quote.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::query(&sql)
            .execute(&pool)
            .await
            .map_err(|e| store_error("creating the store's schema", e))?;
    }
    Ok((Pool::Postgres(pool), shown))
}

/// The kind of a database failure: connection and pool problems (and
/// SQLite's busy / locked) are Unavailable, anything else Internal.
pub(crate) fn classify(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
                match code.parse::<i32>() {
                    Ok(n) if matches!(n & 0xff, 5 | 6) => ErrorKind::Unavailable,
                    _ => ErrorKind::Internal,
                }
            } else if code.starts_with("08")
                || code.starts_with("57P")
                || matches!(&*code, "53300" | "40001" | "40P01")
            {
                // PostgreSQL: connection exceptions, shutting down, too many
                // connections, serialization failure, deadlock.
                ErrorKind::Unavailable
            } else {
                ErrorKind::Internal
            }
        }
        _ => ErrorKind::Internal,
    }
}

/// An [`Error::Store`] for a failed `operation`.
pub(crate) fn store_error(operation: &str, e: sqlx::Error) -> Error {
    Error::Store {
        kind: classify(&e),
        message: format!("{operation}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// Whether the failure is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// Whether the failure is a foreign-key violation (a missing parent row).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_foreign_key_violation())
}

/// Opening a transaction that will write: SQLite takes the write lock at
/// once (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout
/// instead of one failing when it upgrades a read lock.
pub(crate) trait BeginWrite {
    /// The database.
    type Db: sqlx::Database;
    /// Starts the transaction.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| store_error("beginning a transaction", e))
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin()
            .await
            .map_err(|e| store_error("beginning a transaction", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_memory_urls_and_local_hosts() {
        assert!(sqlite_in_memory("sqlite::memory:"));
        assert!(sqlite_in_memory("sqlite://:memory:"));
        assert!(sqlite_in_memory("sqlite:file:x?mode=memory&cache=shared"));
        assert!(!sqlite_in_memory("sqlite:///var/lib/kubepkg.db"));
        assert!(is_local_host("127.0.0.1"));
        assert!(is_local_host("[::1]"));
        assert!(is_local_host("localhost"));
        assert!(is_local_host("/run/postgresql"));
        assert!(!is_local_host("db.example.com"));
        assert!(!is_local_host("10.0.0.5"));
    }

    #[test]
    fn remote_servers_are_verified_unless_the_url_says_otherwise() {
        assert_eq!(tls_policy(None, false), TlsPolicy::VerifyFull);
        assert_eq!(tls_policy(Some("verify-ca"), false), TlsPolicy::AsGiven);
        assert_eq!(tls_policy(Some("verify-full"), false), TlsPolicy::AsGiven);
        for weak in ["disable", "allow", "prefer", "require"] {
            assert_eq!(tls_policy(Some(weak), false), TlsPolicy::AsGivenUnverified);
            assert_eq!(tls_policy(Some(weak), true), TlsPolicy::AsGiven);
        }
        assert_eq!(tls_policy(None, true), TlsPolicy::AsGiven);
    }

    #[test]
    fn span_targets_hide_passwords() {
        assert_eq!(
            url_target("postgres://u:pw@db:5432/k?password=pw2&sslmode=require"),
            "postgres://u@db:5432/k"
        );
        assert_eq!(url_target("sqlite::memory:"), "sqlite::memory:");
        assert!(!url_target("mysql://root:pw@h/db").contains("pw"));
        assert!(!url_target("postgres://u:pw@[bad/db").contains("pw"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema("kubepkg_test_1").is_ok());
        for bad in ["", "1abc", "a-b", "A", "a\"b", &"a".repeat(64)] {
            assert!(check_schema(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redaction_removes_every_copy() {
        assert_eq!(
            redact("p4ss and p4ss".into(), Some("p4ss")),
            "[redacted] and [redacted]"
        );
        assert_eq!(redact("text".into(), None), "text");
    }
}
