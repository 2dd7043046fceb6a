//! `GET /api/v1/audit-events`: search the tenant's audit log.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::{AuditQuery, AuditRow};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::http::Endpoint;
use crate::http::json::{Json, Query};
use crate::http::problem::Problem;
use crate::pagination::{Page, check_limit, decode_cursor};
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::permission(routes!(list_events), Permission::AuditRead, RateCategory::Read)]
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// An action name, e.g. `auth.login_failed`.
    action: Option<String>,
    /// The actor's id (a user id, API key id or system job).
    actor: Option<String>,
    /// Events at or after this time.
    from: Option<Timestamp>,
    /// Events before this time.
    to: Option<Timestamp>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    id: uuid::Uuid,
    seq: i64,
    occurred_at: Timestamp,
    /// `user`, `api_key`, `system` or `anonymous`.
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    /// `success` or `failure`.
    outcome: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// Hex SHA-256 of the previous event and of this one: the chain `bulwark audit verify`
    /// checks, exportable for independent verification.
    prev_hash: String,
    hash: String,
}

use crate::crypto::hex;

impl From<AuditRow> for AuditEventView {
    fn from(row: AuditRow) -> Self {
        AuditEventView {
            id: row.id,
            seq: row.seq,
            occurred_at: row.occurred_at,
            actor_type: row.actor_type,
            actor_id: row.actor_id,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            outcome: row.outcome,
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
            details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
            prev_hash: hex(&row.prev_hash),
            hash: hex(&row.hash),
        }
    }
}

/// The tenant's audit events, newest first.
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit", params(AuditFilter),
    responses((status = 200, body = Page<AuditEventView>)))]
async fn list_events(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<Page<AuditEventView>>, Problem> {
    let limit = check_limit(filter.limit)?;
    let query = AuditQuery {
        action: filter.action,
        actor_id: filter.actor,
        from: filter.from,
        to: filter.to,
        before_seq: decode_cursor::<i64>(filter.cursor.as_deref())?,
        limit: limit + 1,
    };
    let rows = super::search(&app, &scope, &query).await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.seq.to_string(), AuditEventView::from)))
}
