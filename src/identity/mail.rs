//! The platform's mail to a user about their own account: the email-verification link, the
//! password-reset link and security notices (a factor added or removed, a password changed
//! or reset, a lockout). Queued through the user's tenant outbox (`email::notices`) — sealed,
//! durable, retried — by a task of its own, after the change that prompts it has committed:
//! the request never waits on mail, and a crash between the two loses a notice, never the
//! change. Platform accounts outside every tenant (super-admins) get no mail. Without a relay
//! and `BULWARK_EMAIL_FROM` nothing is queued.

use super::store as db;
use crate::app::AppState;
use crate::email::notices::{self, Notice};
use crate::error::DomainResult;
use crate::ids::UserId;
use crate::tenancy::TenantScope;

/// What a security notice tells the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityNotice {
    FactorAdded,
    FactorRemoved,
    PasswordChanged,
    PasswordReset,
    Locked,
}

impl SecurityNotice {
    fn text(self) -> (&'static str, &'static str) {
        match self {
            SecurityNotice::FactorAdded => (
                "A sign-in factor was added to your account",
                "A second factor (an authenticator app or a passkey) was added to your account, \
                 and your other sessions were signed out.",
            ),
            SecurityNotice::FactorRemoved => (
                "A sign-in factor was removed from your account",
                "A second factor was removed from your account, and your other sessions were \
                 signed out.",
            ),
            SecurityNotice::PasswordChanged => {
                ("Your password was changed", "The password of your account was changed.")
            }
            SecurityNotice::PasswordReset => (
                "Your password was reset",
                "The password of your account was reset through an emailed link, and every \
                 session was signed out.",
            ),
            SecurityNotice::Locked => (
                "Your account was locked after failed sign-ins",
                "Several wrong passwords or codes were tried on your account, so it is locked \
                 for a while. It unlocks by itself.",
            ),
        }
    }
}

const NOT_YOU: &str = "If this was not you, reset your password and tell your administrator.";

/// Queues a security notice to the user, in the background.
pub fn security_notice(app: &AppState, user: UserId, notice: SecurityNotice) {
    let (subject, text) = notice.text();
    let text = format!("{text}\n\n{NOT_YOU}\n");
    spawn(app, user, subject, text);
}

/// Queues a notice about something the user owns (a webhook disabled after failing, an
/// integration that lost its access), in the background.
pub fn owner_notice(app: &AppState, user: UserId, subject: &'static str, text: String) {
    spawn(app, user, subject, text);
}

/// Queues a mail with an account link (`{public_url}/{path}#token=…`: the token travels in
/// the fragment, which browsers never send to a server or a log), in the background.
pub fn account_link(
    app: &AppState,
    user: UserId,
    subject: &'static str,
    path: &str,
    token: &str,
    lead: &str,
) {
    let base = app.config().public_url.as_str().trim_end_matches('/');
    let text = format!(
        "{lead}\n\n{base}/{path}#token={token}\n\nIf you did not ask for this, ignore this message.\n"
    );
    spawn(app, user, subject, text);
}

/// Whether the platform can mail at all (a relay and `BULWARK_EMAIL_FROM`): without it no
/// account token is issued either, since nobody could receive it.
pub fn configured(app: &AppState) -> bool {
    let email = &app.config().email;
    email.smtp.is_some() && email.from.is_some()
}

fn spawn(app: &AppState, user: UserId, subject: &'static str, text: String) {
    if !configured(app) {
        return;
    }
    let app = app.clone();
    in_background("an account mail", async move { queue(&app, user, subject, text).await });
}

/// Runs account-mail work in a task of its own, so no answer waits on it (or takes longer
/// for one address than another); a failure is logged, never the mail or its token.
pub fn in_background(
    what: &'static str,
    work: impl Future<Output = DomainResult<()>> + Send + 'static,
) {
    tokio::spawn(async move {
        if let Err(err) = work.await {
            tracing::warn!(error = %err, what, "account mail could not be prepared");
        }
    });
}

async fn queue(app: &AppState, user: UserId, subject: &str, text: String) -> DomainResult<()> {
    let mut tx = app.store().system_read().await?;
    let row = db::user_by_id(&mut tx, user).await?;
    tx.commit().await?;
    let Some((tenant, email)) = row.and_then(|u| u.tenant_id.map(|t| (t, u.email))) else {
        return Ok(());
    };
    let scope = TenantScope::system(tenant, "account mail");
    let mut tx = app.store().tenant_tx(&scope).await?;
    let queued = notices::queue(
        app,
        &mut tx,
        Notice { to: vec![email], subject, text, suppressible: false },
    )
    .await?;
    tx.commit().await?;
    if queued {
        notices::wake(app);
    }
    Ok(())
}
