//! RFC 6238 TOTP computed independently of Bulwark (and of totp-rs): HMAC-SHA-1 over the
//! 30-second counter, dynamic truncation, 6 digits.

use hmac::{KeyInit as _, Mac as _};

/// RFC 4648 base32 (no padding), as authenticator apps read it.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = vec![];
    for c in text.bytes().filter(|c| *c != b'=') {
        let value =
            ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()).expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

pub fn code_at(secret: &[u8], unix_seconds: u64) -> String {
    let counter = unix_seconds / 30;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).expect("key");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs()
}

#[test]
fn the_rfc_6238_vectors_hold() {
    let secret = b"12345678901234567890";
    for (time, code) in [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
    ] {
        assert_eq!(code_at(secret, time), code, "T={time}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQ"), b"1234567890");
}
