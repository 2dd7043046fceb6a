//! Stored field ciphertexts: arbitrary bytes never decrypt and never panic; a genuine value
//! round-trips, and any change to it, or any other place, fails to decrypt.
//!
//! A panic here (`assert!`, `expect`) is the finding: libFuzzer reports it as a crash and
//! keeps the input, so `expect` states a property, not an unhandled error.
#![no_main]

use arbitrary::Arbitrary;
use bulwark::crypto::Secret;
use bulwark::crypto::field::{self, Place};
use bulwark::ids::TenantId;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const KEY: [u8; 32] = [7; 32];

fn key_for(version: u32) -> Option<Secret<[u8; 32]>> {
    (version == 1).then(|| Secret::new(KEY))
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    stored: &'a [u8],
    plaintext: &'a [u8],
    /// One change to a genuine ciphertext: (position, xor mask).
    flip: (u16, u8),
    other_column: &'a str,
    other_row: u128,
}

fuzz_target!(|input: Input<'_>| {
    let place = Place {
        tenant: TenantId::from_uuid(Uuid::from_u128(1)),
        table: "contacts",
        column: "email",
        row: Uuid::from_u128(2),
    };
    assert!(field::decrypt(key_for, &place, input.stored).is_err());
    let _ = field::key_version(input.stored);

    let sealed = field::encrypt(&Secret::new(KEY), 1, &place, input.plaintext);
    let opened = field::decrypt(key_for, &place, &sealed).expect("a genuine value decrypts");
    assert_eq!(opened.as_slice(), input.plaintext);

    let (at, mask) = input.flip;
    if mask != 0 {
        let mut tampered = sealed.clone();
        let at = usize::from(at) % tampered.len();
        tampered[at] ^= mask;
        assert!(field::decrypt(key_for, &place, &tampered).is_err(), "a changed byte decrypted");
    }
    if input.other_column != place.column {
        let elsewhere = Place { column: input.other_column, ..place };
        assert!(field::decrypt(key_for, &elsewhere, &sealed).is_err(), "moved to another column");
    }
    if input.other_row != 2 {
        let elsewhere = Place { row: Uuid::from_u128(input.other_row), ..place };
        assert!(field::decrypt(key_for, &elsewhere, &sealed).is_err(), "moved to another row");
    }
});
