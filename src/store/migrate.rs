//! Schema migrations, embedded in the binary, one numbered pair per change
//! (`migrations/sqlite/NNNN_name.sql`, `migrations/postgres/NNNN_name.sql`).
//!
//! sqlx's migrator records a checksum per applied migration, refuses an edited one, and
//! refuses a database that holds a migration this binary does not know (a newer schema).
//! On PostgreSQL the owner role migrates, then grants the application role exactly what it
//! needs: no ownership (so FORCE ROW LEVEL SECURITY binds it), no UPDATE or DELETE on the
//! audit log.

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use std::borrow::Cow;
use std::str::FromStr as _;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, SqlSafeStr as _};

use super::StoreError;

type Embedded = (i64, &'static str, &'static str);

/// `migration!("sqlite", 1, "0001", "platform")` embeds `migrations/sqlite/0001_platform.sql`.
macro_rules! migration {
    ($backend:literal, $version:literal, $file_number:literal, $name:literal) => {
        (
            $version,
            $name,
            include_str!(concat!(
                "../../migrations/",
                $backend,
                "/",
                $file_number,
                "_",
                $name,
                ".sql"
            )),
        )
    };
}

pub const MIGRATIONS_SQLITE: &[Embedded] = &[
    migration!("sqlite", 1, "0001", "platform"),
    migration!("sqlite", 2, "0002", "identity"),
    migration!("sqlite", 3, "0003", "idempotency"),
    migration!("sqlite", 4, "0004", "crm"),
    migration!("sqlite", 5, "0005", "mfa"),
    migration!("sqlite", 6, "0006", "list_indexes"),
    migration!("sqlite", 7, "0007", "hardening"),
    migration!("sqlite", 8, "0008", "audit_head_trigger"),
    migration!("sqlite", 9, "0009", "documents"),
    migration!("sqlite", 10, "0010", "containment"),
    migration!("sqlite", 11, "0011", "switches_and_grants"),
    migration!("sqlite", 12, "0012", "email_domains"),
    migration!("sqlite", 13, "0013", "email_messages"),
    migration!("sqlite", 14, "0014", "email_suppressions"),
    migration!("sqlite", 15, "0015", "email_templates_and_accounts"),
    migration!("sqlite", 16, "0016", "webhooks"),
    migration!("sqlite", 17, "0017", "email_usage"),
    migration!("sqlite", 18, "0018", "webhook_deliveries"),
    migration!("sqlite", 19, "0019", "payments"),
    migration!("sqlite", 20, "0020", "integrations"),
    migration!("sqlite", 21, "0021", "console_sessions"),
    migration!("sqlite", 22, "0022", "audit_head_per_statement"),
];
pub const MIGRATIONS_POSTGRES: &[Embedded] = &[
    migration!("postgres", 1, "0001", "platform"),
    migration!("postgres", 2, "0002", "identity"),
    migration!("postgres", 3, "0003", "idempotency"),
    migration!("postgres", 4, "0004", "crm"),
    migration!("postgres", 5, "0005", "mfa"),
    migration!("postgres", 6, "0006", "list_indexes"),
    migration!("postgres", 7, "0007", "hardening"),
    migration!("postgres", 8, "0008", "audit_head_trigger"),
    migration!("postgres", 9, "0009", "documents"),
    migration!("postgres", 10, "0010", "containment"),
    migration!("postgres", 11, "0011", "switches_and_grants"),
    migration!("postgres", 12, "0012", "email_domains"),
    migration!("postgres", 13, "0013", "email_messages"),
    migration!("postgres", 14, "0014", "email_suppressions"),
    migration!("postgres", 15, "0015", "email_templates_and_accounts"),
    migration!("postgres", 16, "0016", "webhooks"),
    migration!("postgres", 17, "0017", "email_usage"),
    migration!("postgres", 18, "0018", "webhook_deliveries"),
    migration!("postgres", 19, "0019", "payments"),
    migration!("postgres", 20, "0020", "integrations"),
    migration!("postgres", 21, "0021", "console_sessions"),
    migration!("postgres", 22, "0022", "audit_head_per_statement"),
];

fn migrator(embedded: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        embedded
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub(super) async fn run_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    migrator(MIGRATIONS_SQLITE).run(pool).await?;
    Ok(())
}

pub(super) async fn run_postgres(owner_url: &str, app_url: &str) -> Result<(), StoreError> {
    let owner = PgConnectOptions::from_str(owner_url)
        .map_err(|_| StoreError::Setup("BULWARK_DATABASE_MIGRATE_URL is not valid".into()))?;
    let app_role = PgConnectOptions::from_str(app_url)
        .map_err(|_| StoreError::Setup("BULWARK_DATABASE_URL is not valid".into()))?
        .get_username()
        .to_owned();
    let pool = PgPoolOptions::new().max_connections(1).connect_with(owner).await?;
    let result = async {
        migrator(MIGRATIONS_POSTGRES).run(&pool).await?;
        grant_application_role(&pool, &app_role).await
    }
    .await;
    pool.close().await;
    result
}

