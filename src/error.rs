//! The domain layer's one error type. Handlers return it (through `?`) and
//! `http::error` maps each variant to a problem in one exhaustive match, so a new variant
//! forces a decision about what the client sees.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A missing object, or one of another tenant: the two must be indistinguishable.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Login failed, for whatever reason (unknown account, wrong password, locked,
    /// deactivated): one answer for all, so none can be told apart.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Missing, malformed, expired or revoked credentials on a protected route. The reason
    /// is for the log only.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated but not allowed; the text is safe to show.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("a recent second factor is required")]
    StepUpRequired,
    #[error("the tenant requires multi-factor authentication")]
    MfaEnrollmentRequired,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Input that parsed but breaks a rule: (field, message), messages never echo values.
    #[error("invalid input")]
    Invalid(Vec<(String, String)>),
    #[error("signup is closed")]
    SignupClosed,
    /// Too many failed attempts from this client; retry after the given seconds.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: u64 },
    /// A tenant's sending quota is spent until the window moves (seconds).
    #[error("quota exceeded")]
    QuotaExceeded { retry_after: u64 },
    /// A bounded resource (the password-hashing queue) is full.
    #[error("busy")]
    Busy { retry_after: u64 },
    /// A shared dependency (Redis) is down and this operation fails closed.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// A kill switch is off for this feature (its name, safe to show).
    #[error("feature {0} is switched off")]
    FeatureDisabled(&'static str),
    /// An upload over the size cap (bytes).
    #[error("too large")]
    TooLarge { limit: u64 },
    /// Content of a type the allowlist does not name (the sniffed type, safe to show).
    #[error("unsupported type {0}")]
    UnsupportedType(String),
    /// A download's range has no byte in the content of `size` bytes.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// The virus scanner found something (its signature name).
    #[error("infected: {0}")]
    Infected(String),
    /// The provider is not configured on this server (its name, safe to show).
    #[error("integration {0} is not configured")]
    IntegrationDisabled(&'static str),
    /// An OAuth callback's `state` is missing, altered, expired, replayed or someone else's
    /// (the reason is for the log and the audit event).
    #[error("invalid OAuth state: {0}")]
    InvalidState(&'static str),
    /// A provider refused or failed a call on the tenant's behalf (for the log only).
    #[error("provider error: {0}")]
    Upstream(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![(field.to_owned(), message.into())])
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
