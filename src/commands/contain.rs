//! `bulwark sessions revoke` and `bulwark api-keys revoke`: containment from the operator's
//! terminal, for when the API itself is the problem. Audited like the API's revocations,
//! with the system actor `cli`; every running instance refuses what was revoked within a
//! second.

use bulwark::AppState;
use bulwark::audit::RequestContext;
use bulwark::containment::{self, Operator, SessionsToRevoke};
use bulwark::error::DomainError;
use bulwark::ids::{TenantId, UserId};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// End sessions everywhere: everyone's, a tenant's or a user's.
    Revoke(RevokeSessions),
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct RevokeSessions {
    /// Every session of every user, the super-admin's included.
    #[arg(long)]
    all: bool,
    /// Every session of one tenant.
    #[arg(long, value_name = "ID")]
    tenant: Option<TenantId>,
    /// Every session of one user.
    #[arg(long, value_name = "ID")]
    user: Option<UserId>,
}

#[derive(Subcommand)]
pub enum ApiKeysCommand {
    /// Revoke every API key of a tenant.
    Revoke {
        #[arg(long, value_name = "ID")]
        tenant: TenantId,
    },
}

pub async fn sessions(state: &AppState, command: SessionsCommand) -> Result<String, DomainError> {
    let SessionsCommand::Revoke(which) = command;
    // clap's group makes exactly one of the three present; `--all` is neither id.
    let which = SessionsToRevoke { tenant_id: which.tenant, user_id: which.user };
    let ctx = RequestContext::system();
    let revoked = containment::revoke_sessions(state, &ctx, Operator::Cli, which).await?;
    Ok(format!("{revoked} session(s) revoked"))
}

pub async fn api_keys(state: &AppState, command: ApiKeysCommand) -> Result<String, DomainError> {
    let ApiKeysCommand::Revoke { tenant } = command;
    let ctx = RequestContext::system();
    let revoked = containment::revoke_api_keys(state, &ctx, Operator::Cli, tenant).await?;
    Ok(format!("tenant {tenant}: {revoked} API key(s) revoked"))
}
