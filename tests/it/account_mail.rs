//! The platform's own mail to users, read from the real SMTP server: verification links at
//! signup, password reset, mailed invitations and security notices.

use serde_json::{Value, json};

use crate::support::mail::received_by;
use crate::support::{TestApp, expect_problem, unique_email};

use crate::support::PASSWORD;
const NEW_PASSWORD: &str = "an entirely new passphrase 2026";

const FROM: (&str, &str) = ("BULWARK_EMAIL_FROM", "Bulwark <no-reply@bulwark.test>");

/// An app that mails: the test relay and a platform sender.
async fn app() -> TestApp {
    crate::support::mail::mailing_app(&[FROM]).await
}

/// The decoded text of a received message (quoted-printable undone).
fn text(data: &str) -> String {
    data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

/// Waits (at most ten seconds) for a message to `to` whose subject contains `subject`.
async fn mail_to(to: &str, subject: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let found = received_by(to)
            .into_iter()
            .map(|m| text(&m.data))
            .find(|d| d.lines().any(|l| l.starts_with("Subject:") && l.contains(subject)));
        if let Some(found) = found {
            return found;
        }
        assert!(started.elapsed().as_secs() < 10, "no \"{subject}\" mail to {to}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The token of a mailed link (`…#token=…`).
fn token_in(mail: &str) -> String {
    let (_, rest) = mail.split_once("#token=").expect("a link with a token");
    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

fn subjects_to(to: &str) -> usize {
    received_by(to).len()
}

#[tokio::test]
async fn signup_mails_a_verification_link_that_proves_the_address_once() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let mail = mail_to(&owner.email, "Confirm your email address").await;
    assert!(mail.contains("From: Bulwark <no-reply@bulwark.test>"), "{mail}");
    let token = token_in(&mail);
    let me: Value = app.get_as(&owner.token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["email_verified"], false);
    // A made-up token proves nothing.
    let made_up =
        app.post_json("/api/v1/auth/verify-email", &json!({"token": "x".repeat(43)})).await;
    expect_problem(made_up, 422).await;
    let verified = app.post_json("/api/v1/auth/verify-email", &json!({"token": token})).await;
    assert_eq!(verified.status(), 204);
    let me: Value = app.get_as(&owner.token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["email_verified"], true);
    // Single use.
    let again = app.post_json("/api/v1/auth/verify-email", &json!({"token": token})).await;
    expect_problem(again, 422).await;
    // No second link once verified.
    let resend = app.post_as(&owner.token, "/api/v1/auth/verify-email/resend", &json!({})).await;
    assert_eq!(resend.status(), 202);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(subjects_to(&owner.email), 1);
    let actions = app.audit_actions(&owner).await;
    assert!(actions.iter().any(|a| a == "auth.email_verify"), "{actions:?}");
}

#[tokio::test]
async fn a_password_reset_is_mailed_single_use_and_ends_every_session() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    mail_to(&owner.email, "Confirm your email address").await;
    // A key made before the reset (by whoever held the account then) ends with it.
    let (_, key) = app.api_key(&owner, &["contacts:read"]).await;
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 200);
    // An address without an account: the same 202, and no mail.
    let nobody = unique_email("nobody");
    let unknown = app.post_json("/api/v1/auth/password-reset", &json!({"email": nobody})).await;
    let known = app.post_json("/api/v1/auth/password-reset", &json!({"email": owner.email})).await;
    assert_eq!((unknown.status(), known.status()), (known.status(), reqwest::StatusCode::ACCEPTED));
    let (unknown, known): (Value, Value) =
        (unknown.json().await.expect("json"), known.json().await.expect("json"));
    assert_eq!(unknown, known, "the answers cannot be told apart");
    let mail = mail_to(&owner.email, "Reset your password").await;
    assert!(received_by(&nobody).is_empty());
    let token = token_in(&mail);
    // A second request within a minute sends no second link.
    app.post_json("/api/v1/auth/password-reset", &json!({"email": owner.email})).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        received_by(&owner.email)
            .iter()
            .filter(|m| text(&m.data).contains("Reset your password"))
            .count(),
        1
    );

    // A weak password is refused and the link still works; a made-up token is refused.
    let confirm = "/api/v1/auth/password-reset/confirm";
    let weak = app.post_json(confirm, &json!({"token": token, "new_password": "short"})).await;
    expect_problem(weak, 422).await;
    let made_up = app
        .post_json(confirm, &json!({"token": "y".repeat(43), "new_password": NEW_PASSWORD}))
        .await;
    expect_problem(made_up, 422).await;
    let reset =
        app.post_json(confirm, &json!({"token": token, "new_password": NEW_PASSWORD})).await;
    assert_eq!(reset.status(), 204);
    // Every session ended; the old password is gone, the new one works; the link is spent.
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 401);
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 401, "the key ended");
    let refreshed =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": owner.refresh})).await;
    assert_eq!(refreshed.status(), 401);
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401);
    let (token_after, _) = app.login_ok(&owner.email, NEW_PASSWORD).await;
    let again =
        app.post_json(confirm, &json!({"token": token, "new_password": NEW_PASSWORD})).await;
    expect_problem(again, 422).await;
    // The reset proved the address, and the user is told.
    let me: Value = app.get_as(&token_after, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["email_verified"], true);
    mail_to(&owner.email, "Your password was reset").await;
    let fresh = crate::support::Account { token: token_after, ..owner.clone() };
    let actions = app.audit_actions(&fresh).await;
    for action in ["auth.password_reset_request", "auth.password_reset"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn invitations_and_security_notices_are_mailed() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    // An address on the tenant's suppression list is invited but not mailed.
    let gone = unique_email("gone");
    let suppression = json!({"email": gone, "reason": "manual"});
    let suppressed = app.post_as(&owner.token, "/api/v1/email/suppressions", &suppression).await;
    assert_eq!(suppressed.status(), 201);
    let invited = app
        .post_as(&owner.token, "/api/v1/invitations", &json!({"email": gone, "role": "agent"}))
        .await;
    assert_eq!(invited.status(), 201, "the invitation itself stands");
    // An invitation is mailed with the same link the inviter is given.
    let invitee = unique_email("agent");
    let invitation = app
        .post_as(&owner.token, "/api/v1/invitations", &json!({"email": invitee, "role": "agent"}))
        .await;
    assert_eq!(invitation.status(), 201);
    let invitation: Value = invitation.json().await.expect("json");
    let mail = mail_to(&invitee, "You are invited").await;
    assert_eq!(token_in(&mail), invitation["token"].as_str().expect("token"));
    // Queued before it and delivered in order: by now the suppressed one would be there too.
    assert!(received_by(&gone).is_empty(), "a suppressed address got an invitation");
    // A new second factor, and a password change: the owner is told each time.
    app.step_up(&owner).await;
    mail_to(&owner.email, "A sign-in factor was added").await;
    let changed = app
        .post_as(
            &owner.token,
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 204, "{:?}", changed.text().await);
    let notice = mail_to(&owner.email, "Your password was changed").await;
    assert!(!notice.contains(NEW_PASSWORD) && !notice.contains(PASSWORD), "no secret mailed");
}

#[tokio::test]
async fn a_reset_proves_the_mailbox_not_the_second_factor_so_a_lock_stays() {
    let lockout = [FROM, ("BULWARK_LOCKOUT_THRESHOLD", "3"), ("BULWARK_LOCKOUT_SECONDS", "4")];
    let app = crate::support::mail::mailing_app(&lockout).await;
    let owner = app.signup("Acme").await;
    for _ in 0..3 {
        assert_eq!(app.login(&owner.email, "not the password at all").await.status(), 401);
    }
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401, "locked");
    mail_to(&owner.email, "Your account was locked").await;
    // Whoever holds the mailbox resets the password: the lock still stands.
    app.post_json("/api/v1/auth/password-reset", &json!({"email": owner.email})).await;
    let token = token_in(&mail_to(&owner.email, "Reset your password").await);
    let confirm = json!({"token": token, "new_password": NEW_PASSWORD});
    let reset = app.post_json("/api/v1/auth/password-reset/confirm", &confirm).await;
    assert_eq!(reset.status(), 204);
    assert_eq!(app.login(&owner.email, NEW_PASSWORD).await.status(), 401, "still locked");
    // It ends by itself, and then the new password works.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    app.login_ok(&owner.email, NEW_PASSWORD).await;
}
