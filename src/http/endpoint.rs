//! The endpoint table. Every route is declared once, with its access rule and rate-limit
//! category next to it; the router, the per-route gate and the OpenAPI document are all built
//! from this table, so a route cannot exist without a policy or be missing from the docs.
//!
//! ```ignore
//! Endpoint::new(routes!(get_contact), Access::Permission(ContactsRead), Read)
//! Endpoint::public(routes!(login), Auth)
//! ```

use axum::http::Method;
use axum::routing::MethodRouter;
use utoipa::openapi::path::{Operation, PathItem, Paths};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::app::AppState;
use crate::containment::features::Feature;
use crate::ratelimit::{RateCategory, RouteFamily};
use crate::tenancy::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone; the route says so explicitly.
    Public,
    /// Any authenticated principal of a tenant, whatever its permissions (`/me`).
    Authenticated,
    /// A user signed in with a session: the account's own sessions, password and factors.
    /// API keys are refused here, whatever their scopes: a key never manages the account
    /// that created it.
    Session,
    /// A principal holding this permission (role ∩ API-key scopes).
    Permission(Permission),
    /// The platform super-admin only.
    SuperAdmin,
}

/// What the gate enforces for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    pub method: Method,
    /// The route template, e.g. `/api/v1/contacts/{id}` (shared: every response carries it to
    /// the metrics and the log line).
    pub path: std::sync::Arc<str>,
    pub access: Access,
    pub category: RateCategory,
    pub family: Option<RouteFamily>,
    /// Requires a recent second-factor step-up.
    pub step_up: bool,
    /// Reachable while the tenant's MFA policy still waits for this user's enrolment.
    pub mfa_exempt: bool,
    /// Accepts `Idempotency-Key`.
    pub idempotent: bool,
    /// Overrides `BULWARK_BODY_LIMIT`.
    pub body_limit: Option<usize>,
    /// A document upload: the body may be as large as `BULWARK_DOCUMENT_MAX_BYTES`.
    pub upload: bool,
    /// The kill switch that closes this route (503 `feature_disabled` while it is off).
    pub feature: Option<Feature>,
    /// Answers pass `secret_filter` (no-store, credential keys dropped).
    pub secret_filter: bool,
}

impl RoutePolicy {
    /// A route's policy with every option off: no step-up, no idempotency keys, the
    /// configured body limit, no kill switch. Auth-category routes share the `auth` family.
    pub fn new(method: Method, path: &str, access: Access, category: RateCategory) -> Self {
        RoutePolicy {
            method,
            path: path.into(),
            access,
            category,
            family: (category == RateCategory::Auth).then_some(RouteFamily::Auth),
            step_up: false,
            mfa_exempt: false,
            idempotent: false,
            body_limit: None,
            upload: false,
            feature: None,
            secret_filter: false,
        }
    }
}

pub struct Endpoint {
    pub policy: RoutePolicy,
    pub(super) router: MethodRouter<AppState>,
    pub(super) paths: Paths,
    pub(super) schemas: Vec<(String, RefOr<Schema>)>,
}

impl Endpoint {
    /// `route` comes from `utoipa_axum::routes!(handler)` for exactly one handler with one
    /// method: the path and method are read from its `#[utoipa::path]`, so the docs and the
    /// router cannot disagree.
    pub fn new(
        route: UtoipaMethodRouter<AppState>,
        access: Access,
        category: RateCategory,
    ) -> Self {
        let (schemas, paths, router) = route;
        let (path, method) = single_operation(&paths);
        let policy = RoutePolicy::new(method, &path, access, category);
        Endpoint { policy, router, paths, schemas }
    }

    pub fn public(route: UtoipaMethodRouter<AppState>, category: RateCategory) -> Self {
        Self::new(route, Access::Public, category)
    }

    pub fn permission(
        route: UtoipaMethodRouter<AppState>,
        permission: Permission,
        category: RateCategory,
    ) -> Self {
        Self::new(route, Access::Permission(permission), category)
    }

    pub fn authenticated(route: UtoipaMethodRouter<AppState>, category: RateCategory) -> Self {
        Self::new(route, Access::Authenticated, category)
    }

    pub fn session(route: UtoipaMethodRouter<AppState>, category: RateCategory) -> Self {
        Self::new(route, Access::Session, category)
    }

    pub fn family(mut self, family: RouteFamily) -> Self {
        self.policy.family = Some(family);
        self
    }

    pub fn step_up(mut self) -> Self {
        self.policy.step_up = true;
        self
    }

    pub fn mfa_exempt(mut self) -> Self {
        self.policy.mfa_exempt = true;
        self
    }

    pub fn idempotent(mut self) -> Self {
        self.policy.idempotent = true;
        self
    }

    pub fn upload(mut self) -> Self {
        self.policy.upload = true;
        self
    }

    /// The route belongs to `feature`: its kill switch closes it.
    pub fn feature(mut self, feature: Feature) -> Self {
        self.policy.feature = Some(feature);
        self
    }

    /// An integration route: its answers pass `http::secret_filter`.
    pub fn secret_filter(mut self) -> Self {
        self.policy.secret_filter = true;
        self
    }

    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.policy.body_limit = Some(bytes);
        self
    }
}

/// The one (path, method) a `routes!` entry documents. More than one is a wiring mistake
/// that the router tests catch at once, so it is a panic at start-up, not a request path.
fn single_operation(paths: &Paths) -> (String, Method) {
    let mut found = vec![];
    for (path, item) in &paths.paths {
        for (method, operation) in operations(item) {
            if operation.is_some() {
                found.push((path.clone(), method));
            }
        }
    }
    assert!(found.len() == 1, "an Endpoint documents exactly one operation, found {found:?}");
    found.remove(0)
}

pub(super) fn operations(item: &PathItem) -> [(Method, &Option<Operation>); 7] {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
        (Method::HEAD, &item.head),
        (Method::OPTIONS, &item.options),
    ]
}

pub(super) fn operation_mut<'a>(
    item: &'a mut PathItem,
    method: &Method,
) -> Option<&'a mut Operation> {
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::HEAD => item.head.as_mut(),
        Method::OPTIONS => item.options.as_mut(),
        _ => None,
    }
}
