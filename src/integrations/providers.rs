//! What Bulwark does with a connection, one provider at a time, through the documented paths
//! under the provider's API base URL: who the account is (Zoom `GET /v2/users/me`, Google
//! `GET /oauth2/v3/userinfo`), a Zoom meeting (`POST /v2/users/me/meetings`) and a Google
//! Calendar event (`POST /calendar/v3/calendars/primary/events`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Provider, oauth, usable_token};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::config::OAuthProvider;
use crate::error::{DomainError, DomainResult};
use crate::ids::ActivityId;
use crate::tenancy::TenantScope;

/// Who a connected account is at its provider.
pub struct Account {
    /// Zoom's user id or Google's `sub`.
    pub id: String,
    pub email: Option<String>,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(|v| match v {
        Value::String(s) => Some(s.chars().take(320).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

pub async fn account(
    provider: Provider,
    settings: &OAuthProvider,
    access_token: &str,
) -> DomainResult<Account> {
    let (path, id_key) = match provider {
        Provider::Zoom => ("/v2/users/me", "id"),
        Provider::Google => ("/oauth2/v3/userinfo", "sub"),
    };
    let me = oauth::api(settings, access_token, path, None).await?;
    let id = text(&me, id_key).ok_or_else(|| DomainError::Upstream(format!("{path}: no id")))?;
    Ok(Account { id, email: text(&me, "email") })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMeeting {
    #[schema(min_length = 1, max_length = 200)]
    pub topic: String,
    pub start_time: Timestamp,
    #[schema(minimum = 1, maximum = 1440)]
    pub duration_minutes: i64,
    /// A CRM activity to note the meeting on.
    pub activity_id: Option<ActivityId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingView {
    pub meeting_id: String,
    pub join_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    #[schema(min_length = 1, max_length = 200)]
    pub summary: String,
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(default)]
    #[schema(max_items = 50, format = Email)]
    pub attendees: Vec<String>,
    /// A CRM activity to note the event on.
    pub activity_id: Option<ActivityId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub event_id: String,
    pub html_link: String,
}

/// The activity exists in this tenant (a 404 before anything is created at the provider).
async fn check_activity(
    app: &AppState,
    scope: &TenantScope,
    id: Option<ActivityId>,
) -> DomainResult<()> {
    if let Some(id) = id {
        crate::crm::get::<crate::crm::activities::Activities>(app, scope, id).await?;
    }
    Ok(())
}

fn name(field: &str, value: &str) -> DomainResult<()> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err(DomainError::invalid(field, "must be 1 to 200 characters on one line"));
    }
    Ok(())
}

/// Creates a Zoom meeting with the caller's connection (or the tenant's).
pub async fn create_meeting(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewMeeting,
) -> DomainResult<MeetingView> {
    let settings = Provider::Zoom.settings(app)?;
    name("topic", &new.topic)?;
    if !(1..=1440).contains(&new.duration_minutes) {
        return Err(DomainError::invalid("duration_minutes", "must be between 1 and 1440"));
    }
    check_activity(app, scope, new.activity_id).await?;
    let (token, integration) = usable_token(app, scope, Provider::Zoom).await?;
    // Zoom's scheduled meeting (type 2) at a UTC time.
    let body = json!({
        "topic": new.topic.trim(),
        "type": 2,
        "start_time": new.start_time.rfc3339(),
        "duration": new.duration_minutes,
        "timezone": "UTC",
    });
    let created = oauth::api(settings, &token, "/v2/users/me/meetings", Some(&body)).await?;
    let meeting = MeetingView {
        meeting_id: text(&created, "id")
            .ok_or_else(|| DomainError::Upstream("meeting: no id".into()))?,
        join_url: text(&created, "join_url")
            .ok_or_else(|| DomainError::Upstream("meeting: no join_url".into()))?,
    };
    let event = Event::new(Action::IntegrationMeetingCreate)
        .by_scope(scope)
        .target("integration", integration)
        .detail("meeting_id", meeting.meeting_id.as_str());
    audit::record_alone(app, scope, ctx, event).await?;
    if let Some(activity) = new.activity_id {
        let line = format!("Zoom meeting: {}", meeting.join_url);
        note(app, scope, ctx, integration, activity, &line).await?;
    }
    Ok(meeting)
}

/// Creates an event in the primary Google Calendar of the caller's connection (or the
/// tenant's).
pub async fn create_event(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewEvent,
) -> DomainResult<EventView> {
    let settings = Provider::Google.settings(app)?;
    name("summary", &new.summary)?;
    if new.end <= new.start {
        return Err(DomainError::invalid("end", "must be after start"));
    }
    if new.attendees.len() > 50 {
        return Err(DomainError::invalid("attendees", "at most 50"));
    }
    let mut attendees = vec![];
    for address in &new.attendees {
        let parsed = crate::email::address::parse(address)
            .map_err(|_| DomainError::invalid("attendees", "must be email addresses"))?;
        attendees.push(json!({"email": parsed.email.to_string()}));
    }
    check_activity(app, scope, new.activity_id).await?;
    let (token, integration) = usable_token(app, scope, Provider::Google).await?;
    let body = json!({
        "summary": new.summary.trim(),
        "start": {"dateTime": new.start.rfc3339()},
        "end": {"dateTime": new.end.rfc3339()},
        "attendees": attendees,
    });
    let path = "/calendar/v3/calendars/primary/events";
    let created = oauth::api(settings, &token, path, Some(&body)).await?;
    let view = EventView {
        event_id: text(&created, "id")
            .ok_or_else(|| DomainError::Upstream("event: no id".into()))?,
        html_link: text(&created, "htmlLink")
            .ok_or_else(|| DomainError::Upstream("event: no htmlLink".into()))?,
    };
    let event = Event::new(Action::IntegrationEventCreate)
        .by_scope(scope)
        .target("integration", integration)
        .detail("event_id", view.event_id.as_str());
    audit::record_alone(app, scope, ctx, event).await?;
    if let Some(activity) = new.activity_id {
        let line = format!("Google Calendar event: {}", view.html_link);
        note(app, scope, ctx, integration, activity, &line).await?;
    }
    Ok(view)
}

/// Notes what a connection created on an activity, and remembers the line (its hash) so a
/// deauthorization can take it out again.
async fn note(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    integration: crate::ids::IntegrationId,
    activity: ActivityId,
    line: &str,
) -> DomainResult<()> {
    use sha2::Digest as _;
    crate::crm::activities::append_details(app, scope, ctx, activity, line).await?;
    let mut tx = app.store().tenant_tx(scope).await?;
    let hash = sha2::Sha256::digest(line.as_bytes()).to_vec();
    super::store::insert_note(&mut tx, integration, activity, &hash).await?;
    Ok(tx.commit().await?)
}
