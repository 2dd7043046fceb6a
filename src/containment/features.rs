//! Kill switches: the super-admin turns a feature off for every tenant on every instance
//! within a second — its routes answer 503 `feature_disabled` before authentication runs, its
//! background work pauses (what is queued waits; nothing is dropped), and `/readyz` lists it.
//!
//! A feature with no stored row is on, so a fresh database serves everything. The switches
//! are platform-wide and audited in the platform chain only: they change no tenant's data.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store;
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;

/// What a refused request is told to wait before it retries.
pub const RETRY_AFTER_SECS: u64 = 60;

/// A feature the super-admin can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Signup,
    EmailSending,
    Integrations,
    Webhooks,
    Exports,
    Documents,
}

impl Feature {
    pub const ALL: [Feature; 6] = [
        Feature::Signup,
        Feature::EmailSending,
        Feature::Integrations,
        Feature::Webhooks,
        Feature::Exports,
        Feature::Documents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Signup => "signup",
            Feature::EmailSending => "email_sending",
            Feature::Integrations => "integrations",
            Feature::Webhooks => "webhooks",
            Feature::Exports => "exports",
            Feature::Documents => "documents",
        }
    }

    fn parse(text: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.as_str() == text)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The switches as this instance last read them; every feature starts on.
pub struct Switches([AtomicBool; Feature::ALL.len()]);

impl Default for Switches {
    fn default() -> Self {
        Switches(std::array::from_fn(|_| AtomicBool::new(true)))
    }
}

impl Switches {
    pub fn enabled(&self, feature: Feature) -> bool {
        // Relaxed: each switch stands alone, and a reader a few nanoseconds late is within
        // the second the switches promise anyway.
        self.0[feature.index()].load(Ordering::Relaxed)
    }

    /// `Ok` when `feature` is on; the error every caller maps to 503 otherwise.
    pub fn require(&self, feature: Feature) -> DomainResult<()> {
        if self.enabled(feature) {
            Ok(())
        } else {
            Err(DomainError::FeatureDisabled(feature.as_str()))
        }
    }

    /// The features switched off, in `Feature::ALL` order.
    pub fn disabled(&self) -> Vec<&'static str> {
        Feature::ALL.into_iter().filter(|f| !self.enabled(*f)).map(Feature::as_str).collect()
    }

    pub fn state(&self) -> FeatureState {
        let on = |f| self.enabled(f);
        FeatureState {
            signup: on(Feature::Signup),
            email_sending: on(Feature::EmailSending),
            integrations: on(Feature::Integrations),
            webhooks: on(Feature::Webhooks),
            exports: on(Feature::Exports),
            documents: on(Feature::Documents),
        }
    }

    /// Applies the stored rows: a feature without one is on.
    pub(super) fn replace(&self, rows: &[(String, bool)]) {
        for feature in Feature::ALL {
            let enabled = rows
                .iter()
                .find(|(name, _)| Feature::parse(name) == Some(feature))
                .is_none_or(|(_, enabled)| *enabled);
            self.0[feature.index()].store(enabled, Ordering::Relaxed);
        }
    }
}

/// Every switch: `true` is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeatureState {
    pub signup: bool,
    pub email_sending: bool,
    pub integrations: bool,
    pub webhooks: bool,
    pub exports: bool,
    pub documents: bool,
}

/// A change: the switches named are set, the others stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureChange {
    #[schema(nullable = false)]
    pub signup: Option<bool>,
    #[schema(nullable = false)]
    pub email_sending: Option<bool>,
    #[schema(nullable = false)]
    pub integrations: Option<bool>,
    #[schema(nullable = false)]
    pub webhooks: Option<bool>,
    #[schema(nullable = false)]
    pub exports: Option<bool>,
    #[schema(nullable = false)]
    pub documents: Option<bool>,
}

impl FeatureChange {
    fn entries(&self) -> Vec<(Feature, bool)> {
        [
            (Feature::Signup, self.signup),
            (Feature::EmailSending, self.email_sending),
            (Feature::Integrations, self.integrations),
            (Feature::Webhooks, self.webhooks),
            (Feature::Exports, self.exports),
            (Feature::Documents, self.documents),
        ]
        .into_iter()
        .filter_map(|(feature, value)| value.map(|v| (feature, v)))
        .collect()
    }
}

/// Sets the switches named in `change` on every instance; audited in the platform chain.
pub async fn change(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    change: FeatureChange,
) -> DomainResult<FeatureState> {
    let entries = change.entries();
    if entries.is_empty() {
        return Err(DomainError::Invalid(vec![(
            "body".into(),
            "must name at least one feature".into(),
        )]));
    }
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    let mut event = Event::new(Action::PlatformFeaturesChange).by_user(principal.user_id());
    for (feature, enabled) in &entries {
        store::set_switch(&mut tx, feature.as_str(), *enabled, principal.user_id(), now).await?;
        event = event.detail(feature.as_str(), *enabled);
    }
    audit::record_platform(&mut tx, None, ctx, event).await?;
    tx.commit().await?;
    super::changed(app).await?;
    Ok(app.containment().switches.state())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_start_on_and_follow_the_stored_rows() {
        let switches = Switches::default();
        assert!(Feature::ALL.into_iter().all(|f| switches.enabled(f)));
        assert!(switches.disabled().is_empty());
        switches.replace(&[("documents".into(), false), ("exports".into(), true)]);
        assert_eq!(switches.disabled(), ["documents"]);
        assert!(matches!(
            switches.require(Feature::Documents),
            Err(DomainError::FeatureDisabled("documents"))
        ));
        assert!(switches.require(Feature::Exports).is_ok());
        // A row for a feature this binary does not know is ignored; a removed row is on.
        switches.replace(&[("teleport".into(), false)]);
        assert!(switches.disabled().is_empty());
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for feature in Feature::ALL {
            assert_eq!(Feature::parse(feature.as_str()), Some(feature));
            let json = serde_json::to_value(feature).expect("serialises");
            assert_eq!(json, feature.as_str());
        }
    }
}
