//! `bulwark audit verify`: every hash chain, and the signed checkpoints when given.

use std::process::ExitCode;

use bulwark::AppState;
use bulwark::audit::checkpoint;

/// Checks the chains (of one tenant, or all) and, with `checkpoints`, that no chain ends
/// before or differs from what was signed.
pub async fn verify(
    state: &AppState,
    tenant: Option<bulwark::ids::TenantId>,
    checkpoints: Option<&std::path::Path>,
) -> ExitCode {
    let signed = match checkpoints.map(checkpoint::read).transpose() {
        Ok(signed) => signed.unwrap_or_default(),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let signed: Vec<_> =
        signed.into_iter().filter(|c| tenant.is_none_or(|t| c.chain_id == t.as_uuid())).collect();
    let outcome = async {
        let mut report = bulwark::audit::verify(state.store(), tenant).await?;
        let mut against = checkpoint::check(state.store(), state.keys(), &signed).await?;
        // One finding per chain: the chain's own break first.
        against.retain(|b| !report.broken.iter().any(|r| r.chain_id == b.chain_id));
        report.broken.extend(against);
        Ok::<_, bulwark::store::StoreError>(report)
    };
    match outcome.await {
        Ok(report) if report.broken.is_empty() => {
            println!(
                "audit log verified: {} chain(s), {} event(s), {} signed checkpoint(s)",
                report.chains,
                report.events,
                signed.len()
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for broken in &report.broken {
                let event = broken.event_id.map_or_else(|| "-".to_owned(), |id| id.to_string());
                println!("BROKEN chain {} at event {event}: {}", broken.chain_id, broken.reason);
            }
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
