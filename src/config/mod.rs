//! Configuration, parsed once into typed structs.
//!
//! `load` reads every source (see `sources`), parses every setting, and collects every
//! problem into one list, so an operator fixes a broken deployment in one pass. Outside
//! development the list also holds the profile rules (`profile_problems`): the process
//! refuses to start while it is not empty. Nothing else in the code reads the environment.

mod dev_secrets;
mod email;
mod integrations;
mod parse;
mod profile;
mod settings;
mod sources;
mod storage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::crypto::Secret;
pub use email::{EmailConfig, SmtpConfig, SmtpSecurity};
pub use integrations::{IntegrationsConfig, OAuthProvider, WebhooksConfig};
use parse::*;
pub use parse::{ConfigProblems, parse_duration, parse_master_keys, parse_switch};
use profile::profile_problems;
pub use profile::{DEVELOPMENT_BANNER, MIN_SECRET_BYTES, MIN_SECRET_ENTROPY_BITS, Profile};
pub use settings::{Setting, all as settings};
pub use sources::ConfigInput;
use sources::RawValues;
pub use storage::{BackupConfig, DocumentConfig, DocumentType, StorageConfig, StorageUrl};

#[derive(Debug)]
pub struct Config {
    pub env: Profile,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub metrics_token: Option<Secret<String>>,
    pub data_dir: PathBuf,
    pub public_url: Url,
    pub database: DatabaseConfig,
    pub redis_url: Option<Secret<String>>,
    pub redis_ca_file: Option<PathBuf>,
    pub log: String,
    pub rate_limits: RateLimitConfig,
    pub http: HttpConfig,
    pub identity: IdentityConfig,
    pub retention: RetentionConfig,
    pub audit: AuditConfig,
    pub backup: BackupConfig,
    pub storage: StorageConfig,
    pub documents: DocumentConfig,
    pub email: EmailConfig,
    pub webhooks: WebhooksConfig,
    pub integrations: IntegrationsConfig,
    pub secrets: SecretsConfig,
}

/// Signed checkpoints of the audit chains (see `audit::checkpoint`).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub checkpoint_events: i64,
    pub checkpoint_interval: Duration,
    pub checkpoint_file: PathBuf,
}

/// How long each kind of data is kept; `None` keeps it.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub audit: Option<Duration>,
    pub sessions: Option<Duration>,
    pub activities: Option<Duration>,
    pub notes: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub signup_open: bool,
    pub access_token_ttl: Duration,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub lockout_threshold: u32,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    pub lockout_ip_threshold: u32,
    pub step_up: Duration,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub hash_workers: usize,
    pub hash_queue: usize,
}

#[derive(Debug)]
pub struct RateLimitConfig {
    /// `BULWARK_RATE_LIMITS=off` (development only) switches request limits off.
    pub enabled: bool,
    pub rules: Vec<crate::ratelimit::Rule>,
    pub max_keys: usize,
}

#[derive(Debug)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    /// PostgreSQL: the owner role's URL, used only to migrate.
    pub migrate_url: Option<Secret<String>>,
    pub max_connections: u32,
    pub pooler: Pooler,
}

/// What stands between Bulwark and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooler {
    /// Connections are Bulwark's own: session-level settings stay with a connection.
    None,
    /// A transaction-pooling PgBouncer: a server connection serves another client after every
    /// transaction, so a session-level setting would leak to whoever gets it next.
    Transaction,
}

#[derive(Debug)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(Secret<String>),
}

