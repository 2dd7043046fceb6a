//! Creating and changing accounts: open signup (a tenant and its owner), the password
//! change, and the CLI's super-admin creation and user import. Signing in is `login`.

use super::login::hash_error;
use super::password;
use super::store::{self as db, NewUser};
use super::{Principal, check_email, normalize_email};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::ids::{TenantId, UserId};
use crate::store::{StoreError, SystemTx};
use crate::tenancy::Role;

pub struct SignupInput {
    pub tenant_name: String,
    pub email: String,
    pub password: Secret<String>,
    pub display_name: String,
}

fn check_name(field: &str, value: &str, problems: &mut Vec<(String, String)>) {
    let length = value.trim().chars().count();
    if length == 0 || length > 100 || value.chars().any(char::is_control) {
        problems.push((field.to_owned(), "must be 1 to 100 printable characters".to_owned()));
    }
}

/// Validates a new account's email, name and password; every problem at once.
pub fn check_new_account(
    email: &str,
    display_name: &str,
    password: &Secret<String>,
    extra_inputs: &[&str],
) -> DomainResult<()> {
    let mut problems = vec![];
    if let Err(message) = check_email(email) {
        problems.push(("email".to_owned(), message.to_owned()));
    }
    check_name("display_name", display_name, &mut problems);
    let mut inputs = vec![email, display_name];
    inputs.extend_from_slice(extra_inputs);
    if let Err(message) = password::check_policy(password.expose(), &inputs) {
        problems.push(("password".to_owned(), message));
    }
    if problems.is_empty() { Ok(()) } else { Err(DomainError::Invalid(problems)) }
}

