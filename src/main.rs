//! The `bulwark` command: serve the API, migrate, check the configuration.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark::config::{self, ConfigInput, DevSecrets};
use bulwark::{Application, telemetry};
use clap::{Parser, Subcommand};

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
    match cli.command {
        Command::CheckConfig => check_config(&input),
        Command::Serve => runtime.block_on(serve(&input)),
        Command::Migrate => runtime.block_on(migrate(&input)),
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
    eprintln!("Bulwark ({}) listening on {url}", profile.as_str());
    if let Some(metrics) = application.metrics_addr() {
        eprintln!("metrics on http://{metrics}/metrics");
    }
    tracing::info!(url = %url, metrics = ?application.metrics_addr(), profile = profile.as_str(), "listening");
    application.run(shutdown_signal()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
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
