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
mod guard;
mod page;
mod records;
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
use crate::ratelimit::{RateCategory, RouteFamily};
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
            Method::POST,
            "/account/sessions/{id}/revoke",
            Session,
            Write,
            post(account::revoke_session),
        )
        .mfa_exempt(),
    ];
    // Pages that stand for one API route each take that route's policy whole.
    let api: Vec<RoutePolicy> = crate::http::endpoints().into_iter().map(|e| e.policy).collect();
    let mirror = |method: Method, path: &str, (api_method, api_path): (Method, &str), handler| {
        mirror(&api, method, path, api_method, api_path, handler)
    };
    let (get_, post_, patch_, delete_) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);
    pages.extend([
        mirror(
            get_.clone(),
            "/admin/audit",
            (get_.clone(), "/api/v1/audit-events"),
            get(admin::audit_log),
        ),
        mirror(
            get_.clone(),
            "/admin/members",
            (get_.clone(), "/api/v1/users"),
            get(admin::members_page),
        ),
        mirror(
            post_.clone(),
            "/admin/members/{id}/role",
            (patch_.clone(), "/api/v1/users/{id}"),
            post(admin::change_role),
        ),
        mirror(
            post_.clone(),
            "/admin/members/{id}/deactivate",
            (delete_.clone(), "/api/v1/users/{id}"),
            post(admin::deactivate),
        ),
        mirror(
            post_.clone(),
            "/admin/invitations",
            (post_.clone(), "/api/v1/invitations"),
            post(admin::invite),
        ),
        mirror(
            post_.clone(),
            "/admin/invitations/{id}/revoke",
            (delete_.clone(), "/api/v1/invitations/{id}"),
            post(admin::revoke_invitation),
        ),
        mirror(
            get_.clone(),
            "/admin/api-keys",
            (get_.clone(), "/api/v1/api-keys"),
            get(admin::api_keys_page),
        ),
        mirror(
            post_.clone(),
            "/admin/api-keys",
            (post_.clone(), "/api/v1/api-keys"),
            post(admin::create_api_key),
        ),
        mirror(
            post_.clone(),
            "/admin/api-keys/{id}/revoke",
            (delete_.clone(), "/api/v1/api-keys/{id}"),
            post(admin::revoke_api_key),
        ),
        mirror(
            get_.clone(),
            "/admin/security",
            (get_.clone(), "/api/v1/tenant/security"),
            get(admin::tenant_security),
        ),
        mirror(
            post_.clone(),
            "/admin/security",
            (patch_.clone(), "/api/v1/tenant/security"),
            post(admin::set_tenant_security),
        ),
        mirror(
            get_.clone(),
            "/account/security",
            (get_.clone(), "/api/v1/auth/webauthn/credentials"),
            get(security::show),
        )
        .mfa_exempt(),
        mirror(
            post_.clone(),
            "/account/security/password",
            (post_.clone(), "/api/v1/auth/step-up"),
            post(security::prove_password),
        ),
        mirror(
            post_.clone(),
            "/account/security/totp/setup",
            (post_.clone(), "/api/v1/auth/mfa/totp/setup"),
            post(security::totp_setup),
        ),
        mirror(
            post_.clone(),
            "/account/security/totp/confirm",
            (post_.clone(), "/api/v1/auth/mfa/totp/confirm"),
            post(security::totp_confirm),
        ),
        mirror(
            post_.clone(),
            "/account/security/totp/remove",
            (delete_.clone(), "/api/v1/auth/mfa/totp"),
            post(security::totp_remove),
        ),
        mirror(
            post_.clone(),
            "/account/security/backup-codes",
            (post_.clone(), "/api/v1/auth/mfa/backup-codes"),
            post(security::backup_codes),
        ),
        mirror(
            post_.clone(),
            "/account/security/passkeys/{id}/remove",
            (delete_.clone(), "/api/v1/auth/webauthn/credentials/{id}"),
            post(security::passkey_remove),
        ),
        mirror(
            post_.clone(),
            "/account/security/passkeys/start",
            (post_.clone(), "/api/v1/auth/webauthn/register/start"),
            post(security::passkey_register_start),
        ),
        mirror(
            post_.clone(),
            "/account/security/passkeys/finish",
            (post_.clone(), "/api/v1/auth/webauthn/register/finish"),
            post(security::passkey_register_finish),
        ),
        mirror(
            post_.clone(),
            "/login/passkey/start",
            (post_.clone(), "/api/v1/auth/webauthn/login/start"),
            post(security::passkey_login_start),
        ),
        mirror(
            post_,
            "/login/passkey/finish",
            (Method::POST, "/api/v1/auth/webauthn/login/finish"),
            post(security::passkey_login_finish),
        ),
    ]);
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
    for Page { policy, handler } in pages {
        let policy = Arc::new(policy);
        let guarded = handler
            .layer::<_, Infallible>(from_fn_with_state(
                (state.clone(), policy.clone()),
                guard::guard,
            ))
            .layer::<_, Infallible>(axum::extract::DefaultBodyLimit::max(guard::FORM_LIMIT));
        router = router.route(&policy.path, guarded);
    }
    router
}

struct Page {
    policy: RoutePolicy,
    handler: MethodRouter<AppState>,
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
            upload: false,
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
    let family = (category == RateCategory::Auth).then_some(RouteFamily::Auth);
    Page {
        policy: RoutePolicy {
            method,
            path: path.into(),
            access,
            category,
            family,
            step_up: false,
            mfa_exempt: false,
            idempotent: false,
            body_limit: Some(guard::FORM_LIMIT),
            upload: false,
            feature: None,
            secret_filter: false,
        },
        handler,
    }
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