/// Open signup: a tenant and its owner. It answers the same whether or not the address has
/// an account (an existing one is left untouched and the attempt audited), so signup never
/// tells who has an account; the new owner signs in to learn its ids. Accounts created here
/// are unverified: nobody proved they own the address.
pub async fn signup(app: &AppState, ctx: &RequestContext, input: SignupInput) -> DomainResult<()> {
    if !app.identity().settings.signup_open {
        return Err(DomainError::SignupClosed);
    }
    let email = normalize_email(&input.email);
    let display_name = input.display_name.trim().to_owned();
    let tenant_name = input.tenant_name.trim().to_owned();
    let mut problems = vec![];
    check_name("tenant_name", &tenant_name, &mut problems);
    if let Err(DomainError::Invalid(more)) =
        check_new_account(&email, &display_name, &input.password, &[&tenant_name])
    {
        problems.extend(more);
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    // Hash in both cases: the time an answer takes must not tell either.
    let hash = app.identity().hasher.hash(&input.password).await.map_err(hash_error)?;
    let (tenant_id, user_id, now) = (TenantId::new(), UserId::new(), Timestamp::now());
    let mut tx = app.store().system_tx().await?;
    if let Some(existing) = db::user_by_email(&mut tx, &email).await? {
        audit::record_platform(
            &mut tx,
            existing.tenant_id,
            ctx,
            Event::new(Action::AuthSignup).failure().detail("reason", "address_has_an_account"),
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    db::insert_tenant(&mut tx, tenant_id, &tenant_name, now).await?;
    app.tenant_keys()
        .create_for(&mut tx, tenant_id, now)
        .await
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    insert_account(
        &mut tx,
        &NewUser {
            id: user_id,
            tenant_id: Some(tenant_id),
            email: &email,
            display_name: &display_name,
            password_hash: &hash,
            role: Some(Role::Owner.as_str()),
            is_superadmin: false,
            now,
        },
    )
    .await?;
    audit::record_platform(
        &mut tx,
        Some(tenant_id),
        ctx,
        Event::new(Action::AuthSignup).by_user(user_id).target("tenant", tenant_id),
    )
    .await?;
    // Two signups for one new address at once: the second meets the unique email, and is
    // answered like any other attempt on a taken address.
    match tx.commit().await {
        Err(StoreError::Conflict(_)) => return Ok(()),
        other => other?,
    }
    // The new owner proves the address by the mailed link (in the background: the answer
    // must not take longer for a new account than for a taken address).
    let app = app.clone();
    super::mail::in_background("a verification mail", async move {
        super::recovery::send_verification(&app, user_id).await
    });
    Ok(())
}

/// Inserts a user, turning a taken email into a 409.
pub async fn insert_account(
    tx: &mut impl crate::store::AsRawTx,
    user: &NewUser<'_>,
) -> DomainResult<()> {
    db::insert_user(tx, user).await.map_err(|err| match err {
        StoreError::Conflict(_) => {
            DomainError::Conflict("an account with this email already exists")
        }
        other => other.into(),
    })
}

/// What a password change asks for besides the new password.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChangeOptions {
    /// End every other session of the user (the default: whoever else holds a session may be
    /// the reason for the change).
    pub sign_out_other_sessions: bool,
    /// Revoke every API key the user created, too.
    pub revoke_api_keys: bool,
}

/// Changes the caller's password after checking the current one (a reserved lockout
/// attempt, like a login: a stolen access token is no unlimited password oracle).
pub async fn change_password(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    current: &Secret<String>,
    new: &Secret<String>,
    options: PasswordChangeOptions,
) -> DomainResult<()> {
    let sid = principal
        .session_id()
        .ok_or(DomainError::Forbidden("an API key cannot change a password"))?;
    let identity = app.identity();
    let user =
        super::login::check_password_of(app, ctx, principal, current, "current_password").await?;
    if let Err(message) = password::check_policy(new.expose(), &[&user.email, &user.display_name]) {
        return Err(DomainError::invalid("new_password", message));
    }
    let hash = identity.hasher.hash(new).await.map_err(hash_error)?;
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    db::set_password_hash(&mut tx, user.id, &hash, now).await?;
    let revoked = if options.sign_out_other_sessions {
        db::revoke_user_sessions(&mut tx, user.id, Some(sid), "password_change", now).await?
    } else {
        vec![]
    };
    let keys_revoked = match (options.revoke_api_keys, user.tenant_id) {
        (true, Some(_)) => db::revoke_user_api_keys_system(&mut tx, user.id, now).await?,
        _ => 0,
    };
    audit::record_platform(
        &mut tx,
        user.tenant_id,
        ctx,
        Event::new(Action::AuthPasswordChange)
            .by_user(user.id)
            .detail("sessions_revoked", revoked.len())
            .detail("api_keys_revoked", keys_revoked),
    )
    .await?;
    tx.commit().await?;
    identity.sessions.revoked(&revoked).await;
    if keys_revoked > 0 {
        identity.api_keys.changed().await;
    }
    super::mail::security_notice(app, user.id, super::mail::SecurityNotice::PasswordChanged);
    Ok(())
}

/// `bulwark create-superadmin`: a platform account outside every tenant.
pub async fn create_superadmin(
    app: &AppState,
    email: &str,
    display_name: &str,
    password: &Secret<String>,
) -> DomainResult<UserId> {
    let email = normalize_email(email);
    check_new_account(&email, display_name, password, &[])?;
    let hash = app.identity().hasher.hash(password).await.map_err(hash_error)?;
    let id = UserId::new();
    let mut tx = app.store().system_tx().await?;
    insert_account(
        &mut tx,
        &NewUser {
            id,
            tenant_id: None,
            email: &email,
            display_name,
            password_hash: &hash,
            role: None,
            is_superadmin: true,
            now: Timestamp::now(),
        },
    )
    .await?;
    audit::record_platform(
        &mut tx,
        None,
        &RequestContext::system(),
        Event::new(Action::PlatformSuperadminCreate).by_system("cli").target("user", id),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// One account of `bulwark import-users`: an existing hash (bcrypt or Argon2) from another
/// system, re-hashed with Argon2id on the user's next successful login.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedUser {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

pub async fn import_users(
    app: &AppState,
    tenant: TenantId,
    users: Vec<ImportedUser>,
) -> DomainResult<usize> {
    let now = Timestamp::now();
    let mut tx: SystemTx = app.store().system_tx().await?;
    for (line, user) in users.iter().enumerate() {
        let email = normalize_email(&user.email);
        if check_email(&email).is_err() || !super::password::importable(&user.password_hash) {
            return Err(DomainError::invalid(
                &format!("line {}", line + 1),
                "needs a valid email and a bcrypt (cost at most 14) or argon2id hash \
                 (at most 256 MiB, 10 passes, 16 lanes)",
            ));
        }
        insert_account(
            &mut tx,
            &NewUser {
                id: UserId::new(),
                tenant_id: Some(tenant),
                email: &email,
                display_name: user.display_name.trim(),
                password_hash: &user.password_hash,
                role: Some(user.role.as_str()),
                is_superadmin: false,
                now,
            },
        )
        .await?;
    }
    audit::record_platform(
        &mut tx,
        Some(tenant),
        &RequestContext::system(),
        Event::new(Action::UserImport).by_system("cli").detail("count", users.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(users.len())
}
