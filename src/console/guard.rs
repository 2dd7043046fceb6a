//! The console's gate, in front of every page, in this order:
//!
//! 1. A state-changing request (anything but GET and HEAD) must come from this site:
//!    `Sec-Fetch-Site: same-origin`, or, from a browser that does not send it, an `Origin`
//!    equal to `BULWARK_PUBLIC_URL`'s. `Origin: null` is cross-site. Refused with 403 before
//!    the cookie is looked at, so a cookie-less cross-site post is a 403 too, not a
//!    redirect to the sign-in page.
//! 2. The cookie names a console session (`identity::cookie`) or nobody.
//! 3. A state-changing request of a signed-in page carries the session's CSRF token, in the
//!    form field `csrf_token` or the header `X-CSRF-Token` (a multipart upload, which
//!    streams, in the query string), compared in constant time.
//! 4. The route's policy, by the API's own gate (`http::gate::authorize`): rate limits, the
//!    permission, the MFA enrolment policy, step-up.
//!
//! Whatever the handler answers, a problem becomes a page (`Chrome::problem`).

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::page::Chrome;
use crate::app::AppState;
use crate::http::gate::{Credentials, authorize};
use crate::http::problem::Problem;
use crate::http::request_id::RouteTemplate;
use crate::http::{Access, RoutePolicy};
use crate::identity::cookie::{self, CookieSession};

pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest form the console reads (it has no uploads).
pub const FORM_LIMIT: usize = 64 * 1024;

pub async fn guard(
    State((app, policy)): State<(AppState, Arc<RoutePolicy>)>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = admit_and_run(&app, &policy, request, next).await;
    response.extensions_mut().insert(RouteTemplate(policy.path.clone()));
    response
}

async fn admit_and_run(
    app: &AppState,
    policy: &RoutePolicy,
    request: Request,
    next: Next,
) -> Response {
    let mut chrome = Chrome { path: request.uri().path().to_owned(), ..Chrome::default() };
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if writes && !same_origin(app, request.headers()) {
        metrics::counter!("console_cross_site_refusals_total").increment(1);
        return chrome.problem(forbidden("This request did not come from this site."));
    }
    let session = match cookie_value(app, request.headers()) {
        Some(value) => cookie::authenticate(app, value).await.ok(),
        None => None,
    };
    let (mut request, csrf_ok) = match (&session, writes) {
        (Some(session), true) => check_csrf(session, request).await,
        _ => (request, true),
    };
    if !csrf_ok && policy.access != Access::Public {
        metrics::counter!("console_csrf_refusals_total").increment(1);
        return chrome
            .problem(forbidden("The form's CSRF token is missing or stale; reload the page."));
    }
    if let Some(CookieSession { principal, csrf }) = session {
        chrome.principal = Some(principal);
        chrome.csrf = csrf;
    }
    let credentials = Credentials::Console(chrome.principal.clone());
    if let Err(refusal) = authorize(app, policy, &mut request, credentials).await {
        return as_page(&chrome, refusal);
    }
    request.extensions_mut().insert(chrome.clone());
    let response = next.run(request).await;
    as_page(&chrome, response)
}

fn forbidden(detail: &'static str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "cross_site_request", "Forbidden", detail)
}

/// A response that carries a problem, rendered as a page; any other passes untouched.
fn as_page(chrome: &Chrome, mut response: Response) -> Response {
    match response.extensions_mut().remove::<Problem>() {
        Some(problem) => chrome.problem(problem),
        None => response,
    }
}

fn same_origin(app: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let public = app.config().public_url.origin().ascii_serialization();
    origin == public
}

/// The cookie's name: `__Host-` needs `Secure`, so a development host on plain HTTP
/// (`BULWARK_COOKIE_SECURE=off`) uses the bare name.
pub fn cookie_name(app: &AppState) -> &'static str {
    if app.config().http.cookie_secure { "__Host-bulwark_session" } else { "bulwark_session" }
}

fn cookie_value<'a>(app: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    let name = cookie_name(app);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request carries the session's CSRF token; the body of a form is read to
/// find it and handed on whole.
async fn check_csrf(session: &CookieSession, request: Request) -> (Request, bool) {
    if let Some(token) = request.headers().get(CSRF_HEADER) {
        let ok = token.to_str().is_ok_and(|t| cookie::csrf_matches(session, t));
        return (request, ok);
    }
    let content_type = request.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes());
    if content_type.is_some_and(|v| v.starts_with(b"multipart/form-data")) {
        // An upload streams: its token is in the query string, not in the body.
        let ok = form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .find(|(key, _)| key == CSRF_FIELD)
            .is_some_and(|(_, value)| cookie::csrf_matches(session, &value));
        return (request, ok);
    }
    if !content_type.is_some_and(|v| v.starts_with(b"application/x-www-form-urlencoded")) {
        return (request, false);
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return (Request::from_parts(parts, Body::empty()), false);
    };
    let ok = form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .is_some_and(|(_, value)| cookie::csrf_matches(session, &value));
    (Request::from_parts(parts, Body::from(bytes)), ok)
}
