//! The browser console: server-rendered pages on the same binary, a client of the same
//! domain functions as the API (no second implementation of a rule).
//!
//! - `guard`: same-origin check, cookie session, CSRF token, then the API's own gate.
//! - `page`: templates, the per-response CSP nonce, problems as pages.
//! - `assets`: the stylesheet and the script under content-hashed names.
//! - `report`: `POST /csp-report`.
//! - `auth`, `contacts`, `account`, `dashboard`: the pages.
//!
//! Each page declares its access rule, rate-limit category and step-up like an API
//! endpoint, as a `RoutePolicy` the API's gate enforces.

mod account;
mod assets;
mod auth;
mod contacts;
mod dashboard;
mod guard;
mod page;
mod report;

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
use crate::http::problem::Problem;
use crate::http::{Access, RoutePolicy};
use crate::ratelimit::{RateCategory, RouteFamily};
use crate::tenancy::Permission;
pub use page::{Chrome, policy};

/// Every console route, each behind the guard with its own policy.
pub fn router(state: AppState) -> Router<AppState> {
    use Access::{Authenticated, Permission as P, Public, Session};
    use Permission::{ContactsRead, ContactsReadSensitive, ContactsWrite};
    use RateCategory::{Auth, Read, Sensitive, Write};
    let pages = [
        page(Method::GET, "/", Authenticated, Read, get(dashboard::show)),
        page(Method::GET, "/login", Public, Read, get(auth::login_page)).mfa_exempt(),
        page(Method::POST, "/login", Public, Auth, post(auth::login)).mfa_exempt(),
        page(Method::POST, "/login/mfa", Public, Auth, post(auth::login_mfa)).mfa_exempt(),
        page(Method::POST, "/logout", Session, Write, post(auth::logout)).mfa_exempt(),
        page(Method::GET, "/step-up", Session, Read, get(auth::step_up_page)),
        page(Method::POST, "/step-up", Session, Sensitive, post(auth::step_up)),
        page(Method::GET, "/contacts", P(ContactsRead), Read, get(contacts::list)),
        page(Method::GET, "/contacts/new", P(ContactsWrite), Read, get(contacts::new_form)),
        page(Method::POST, "/contacts", P(ContactsWrite), Write, post(contacts::create)),
        page(Method::GET, "/contacts/{id}", P(ContactsRead), Read, get(contacts::show)),
        page(Method::GET, "/contacts/{id}/edit", P(ContactsWrite), Read, get(contacts::edit_form)),
        page(Method::POST, "/contacts/{id}", P(ContactsWrite), Write, post(contacts::update)),
        page(
            Method::GET,
            "/contacts/{id}/reveal",
            P(ContactsReadSensitive),
            Sensitive,
            get(contacts::reveal),
        )
        .step_up(),
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

    /// The fields as a JSON body for the API's types: an empty field is `null` (cleared).
    pub fn to_json(&self, fields: &[&str]) -> Value {
        let mut body = Map::new();
        for name in fields {
            if let Some(value) = self.get(name) {
                let value = value.trim();
                body.insert(
                    (*name).to_owned(),
                    if value.is_empty() { Value::Null } else { Value::String(value.to_owned()) },
                );
            }
        }
        Value::Object(body)
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
