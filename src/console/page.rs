//! Rendering a page: the templates (minijinja, auto-escaping every `.html` template), a fresh
//! CSP nonce per response, and errors shown as pages.
//!
//! Every HTML response gets its own 128-bit nonce, carried by the one script tag of the
//! layout; the policy allows no inline handler, `style=` attribute or `javascript:` URL
//! (`templates_have_no_inline_code` reads the templates), so it needs no `unsafe-inline`.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::assets;
use crate::http::problem::Problem;
use crate::identity::Principal;
use crate::tenancy::Permission;

/// Where browsers send CSP violation reports (`console::report`).
pub const REPORT_PATH: &str = "/csp-report";

/// The templates, compiled once. Names ending in `.html` auto-escape (minijinja's default).
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_filter("money", money);
    for (name, source) in SOURCES {
        // The templates are part of the binary; `every_template_compiles` proves each one.
        if let Err(err) = env.add_template(name, source) {
            tracing::error!(template = name, %err, "a console template does not compile");
        }
    }
    env
});

/// An amount in minor units as `1,250.00` (two decimals: the API's currencies are ISO 4217
/// codes, and those without cents are rare enough for a board to show `.00`).
fn money(minor: i64) -> String {
    let major = (minor / 100).unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, digit) in major.chars().enumerate() {
        if i > 0 && (major.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{grouped}.{:02}", (minor % 100).unsigned_abs())
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

const SOURCES: &[(&str, &str)] = templates!(
    "layout.html",
    "error.html",
    "login.html",
    "login_mfa.html",
    "step_up.html",
    "dashboard.html",
    "records.html",
    "record.html",
    "record_form.html",
    "deals.html",
    "sessions.html",
    "security.html",
    "totp.html",
    "backup_codes.html",
    "shown_once.html",
    "audit.html",
    "members.html",
    "api_keys.html",
    "tenant_security.html",
    "forward.html",
    "integrations.html",
    "email_domains.html",
    "email_domain.html",
    "email_messages.html",
    "email_suppressions.html",
    "signup.html",
    "forgot.html",
    "reset.html",
    "verify.html",
    "accept.html",
);

/// What every page knows about the request: who is signed in and the CSRF token their forms
/// carry. Built by the guard (`console::guard`) and read by handlers as an extractor.
#[derive(Clone, Default)]
pub struct Chrome {
    pub principal: Option<Principal>,
    pub csrf: String,
    pub path: String,
}

#[derive(Serialize)]
struct NavItem {
    name: &'static str,
    href: &'static str,
    current: bool,
}

/// The navigation: the pages this principal may open.
const NAV: &[(&str, &str, Option<Permission>)] = &[
    ("Dashboard", "/", None),
    ("Contacts", "/contacts", Some(Permission::ContactsRead)),
    ("Companies", "/companies", Some(Permission::CompaniesRead)),
    ("Leads", "/leads", Some(Permission::LeadsRead)),
    ("Deals", "/deals", Some(Permission::DealsRead)),
    ("Tasks", "/tasks", Some(Permission::TasksRead)),
    ("Messages", "/email/messages", Some(Permission::EmailSend)),
    ("Email domains", "/email/domains", Some(Permission::EmailManage)),
    ("Suppressions", "/email/suppressions", Some(Permission::EmailManage)),
    ("Integrations", "/integrations", None),
    ("Audit log", "/admin/audit", Some(Permission::AuditRead)),
    ("Members", "/admin/members", Some(Permission::UsersRead)),
    ("API keys", "/admin/api-keys", Some(Permission::ApiKeysManage)),
    ("Tenant security", "/admin/security", Some(Permission::TenantManage)),
    ("My security", "/account/security", None),
    ("Sessions", "/account/sessions", None),
];

impl Chrome {
    fn nav(&self) -> Vec<NavItem> {
        let Some(principal) = &self.principal else { return vec![] };
        NAV.iter()
            .filter(|(_, _, permission)| permission.is_none_or(|p| principal.may(p)))
            .map(|(name, href, _)| NavItem {
                name,
                href,
                current: if *href == "/" { self.path == "/" } else { self.path.starts_with(href) },
            })
            .collect()
    }

    /// A page: `template` with `values`, inside the layout, as a 200.
    pub fn render(&self, template: &str, title: &str, values: Value) -> Response {
        self.render_status(StatusCode::OK, template, title, values)
    }

    pub fn render_status(
        &self,
        status: StatusCode,
        template: &str,
        title: &str,
        values: Value,
    ) -> Response {
        let nonce = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>());
        let me = self.principal.as_ref().map(|p| {
            context! { email => p.profile().email.clone(), name => p.profile().display_name.clone() }
        });
        let base = context! {
            title => title,
            nonce => nonce.clone(),
            csrf => self.csrf.clone(),
            me => me,
            nav => value(self.nav()),
            // Our own paths, safe as they are (the escaper would turn `/` into `&#x2f;`).
            assets => context! {
                css => Value::from_safe_string(assets::CSS.href().to_owned()),
                js => Value::from_safe_string(assets::JS.href().to_owned()),
            },
        };
        // The page first, then the layout around it: no template inheritance, so templates
        // (and email templates, which share the minijinja build) cannot load one another.
        let values = context! { ..base, ..values };
        let rendered =
            TEMPLATES.get_template(template).and_then(|t| t.render(&values)).and_then(|body| {
                let content = Value::from_safe_string(body);
                TEMPLATES.get_template("layout.html")?.render(context! { content, ..values })
            });
        let body = match rendered {
            Ok(body) => body,
            Err(err) => {
                return Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
                    .with_cause(format!("console template {template}: {err:#}"))
                    .into_response();
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        if let Ok(csp) = HeaderValue::from_str(&policy(&nonce)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// A refusal or failure as a page (or, for "sign in first" and "step up first", the page
    /// that lets the user do so). The problem stays on the response for the edge's log line.
    pub fn problem(&self, problem: Problem) -> Response {
        match problem.code {
            "unauthenticated" if self.principal.is_none() => {
                return see_other(&format!("/login?next={}", next_param(&self.path)));
            }
            "step_up_required" => {
                return see_other(&format!("/step-up?next={}", next_param(&self.path)));
            }
            _ => {}
        }
        let title = problem.title;
        let values =
            context! { status => problem.status.as_u16(), detail => problem.detail.to_string() };
        let mut response = self.render_status(problem.status, "error.html", title, values);
        if let Some(seconds) = problem.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(problem);
        response
    }
}

/// A serializable value for a template.
pub fn value(x: impl Serialize) -> Value {
    Value::from(minijinja::value::Serde(x))
}

/// The console's Content-Security-Policy for one response.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'; \
         style-src 'self' 'nonce-{nonce}'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'; connect-src 'self'; img-src 'self' data:; \
         report-uri {REPORT_PATH}"
    )
}

/// 303 to a path of this site.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Where to go after signing in: only a path of this site (`/…`, never `//host`).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path
        }
        _ => "/",
    }
}

