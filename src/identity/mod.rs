//! Identity: passwords, login, sessions with rotating refresh tokens, access tokens, API
//! keys, lockout. Its output is a `Principal`, which only `authenticate` produces.
//!
//! Never: store or log a plaintext password or token (only hashes), tell a caller whether an
//! account exists, or accept an access token of a revoked session for longer than the
//! revocation cache's lifetime (under a second).

pub mod account;
pub mod api_keys;
mod authenticate;
pub mod cookie;
pub mod lockout;
pub mod login;
pub mod mail;
pub mod mfa;
pub mod password;
pub mod recovery;
pub mod routes;
pub mod session_cache;
pub mod store;
pub mod tokens;

use std::sync::Arc;

use unicode_normalization::UnicodeNormalization as _;

pub use api_keys::{API_KEY_PREFIX, ApiKeyCreated, NewApiKey, key_prefix};
pub use authenticate::{authenticate, bearer};

use crate::config::Config;
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::redis_link::RedisLink;
use crate::store::Store;
use crate::tenancy::{Permission, Role};

/// The identity services an application holds.
pub struct Identity {
    pub tokens: tokens::TokenKeys,
    pub hasher: password::PasswordHasher,
    pub sessions: session_cache::SessionCache,
    pub api_keys: api_keys::KeyCache,
    pub lockout: lockout::Lockout,
    pub mfa: mfa::Mfa,
    pub settings: Settings,
}

/// The identity settings, from `Config.identity`, in the units the code uses.
#[derive(Debug, Clone)]
pub struct Settings {
    pub signup_open: bool,
    pub session_idle: std::time::Duration,
    pub session_absolute: std::time::Duration,
    pub public_url: String,
}

impl Identity {
    pub fn new(
        config: &Config,
        store: Store,
        redis: Option<RedisLink>,
    ) -> anyhow::Result<Identity> {
        let id = &config.identity;
        let params = password::HashParams {
            memory_kib: id.argon2_memory_kib,
            iterations: id.argon2_iterations,
            parallelism: id.argon2_parallelism,
        };
        let hasher = password::PasswordHasher::new(params, id.hash_workers, id.hash_queue)?;
        let issuer = config.public_url.as_str().trim_end_matches('/').to_owned();
        Ok(Identity {
            tokens: tokens::TokenKeys::new(
                &config.secrets,
                &issuer,
                i64::try_from(id.access_token_ttl.as_secs()).unwrap_or(900),
            ),
            hasher,
            sessions: session_cache::SessionCache::new(redis.clone()),
            api_keys: api_keys::KeyCache::new(redis.clone()),
            lockout: lockout::Lockout::new(
                store,
                redis,
                lockout::Policy {
                    threshold: id.lockout_threshold,
                    window: id.lockout_window,
                    lock: id.lockout_duration,
                    ip_threshold: id.lockout_ip_threshold,
                },
            ),
            mfa: mfa::Mfa::new(id.step_up, &config.public_url),
            settings: Settings {
                signup_open: id.signup_open,
                session_idle: id.session_idle_timeout,
                session_absolute: id.session_absolute_timeout,
                public_url: issuer,
            },
        })
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionId),
    ApiKey { id: ApiKeyId, scopes: Arc<[Permission]> },
}

/// The account's profile as `/me` shows it, read together with the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub email: String,
    pub display_name: String,
    /// Whether the address was proven; accounts from open signup start unverified.
    pub email_verified: bool,
}

/// An authenticated caller. Private fields: only `authenticate` builds one.
#[derive(Debug, Clone)]
pub struct Principal {
    user_id: UserId,
    tenant_id: Option<TenantId>,
    role: Option<Role>,
    superadmin: bool,
    credential: Credential,
    profile: Arc<Profile>,
    /// The session's cached state (sessions only).
    session: Option<Arc<session_cache::LiveSession>>,
}

impl Principal {
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    pub fn is_superadmin(&self) -> bool {
        self.superadmin
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The session's state as authentication read it (see `session_cache`).
    pub fn session(&self) -> Option<&session_cache::LiveSession> {
        self.session.as_deref()
    }

    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(sid) => Some(sid),
            Credential::ApiKey { .. } => None,
        }
    }

    /// Role permissions, narrowed by the key's scopes for API keys.
    pub fn may(&self, permission: Permission) -> bool {
        let Some(role) = self.role else { return false };
        role.may(permission)
            && match &self.credential {
                Credential::Session(_) => true,
                Credential::ApiKey { scopes, .. } => {
                    permission.allowed_for_api_keys() && scopes.contains(&permission)
                }
            }
    }
}

