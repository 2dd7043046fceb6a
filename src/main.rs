//! The `bulwark` command: serve the API, migrate, check the configuration.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use bulwark::backup::Location;
use bulwark::config::{self, ConfigInput, DevSecrets};
use bulwark::{Application, telemetry};
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: on the request path glibc's malloc and free cost
/// 11 % of a loaded core (issue 14's profile); mimalloc's thread-local free lists take a
/// fraction of that. The binary's choice only: the library and its tests keep the default.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands {
    pub mod accounts;
    pub mod audit;
    pub mod backup;
    pub mod contain;
    pub mod health;
    pub mod keys;
}

#[derive(Parser)]
#[command(name = "bulwark", version, about = "Multi-tenant CRM and email platform")]
struct Cli {
    /// Optional TOML configuration file; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the metrics listener and the workers.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print every configuration problem; exit 1 if there is any.
    CheckConfig,
    /// Exit 0 when the local `serve` answers `/healthz` (for container health checks, which
    /// have no curl): `GET /healthz` on `BULWARK_LISTEN` (loopback when it names every
    /// address); with built-in TLS, that the port accepts connections.
    Healthcheck,
    /// Create the platform super-admin. The password is prompted for, or read from stdin.
    CreateSuperadmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Platform administrator")]
        name: String,
    },
    /// Import users of a tenant from JSON lines
    /// `{"email", "display_name", "role", "password_hash"}` (bcrypt or argon2id hashes;
    /// bcrypt ones are re-hashed with Argon2id at each user's next login).
    ImportUsers {
        #[arg(long)]
        tenant: bulwark::ids::TenantId,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Containment: end sessions at once, on every instance.
    Sessions {
        #[command(subcommand)]
        command: commands::contain::SessionsCommand,
    },
    /// Containment: revoke API keys at once, on every instance.
    ApiKeys {
        #[command(subcommand)]
        command: commands::contain::ApiKeysCommand,
    },
    /// Tenants.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Encrypted backups of the whole database.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Restore a backup into an empty database of either backend (SQLite's into PostgreSQL
    /// to move), then compare the row counts, apply the shred ledger and verify the audit log.
    Restore {
        #[arg(long, value_name = "PATH|s3://BUCKET/KEY", value_parser = Location::parse)]
        from: Location,
        /// An age identity file (`AGE-SECRET-KEY-1…`) of one of the backup's recipients.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Write a consistent snapshot of every table, encrypted to BULWARK_BACKUP_RECIPIENTS,
    /// while `serve` goes on.
    Create {
        /// A file, or a directory that gets a dated archive and keeps the newest
        /// BULWARK_BACKUP_KEEP, or `s3://BUCKET/KEY` (a key ending in `/` gets a dated name)
        /// with the BULWARK_S3_* settings.
        #[arg(long, value_name = "PATH|s3://BUCKET/KEY", value_parser = Location::parse)]
        to: Location,
    },
    /// Decrypt and check every hash of an archive without writing anything.
    Verify {
        #[arg(long, value_name = "PATH|s3://BUCKET/KEY", value_parser = Location::parse)]
        from: Location,
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-wrap every tenant key under the current (first) master key; afterwards older
    /// master keys can leave BULWARK_MASTER_KEYS.
    RotateMaster,
    /// Re-encrypt one tenant's data under a new data key (online, resumable).
    RotateTenant {
        #[arg(long)]
        tenant: bulwark::ids::TenantId,
    },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Delete a tenant: destroy its keys (crypto-shredding its data, backups included),
    /// delete its records, close its accounts. The audit log stays.
    Delete {
        #[arg(long)]
        tenant: bulwark::ids::TenantId,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every hash chain (or one tenant's); exit 1 naming the first broken event.
    Verify {
        #[arg(long)]
        tenant: Option<bulwark::ids::TenantId>,
        /// A file of signed checkpoints (`BULWARK_AUDIT_CHECKPOINT_FILE`): also detects
        /// events deleted from the end and chains rewritten or removed as a whole.
        #[arg(long, value_name = "PATH")]
        checkpoints: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let input = ConfigInput::from_process(cli.config.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.command {
        Command::CheckConfig => check_config(&input),
        Command::Healthcheck => runtime.block_on(commands::health::healthcheck(&input)),
        Command::Serve => runtime.block_on(serve(&input)),
        Command::Migrate => runtime.block_on(migrate(&input)),
        Command::CreateSuperadmin { email, name } => {
            runtime.block_on(commands::accounts::create_superadmin(&input, &email, &name))
        }
        Command::ImportUsers { tenant, file } => {
            runtime.block_on(commands::accounts::import_users(&input, tenant, &file))
        }
        Command::Audit { command: AuditCommand::Verify { tenant, checkpoints } } => runtime
            .block_on(async {
                let Some(state) = open_state(&input).await else { return ExitCode::FAILURE };
                commands::audit::verify(&state, tenant, checkpoints.as_deref()).await
            }),
        Command::Keys { command } => runtime.block_on(async {
            let Some(state) = open_state(&input).await else { return ExitCode::FAILURE };
            let outcome = match command {
                KeysCommand::RotateMaster => commands::keys::rotate_master(&state).await,
                KeysCommand::RotateTenant { tenant } => {
                    commands::keys::rotate_tenant(&state, tenant).await
                }
            };
            report(outcome)
        }),
        Command::Sessions { command } => runtime.block_on(async {
            let Some(state) = open_state(&input).await else { return ExitCode::FAILURE };
            report(commands::contain::sessions(&state, command).await)
        }),
        Command::ApiKeys { command } => runtime.block_on(async {
            let Some(state) = open_state(&input).await else { return ExitCode::FAILURE };
            report(commands::contain::api_keys(&state, command).await)
        }),
        Command::Tenants { command: TenantsCommand::Delete { tenant } } => {
            runtime.block_on(commands::accounts::delete_tenant(&input, tenant))
        }
        Command::Backup { command: BackupCommand::Verify { from, identity } } => {
            // The deployment's configuration: its master keys check the manifest's signature
            // (no database needed).
            let Some(config) = load_for_run(&input) else { return ExitCode::FAILURE };
            runtime.block_on(commands::backup::verify(&from, &config, &identity))
        }
        Command::Backup { command: BackupCommand::Create { to } } => runtime.block_on(async {
            let Some(state) = open_state(&input).await else { return ExitCode::FAILURE };
            commands::backup::create(&state, &to).await
        }),
        Command::Restore { from, identity } => runtime.block_on(async {
            let Some(state) = open_state(&input).await else { return ExitCode::FAILURE };
            commands::backup::restore(&state, &from, &identity).await
        }),
    };
    // The databases the command opened are closed before the process ends: a SQLite
    // connection the exit cuts off while it closes could leave its last commit unseen by the
    // other processes (a key rotation run from the command line was lost that way).
    let opened = std::mem::take(&mut *OPENED.lock().unwrap_or_else(PoisonError::into_inner));
    runtime.block_on(async {
        for state in opened {
            state.store().close().await;
        }
    });
    // Log lines are written by a thread of their own; none is lost at exit.
    telemetry::logs::flush();
    code
}

/// What `open_state` opened, for `main` to close before the process exits.
static OPENED: Mutex<Vec<bulwark::AppState>> = Mutex::new(Vec::new());

/// Opens the application state for a one-off command.
async fn open_state(input: &ConfigInput) -> Option<bulwark::AppState> {
    let config = load_for_run(input)?;
    match bulwark::AppState::open(config, Default::default()).await {
        Ok(state) => {
            OPENED.lock().unwrap_or_else(PoisonError::into_inner).push(state.clone());
            Some(state)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            None
        }
    }
}

/// A domain error for a terminal: validation messages in full.
/// Prints a command's message, or its error described; the exit code follows.
fn report(outcome: Result<String, bulwark::error::DomainError>) -> ExitCode {
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

fn describe(err: &bulwark::error::DomainError) -> String {
    match err {
        bulwark::error::DomainError::Invalid(problems) => problems
            .iter()
            .map(|(field, message)| format!("{field} {message}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => {
            // The operator's own terminal: the causes help, and hold no client data.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn check_config(input: &ConfigInput) -> ExitCode {
    match config::load(input, DevSecrets::Inspect) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            println!("configuration OK ({} profile)", loaded.config.env.as_str());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print!("{problems}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration for a command that runs; prints every problem and fails
/// before anything listens.
fn load_for_run(input: &ConfigInput) -> Option<config::Config> {
    match config::load(input, DevSecrets::Generate) {
        Ok(loaded) => {
            if let Err(err) = telemetry::logs::init(&loaded.config.log) {
                eprintln!("error: {err}");
                return None;
            }
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
                tracing::warn!("{warning}");
            }
            Some(loaded.config)
        }
        Err(problems) => {
            eprint!("{problems}");
            None
        }
    }
}

async fn serve(input: &ConfigInput) -> ExitCode {
    let Some(config) = load_for_run(input) else { return ExitCode::FAILURE };
    let profile = config.env;
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(err) => {
            eprintln!("error: {err:#}");
            tracing::error!(error = %format!("{err:#}"), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    let scheme = if application.is_tls() { "https" } else { "http" };
    let addr = match application.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let url = format!("{scheme}://{addr}");
    if profile.is_development() {
        eprintln!("{}", bulwark::config::DEVELOPMENT_BANNER);
        tracing::warn!("running the development profile: not for real data");
    }
    eprintln!("Bulwark ({}) listening on {url}", profile.as_str());
    if let Some(metrics) = application.metrics_addr() {
        eprintln!("metrics on http://{metrics}/metrics");
    }
    tracing::info!(url = %url, metrics = ?application.metrics_addr(), profile = profile.as_str(), "listening");
    tokio::spawn(settle_startup_memory());
    application.run(shutdown_signal()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Lets mimalloc give back what start-up freed (the OpenAPI document is built and dropped,
/// migrations and templates come and go: about 15 MiB). mimalloc returns freed memory to
/// the system only a delay (1 s) after the free, and only when a later page free comes to
/// check (`mi_arenas_try_purge`); an idle server frees no page, so without this it holds
/// that memory for its whole life (issue 14: idle anonymous memory 26 MB, 11 MB with it).
/// One untouched 1 MiB allocation (a page of its own, freed at once) is that later free.
async fn settle_startup_memory() {
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1 << 20)));
}

async fn migrate(input: &ConfigInput) -> ExitCode {
    let Some(config) = load_for_run(input) else { return ExitCode::FAILURE };
    match bulwark::store::Store::migrate(&config.database).await {
        Ok(()) => {
            eprintln!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
