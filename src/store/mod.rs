//! Storage: the connection pool of the chosen backend, migrations, readiness, and the
//! transactions every query runs in.
//!
//! Two backends share one query text wherever the dialects allow (`$1` placeholders work on
//! SQLite too): a `sql::Query` is defined once and runs on either. Times are stored as
//! integer milliseconds since the Unix epoch and ids as UUIDs, which both backends bind and
//! compare the same way. SQL lives only in `store.rs` files and `store/` (a unit test reads
//! the source to keep it so; `clippy.toml` keeps sqlx's own query functions here).

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

pub mod kept;
mod migrate;
pub mod queue;
pub mod receipts;
pub mod sealed;
pub mod sql;
mod tx;
mod writer;

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::{DatabaseConfig, DatabaseUrl, Pooler};
pub use migrate::{MIGRATIONS_POSTGRES, MIGRATIONS_SQLITE, RoleReport};
pub use sql::{Bind, Binds, Query, Row, Value, query};
pub(crate) use tx::Conn;
pub use tx::{AsRawTx, RawTx, SystemConn, SystemTx, TenantTx, background, statements_sent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("the database refused the operation")]
    Database(#[source] sqlx::Error),
    /// A unique constraint: the caller decides what it means (a taken email, a race).
    #[error("a unique value is already taken")]
    Conflict(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Setup(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Conflict(err),
            other => StoreError::Database(other),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The application's handle on its database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// SQLite: the database file and its identity at open time, for readiness.
    sqlite_file: Option<Arc<(PathBuf, FileId)>>,
    /// SQLite: every write of this process, one at a time in arrival order on one
    /// connection, committed in groups (`writer`). `None` on PostgreSQL.
    sqlite_writer: Option<Arc<writer::Writer>>,
    /// PostgreSQL: a few connections of the application role in system mode for their whole
    /// life, lent only as `SystemConn` (single platform reads on the hot path). Business
    /// tables admit no system mode, so these connections can read no tenant's data. `None`
    /// behind a transaction pooler (`BULWARK_DATABASE_POOLER=transaction`).
    system_pool: Option<sqlx::PgPool>,
    /// What stands between us and PostgreSQL (`BULWARK_DATABASE_POOLER`).
    pub(super) pooler: Pooler,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a SQLite write waits for its turn: the busy timeout it replaces.
const WRITER_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens the pool the application uses. On PostgreSQL that is the non-owner role of
    /// `BULWARK_DATABASE_URL`; migrations run separately as the owner (`migrate`).
    pub async fn open(config: &DatabaseConfig) -> Result<Self, StoreError> {
        match &config.url {
            DatabaseUrl::Sqlite(path) => {
                // The file exists (migrate created it); a connection opened while it is
                // missing must fail, not start an empty database at its path.
                let options = sqlite_options(path)?.create_if_missing(false);
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
                    .await?;
                let id = file_id(path)
                    .ok_or_else(|| StoreError::Setup(format!("{} vanished", path.display())))?;
                Ok(Store {
                    pool: Pool::Sqlite(pool),
                    sqlite_file: Some(Arc::new((path.clone(), id))),
                    sqlite_writer: Some(writer::Writer::new(options)),
                    system_pool: None,
                    pooler: Pooler::None,
                })
            }
            DatabaseUrl::Postgres(url) => {
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(|_| StoreError::Setup("BULWARK_DATABASE_URL is not valid".into()))?
                    .application_name("bulwark");
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
                    .await?;
                // Behind a transaction pooler a connection's session setting would outlive our
                // use of it and reach another client (another instance's tenant work): there
                // is no system pool, and a `SystemConn` is a transaction with a local setting.
                let system_pool = (config.pooler == Pooler::None).then(|| {
                    PgPoolOptions::new()
                        .max_connections((config.max_connections / 4).max(2))
                        .acquire_timeout(Duration::from_secs(10))
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                sqlx::query("SELECT set_config('bulwark.system', 'on', false)")
                                    .execute(conn)
                                    .await
                                    .map(|_| ())
                            })
                        })
                        .connect_lazy_with(options)
                });
                Ok(Store {
                    pool: Pool::Postgres(pool),
                    sqlite_file: None,
                    sqlite_writer: None,
                    system_pool,
                    pooler: config.pooler,
                })
            }
        }
    }

    /// Applies pending migrations as the owner role and grants the application role what it
    /// needs. Refuses a database migrated by a newer Bulwark. Behind a transaction pooler with
    /// no owner URL it only checks that the database is migrated to this version.
    pub async fn migrate(config: &DatabaseConfig) -> Result<(), StoreError> {
        match &config.url {
            DatabaseUrl::Sqlite(path) => {
                let options = sqlite_options(path)?;
                let pool =
                    SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
                let result = migrate::run_sqlite(&pool).await;
                pool.close().await;
                result
            }
            // Behind a transaction pooler without an owner URL, `serve` does not migrate:
            // sqlx's migrator holds a session-level advisory lock, which a pooler would leave
            // on a server connection for the next client. It checks that `bulwark migrate`
            // (with BULWARK_DATABASE_MIGRATE_URL, straight to PostgreSQL) did.
            DatabaseUrl::Postgres(app_url)
                if config.pooler == Pooler::Transaction && config.migrate_url.is_none() =>
            {
                migrate::verify_postgres(app_url.expose()).await
            }
            DatabaseUrl::Postgres(app_url) => {
                let owner_url = config.migrate_url.as_ref().unwrap_or(app_url);
                migrate::run_postgres(owner_url.expose(), app_url.expose()).await
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// PostgreSQL: what the application role may do that it should not (own the tables, be
    /// a superuser, bypass row-level security). `None` on SQLite.
    pub async fn role_report(&self) -> Result<Option<RoleReport>, StoreError> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(pool) => migrate::role_report(pool).await.map(Some),
        }
    }

    /// Readiness: the database answers a query on our schema within two seconds, and on
    /// SQLite the file at the configured path is still the one we opened (a deleted or
    /// replaced file would silently swallow every later write).
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        if let Some(file) = &self.sqlite_file {
            let (path, opened) = file.as_ref();
            if file_id(path) != Some(*opened) {
                return Err(StoreError::Setup(format!(
                    "the database file {} is missing or was replaced",
                    path.display()
                )));
            }
        }
        const PROBE: &str = "SELECT count(*) FROM _sqlx_migrations";
        let probe = async {
            match &self.pool {
                Pool::Sqlite(pool) => sqlx::query_scalar::<_, i64>(PROBE).fetch_one(pool).await,
                // In a transaction and unnamed behind a pooler, like every statement there.
                Pool::Postgres(pool) => {
                    let mut tx = pool.begin().await?;
                    let count = sqlx::query_scalar::<_, i64>(PROBE)
                        .persistent(self.pooler == Pooler::None)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(count)
                }
            }
        };
        match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.into()),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
        if let Some(system) = &self.system_pool {
            system.close().await;
        }
    }
}

fn sqlite_options(path: &Path) -> Result<SqliteConnectOptions, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(|err| {
            StoreError::Setup(format!("{} cannot be created ({})", parent.display(), err.kind()))
        })?;
    }
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed request survives a power cut, not only a crash.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // Overwritten or deleted personal data is zeroed on disk, not left in free pages.
        .pragma("secure_delete", "ON")
        .busy_timeout(Duration::from_secs(5)))
}

fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| FileId { dev: m.dev(), ino: m.ino() })
}