/// The identity of an account: the address trimmed, lower-cased (all of it, local part
/// included: one account per address, whatever its case) and in Unicode NFC, so an `é`
/// typed composed (U+00E9) or decomposed (`e` + U+0301) names the same account.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase().nfc().collect()
}

/// A syntactic check, not a proof of ownership (that is what invitations are for). Beyond
/// the shape (`local@domain`; at most 64 bytes before the `@`, 253 after it, 254 in all; no
/// white space, control characters, `<` or `>`), it refuses what lets one address pass for
/// another:
///
/// - The domain is ASCII host-name labels only: letters, digits and `-`, 1 to 63 characters
///   each, not starting or ending with `-`, at least two labels. An internationalised domain
///   is accepted in its ASCII form (`xn--…`, which is shown as such) and never in Unicode, so
///   `exаmple.com` with a Cyrillic `а` cannot stand in for `example.com`.
/// - The local part may be Unicode, but holds no invisible or formatting character (general
///   category Cf such as U+200B and U+00AD, and the other default-ignorable code points such
///   as variation selectors and Hangul fillers), no compatibility character (anything NFKC
///   changes: full-width letters, ligatures, superscripts), and letters of one script only,
///   except the mixes of UTS #39's "highly restrictive" level (Latin with Han, Hiragana and
///   Katakana; Latin with Han and Bopomofo; Latin with Han and Hangul). Digits, punctuation
///   and combining marks belong to every script. Scripts this check does not name count as
///   one "other" script, which may be used alone. A local part wholly in one script (all
///   Cyrillic, say) is accepted: it is another address, as a different spelling is.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("must be an email address");
    };
    let valid = !local.is_empty()
        && local.len() <= 64
        && is_host_name(domain)
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if !valid || email.len() > 254 {
        return Err("must be an email address");
    }
    if local.chars().any(is_invisible) {
        return Err("must not contain invisible or formatting characters");
    }
    if !local.nfkc().eq(local.nfc()) {
        return Err("must not contain compatibility characters such as full-width letters");
    }
    if !single_script(local) {
        return Err("must not mix letters of different scripts");
    }
    Ok(())
}