#[derive(Debug)]
pub struct HttpConfig {
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    /// Connections (HTTP/1.1 keep-alive and HTTP/2) that start no request for this long close.
    pub idle_timeout: Duration,
    /// `Some(max_age)` when HSTS is on; it is sent outside development or over TLS.
    pub hsts_max_age: Option<u64>,
    pub x_xss_protection: &'static str,
    pub cookie_secure: bool,
    pub tls: Option<TlsFiles>,
    pub trusted_proxies: crate::ratelimit::client::TrustedProxies,
    /// How many leading bits of an IPv6 address name one client.
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug)]
pub struct SecretsConfig {
    pub jwt_secret: Secret<Vec<u8>>,
    pub jwt_previous_secrets: Vec<Secret<Vec<u8>>>,
    /// First one current; the others decrypt only.
    pub master_keys: Vec<MasterKey>,
}

#[derive(Debug)]
pub struct MasterKey {
    pub id: String,
    pub key: Secret<[u8; 32]>,
}

/// What to do about secrets that are missing in development.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevSecrets {
    /// `serve`, `migrate`: generate them once into the data directory and reuse them.
    Generate,
    /// `check-config`: look, never write; report what `serve` would generate.
    Inspect,
}

pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

pub fn load(input: &ConfigInput, dev_secrets: DevSecrets) -> Result<Loaded, ConfigProblems> {
    let raw = RawValues::read(input);
    let mut p =
        Parser { raw: &raw, problems: raw.problems.clone(), warnings: raw.warnings.clone() };

    let env = p.parse("BULWARK_ENV", parse_profile);
    let listen = p.parse("BULWARK_LISTEN", parse_addr);
    let metrics_listen = p.parse("BULWARK_METRICS_LISTEN", parse_optional_addr);
    let metrics_token = p.secret_text("BULWARK_METRICS_TOKEN");
    if metrics_token.as_ref().is_some_and(|t| t.expose().len() < MIN_SECRET_BYTES) {
        p.problem(&format!("BULWARK_METRICS_TOKEN is shorter than {MIN_SECRET_BYTES} bytes"));
    }
    let data_dir = p.parse("BULWARK_DATA_DIR", |v| Ok(PathBuf::from(v)));
    let public_url = p.parse("BULWARK_PUBLIC_URL", parse_public_url);
    let database = DatabaseConfig {
        url: p.database_url(&data_dir),
        migrate_url: p.secret_text("BULWARK_DATABASE_MIGRATE_URL"),
        max_connections: p.parse("BULWARK_DATABASE_MAX_CONNECTIONS", parse_pool_size),
        pooler: p.parse("BULWARK_DATABASE_POOLER", parse_pooler),
    };
    if let (DatabaseUrl::Sqlite(_), Pooler::Transaction) = (&database.url, database.pooler) {
        p.problem("BULWARK_DATABASE_POOLER applies to PostgreSQL only; unset it for SQLite");
    }
    if let (DatabaseUrl::Sqlite(_), Some(_)) = (&database.url, &database.migrate_url) {
        p.problem("BULWARK_DATABASE_MIGRATE_URL applies to PostgreSQL only; unset it for SQLite");
    }
    let http = HttpConfig {
        cors_origins: p.parse("BULWARK_CORS_ORIGINS", parse_origins),
        body_limit: p.parse("BULWARK_BODY_LIMIT", parse_body_limit),
        request_timeout: p.parse("BULWARK_REQUEST_TIMEOUT", parse_duration),
        header_read_timeout: p.parse("BULWARK_HEADER_READ_TIMEOUT", parse_duration),
        idle_timeout: p.parse("BULWARK_IDLE_TIMEOUT", parse_duration),
        hsts_max_age: {
            let on = p.parse("BULWARK_HSTS", parse_switch);
            let age = p.parse("BULWARK_HSTS_MAX_AGE", parse_u64);
            (on && age > 0).then_some(age)
        },
        x_xss_protection: p.parse("BULWARK_X_XSS_PROTECTION", parse_xss),
        cookie_secure: p.parse("BULWARK_COOKIE_SECURE", parse_switch),
        tls: p.tls_files(),
        trusted_proxies: p.parse("BULWARK_TRUSTED_PROXIES", str::parse),
        ipv6_prefix: p.parse("BULWARK_IPV6_PREFIX", |v| {
            parse_range(v, 32, 128).map(|n| u8::try_from(n).unwrap_or(128))
        }),
    };
    let identity = IdentityConfig {
        signup_open: p.parse("BULWARK_SIGNUP", parse_signup),
        access_token_ttl: p.parse("BULWARK_ACCESS_TOKEN_TTL", parse_duration),
        session_idle_timeout: p.parse("BULWARK_SESSION_IDLE_TIMEOUT", parse_duration),
        session_absolute_timeout: p.parse("BULWARK_SESSION_ABSOLUTE_TIMEOUT", parse_duration),
        lockout_threshold: p.parse("BULWARK_LOCKOUT_THRESHOLD", |v| parse_range(v, 1, 1000)),
        lockout_window: p.parse("BULWARK_LOCKOUT_WINDOW", parse_duration),
        lockout_duration: secs(
            p.parse("BULWARK_LOCKOUT_SECONDS", |v| parse_range(v, 1, 86_400).map(u64::from)),
        ),
        lockout_ip_threshold: p
            .parse("BULWARK_LOCKOUT_IP_THRESHOLD", |v| parse_range(v, 1, 1_000_000)),
        step_up: secs(
            p.parse("BULWARK_STEP_UP_SECONDS", |v| parse_range(v, 1, 86_400).map(u64::from)),
        ),
        argon2_memory_kib: p.parse("BULWARK_ARGON2_MEMORY_KIB", |v| parse_range(v, 8, 4_194_304)),
        argon2_iterations: p.parse("BULWARK_ARGON2_ITERATIONS", |v| parse_range(v, 1, 100)),
        argon2_parallelism: p.parse("BULWARK_ARGON2_PARALLELISM", |v| parse_range(v, 1, 64)),
        hash_workers: p.parse("BULWARK_HASH_WORKERS", parse_workers),
        hash_queue: p
            .parse("BULWARK_HASH_QUEUE", |v| parse_range(v, 0, 100_000).map(|n| n as usize)),
    };
    if env != Profile::Development
        && (identity.argon2_memory_kib < 19_456 || identity.argon2_iterations < 2)
    {
        p.problem("BULWARK_ARGON2_*: below the OWASP minimum (19456 KiB, 2 iterations) outside development");
    }
    let retention = RetentionConfig {
        audit: p.parse("BULWARK_RETENTION_AUDIT", parse_retention),
        sessions: p.parse("BULWARK_RETENTION_SESSIONS", parse_retention),
        activities: p.parse("BULWARK_RETENTION_ACTIVITIES", parse_retention),
        notes: p.parse("BULWARK_RETENTION_NOTES", parse_retention),
    };
    if retention.audit.is_some_and(|d| d < secs(365 * 86_400)) {
        p.problem("BULWARK_RETENTION_AUDIT: audit events are kept at least 365d (or `off`)");
    }
    let audit = AuditConfig {
        checkpoint_events: p.parse("BULWARK_AUDIT_CHECKPOINT_EVENTS", |v| {
            parse_range(v, 1, 1_000_000).map(i64::from)
        }),
        checkpoint_interval: p.parse("BULWARK_AUDIT_CHECKPOINT_INTERVAL", parse_duration),
        checkpoint_file: p
            .optional("BULWARK_AUDIT_CHECKPOINT_FILE", |v| Ok(PathBuf::from(v)))
            .unwrap_or_else(|| data_dir.join("audit-checkpoints.jsonl")),
    };
    let backup = storage::backup(&mut p, &data_dir);
    let storage = storage::storage(&mut p, env, &data_dir);
    let documents = storage::documents(&mut p);
    let email = email::email(&mut p, env);
    let webhooks = integrations::webhooks(&mut p);
    let integrations = integrations::integrations(&mut p, env);
    let redis_url = p.secret_text("BULWARK_REDIS_URL");
    if let Some(url) = &redis_url
        && let Err(reason) = parse_redis_url(url.expose())
    {
        p.problem(&format!("BULWARK_REDIS_URL: {reason}"));
    }
    let redis_ca_file = p.optional("BULWARK_REDIS_CA_FILE", |v| Ok(PathBuf::from(v)));
    if redis_ca_file.is_some()
        && !redis_url.as_ref().is_some_and(|u| u.expose().starts_with("rediss://"))
    {
        p.problem("BULWARK_REDIS_CA_FILE applies to a rediss:// BULWARK_REDIS_URL only");
    }
    let log = p.parse("BULWARK_LOG", |v| Ok(v.to_owned()));
    let rate_limits = RateLimitConfig {
        enabled: p.parse("BULWARK_RATE_LIMITS", parse_switch),
        rules: match p.text("BULWARK_RATE_LIMITS_FILE").map(PathBuf::from) {
            None => crate::ratelimit::rules::defaults(),
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => p
                    .optional("BULWARK_RATE_LIMITS_FILE", |_| crate::ratelimit::rules::parse(&text))
                    .unwrap_or_default(),
                Err(err) => {
                    p.problem(&format!(
                        "BULWARK_RATE_LIMITS_FILE: {} cannot be read ({})",
                        path.display(),
                        err.kind()
                    ));
                    vec![]
                }
            },
        },
        max_keys: p.parse("BULWARK_RATE_LIMIT_MAX_KEYS", |v| {
            parse_range(v, 1000, 100_000_000).map(|n| n as usize)
        }),
    };

    let secrets = p.secrets(env, &data_dir, dev_secrets);
    let config = Config {
        env,
        listen,
        metrics_listen,
        metrics_token,
        data_dir,
        public_url,
        database,
        redis_url,
        redis_ca_file,
        log,
        rate_limits,
        http,
        identity,
        retention,
        audit,
        backup,
        storage,
        documents,
        email,
        webhooks,
        integrations,
        secrets,
    };
    let mut problems = p.problems;
    problems.extend(profile_problems(&config, &raw));
    if problems.is_empty() {
        Ok(Loaded { config, warnings: p.warnings })
    } else {
        Err(ConfigProblems(problems))
    }
}

