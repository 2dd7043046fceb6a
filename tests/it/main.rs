//! The one integration-test binary. Each module is an area; `support` is the harness.
//! `BULWARK_TEST_DB=sqlite|postgres` picks the backend at run time, so both share a build.

#![allow(
    clippy::disallowed_methods,
    reason = "tests inspect and tamper with the database directly"
)]

mod abuse;
mod access;
mod account_mail;
mod audit;
mod backup;
mod console;
mod containment;
mod controls;
mod crm;
mod documents;
mod email;
mod email_durability;
mod email_platform;
mod hardening;
mod hot_path;
mod identity;
mod integrations;
mod mfa;
mod negative;
mod payments;
mod platform;
mod scale_out;
mod support;
mod webhook_delivery;
mod webhooks;
