//! The browser console: server-rendered pages on the same binary, a client of the same
//! domain functions as the API (no second implementation of a rule).
//!
//! - `guard`: same-origin check, cookie session, CSRF token, then the API's own gate.
//! - `page`: templates, the per-response CSP nonce, problems as pages.
//! - `assets`: the stylesheet and the script under content-hashed names.
//! - `report`: `POST /csp-report`.
//! - `records` (with `catalog`, `related`): the pages every CRM resource shares — list,
//!   create, detail with its notes and activities, edit.
//! - `auth`, `contacts` (reveal), `deals` (the board), `account`, `dashboard`: the rest.
//!
//! Each page declares its access rule, rate-limit category and step-up like an API
//! endpoint, as a `RoutePolicy` the API's gate enforces.

mod account;
mod admin;
mod assets;
mod auth;
mod catalog;
mod contacts;
mod dashboard;
mod deals;
mod documents;
mod email;
mod guard;
mod integrations;
mod page;
mod records;
mod recovery;
mod related;
mod report;
mod security;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::crm::companies::Companies;
use crate::crm::contacts::Contacts;
use crate::crm::deals::Deals;
use crate::crm::leads::Leads;
use crate::crm::tasks::Tasks;
use crate::http::problem::Problem;
use crate::http::{Access, RoutePolicy};
use crate::ratelimit::RateCategory;
use crate::tenancy::Permission;
pub use page::{Chrome, policy};
use records::Listed;

