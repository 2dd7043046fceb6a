//! DomainError → problem+json, in one exhaustive match.

use axum::http::StatusCode;

use super::json::validation_failed;
use super::problem::{FieldError, Problem};
use crate::error::DomainError;
use crate::store::StoreError;

impl From<DomainError> for Problem {
    fn from(err: DomainError) -> Problem {
        use StatusCode as S;
        match err {
            DomainError::NotFound(what) => {
                Problem::new(S::NOT_FOUND, "not_found", "Not found", format!("No such {what}."))
            }
            DomainError::InvalidCredentials => Problem::new(
                S::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
                "The email or password is incorrect.",
            ),
            DomainError::Unauthenticated(reason) => Problem::new(
                S::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "Send a valid, unexpired access token or API key.",
            )
            .with_cause(reason),
            DomainError::Forbidden(detail) => {
                Problem::new(S::FORBIDDEN, "forbidden", "Forbidden", detail)
            }
            DomainError::StepUpRequired => Problem::new(
                S::FORBIDDEN,
                "step_up_required",
                "Step-up required",
                "Confirm your second factor at /api/v1/auth/step-up, then retry.",
            ),
            DomainError::MfaEnrollmentRequired => Problem::new(
                S::FORBIDDEN,
                "mfa_enrollment_required",
                "MFA enrollment required",
                "Your organisation requires multi-factor authentication; enrol a second factor first.",
            ),
            DomainError::Conflict(detail) => {
                Problem::new(S::CONFLICT, "conflict", "Conflict", detail)
            }
            DomainError::Invalid(errors) => validation_failed(
                errors.into_iter().map(|(field, message)| FieldError { field, message }).collect(),
            ),
            DomainError::SignupClosed => Problem::new(
                S::FORBIDDEN,
                "signup_closed",
                "Signup closed",
                "Open signup is disabled; ask an administrator for an invitation.",
            ),
            DomainError::FeatureDisabled(feature) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "feature_disabled",
                "Feature disabled",
                format!("The operator switched off `{feature}` for now; retry later."),
            )
            .with_retry_after(crate::containment::features::RETRY_AFTER_SECS),
            DomainError::TooLarge { limit } => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                "too_large",
                "Too large",
                format!("The file is larger than {limit} bytes."),
            ),
            DomainError::UnsupportedType(found) => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "Unsupported type",
                format!("The content is {found}, which this service does not accept."),
            ),
            DomainError::RangeNotSatisfiable { size } => Problem::new(
                S::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "Range not satisfiable",
                format!("The content has {size} bytes; the requested range has none of them."),
            ),
            DomainError::IntegrationDisabled(provider) => Problem::new(
                S::NOT_FOUND,
                "integration_disabled",
                "Integration disabled",
                format!("The {provider} integration is not configured on this server."),
            ),
            DomainError::InvalidState(_) => Problem::new(
                S::BAD_REQUEST,
                "invalid_state",
                "Invalid state",
                "The authorization's state is missing, altered, expired, already used or not \
                 yours; start the connection again.",
            ),
            DomainError::Upstream(cause) => Problem::new(
                S::BAD_GATEWAY,
                "integration_error",
                "Integration error",
                "The provider refused or failed the call; reconnect the integration if it persists.",
            )
            .with_cause(cause),
            DomainError::Infected(_) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "infected",
                "Infected",
                "The virus scanner refused this file.",
            ),
            DomainError::TooManyAttempts { retry_after } => Problem::new(
                S::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many attempts",
                "Too many failed attempts from this client; see Retry-After.",
            )
            .with_retry_after(retry_after),
            DomainError::QuotaExceeded { retry_after } => Problem::new(
                S::TOO_MANY_REQUESTS,
                "quota_exceeded",
                "Quota exceeded",
                "This tenant's sending quota is spent for now; see Retry-After.",
            )
            .with_retry_after(retry_after),
            DomainError::Busy { retry_after } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "busy",
                "Busy",
                "The server is busy; retry after the Retry-After delay.",
            )
            .with_retry_after(retry_after),
            DomainError::Unavailable(cause) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "A dependency is unavailable; retry after the Retry-After delay.",
            )
            .with_retry_after(1)
            .with_cause(cause),
            DomainError::Store(StoreError::Unavailable(cause)) => {
                Problem::for_status(S::SERVICE_UNAVAILABLE).with_retry_after(1).with_cause(cause)
            }
            DomainError::Store(StoreError::Conflict(cause)) => Problem::new(
                S::CONFLICT,
                "conflict",
                "Conflict",
                "The request conflicts with the current state; retry it.",
            )
            .with_cause(cause),
            DomainError::Store(other) => {
                Problem::for_status(S::INTERNAL_SERVER_ERROR).with_cause(format!("{other:?}"))
            }
            DomainError::Internal(cause) => {
                Problem::for_status(S::INTERNAL_SERVER_ERROR).with_cause(cause)
            }
        }
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Problem {
        DomainError::Store(err).into()
    }
}
