//! The signature schemes of providers' webhooks, each as the provider documents it. Both are
//! HMAC-SHA256 (RustCrypto) over the timestamp and the exact body, hex-encoded, compared in
//! constant time, with a 5-minute tolerance on the timestamp either way.
//!
//! - Stripe (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`): the key is the endpoint's
//!   signing secret as written (`whsec_…`, the whole string); signed is `{t}.{body}`. Any of
//!   several configured secrets (a rotation) and any offered `v1` may match.
//! - Zoom (`x-zm-signature: v0=<hex>`, `x-zm-request-timestamp: <unix>`): the key is the
//!   app's secret token; signed is `v0:{timestamp}:{body}`. Its URL validation answers a
//!   `plainToken` with the hex HMAC of it under the same key.

use hmac::{KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

pub use super::standard_webhooks::{Refused, TOLERANCE_SECS};

/// The most `v1` signatures a Stripe delivery may offer (the rest are not hashed).
const MAX_SIGNATURES: usize = 8;

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    // Invariant: HMAC-SHA256 accepts a key of any length.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn fresh(timestamp: &str, now: i64) -> Result<i64, Refused> {
    let sent: i64 = timestamp.trim().parse().map_err(|_| Refused::Malformed)?;
    if now.abs_diff(sent) > TOLERANCE_SECS.unsigned_abs() {
        return Err(Refused::Stale);
    }
    Ok(sent)
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Stripe's `Stripe-Signature` header over `body`, under any of `secrets`.
pub fn verify_stripe(secrets: &[&str], header: &str, body: &[u8], now: i64) -> Result<(), Refused> {
    let mut timestamp = None;
    let mut offered = vec![];
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => timestamp = Some(value),
            Some(("v1", value)) => offered.push(value.trim().to_ascii_lowercase()),
            Some(_) => {}
            None => return Err(Refused::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(Refused::Malformed)?;
    if offered.is_empty() || offered.len() > MAX_SIGNATURES {
        return Err(Refused::Malformed);
    }
    fresh(timestamp, now)?;
    let matches = secrets.iter().any(|secret| {
        let expected = hmac_hex(secret.as_bytes(), &[timestamp.trim().as_bytes(), b".", body]);
        offered.iter().any(|sig| same(sig, &expected))
    });
    if matches { Ok(()) } else { Err(Refused::BadSignature) }
}

/// The `Stripe-Signature` value a sender with `secret` writes (tests, the fuzz target).
pub fn sign_stripe(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!("t={t},v1={}", hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", body]))
}

/// Zoom's `x-zm-signature` over `body` at `x-zm-request-timestamp`.
pub fn verify_zoom(
    secret: &str,
    signature: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    let offered = signature.trim().strip_prefix("v0=").ok_or(Refused::Malformed)?;
    fresh(timestamp, now)?;
    let expected = sign_zoom(secret, timestamp.trim(), body);
    if same(&format!("v0={}", offered.to_ascii_lowercase()), &expected) {
        Ok(())
    } else {
        Err(Refused::BadSignature)
    }
}

/// The `x-zm-signature` value Zoom writes.
pub fn sign_zoom(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hmac_hex(secret.as_bytes(), &[b"v0:", timestamp.as_bytes(), b":", body]))
}

/// Zoom's URL validation: the `encryptedToken` answering a `plainToken`.
pub fn zoom_validation(secret: &str, plain_token: &str) -> String {
    hmac_hex(secret.as_bytes(), &[plain_token.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_signatures_verify_as_stripe_documents_them() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let header = sign_stripe("whsec_current", 1_700_000_000, body);
        let now = 1_700_000_100;
        assert_eq!(verify_stripe(&["whsec_current"], &header, body, now), Ok(()));
        // A rotation: the old secret still verifies while it is configured.
        assert_eq!(verify_stripe(&["whsec_new", "whsec_current"], &header, body, now), Ok(()));
        assert_eq!(verify_stripe(&["whsec_other"], &header, body, now), Err(Refused::BadSignature));
        assert_eq!(
            verify_stripe(&["whsec_current"], &header, b"{}", now),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify_stripe(&["whsec_current"], &header, body, now + 301),
            Err(Refused::Stale)
        );
        // Several v1 (Stripe sends one per active secret) and a v0 to ignore.
        let v1 = header.split_once(",v1=").map(|(_, s)| s.to_owned()).unwrap_or_default();
        let several = format!("t=1700000000,v0=ignored,v1={},v1={v1}", "0".repeat(64));
        assert_eq!(verify_stripe(&["whsec_current"], &several, body, now), Ok(()));
        for malformed in ["", "v1=abc", "t=1700000000", "garbage", "t=soon,v1=aa"] {
            assert!(
                verify_stripe(&["whsec_current"], malformed, body, now).is_err(),
                "{malformed}"
            );
        }
    }

    #[test]
    fn zoom_signatures_and_url_validation_match_zooms_documentation() {
        let body = br#"{"event":"app_deauthorized"}"#;
        let signature = sign_zoom("zoom-secret", "1700000000", body);
        assert!(signature.starts_with("v0=") && signature.len() == 67);
        assert_eq!(
            verify_zoom("zoom-secret", &signature, "1700000000", body, 1_700_000_010),
            Ok(())
        );
        assert!(verify_zoom("other", &signature, "1700000000", body, 1_700_000_010).is_err());
        assert!(verify_zoom("zoom-secret", &signature, "1700000001", body, 1_700_000_010).is_err());
        assert_eq!(
            verify_zoom("zoom-secret", &signature, "1700000000", body, 1_700_000_400),
            Err(Refused::Stale)
        );
        assert!(verify_zoom("zoom-secret", "abc", "1700000000", body, 1_700_000_010).is_err());
        // The validation token is the hex HMAC-SHA256 of the plain token (64 hex digits).
        let token = zoom_validation("zoom-secret", "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
