//! Extractors: how a handler receives the caller, its tenant scope and where the request came
//! from. Domain code defines these types; only this module knows they travel in a request.
//!
//! `Principal` and `TenantScope` are put into the request by the endpoint gate after it
//! authenticated and authorised the caller. A handler that names one cannot forget the
//! check; on a public route there is none to extract, which is a wiring bug (500), never an
//! anonymous caller.

use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

use super::problem::Problem;
use super::request_id::RequestId;
use crate::audit::RequestContext;
use crate::error::DomainError;
use crate::identity::Principal;
use crate::ratelimit::{ClientAddress, ClientNet};
use crate::tenancy::TenantScope;

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            DomainError::Internal("Principal extracted on an open route".into()).into()
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantScope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        // Missing only on a public route or for a principal without a tenant: the gate
        // refuses the latter, so this is a wiring bug.
        parts.extensions.get::<TenantScope>().cloned().ok_or_else(|| {
            DomainError::Internal("TenantScope extracted on an open route".into()).into()
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(context_of(parts))
    }
}

/// Where a request came from: its client address (as the trusted-proxy rules compute it),
/// user agent (at most 256 characters) and request id.
pub fn context_of(parts: &Parts) -> RequestContext {
    let address = parts.extensions.get::<ClientAddress>().copied();
    RequestContext {
        ip: address.map(|a| a.ip),
        net: address.map_or(ClientNet::UNKNOWN, |a| a.net),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: parts.extensions.get::<RequestId>().map(|id| id.as_str().to_owned()),
    }
}
