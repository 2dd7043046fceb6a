//! The Standard Webhooks signature scheme (standardwebhooks.com): `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, several space-separated during a key rotation. Secrets are
//! written `whsec_<base64>`; the HMAC key is the decoded bytes. HMAC from RustCrypto; the
//! comparison is its constant-time `verify_slice`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::Secret;

/// How far a timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;
/// The most `v1` signatures a delivery may offer.
const MAX_SIGNATURES: usize = 8;

/// Why a delivery is refused (for the log; the sender sees one answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a webhook header is missing or malformed")]
    Malformed,
    #[error("the timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    BadSignature,
}

/// Decodes a `whsec_…` secret into its key bytes.
pub fn parse_secret(text: &str) -> Result<Secret<Vec<u8>>, String> {
    let encoded = text.trim().strip_prefix("whsec_").ok_or("must start with `whsec_`")?;
    let key = STANDARD.decode(encoded).map_err(|_| "must be `whsec_` and base64".to_owned())?;
    if key.len() < 16 {
        return Err("the key must be at least 16 bytes".into());
    }
    Ok(Secret::new(key))
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> hmac::Hmac<Sha256> {
    // Invariant: HMAC-SHA256 accepts a key of any length.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for a delivery (what a sender writes).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, &timestamp.to_string(), body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// Checks a delivery: the id and timestamp are present, the timestamp within the tolerance
/// of `now` (Unix seconds), and one `v1` signature matches.
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    if id.is_empty() || id.len() > 256 {
        return Err(Refused::Malformed);
    }
    let sent: i64 = timestamp.trim().parse().map_err(|_| Refused::Malformed)?;
    if now.abs_diff(sent) > TOLERANCE_SECS.unsigned_abs() {
        return Err(Refused::Stale);
    }
    // The tag is computed once and compared in constant time with each offered signature
    // (a rotation offers a few; more than MAX_SIGNATURES is refused, not hashed).
    let expected = mac(key, id, timestamp, body).finalize().into_bytes();
    let offered: Vec<&str> =
        signatures.split_whitespace().filter_map(|s| s.strip_prefix("v1,")).collect();
    if offered.len() > MAX_SIGNATURES {
        return Err(Refused::Malformed);
    }
    let matches = offered.iter().any(|b64| {
        STANDARD.decode(b64).is_ok_and(|tag| bool::from(tag.as_slice().ct_eq(expected.as_slice())))
    });
    if matches { Ok(()) } else { Err(Refused::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_fresh_matching_signature_passes() {
        // The scheme's published example (standard-webhooks spec, "Verifying").
        let key =
            parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").map(|s| s.expose().clone());
        let key = key.unwrap_or_default();
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(sign(&key, id, 1_614_265_330, body), expected);
        assert_eq!(verify(&key, id, "1614265330", expected, body, 1_614_265_330), Ok(()));
        // Several signatures (a rotation): one match is enough.
        let both = format!("v1,AAAA {expected}");
        assert_eq!(verify(&key, id, "1614265330", &both, body, 1_614_265_400), Ok(()));
        // Altered body, other id, old timestamp, no signature: refused.
        let refused = |id: &str, ts: &str, sig: &str, body: &[u8], now: i64| {
            verify(&key, id, ts, sig, body, now).is_err()
        };
        assert!(refused(id, "1614265330", expected, br#"{"test": 1}"#, 1_614_265_330));
        assert!(refused("msg_other", "1614265330", expected, body, 1_614_265_330));
        assert_eq!(
            verify(&key, id, "1614265330", expected, body, 1_614_265_330 + 301),
            Err(Refused::Stale)
        );
        assert!(refused(id, "1614265330", "", body, 1_614_265_330));
        assert!(refused(id, "soon", expected, body, 1_614_265_330));
        assert!(refused(id, &i64::MIN.to_string(), expected, body, 1_614_265_330));
        let many = format!("{} {expected}", "v1,AAAA ".repeat(8));
        assert!(refused(id, "1614265330", &many, body, 1_614_265_330), "too many signatures");
        assert!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }
}
