//! `bulwark backup create|verify` and `bulwark restore`: the operator's side of `backup`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use bulwark::AppState;
use bulwark::backup::{self, BackupError, Location};
use bulwark::maintenance::tenant_deletion;

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

pub async fn create(state: &AppState, to: &Location) -> ExitCode {
    let started = Instant::now();
    let recipients = &state.config().backup.recipients;
    if recipients.is_empty() {
        return fail(BackupError::Recipients);
    }
    match backup::schedule::run(state, to, "cli").await {
        Ok((archive, created)) => {
            let rows: u64 = created.manifest.tables.iter().map(|t| t.rows).sum();
            println!(
                "backup written to {}: {} tables, {rows} rows, {} document contents, {} bytes ({} before encryption), {:.1} s",
                archive,
                created.manifest.tables.len(),
                created.manifest.documents,
                created.size,
                created.bytes,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

/// `config`: the master keys (the manifest's signature) and the S3 settings.
pub async fn verify(
    from: &Location,
    config: &bulwark::config::Config,
    identity: &Path,
) -> ExitCode {
    let ring = match bulwark::crypto::KeyRing::new(&config.secrets.master_keys) {
        Ok(ring) => ring,
        Err(err) => return fail(format!("BULWARK_MASTER_KEYS: {err}")),
    };
    let identities = match backup::archive::identities(identity) {
        Ok(identities) => identities,
        Err(err) => return fail(err),
    };
    match backup::verify(from, &config.storage, &ring, identities).await {
        Ok((header, manifest)) => {
            let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
            println!(
                "backup verified: {} tables, {rows} rows, schema {}, taken from {} at {}",
                manifest.tables.len(),
                header.schema_version,
                header.backend,
                header.created_at
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

/// Restores into the configured (empty) database, then: compares every table's rows with
/// the manifest, deletes again the tenants of the shred ledger, and verifies the audit log.
pub async fn restore(state: &AppState, from: &Location, identity: &Path) -> ExitCode {
    let started = Instant::now();
    let identities = match backup::archive::identities(identity) {
        Ok(identities) => identities,
        Err(err) => return fail(err),
    };
    let shredded = match bulwark::maintenance::shred_ledger::read(
        &state.config().backup.shred_ledger,
        state.keys(),
    ) {
        Ok(tenants) => tenants.into_iter().map(|t| t.as_uuid()).collect::<Vec<_>>(),
        Err(err) => return fail(err),
    };
    let restored = match backup::restore(
        state.store(),
        state.storage(),
        &state.config().storage,
        state.keys(),
        from,
        identities,
        &shredded,
    )
    .await
    {
        Ok(restored) => restored,
        Err(err) => return fail(err),
    };
    let rows: u64 = restored.manifest.tables.iter().map(|t| t.rows).sum();
    // Counted before the ledger deletes tenants again (their rows are in the manifest), but
    // the ledger is applied whatever the count says: a deleted tenant's accounts must not sit
    // in the database even of a restore that is about to be reported as failed.
    let counted = backup::compare_counts(state.store(), &restored).await;
    let applied = match tenant_deletion::apply_ledger(state).await {
        Ok(applied) => applied,
        Err(err) => return fail(err),
    };
    match counted {
        Ok(differ) if differ.is_empty() => {}
        Ok(differ) => return fail(format!("the restored rows differ: {}", differ.join("; "))),
        Err(err) => return fail(err),
    }
    match bulwark::audit::verify(state.store(), None).await {
        Ok(report) if report.broken.is_empty() => {
            println!(
                "restored {rows} rows of {} tables (schema {}, from {}) in {:.1} s; \
                 {} document contents; {} tenant(s) of the shred ledger deleted again; audit log verified: {} chain(s), {} event(s)",
                restored.manifest.tables.len(),
                restored.header.schema_version,
                restored.header.backend,
                started.elapsed().as_secs_f64(),
                restored.manifest.documents,
                applied.len(),
                report.chains,
                report.events
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for broken in &report.broken {
                println!("BROKEN chain {}: {}", broken.chain_id, broken.reason);
            }
            ExitCode::FAILURE
        }
        Err(err) => fail(err),
    }
}
