//! The table of every setting Bulwark reads: its environment name, its key in the TOML file,
//! its default and what it means. `load` reads only names listed here, the README's
//! configuration reference is checked against it, and unknown `BULWARK_*` names are warned
//! about, so a typo never silently falls back to a default.

/// One configuration setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Environment variable, e.g. `BULWARK_DATABASE_MIGRATE_URL`.
    pub name: &'static str,
    /// Dotted key in the TOML file, e.g. `database.migrate_url`.
    pub key: &'static str,
    /// Default as text, `None` when unset by default.
    pub default: Option<&'static str>,
    /// Secrets accept a `<NAME>_FILE` variant and are never echoed in messages.
    pub secret: bool,
    pub help: &'static str,
}

pub(super) const fn s(
    name: &'static str,
    key: &'static str,
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting { name, key, default, secret: false, help }
}

pub(super) const fn secret(name: &'static str, key: &'static str, help: &'static str) -> Setting {
    Setting { name, key, default: None, secret: true, help }
}

/// The default text of a setting, if it has one.
pub fn default_of(name: &str) -> Option<&'static str> {
    find(name).and_then(|s| s.default)
}

/// The core settings; [`all`] adds those of the integrations.
const CORE: &[Setting] = &[
    s("BULWARK_ENV", "env", Some("development"), "`development`, `staging` or `production`"),
    s(
        "BULWARK_LISTEN",
        "listen",
        Some("127.0.0.1:8080"),
        "API address, `ip:port`; port 0 picks a free port (printed and logged)",
    ),
    s(
        "BULWARK_METRICS_LISTEN",
        "metrics_listen",
        Some("127.0.0.1:9464"),
        "Prometheus listener, `ip:port`, or `off`",
    ),
    secret(
        "BULWARK_METRICS_TOKEN",
        "metrics_token",
        "bearer token a scrape of `/metrics` must present (at least 32 bytes); required outside development when the metrics listener is not on loopback",
    ),
    s(
        "BULWARK_DATA_DIR",
        "data_dir",
        Some("./bulwark-data"),
        "SQLite file, generated development secrets and local files",
    ),
    secret(
        "BULWARK_DATABASE_URL",
        "database.url",
        "`sqlite://PATH` or `postgres://…`; default: `bulwark.db` in the data directory",
    ),
    secret(
        "BULWARK_DATABASE_MIGRATE_URL",
        "database.migrate_url",
        "PostgreSQL only: the owner role that runs migrations; default: `BULWARK_DATABASE_URL`",
    ),
    s(
        "BULWARK_DATABASE_POOLER",
        "database.pooler",
        Some("none"),
        "PostgreSQL only: `transaction` when BULWARK_DATABASE_URL reaches PostgreSQL through a transaction-pooling PgBouncer: no state outlives a transaction, statements are unnamed (any PgBouncer version), and without BULWARK_DATABASE_MIGRATE_URL (which must reach PostgreSQL itself) `serve` only checks the migrations",
    ),
    s(
        "BULWARK_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
        Some("16"),
        "connection pool size",
    ),
    s(
        "BULWARK_PUBLIC_URL",
        "public_url",
        Some("http://127.0.0.1:8080"),
        "external base URL (cookies, links, token issuer); `https://` outside development",
    ),
    s(
        "BULWARK_CORS_ORIGINS",
        "http.cors_origins",
        Some(""),
        "comma-separated origin allowlist (`https://app.example.com`); `*` is refused",
    ),
    secret(
        "BULWARK_REDIS_URL",
        "redis_url",
        "enables the Redis backends (`redis://…`; `rediss://…` for TLS, required outside development when Redis is on another machine)",
    ),
    s(
        "BULWARK_REDIS_CA_FILE",
        "redis_ca_file",
        None,
        "PEM CA certificate(s) a `rediss://` server is verified against, instead of the system roots",
    ),
    s("BULWARK_LOG", "log", Some("info"), "log filter, e.g. `info` or `info,bulwark=debug`"),
    s(
        "BULWARK_RATE_LIMITS",
        "rate_limits",
        Some("on"),
        "`off` disables request rate limits (development only; lockout stays on)",
    ),
    s(
        "BULWARK_RATE_LIMITS_FILE",
        "rate_limits_file",
        None,
        "TOML file of rate-limit rules replacing the default set (see below)",
    ),
    s(
        "BULWARK_RATE_LIMIT_MAX_KEYS",
        "rate_limit_max_keys",
        Some("500000"),
        "in-memory limiter: most client counters kept (about 50 bytes each)",
    ),
    s(
        "BULWARK_TRUSTED_PROXIES",
        "http.trusted_proxies",
        Some(""),
        "CIDRs of reverse proxies whose `X-Forwarded-For` is believed",
    ),
    s(
        "BULWARK_IPV6_PREFIX",
        "http.ipv6_prefix",
        Some("64"),
        "leading bits of an IPv6 client address that name one client for rate limits, the login throttle and signup throttling (32-128)",
    ),
    s(
        "BULWARK_BODY_LIMIT",
        "http.body_limit",
        Some("1048576"),
        "default request body limit in bytes (routes may set their own)",
    ),
    s(
        "BULWARK_REQUEST_TIMEOUT",
        "http.request_timeout",
        Some("30s"),
        "time to answer a request (`30s`, `500ms`, `2m`)",
    ),
    s(
        "BULWARK_HEADER_READ_TIMEOUT",
        "http.header_read_timeout",
        Some("10s"),
        "time for a client to send the request headers (and the TLS handshake)",
    ),
    s(
        "BULWARK_IDLE_TIMEOUT",
        "http.idle_timeout",
        Some("2m"),
        "a connection (HTTP/1.1 keep-alive or HTTP/2) that starts no request for this long is closed",
    ),
    s(
        "BULWARK_HSTS",
        "http.hsts",
        Some("on"),
        "`Strict-Transport-Security` in staging and production, or over TLS; `off` is refused outside development",
    ),
    s(
        "BULWARK_HSTS_MAX_AGE",
        "http.hsts_max_age",
        Some("63072000"),
        "HSTS max-age in seconds (sent with includeSubDomains; preload)",
    ),
    s(
        "BULWARK_X_XSS_PROTECTION",
        "http.x_xss_protection",
        Some("0"),
        "`0` (current OWASP advice) or `1; mode=block`",
    ),
    s(
        "BULWARK_COOKIE_SECURE",
        "http.cookie_secure",
        Some("on"),
        "`off` drops the Secure cookie flag for plain-HTTP development (development only)",
    ),
    s(
        "BULWARK_TLS_CERT_FILE",
        "tls.cert_file",
        None,
        "PEM certificate chain: serve TLS 1.3 itself",
    ),
    s("BULWARK_TLS_KEY_FILE", "tls.key_file", None, "PEM private key for `BULWARK_TLS_CERT_FILE`"),
    s(
        "BULWARK_SIGNUP",
        "identity.signup",
        Some("open"),
        "`open` or `closed` (invitations and the CLI only)",
    ),
    s(
        "BULWARK_ACCESS_TOKEN_TTL",
        "identity.access_token_ttl",
        Some("15m"),
        "access-token lifetime",
    ),
    s(
        "BULWARK_SESSION_IDLE_TIMEOUT",
        "identity.session_idle_timeout",
        Some("7d"),
        "a session unused (not refreshed) this long ends",
    ),
    s(
        "BULWARK_SESSION_ABSOLUTE_TIMEOUT",
        "identity.session_absolute_timeout",
        Some("30d"),
        "a session ends this long after login, however active",
    ),
    s(
        "BULWARK_LOCKOUT_THRESHOLD",
        "identity.lockout_threshold",
        Some("5"),
        "failed logins within the window that lock an account",
    ),
    s(
        "BULWARK_LOCKOUT_WINDOW",
        "identity.lockout_window",
        Some("15m"),
        "window for counting failures",
    ),
    s(
        "BULWARK_LOCKOUT_SECONDS",
        "identity.lockout_seconds",
        Some("900"),
        "first lock duration in seconds; doubles on each repeat lock",
    ),
    s(
        "BULWARK_LOCKOUT_IP_THRESHOLD",
        "identity.lockout_ip_threshold",
        Some("50"),
        "failed logins from one IP within the window before that IP must wait",
    ),
    s(
        "BULWARK_STEP_UP_SECONDS",
        "identity.step_up_seconds",
        Some("600"),
        "how long a second-factor step-up allows sensitive operations",
    ),
    s(
        "BULWARK_ARGON2_MEMORY_KIB",
        "identity.argon2_memory_kib",
        Some("19456"),
        "Argon2id memory (OWASP: 19456)",
    ),
    s(
        "BULWARK_ARGON2_ITERATIONS",
        "identity.argon2_iterations",
        Some("2"),
        "Argon2id iterations (OWASP: 2)",
    ),
    s(
        "BULWARK_ARGON2_PARALLELISM",
        "identity.argon2_parallelism",
        Some("1"),
        "Argon2id lanes (OWASP: 1)",
    ),
    s(
        "BULWARK_HASH_WORKERS",
        "identity.hash_workers",
        Some("auto"),
        "threads hashing passwords at once; `auto` = half the CPUs, at least 1",
    ),
    s(
        "BULWARK_HASH_QUEUE",
        "identity.hash_queue",
        Some("64"),
        "password checks that may wait for a worker; beyond it logins get 503 at once",
    ),
    s(
        "BULWARK_AUDIT_CHECKPOINT_EVENTS",
        "audit.checkpoint_events",
        Some("1000"),
        "a chain gets a signed checkpoint after this many new events (checked every 10 s)",
    ),
    s(
        "BULWARK_AUDIT_CHECKPOINT_INTERVAL",
        "audit.checkpoint_interval",
        Some("10m"),
        "and at least this often while it moves",
    ),
    s(
        "BULWARK_AUDIT_CHECKPOINT_FILE",
        "audit.checkpoint_file",
        None,
        "where signed checkpoints are appended (default `audit-checkpoints.jsonl` in the data directory); keep it where the database's users cannot write",
    ),
    s(
        "BULWARK_BACKUP_RECIPIENTS",
        "backup.recipients",
        None,
        "age public keys (`age1…`, comma-separated) that `bulwark backup create` encrypts to; required to create a backup",
    ),
    s(
        "BULWARK_BACKUP_SCHEDULE",
        "backup.schedule",
        None,
        "`daily HH:MM` (UTC) or `every DURATION`: `serve` backs up on this schedule (one instance per slot); unset: no scheduled backups",
    ),
    s(
        "BULWARK_BACKUP_TO",
        "backup.to",
        None,
        "the directory scheduled backups are written to (default `backups/` in the data directory)",
    ),
    s(
        "BULWARK_BACKUP_KEEP",
        "backup.keep",
        Some("7"),
        "how many archives a backup directory keeps (the newest)",
    ),
    s(
        "BULWARK_SHRED_LEDGER",
        "backup.shred_ledger",
        None,
        "the signed ledger of deleted tenants that `restore` applies (default `shred-ledger.jsonl` in the data directory); keep it beside the audit checkpoints, outside the database and its backups",
    ),
    s(
        "BULWARK_STORAGE_URL",
        "storage.url",
        None,
        "where document contents go: `file://PATH` (default `documents/` in the data directory) or `s3://BUCKET[/PREFIX]`",
    ),
    s(
        "BULWARK_S3_ENDPOINT",
        "storage.s3_endpoint",
        None,
        "an S3-compatible endpoint (MinIO, …); unset: AWS. Must be https:// outside development",
    ),
    s(
        "BULWARK_S3_CA_FILE",
        "storage.s3_ca_file",
        None,
        "PEM file of certificate authorities trusted for BULWARK_S3_ENDPOINT besides the system's (a private server such as MinIO with its own CA)",
    ),
    s("BULWARK_S3_REGION", "storage.s3_region", Some("us-east-1"), "the S3 region"),
    s(
        "BULWARK_S3_ACCESS_KEY_ID",
        "storage.s3_access_key_id",
        None,
        "S3 access key id (unset: the instance's role, as the AWS SDKs find it)",
    ),
    s(
        "BULWARK_S3_FORCE_PATH_STYLE",
        "storage.s3_force_path_style",
        Some("off"),
        "`on`: path-style requests (`endpoint/bucket/key`), as most S3-compatible stores want",
    ),
    s(
        "BULWARK_DOCUMENT_MAX_BYTES",
        "documents.max_bytes",
        Some("26214400"),
        "the largest document accepted, in bytes (25 MiB)",
    ),
    s(
        "BULWARK_DOCUMENT_TYPES",
        "documents.types",
        Some("pdf,png,jpeg,gif,webp,text,csv,docx,xlsx,pptx,odt,ods"),
        "the types documents may have, decided from their content (never the name or header)",
    ),
    s(
        "BULWARK_RETENTION_DOCUMENTS",
        "retention.documents",
        Some("off"),
        "documents older than this are deleted (`off`: kept)",
    ),
    s(
        "BULWARK_CLAMD_ADDRESS",
        "documents.clamd_address",
        None,
        "clamd's TCP `host:port`: each upload is scanned before it is stored; unset: stored as `unscanned`",
    ),
    s(
        "BULWARK_RETENTION_AUDIT",
        "retention.audit",
        Some("2555d"),
        "audit events older than this are purged (at least 365d; the chain stays verifiable)",
    ),
    s(
        "BULWARK_RETENTION_SESSIONS",
        "retention.sessions",
        Some("90d"),
        "ended sessions (revoked or expired) older than this are deleted",
    ),
    s(
        "BULWARK_RETENTION_ACTIVITIES",
        "retention.activities",
        Some("off"),
        "activities older than this are deleted (`off`: kept)",
    ),
    s(
        "BULWARK_RETENTION_NOTES",
        "retention.notes",
        Some("off"),
        "notes older than this are deleted (`off`: kept)",
    ),
    secret(
        "BULWARK_S3_SECRET_ACCESS_KEY",
        "secrets.s3_secret_access_key",
        "S3 secret access key (with BULWARK_S3_ACCESS_KEY_ID)",
    ),
    secret(
        "BULWARK_JWT_SECRET",
        "secrets.jwt_secret",
        "current access-token signing key, at least 32 bytes (generated in development)",
    ),
    secret(
        "BULWARK_JWT_PREVIOUS_SECRETS",
        "secrets.jwt_previous_secrets",
        "comma-separated earlier signing keys, accepted for verification only",
    ),
    secret(
        "BULWARK_MASTER_KEYS",
        "secrets.master_keys",
        "`id:base64-32-bytes`, comma-separated, first one current (generated in development)",
    ),
];

/// Every setting Bulwark reads.
pub fn all() -> impl Iterator<Item = &'static Setting> {
    CORE.iter().chain(super::email::SETTINGS).chain(super::integrations::SETTINGS)
}

pub fn find(name: &str) -> Option<&'static Setting> {
    all().find(|setting| setting.name == name)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
