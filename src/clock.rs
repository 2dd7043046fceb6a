//! Time as Bulwark stores and shows it: a [`Timestamp`] is integer milliseconds since the
//! Unix epoch in the database (both backends compare them the same way) and RFC 3339 UTC on
//! the wire.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::sql::{Bind, Value};

/// An instant, to the millisecond. Stored as `BIGINT` milliseconds; serialized as RFC 3339
/// with a `Z` suffix; parsed from RFC 3339 with any offset.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The epoch: "never" for counters that compare against it.
    pub const EPOCH: Timestamp = Timestamp(0);

    pub fn now() -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }

    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (JWT `iat`, TOTP steps).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Saturating: a lifetime of "forever" stays at the end of time.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// How long from `self` until `later`; zero if `later` is not later.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    /// Whole seconds until `later`, rounded up, at least 1: a `Retry-After` value.
    pub fn retry_after(self, later: Timestamp) -> u64 {
        self.until(later).as_millis().div_ceil(1000).max(1).try_into().unwrap_or(u64::MAX)
    }

    /// RFC 3339 with millisecond precision and a `Z` suffix.
    pub fn rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            // Only instants beyond year 9999 fail to format; none is ever stored.
            .unwrap_or_else(|| self.0.to_string())
    }

    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok().map(Timestamp)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("must be an RFC 3339 date-time"))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl Bind for Timestamp {
    fn into_value(self) -> Value {
        Value::Int(Some(self.0))
    }
}

impl Bind for Option<Timestamp> {
    fn into_value(self) -> Value {
        Value::Int(self.map(|t| t.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339() {
        let t = Timestamp::from_millis(1_790_000_000_123);
        let text = t.rfc3339();
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(Timestamp::parse_rfc3339(&text), Some(t));
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-23T10:00:00+01:00"),
            Some(Timestamp::from_millis(1_795_424_400_000))
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        let json = serde_json::to_string(&t).expect("serializes");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
        assert!(serde_json::from_str::<Timestamp>("\"tomorrow\"").is_err());
    }

    #[test]
    fn arithmetic_saturates_and_retry_after_rounds_up() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(t.plus(Duration::from_millis(1_500)).millis(), 2_500);
        assert_eq!(
            Timestamp::from_millis(i64::MAX - 1).plus(Duration::from_secs(5)).millis(),
            i64::MAX
        );
        assert_eq!(t.retry_after(Timestamp::from_millis(1_001)), 1);
        assert_eq!(t.retry_after(Timestamp::from_millis(3_001)), 3);
        assert_eq!(t.retry_after(Timestamp::from_millis(0)), 1);
        assert_eq!(t.until(Timestamp::from_millis(0)), Duration::ZERO);
    }
}