/// ASCII host-name labels (LDH), at least two of them.
fn is_host_name(domain: &str) -> bool {
    let mut labels = 0;
    let all_valid = domain.split('.').all(|label| {
        labels += 1;
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    all_valid && labels >= 2 && domain.len() <= 253
}

/// General category Cf and the other default-ignorable code points (Unicode 15.1): they
/// render as nothing, so two addresses differing only by them look the same.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0xAD | 0x34F
            | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// The scripts `check_email` tells apart; the rest are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Hebrew,
    Arabic,
    Han,
    Hiragana,
    Katakana,
    Bopomofo,
    Hangul,
    Other,
}

/// The script of a letter; `None` for what every script shares (digits, punctuation,
/// combining marks).
fn script_of(c: char) -> Option<Script> {
    use Script::*;
    if !c.is_alphabetic() {
        return None;
    }
    Some(match u32::from(c) {
        0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F => {
            return None;
        }
        0x41..=0x5A
        | 0x61..=0x7A
        | 0xAA
        | 0xBA
        | 0xC0..=0x2AF
        | 0x1E00..=0x1EFF
        | 0x2C60..=0x2C7F
        | 0xA720..=0xA7FF
        | 0xAB30..=0xAB6F
        | 0xFF21..=0xFF3A
        | 0xFF41..=0xFF5A => Latin,
        0x370..=0x3FF | 0x1F00..=0x1FFF => Greek,
        0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Cyrillic,
        0x531..=0x58F | 0xFB13..=0xFB17 => Armenian,
        0x591..=0x5FF | 0xFB1D..=0xFB4F => Hebrew,
        0x600..=0x6FF | 0x750..=0x77F | 0x8A0..=0x8FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFC => Arabic,
        0x3040..=0x309F => Hiragana,
        0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => Katakana,
        0x3100..=0x312F | 0x31A0..=0x31BF => Bopomofo,
        0x1100..=0x11FF | 0x3130..=0x318F | 0xA960..=0xA97F | 0xAC00..=0xD7FF | 0xFFA0..=0xFFDC => {
            Hangul
        }
        0x2E80..=0x2FDF
        | 0x3005
        | 0x3007
        | 0x3021..=0x3029
        | 0x3038..=0x303B
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF
        | 0x20000..=0x323AF => Han,
        _ => Other,
    })
}

/// Letters of one script, or one of the mixes UTS #39 calls highly restrictive.
fn single_script(text: &str) -> bool {
    use Script::*;
    let mut seen: Vec<Script> = vec![];
    for script in text.chars().filter_map(script_of) {
        if !seen.contains(&script) {
            seen.push(script);
        }
    }
    let within = |allowed: &[Script]| seen.iter().all(|s| allowed.contains(s));
    seen.len() <= 1
        || within(&[Latin, Han, Hiragana, Katakana])
        || within(&[Latin, Han, Bopomofo])
        || within(&[Latin, Han, Hangul])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked_and_normalised() {
        assert_eq!(normalize_email("  Ada@Example.COM "), "ada@example.com");
        assert!(check_email("ada@example.com").is_ok());
        for bad in ["ada", "@example.com", "ada@", "ada@example", "a da@example.com", "ada@.com"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn composed_and_decomposed_letters_normalise_to_one_address() {
        let composed = "Jos\u{E9}@Example.com";
        let decomposed = "jose\u{301}@example.COM";
        assert_ne!(composed.to_lowercase(), decomposed.to_lowercase(), "the inputs differ");
        assert_eq!(normalize_email(composed), normalize_email(decomposed));
        assert_eq!(normalize_email(decomposed), "jos\u{E9}@example.com");
        // A capital of a decomposed letter too.
        assert_eq!(normalize_email("JOSE\u{301}@EXAMPLE.COM"), "jos\u{E9}@example.com");
        // Normalising is idempotent.
        let once = normalize_email(" \u{C9}mile\u{301}@Example.com");
        assert_eq!(normalize_email(&once), once);
        // Both forms pass the check, before and after normalising.
        for address in [composed, decomposed, &normalize_email(decomposed)] {
            assert!(check_email(address).is_ok(), "{address:?}");
        }
    }

    #[test]
    fn domains_are_ascii_host_names_so_lookalike_domains_are_refused() {
        for good in ["ada@example.com", "ada@a.co", "ada@sub-1.example.org", "ada@xn--mller-kva.de"]
        {
            assert!(check_email(good).is_ok(), "{good}");
        }
        for bad in [
            // Cyrillic а (U+0430), Greek ο (U+03BF), Latin ı (U+0131): lookalikes.
            "owner@ex\u{430}mple.com",
            "owner@example.c\u{3BF}m",
            "owner@paypa\u{131}.com",
            // A genuine IDN in Unicode: accepted only in its xn-- form.
            "owner@m\u{FC}ller.de",
            // Invisible characters and full-width dots in the domain.
            "owner@exam\u{200B}ple.com",
            "owner@example\u{FF0E}com",
            // Not host names.
            "owner@exa_mple.com",
            "owner@-example.com",
            "owner@example-.com",
            "owner@example..com",
            "owner@[192.0.2.1]",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
            assert!(check_email(&normalize_email(bad)).is_err(), "{bad:?} normalised");
        }
        let long_label = format!("ada@{}.com", "a".repeat(64));
        assert!(check_email(&long_label).is_err());
    }

    #[test]
    fn invisible_compatibility_and_mixed_script_local_parts_are_refused() {
        for bad in [
            // Format characters (Cf) and other default-ignorables.
            "own\u{200B}er@example.com",
            "own\u{AD}er@example.com",
            "\u{FEFF}owner@example.com",
            "owner\u{2066}@example.com",
            "owner\u{FE0F}@example.com",
            "own\u{3164}er@example.com",
            // Compatibility characters: full-width letters, a ligature, a superscript.
            "\u{FF41}dmin@example.com",
            "\u{FB01}nance@example.com",
            "admin\u{B2}@example.com",
            // Mixed scripts: Cyrillic а in Latin, Greek ο in Latin, Cyrillic with Han.
            "p\u{430}ypal@example.com",
            "r\u{3BF}ot@example.com",
            "\u{438}\u{432}\u{430}\u{43D}\u{5C71}@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
            assert!(check_email(&normalize_email(bad)).is_err(), "{bad:?} normalised");
        }
        for good in [
            // One script, with digits and punctuation.
            "\u{438}\u{432}\u{430}\u{43D}.2024@example.com",
            "\u{3B1}\u{3BB}\u{3AD}\u{3BE}\u{3B7}\u{3C2}@example.com",
            "fran\u{E7}ois+crm@example.com",
            // Combining marks belong to the letter they follow.
            "jose\u{301}@example.com",
            // The Japanese, Chinese and Korean mixes with Latin.
            "taro\u{5C71}\u{7530}\u{3084}\u{30DE}@example.com",
            "\u{D55C}\u{AD6D}kim\u{4E2D}@example.com",
        ] {
            assert!(check_email(good).is_ok(), "{good:?}");
        }
    }
}
