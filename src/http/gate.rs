//! The per-endpoint gate: the one place that turns a route's declared policy into checks.
//! It runs on every endpoint, before any extractor of the handler: authentication (401),
//! permission (403), rate limits (429, with the `X-RateLimit-*` headers on every response of
//! a limited route), and on success puts the `Principal` and `TenantScope` where the
//! handler's extractors find them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::endpoint::{Access, RoutePolicy};
use super::problem::Problem;
use super::request_id::RouteTemplate;
use crate::app::AppState;
use crate::containment::grants;
use crate::error::DomainError;
use crate::identity::{self, Credential, Principal};
use crate::ids::TenantId;
use crate::ratelimit::{ClientAddress, ClientNet};
use crate::ratelimit::{ClientKey, Headline, RateCategory, Verdict};
use crate::tenancy::TenantScope;

pub(super) async fn gate(
    State((app, policy)): State<(AppState, Arc<RoutePolicy>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut response = match authorize(&app, &policy, &mut request, Credentials::Header).await {
        Ok(headline) => {
            let mut response = if policy.idempotent
                && request.headers().contains_key(crate::idempotency::HEADER)
            {
                let scope = idempotency_scope(&request);
                // Boxed: the replay machinery is large and most requests never enter it.
                Box::pin(super::idempotency::run(&app, &policy, scope, request, next)).await
            } else {
                next.run(request).await
            };
            if let Some(headline) = headline {
                rate_limit_headers(response.headers_mut(), headline);
            }
            response
        }
        Err(problem) => problem.into_response(),
    };
    response.extensions_mut().insert(RouteTemplate(policy.path.clone()));
    response
}

/// Where a request's principal comes from.
pub(crate) enum Credentials {
    /// The `Authorization` header (the API).
    Header,
    /// The console's cookie, already checked (`identity::cookie`); `None` when there is none.
    Console(Option<Principal>),
}

/// The route's policy applied to one request: on success the `Principal` and `TenantScope`
/// are in its extensions; a refusal is a problem response. The console's guard calls it too,
/// so a page and its API route are admitted by the same code.
pub(crate) async fn authorize(
    app: &AppState,
    policy: &RoutePolicy,
    request: &mut Request,
    credentials: Credentials,
) -> Result<Option<Headline>, Response> {
    // A switched-off feature's routes are closed to everyone, before any of its code runs.
    if let Some(feature) = policy.feature {
        app.containment().switches.require(feature).map_err(refusal(None))?;
    }
    let net = request.extensions().get::<ClientAddress>().map_or(ClientNet::UNKNOWN, |a| a.net);
    if policy.access == Access::Public {
        if policy.category == RateCategory::Refresh {
            // Counted by the refresh itself, once the token has named its session.
            return Ok(None);
        }
        return limit(app, policy, &ClientKey::anonymous(net)).await;
    }
    let authenticated = match credentials {
        Credentials::Header => identity::authenticate(app, authorization(request.headers())).await,
        Credentials::Console(Some(principal)) => Ok(principal),
        Credentials::Console(None) => Err(DomainError::Unauthenticated("sign in first")),
    };
    let principal = match authenticated {
        Ok(principal) => principal,
        Err(err) => {
            // Failed credentials are limited by address, so guessing keys is throttled too.
            limit(app, policy, &ClientKey::anonymous(net)).await?;
            return Err(Problem::from(err).into_response());
        }
    };
    let headline = limit(app, policy, &client_key(net, &principal)).await?;
    let break_glass = match break_glass_tenant(policy, &principal, request.headers()) {
        Some(tenant) => {
            let writes = !matches!(policy.method, Method::GET | Method::HEAD);
            let scope = match tenant {
                // Boxed: the grant lookup's future is kilobytes, and every request's gate
                // would otherwise carry (and copy) it.
                Some(tenant) => Box::pin(grants::scope_for(app, &principal, tenant, writes)).await,
                None => Err(DomainError::NotFound("resource")),
            };
            Some(scope.map_err(refusal(headline))?)
        }
        None => None,
    };
    let allowed = match policy.access {
        Access::Public | Access::Authenticated => true,
        Access::Session => principal.session_id().is_some(),
        Access::Permission(permission) => match &break_glass {
            Some(scope) => scope.may(permission) && grants::grantable(permission),
            None => principal.may(permission),
        },
        Access::SuperAdmin => principal.is_superadmin(),
    };
    if !allowed {
        return Err(refusal(headline)(DomainError::Forbidden(
            "you lack the permission this needs",
        )));
    }
    // Second factors: enrolment first when the policy asks for it, then step-up where the
    // route declares it.
    let mfa = async {
        if !policy.mfa_exempt && crate::identity::mfa::enrolment_required(app, &principal).await? {
            return Err(DomainError::MfaEnrollmentRequired);
        }
        if policy.step_up {
            crate::identity::mfa::require_step_up(app, &principal).await?;
        }
        Ok(())
    };
    mfa.await.map_err(refusal(headline))?;
    if let Some(scope) = break_glass.or_else(|| TenantScope::from_principal(&principal)) {
        request.extensions_mut().insert(scope);
    }
    request.extensions_mut().insert(principal);
    Ok(headline)
}

/// A refusal as a response, with the rate-limit headers when the route is limited.
fn refusal(headline: Option<Headline>) -> impl FnOnce(DomainError) -> Response {
    move |err| {
        let mut response = Problem::from(err).into_response();
        if let Some(headline) = headline {
            rate_limit_headers(response.headers_mut(), headline);
        }
        response
    }
}

/// The tenant a super-admin names with `X-Bulwark-Tenant` on a tenant route: `None` when the
/// request is no break-glass request; `Some(None)` when the header does not name a tenant.
fn break_glass_tenant(
    policy: &RoutePolicy,
    principal: &Principal,
    headers: &HeaderMap,
) -> Option<Option<TenantId>> {
    if !principal.is_superadmin() || !matches!(policy.access, Access::Permission(_)) {
        return None;
    }
    let value = headers.get(grants::HEADER)?;
    Some(value.to_str().ok().and_then(|text| text.trim().parse().ok()))
}

/// Idempotency keys belong to the caller: the user, or the API key, within its tenant.
/// Per tenant alone would let a colleague who guesses a key replay a response meant for
/// someone else (a new API key or invitation token). Anonymous routes (signup) key them per
/// client address.
fn idempotency_scope(request: &Request) -> String {
    let tenant = request.extensions().get::<TenantScope>().map(|scope| scope.tenant_id());
    match (request.extensions().get::<Principal>(), request.extensions().get::<ClientAddress>()) {
        (Some(principal), _) => {
            let tenant = tenant.unwrap_or(crate::ids::TenantId::PLATFORM);
            match principal.credential() {
                Credential::ApiKey { id, .. } => format!("tenant:{tenant}:key:{id}"),
                Credential::Session(_) => format!("tenant:{tenant}:user:{}", principal.user_id()),
            }
        }
        (None, Some(address)) => format!("ip:{}", address.net),
        (None, None) => "anonymous".to_owned(),
    }
}

fn client_key(net: ClientNet, principal: &Principal) -> ClientKey {
    let api_key = match principal.credential() {
        Credential::ApiKey { id, .. } => Some(id.to_string()),
        Credential::Session(_) => None,
    };
    ClientKey {
        net,
        // An API key is its own client: a user's keys and sessions do not share a budget.
        user: Some(api_key.clone().unwrap_or_else(|| principal.user_id().to_string())),
        api_key,
        tenant: principal.tenant_id().map(|t| t.to_string()),
        session: None,
    }
}

/// How long a rate-limit refusal is held before it is sent (see `limit`).
const REFUSAL_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// At most this many refusals wait out the delay at once; beyond it they are answered at
/// once. A held refusal keeps its request alive, so a flood (HTTP/2 multiplexes many streams
/// on one connection) must not turn the tarpit into a memory sink.
const TARPIT_SLOTS: usize = 1024;

static TARPIT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(TARPIT_SLOTS);

async fn limit(
    app: &AppState,
    policy: &RoutePolicy,
    client: &ClientKey,
) -> Result<Option<Headline>, Response> {
    match app.limiter().check(policy.category, policy.family, client).await {
        Verdict::Unlimited => Ok(None),
        Verdict::Allowed(headline) => Ok(Some(headline)),
        Verdict::Refused { headline, retry_after_secs, rule } => {
            // A tarpit: the refusal is answered after `REFUSAL_DELAY`, so a client far over its
            // limit sends at most two requests a second per connection and a flood of
            // refusals costs next to nothing (a well-behaved client waits anyway).
            if let Ok(_slot) = TARPIT.try_acquire() {
                tokio::time::sleep(REFUSAL_DELAY).await;
            }
            let mut response = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                "This client sent too many requests; retry after the Retry-After delay.",
            )
            .with_retry_after(retry_after_secs)
            .with_cause(format!("rule {rule}"))
            .into_response();
            rate_limit_headers(response.headers_mut(), headline);
            Err(response)
        }
        Verdict::Unavailable { rule } => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "rate_limiter_unavailable",
            "Service unavailable",
            "The shared rate limiter is unreachable and this operation fails closed; retry shortly.",
        )
        .with_retry_after(1)
        .with_cause(format!("rule {rule}: Redis unreachable"))
        .into_response()),
    }
}

fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(axum::http::header::AUTHORIZATION).map(HeaderValue::as_bytes)
}

fn rate_limit_headers(headers: &mut HeaderMap, headline: Headline) {
    // Names parsed once: a name given as text is parsed on every insert.
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    headers.insert(LIMIT, HeaderValue::from(headline.limit));
    headers.insert(REMAINING, HeaderValue::from(headline.remaining));
    headers.insert(RESET, HeaderValue::from(headline.reset_secs));
}