/// Checks, without migrating and in one transaction (a pooler may stand in between), that the
/// database holds exactly this binary's migrations, each as it was written.
pub(super) async fn verify_postgres(app_url: &str) -> Result<(), StoreError> {
    let options = PgConnectOptions::from_str(app_url)
        .map_err(|_| StoreError::Setup("BULWARK_DATABASE_URL is not valid".into()))?;
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await?;
    let applied = async {
        let mut tx = pool.begin().await?;
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(rows)
    }
    .await;
    pool.close().await;
    let applied = applied.map_err(|_| not_migrated("it has no migration table"))?;
    let expected: Vec<(i64, Vec<u8>)> =
        migrator(MIGRATIONS_POSTGRES).iter().map(|m| (m.version, m.checksum.to_vec())).collect();
    if applied == expected {
        return Ok(());
    }
    let newest = applied.last().map_or(0, |(version, _)| *version);
    Err(not_migrated(&format!(
        "it holds {} migration(s) up to {newest}, this binary has {}",
        applied.len(),
        expected.len()
    )))
}

fn not_migrated(why: &str) -> StoreError {
    StoreError::Setup(format!(
        "the database is not migrated for this version of Bulwark ({why}): run `bulwark migrate` \
         with BULWARK_DATABASE_MIGRATE_URL (straight to PostgreSQL, not through the pooler); \
         behind a transaction pooler `serve` does not migrate"
    ))
}

/// Grants run after every migration, so a table added later is covered too.
async fn grant_application_role(pool: &PgPool, app_role: &str) -> Result<(), StoreError> {
    let owner: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(pool).await?;
    if owner == app_role {
        tracing::warn!(
            role = %app_role,
            "the application and migration roles are the same: row-level security is weaker \
             and the audit log is not append-only at the database; set BULWARK_DATABASE_MIGRATE_URL \
             to a separate owner role"
        );
        return Ok(());
    }
    let role = quote_identifier(app_role)?;
    let statements = [
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        // Append-only at the database: the application may add and read audit events only.
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}"),
        // The application reads the schema version for readiness, never changes it.
        format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM {role}"),
        // Anchors move only through the retention function below.
        format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_anchors FROM {role}"),
        format!("GRANT EXECUTE ON FUNCTION bulwark_purge_audit(uuid, bigint) TO {role}"),
    ];
    let mut tx = pool.begin().await?;
    for statement in statements {
        // The role name is validated and quoted by quote_identifier.
        sqlx::query(AssertSqlSafe(statement)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A PostgreSQL identifier, double-quoted. Role names come from the operator's URL; anything
/// outside a conservative alphabet is refused rather than escaped.
fn quote_identifier(name: &str) -> Result<String, StoreError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(format!("\"{name}\""))
    } else {
        Err(StoreError::Setup(
            "the PostgreSQL role name must be 1-63 letters, digits, _ or -".into(),
        ))
    }
}

/// What the application role may do that it should not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleReport {
    pub superuser: bool,
    pub bypass_rls: bool,
    pub owns_tables: bool,
}

impl RoleReport {
    pub fn problems(&self) -> Vec<&'static str> {
        let mut problems = vec![];
        if self.superuser {
            problems.push("the application role is a superuser, which ignores row-level security");
        }
        if self.bypass_rls {
            problems.push("the application role has BYPASSRLS");
        }
        if self.owns_tables {
            problems.push(
                "the application role owns tables; migrate as a separate owner role \
                 (BULWARK_DATABASE_MIGRATE_URL)",
            );
        }
        problems
    }
}

pub(super) async fn role_report(pool: &PgPool) -> Result<RoleReport, StoreError> {
    // One transaction of unnamed statements: it holds behind a transaction pooler too.
    let mut tx = pool.begin().await?;
    let (superuser, bypass_rls): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?;
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user",
    )
    .persistent(false)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RoleReport { superuser, bypass_rls, owns_tables: owned > 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(backend: &str) -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/");
        let mut names: Vec<String> = std::fs::read_dir(format!("{dir}{backend}"))
            .expect("migrations directory")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_backends_have_the_same_migrations_and_every_file_is_embedded() {
        let names = |list: &[Embedded]| -> Vec<String> {
            list.iter().map(|(v, n, _)| format!("{v:04}_{n}.sql")).collect()
        };
        assert_eq!(names(MIGRATIONS_SQLITE), names(MIGRATIONS_POSTGRES));
        assert_eq!(names(MIGRATIONS_SQLITE), files("sqlite"));
        assert_eq!(names(MIGRATIONS_POSTGRES), files("postgres"));
    }

    #[test]
    fn role_names_are_validated_before_they_reach_sql() {
        assert_eq!(quote_identifier("bulwark_app").ok().as_deref(), Some("\"bulwark_app\""));
        assert!(quote_identifier("x\"; DROP TABLE users; --").is_err());
        assert!(quote_identifier("").is_err());
    }
}
