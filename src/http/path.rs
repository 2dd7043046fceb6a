//! Path parameters. An id that does not parse names no object, so it answers 404 exactly
//! like an id of another tenant or a deleted one (never a 400 that tells them apart).

use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::problem::Problem;

/// The single `{id}` of a route, parsed as `T`.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

impl<T, S> FromRequestParts<S> for Id<T>
where
    T: FromStr + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::for_status(StatusCode::NOT_FOUND))?;
        raw.parse().map(Id).map_err(|_| Problem::for_status(StatusCode::NOT_FOUND))
    }
}
