//! Credentials in the `Authorization` header: access tokens (JWT), API keys and the header
//! itself. Hostile text is refused, never a panic; no edit of a genuine token verifies as
//! anything but that token.
//!
//! A panic here (`assert!`, `expect`) is the finding: libFuzzer reports it as a crash and
//! keeps the input, so `expect` states a property, not an unhandled error.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use bulwark::config::SecretsConfig;
use bulwark::crypto::Secret;
use bulwark::identity::tokens::TokenKeys;
use bulwark::identity::{bearer, key_prefix};
use bulwark::ids::{SessionId, TenantId, UserId};
use libfuzzer_sys::fuzz_target;

static KEYS: LazyLock<TokenKeys> = LazyLock::new(|| {
    let secrets = SecretsConfig {
        jwt_secret: Secret::new(b"fuzz-jwt-secret-0123456789abcdef-0123".to_vec()),
        jwt_previous_secrets: vec![],
        master_keys: vec![],
    };
    TokenKeys::new(&secrets, "https://bulwark.fuzz", 900)
});

static GENUINE: LazyLock<String> = LazyLock::new(|| {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    KEYS.issue(
        UserId::from_uuid(uuid::Uuid::from_u128(1)),
        TenantId::from_uuid(uuid::Uuid::from_u128(2)),
        "owner",
        SessionId::from_uuid(uuid::Uuid::from_u128(3)),
        now,
    )
    .expect("issuing with a valid key works")
});

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    /// Byte edits applied to a genuine token: (position, xor mask).
    edits: Vec<(u16, u8)>,
}

fuzz_target!(|input: Input<'_>| {
    // Arbitrary text: nothing forges an HMAC, so nothing verifies.
    assert!(KEYS.verify(input.text).is_err());

    // API keys: only `bwk_<12 hex>_…` yields a lookup prefix, and it is taken from the text.
    if let Some(prefix) = key_prefix(input.text) {
        assert_eq!(prefix.len(), 12);
        assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(input.text.starts_with(&format!("bwk_{prefix}_")));
    }

    // The header parser: whatever it accepts is part of the header.
    if let Ok(credential) = bearer(Some(input.text.as_bytes())) {
        assert!(input.text.contains(credential));
        assert!(!credential.is_empty());
        assert!(credential.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
    }

    // A genuine token with edits verifies only if the edits changed nothing that counts.
    let original = KEYS.verify(&GENUINE).expect("the genuine token verifies");
    let mut bytes = GENUINE.as_bytes().to_vec();
    for (at, mask) in &input.edits {
        let at = usize::from(*at) % bytes.len();
        bytes[at] ^= mask;
    }
    if let Ok(edited) = std::str::from_utf8(&bytes) {
        if let Ok(claims) = KEYS.verify(edited) {
            assert_eq!(claims, original, "an edited token verified as other claims");
        }
    }
});
