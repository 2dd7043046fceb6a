//! SQL of outbound webhooks: subscriptions, and the deliveries of events to them.

mod deliveries;
mod subscriptions;

pub use deliveries::*;
pub use subscriptions::*;