/// Every console route, each behind the guard with its own policy.
pub fn router(state: AppState) -> Router<AppState> {
    use Access::{Authenticated, Permission as P, Public, Session};
    use Permission::{ContactsReadSensitive, DealsWrite, PipelinesManage};
    use RateCategory::{Auth, Read, Sensitive, Write};
    let mut pages = vec![
        page(Method::GET, "/", Authenticated, Read, get(dashboard::show)),
        page(Method::GET, "/login", Public, Read, get(auth::login_page)).mfa_exempt(),
        page(Method::POST, "/login", Public, Auth, post(auth::login)).mfa_exempt(),
        page(Method::POST, "/login/mfa", Public, Auth, post(auth::login_mfa)).mfa_exempt(),
        page(Method::POST, "/logout", Session, Write, post(auth::logout)).mfa_exempt(),
        page(Method::GET, "/step-up", Session, Read, get(auth::step_up_page)),
        page(Method::POST, "/step-up", Session, Sensitive, post(auth::step_up)),
        page(
            Method::GET,
            "/contacts/{id}/reveal",
            P(ContactsReadSensitive),
            Sensitive,
            get(contacts::reveal),
        )
        .step_up(),
        page(Method::GET, "/deals/new", P(DealsWrite), Read, get(deals::new_form)),
        page(Method::POST, "/deals/{id}/stage", P(DealsWrite), Write, post(deals::move_stage)),
        page(Method::GET, "/pipelines/new", P(PipelinesManage), Read, get(deals::new_pipeline)),
        page(Method::POST, "/pipelines", P(PipelinesManage), Write, post(deals::create_pipeline)),
        page(Method::GET, "/account/sessions", Session, Read, get(account::sessions)).mfa_exempt(),
        page(
            Method::GET,
            "/integrations/{provider}/callback",
            Public,
            Read,
            get(integrations::callback),
        ),
        page(
            Method::POST,
            "/account/sessions/{id}/revoke",
            Session,
            Write,
            post(account::revoke_session),
        )
        .mfa_exempt(),
    ];
    // The forms before a session: their template with nothing filled in.
    for (path, template, title) in [
        ("/signup", "signup.html", "Create an account"),
        ("/forgot-password", "forgot.html", "Reset your password"),
        ("/reset-password", "reset.html", "Choose a new password"),
        ("/verify-email", "verify.html", "Verify your email"),
        ("/invitations/accept", "accept.html", "Join your team"),
    ] {
        pages.push(page(Method::GET, path, Public, Read, get(recovery::blank(template, title))));
    }
    // Pages that stand for one API route each take that route's policy whole.
    let api: Vec<RoutePolicy> = crate::http::endpoints().into_iter().map(|e| e.policy).collect();
    for (method, path, api_method, api_path, handler) in mirrored() {
        let page = mirror(&api, method, path, api_method, api_path, handler);
        // My security stays open while the tenant's policy waits for this user's factor.
        pages.push(if path == "/account/security" { page.mfa_exempt() } else { page });
    }
    // Contacts' detail page is their own (reveal); deals' list is the board.
    pages.extend(records::<Contacts>(Some(get(contacts::show)), None));
    pages.extend(records::<Companies>(None, None));
    pages.extend(records::<Leads>(None, None));
    pages.extend(records::<Deals>(None, Some(get(deals::board))));
    pages.extend(records::<Tasks>(None, None));
    let mut router = Router::new().route("/assets/{name}", get(assets::serve)).route(
        page::REPORT_PATH,
        post(report::receive).layer(axum::extract::DefaultBodyLimit::max(report::REPORT_LIMIT)),
    );
    let upload_limit = usize::try_from(state.config().documents.max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(guard::FORM_LIMIT);
    for Page { policy, handler } in pages {
        let policy = Arc::new(policy);
        // An upload streams its file (its own cap is counted as it arrives); every other
        // page reads a small form.
        let limit = if policy.upload { upload_limit } else { guard::FORM_LIMIT };
        let guarded = handler
            .layer::<_, Infallible>(from_fn_with_state(
                (state.clone(), policy.clone()),
                guard::guard,
            ))
            .layer::<_, Infallible>(axum::extract::DefaultBodyLimit::max(limit));
        router = router.route(&policy.path, guarded);
    }
    router
}

struct Page {
    policy: RoutePolicy,
    handler: MethodRouter<AppState>,
}

type Mirrored = (Method, &'static str, Method, &'static str, MethodRouter<AppState>);

/// The pages that stand for one API route each: (method, path, the API's method and path,
/// handler).
#[rustfmt::skip]
fn mirrored() -> Vec<Mirrored> {
    use Method as M;
    vec![
        (M::GET, "/admin/audit", M::GET, "/api/v1/audit-events", get(admin::audit_log)),
        (M::GET, "/admin/members", M::GET, "/api/v1/users", get(admin::members_page)),
        (M::POST, "/admin/members/{id}/role", M::PATCH, "/api/v1/users/{id}", post(admin::change_role)),
        (M::POST, "/admin/members/{id}/deactivate", M::DELETE, "/api/v1/users/{id}", post(admin::deactivate)),
        (M::POST, "/admin/invitations", M::POST, "/api/v1/invitations", post(admin::invite)),
        (M::POST, "/admin/invitations/{id}/revoke", M::DELETE, "/api/v1/invitations/{id}", post(admin::revoke_invitation)),
        (M::GET, "/admin/api-keys", M::GET, "/api/v1/api-keys", get(admin::api_keys_page)),
        (M::POST, "/admin/api-keys", M::POST, "/api/v1/api-keys", post(admin::create_api_key)),
        (M::POST, "/admin/api-keys/{id}/revoke", M::DELETE, "/api/v1/api-keys/{id}", post(admin::revoke_api_key)),
        (M::GET, "/admin/security", M::GET, "/api/v1/tenant/security", get(admin::tenant_security)),
        (M::POST, "/admin/security", M::PATCH, "/api/v1/tenant/security", post(admin::set_tenant_security)),
        (M::GET, "/account/security", M::GET, "/api/v1/auth/webauthn/credentials", get(security::show)),
        (M::POST, "/account/security/password", M::POST, "/api/v1/auth/step-up", post(security::prove_password)),
        (M::POST, "/account/security/totp/setup", M::POST, "/api/v1/auth/mfa/totp/setup", post(security::totp_setup)),
        (M::POST, "/account/security/totp/confirm", M::POST, "/api/v1/auth/mfa/totp/confirm", post(security::totp_confirm)),
        (M::POST, "/account/security/totp/remove", M::DELETE, "/api/v1/auth/mfa/totp", post(security::totp_remove)),
        (M::POST, "/account/security/backup-codes", M::POST, "/api/v1/auth/mfa/backup-codes", post(security::backup_codes)),
        (M::POST, "/account/security/passkeys/{id}/remove", M::DELETE, "/api/v1/auth/webauthn/credentials/{id}", post(security::passkey_remove)),
        (M::POST, "/account/security/passkeys/start", M::POST, "/api/v1/auth/webauthn/register/start", post(security::passkey_register_start)),
        (M::POST, "/account/security/passkeys/finish", M::POST, "/api/v1/auth/webauthn/register/finish", post(security::passkey_register_finish)),
        (M::POST, "/login/passkey/start", M::POST, "/api/v1/auth/webauthn/login/start", post(security::passkey_login_start)),
        (M::POST, "/login/passkey/finish", M::POST, "/api/v1/auth/webauthn/login/finish", post(security::passkey_login_finish)),
        (M::GET, "/email/domains", M::GET, "/api/v1/email/domains", get(email::domains_page)),
        (M::POST, "/email/domains", M::POST, "/api/v1/email/domains", post(email::add_domain)),
        (M::GET, "/email/domains/{id}", M::GET, "/api/v1/email/domains/{id}", get(email::domain_page)),
        (M::POST, "/email/domains/{id}/verify", M::POST, "/api/v1/email/domains/{id}/verify", post(email::verify_domain)),
        (M::POST, "/email/domains/{id}/delete", M::DELETE, "/api/v1/email/domains/{id}", post(email::delete_domain)),
        (M::GET, "/email/messages", M::GET, "/api/v1/emails", get(email::messages_page)),
        (M::GET, "/email/messages/new", M::GET, "/api/v1/emails", get(email::compose)),
        (M::POST, "/email/messages", M::POST, "/api/v1/emails", post(email::send)),
        (M::GET, "/email/suppressions", M::GET, "/api/v1/email/suppressions", get(email::suppressions_page)),
        (M::POST, "/email/suppressions", M::POST, "/api/v1/email/suppressions", post(email::suppress)),
        (M::POST, "/email/suppressions/{id}/delete", M::DELETE, "/api/v1/email/suppressions/{id}", post(email::unsuppress)),
        (M::POST, "/documents", M::POST, "/api/v1/documents", post(documents::upload)),
        (M::GET, "/documents/{id}/content", M::GET, "/api/v1/documents/{id}/content", get(crate::documents::routes::content)),
        (M::POST, "/documents/{id}/delete", M::DELETE, "/api/v1/documents/{id}", post(documents::delete)),
        (M::GET, "/integrations", M::GET, "/api/v1/integrations", get(integrations::page)),
        (M::POST, "/integrations/{provider}/connect", M::POST, "/api/v1/integrations/{provider}/connect", post(integrations::connect)),
        (M::GET, "/integrations/{provider}/finish", M::GET, "/api/v1/integrations/{provider}/callback", get(integrations::finish)),
        (M::POST, "/integrations/{provider}/disconnect", M::DELETE, "/api/v1/integrations/{provider}", post(integrations::disconnect)),
        (M::POST, "/signup", M::POST, "/api/v1/auth/signup", post(recovery::signup)),
        (M::POST, "/forgot-password", M::POST, "/api/v1/auth/password-reset", post(recovery::forgot)),
        (M::POST, "/reset-password", M::POST, "/api/v1/auth/password-reset/confirm", post(recovery::reset)),
        (M::POST, "/verify-email", M::POST, "/api/v1/auth/verify-email", post(recovery::verify)),
        (M::POST, "/invitations/accept", M::POST, "/api/v1/invitations/accept", post(recovery::accept)),
    ]
}

/// A page that stands for the API route `api_method api_path`: the same access rule, rate
/// limit category, step-up and MFA exemption, so a rule is stated once for both doors.
fn mirror(
    api: &[RoutePolicy],
    method: Method,
    path: &str,
    api_method: Method,
    api_path: &str,
    handler: MethodRouter<AppState>,
) -> Page {
    let found = api.iter().find(|p| p.method == api_method && &*p.path == api_path);
    // A console page naming an API route that does not exist is a wiring mistake: every
    // test that starts the application fails on it at once, so it is never a request path.
    let Some(api_policy) = found else { panic!("no API route {api_method} {api_path}") };
    Page {
        policy: RoutePolicy {
            method,
            path: path.into(),
            body_limit: Some(guard::FORM_LIMIT),
            idempotent: false,
            secret_filter: false,
            ..api_policy.clone()
        },
        handler,
    }
}

/// The shared record pages of `R` (`records`), and the note and activity forms of its detail
/// page; `show` and `list` replace the shared detail and list pages.
fn records<R: Listed>(
    show: Option<MethodRouter<AppState>>,
    list: Option<MethodRouter<AppState>>,
) -> Vec<Page>
where
    R::Id: std::str::FromStr,
    R::Filter: serde::de::DeserializeOwned,
{
    use Access::Permission as P;
    use RateCategory::{Read, Write};
    let (path, read, write) = (R::PATH, R::READ, R::WRITE);
    let one = format!("{path}/{{id}}");
    let mut pages = vec![
        page(Method::GET, path, P(read), Read, list.unwrap_or_else(|| get(records::list::<R>))),
        page(Method::POST, path, P(write), Write, post(records::create::<R>)),
        page(Method::GET, &one, P(read), Read, show.unwrap_or_else(|| get(records::show::<R>))),
        page(Method::POST, &one, P(write), Write, post(records::update::<R>)),
        page(Method::GET, &format!("{one}/edit"), P(write), Read, get(records::edit_form::<R>)),
    ];
    if path != "/deals" {
        pages.push(page(
            Method::GET,
            &format!("{path}/new"),
            P(write),
            Read,
            get(records::new_form::<R>),
        ));
    }
    if R::LINK.is_some() {
        pages.push(page(
            Method::POST,
            &format!("{one}/notes"),
            P(Permission::NotesWrite),
            Write,
            post(related::add_note::<R>),
        ));
        pages.push(page(
            Method::POST,
            &format!("{one}/activities"),
            P(Permission::ActivitiesWrite),
            Write,
            post(related::add_activity::<R>),
        ));
    }
    pages
}

fn page(
    method: Method,
    path: &str,
    access: Access,
    category: RateCategory,
    handler: MethodRouter<AppState>,
) -> Page {
    let mut policy = RoutePolicy::new(method, path, access, category);
    policy.body_limit = Some(guard::FORM_LIMIT);
    Page { policy, handler }
}

impl Page {
    fn step_up(mut self) -> Self {
        self.policy.step_up = true;
        self
    }

    fn mfa_exempt(mut self) -> Self {
        self.policy.mfa_exempt = true;
        self
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Chrome {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts.extensions.get::<Chrome>().cloned().ok_or_else(|| {
            crate::error::DomainError::Internal("a console page without its guard".into()).into()
        })
    }
}

/// A submitted form: its fields by the API's names, the CSRF token left out (the guard has
/// checked it).
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Every value of a field that repeats (checkboxes).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        let bytes = axum::body::to_bytes(request.into_body(), guard::FORM_LIMIT)
            .await
            .map_err(|_| Problem::for_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE))?;
        Ok(Form(
            form_urlencoded::parse(&bytes)
                .filter(|(key, _)| key != guard::CSRF_FIELD)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// `Set-Cookie` for a console session (`None` clears it).
fn with_cookie(app: &AppState, mut response: Response, value: Option<&str>) -> Response {
    let name = guard::cookie_name(app);
    let secure = if app.config().http.cookie_secure { "; Secure" } else { "" };
    let cookie = match value {
        Some(value) => format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A problem a form shows next to its fields: `(field, message)` pairs, and the detail.
fn field_errors(problem: &Problem) -> Value {
    let mut fields = Map::new();
    for error in problem.errors.iter().flatten() {
        fields.insert(error.field.clone(), Value::String(error.message.clone()));
    }
    serde_json::json!({ "detail": problem.detail, "fields": fields })
}

/// 303 after a successful form.
fn done(to: &str) -> Response {
    axum::response::Redirect::to(to).into_response()
}