fn next_param(path: &str) -> String {
    form_urlencoded::byte_serialize(safe_next(Some(path)).as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in SOURCES {
            TEMPLATES.get_template(name).unwrap_or_else(|err| panic!("{name}: {err:#}"));
        }
    }

    /// What a nonce-based policy cannot allow without `unsafe-inline`: inline handlers,
    /// `style=` attributes, `javascript:` URLs and inline `<style>`/`<script>` without a nonce.
    #[test]
    fn templates_have_no_inline_code() {
        let handler = regex_free_find_handler;
        for (name, source) in SOURCES {
            let lower = source.to_ascii_lowercase();
            assert!(handler(&lower).is_none(), "{name}: inline event handler");
            assert!(!lower.contains(" style="), "{name}: style attribute");
            assert!(!lower.contains("javascript:"), "{name}: javascript: URL");
            assert!(!lower.contains("<style"), "{name}: inline style element");
            for (at, _) in lower.match_indices("<script") {
                let tag = &lower[at..lower[at..].find('>').map_or(lower.len(), |end| at + end)];
                assert!(tag.contains("nonce=\"{{ nonce }}\""), "{name}: script without the nonce");
            }
        }
    }

    /// ` on…=` inside a tag.
    fn regex_free_find_handler(text: &str) -> Option<usize> {
        text.match_indices(" on").map(|(at, _)| at).find(|&at| {
            let rest = &text[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/contacts?x=1")), "/contacts?x=1");
        for evil in ["//evil.example", "https://evil.example", "/\\evil", "evil", "/a b"] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn every_response_has_its_own_nonce() {
        let chrome = Chrome::default();
        let csp = |r: &Response| r.headers()[header::CONTENT_SECURITY_POLICY].clone();
        let (a, b) = (
            chrome.render("error.html", "x", context! {}),
            chrome.render("error.html", "x", context! {}),
        );
        assert_ne!(csp(&a), csp(&b));
        let policy = csp(&a).to_str().map(str::to_owned).unwrap_or_default();
        assert!(policy.contains("'strict-dynamic'") && !policy.contains("unsafe-inline"));
    }

    #[test]
    fn money_groups_thousands_and_keeps_cents() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(125_000), "1,250.00");
        assert_eq!(money(123_456_789), "1,234,567.89");
        assert_eq!(money(-100_001), "-1,000.01");
    }
}
