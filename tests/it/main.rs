//! The one integration-test binary. Each module is an area; `support` is the harness.
//! `BULWARK_TEST_DB=sqlite|postgres` picks the backend at run time, so both share a build.

mod platform;
mod support;