struct Parser<'a> {
    raw: &'a RawValues,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Parser<'_> {
    fn problem(&mut self, message: &str) {
        self.problems.push(message.to_owned());
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.raw.get(name).filter(|v| !v.is_empty())
    }

    fn secret_text(&self, name: &str) -> Option<Secret<String>> {
        self.text(name).map(|v| Secret::new(v.to_owned()))
    }

    /// Parses a setting that has a default. The default is the text in the settings table (stated
    /// once, and documented from there), parsed by the same function as a configured value.
    /// A bad value records the problem (naming the variable, never echoing a secret) and
    /// falls back to the default, so parsing goes on and every problem is found.
    fn parse<T>(&mut self, name: &str, f: impl Fn(&str) -> Result<T, String>) -> T {
        if let Some(value) = self.optional(name, &f) {
            return value;
        }
        let default = settings::default_of(name);
        // Invariant: every setting read with `parse` has a default in the table that its own
        // parser accepts; `config::tests::no_configuration_at_all_loads_without_problems`
        // parses them all.
        f(default.expect("a setting read with `parse` has a default in the table"))
            .expect("the table default of a setting parses")
    }

    /// Parses a setting without a default: `None` when it is unset, empty or invalid (the
    /// latter recorded as a problem).
    fn optional<T>(&mut self, name: &str, f: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let value = self.raw.get(name).map(str::trim).filter(|v| !v.is_empty())?;
        match f(value) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                self.problems.push(format!("{name}: {reason}"));
                None
            }
        }
    }

    fn database_url(&mut self, data_dir: &Path) -> DatabaseUrl {
        let Some(url) = self.raw.get("BULWARK_DATABASE_URL").filter(|v| !v.is_empty()) else {
            return DatabaseUrl::Sqlite(data_dir.join("bulwark.db"));
        };
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path.contains(":memory:") {
                self.problem("BULWARK_DATABASE_URL: give the SQLite file a path (sqlite://PATH)");
            }
            return DatabaseUrl::Sqlite(PathBuf::from(path));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return DatabaseUrl::Postgres(Secret::new(url.to_owned()));
        }
        self.problem("BULWARK_DATABASE_URL: must start with sqlite:// or postgres://");
        DatabaseUrl::Sqlite(data_dir.join("bulwark.db"))
    }

    fn tls_files(&mut self) -> Option<TlsFiles> {
        let cert = self.text("BULWARK_TLS_CERT_FILE").map(PathBuf::from);
        let key = self.text("BULWARK_TLS_KEY_FILE").map(PathBuf::from);
        match (cert, key) {
            (Some(cert_file), Some(key_file)) => Some(TlsFiles { cert_file, key_file }),
            (None, None) => None,
            _ => {
                self.problem("BULWARK_TLS_CERT_FILE and BULWARK_TLS_KEY_FILE must be set together");
                None
            }
        }
    }

    fn secrets(&mut self, env: Profile, data_dir: &Path, mode: DevSecrets) -> SecretsConfig {
        let mut jwt = self.secret_text("BULWARK_JWT_SECRET");
        let mut master = self.secret_text("BULWARK_MASTER_KEYS");
        if env.is_development() && (jwt.is_none() || master.is_none()) {
            match dev_secrets::fill(data_dir, mode, jwt.is_none(), master.is_none()) {
                Ok(generated) => {
                    self.warnings.extend(generated.warnings);
                    jwt = jwt.or(generated.jwt_secret);
                    master = master.or(generated.master_keys);
                }
                Err(problem) => self.problems.push(problem),
            }
        }
        let jwt_secret = match jwt {
            Some(secret) => {
                let bytes = secret.expose().as_bytes().to_vec();
                if bytes.len() < MIN_SECRET_BYTES {
                    self.problem(&format!(
                        "BULWARK_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes"
                    ));
                }
                Secret::new(bytes)
            }
            None => {
                // In development with DevSecrets::Inspect, `serve` generates it: no problem.
                if !env.is_development() || mode == DevSecrets::Generate {
                    self.problem(&format!(
                        "BULWARK_JWT_SECRET (or BULWARK_JWT_SECRET_FILE) is required in {}: at least {MIN_SECRET_BYTES} random bytes",
                        env.as_str()
                    ));
                }
                Secret::new(vec![])
            }
        };
        let mut jwt_previous_secrets = vec![];
        if let Some(previous) = self.secret_text("BULWARK_JWT_PREVIOUS_SECRETS") {
            for (index, part) in previous.expose().split(',').map(str::trim).enumerate() {
                if part.len() < MIN_SECRET_BYTES {
                    self.problem(&format!(
                        "BULWARK_JWT_PREVIOUS_SECRETS: entry {} is shorter than {MIN_SECRET_BYTES} bytes",
                        index + 1
                    ));
                }
                jwt_previous_secrets.push(Secret::new(part.as_bytes().to_vec()));
            }
        }
        let master_keys = match master {
            Some(text) => match parse_master_keys(text.expose()) {
                Ok(keys) => keys,
                Err(reason) => {
                    self.problem(&format!("BULWARK_MASTER_KEYS: {reason}"));
                    vec![]
                }
            },
            None => {
                if !env.is_development() || mode == DevSecrets::Generate {
                    self.problem(&format!(
                        "BULWARK_MASTER_KEYS (or BULWARK_MASTER_KEYS_FILE) is required in {}: `id:base64-of-32-random-bytes`",
                        env.as_str()
                    ));
                }
                vec![]
            }
        };
        SecretsConfig { jwt_secret, jwt_previous_secrets, master_keys }
    }
}

#[cfg(test)]
mod tests;
