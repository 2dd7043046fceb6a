//! Passwords: the policy, and Argon2id hashing on a bounded pool.
//!
//! Hashing is deliberately expensive, so it never runs on the async workers: a fixed number
//! of blocking workers hash, a bounded queue waits for them, and when the queue is full a
//! caller is refused at once (`Busy`, answered 503 with Retry-After) instead of piling up.
//! A login flood therefore costs at most `workers` cores and cannot starve other requests.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::crypto::Secret;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    pub const OWASP: HashParams = HashParams { memory_kib: 19_456, iterations: 2, parallelism: 1 };
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the password hashing pool is saturated")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored as bcrypt or with weaker parameters: store this new hash.
    YesRehashed(String),
}

/// Proof of a place in the hashing pool; released on drop.
pub struct Admission(
    #[expect(dead_code, reason = "held for its Drop")] tokio::sync::OwnedSemaphorePermit,
);

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// Permits for hashing right now.
    workers: Arc<Semaphore>,
    /// Permits for being admitted at all (workers + queue).
    admitted: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does not exist, so an
    /// unknown email costs as much time as a wrong password.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    pub fn new(params: HashParams, workers: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|err| HashError::Failed(err.to_string()))?;
        let workers = workers.max(1);
        let dummy_password = Zeroizing::new(crate::crypto::random_bytes::<32>());
        let dummy_hash = argon2(&params)
            .hash_password(dummy_password.as_slice())
            .map_err(|err| HashError::Failed(err.to_string()))?
            .to_string();
        Ok(PasswordHasher {
            params,
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    /// A place in the pool, taken before any other work of a login so that a request the
    /// pool cannot serve is refused before it costs a database lookup.
    pub fn admit(&self) -> Result<Admission, HashError> {
        self.admitted.clone().try_acquire_owned().map(Admission).map_err(|_| HashError::Busy)
    }

    pub async fn hash(&self, password: &Secret<String>) -> Result<String, HashError> {
        let admission = self.admit()?;
        let params = self.params.clone();
        let password = Zeroizing::new(password.expose().clone());
        self.run(&admission, move || {
            argon2(&params)
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| HashError::Failed(err.to_string()))
        })
        .await?
    }

    /// Verifies against a stored Argon2 or imported bcrypt hash, or against the dummy hash
    /// when there is no account (`stored = None`), which always answers `No`.
    pub async fn verify(
        &self,
        password: &Secret<String>,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let admission = self.admit()?;
        self.verify_admitted(&admission, password, stored).await
    }

    pub async fn verify_admitted(
        &self,
        admission: &Admission,
        password: &Secret<String>,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let params = self.params.clone();
        let password = Zeroizing::new(password.expose().clone());
        let (hash, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.as_ref().clone(), false),
        };
        self.run(admission, move || Ok(verify_blocking(&params, &password, &hash, real))).await?
    }

    /// Burns the time of one verification without a result: for locked accounts, so a lock
    /// is not visible in the response time either.
    pub async fn waste_one_verification(
        &self,
        admission: &Admission,
        password: &Secret<String>,
    ) -> Result<(), HashError> {
        self.verify_admitted(admission, password, None).await.map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        _admission: &Admission,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Failed("pool closed".into()))?;
        tokio::task::spawn_blocking(work).await.map_err(|err| HashError::Failed(err.to_string()))
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn verify_blocking(params: &Params, password: &str, stored: &str, real: bool) -> Verified {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return match bcrypt::verify(password, stored) {
            Ok(true) if real => rehash(params, password),
            _ => Verified::No,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else { return Verified::No };
    if argon2(params).verify_password(password.as_bytes(), &parsed).is_err() || !real {
        return Verified::No;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() >= params.m_cost() && p.t_cost() >= params.t_cost());
    if current { Verified::Yes } else { rehash(params, password) }
}

fn rehash(params: &Params, password: &str) -> Verified {
    match argon2(params).hash_password(password.as_bytes()) {
        Ok(hash) => Verified::YesRehashed(hash.to_string()),
        // The password was right; keeping the old hash is better than refusing the login.
        Err(_) => Verified::Yes,
    }
}

/// Why a new password is refused; messages never repeat the password.
pub fn check_policy(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("must be at least {MIN_LENGTH} characters"));
    }
    if length > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    if password.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let inputs: Vec<&str> = user_inputs
        .iter()
        .flat_map(|input| input.split(|c: char| !c.is_alphanumeric()))
        .filter(|part| part.len() >= 3)
        .chain(["bulwark", "crm"])
        .collect();
    let lower = password.to_lowercase();
    if inputs.iter().any(|part| part.chars().count() >= 4 && lower.contains(&part.to_lowercase())) {
        return Err("must not contain your name, email or organisation".into());
    }
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map_or_else(String::new, |w| format!(" ({w})"));
        return Err(format!("is too easy to guess{hint}; use a longer passphrase"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: HashParams = HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 };

    #[test]
    fn the_policy_refuses_short_long_common_and_personal_passwords() {
        assert!(check_policy("short", &[]).is_err());
        assert!(check_policy(&"a".repeat(129), &[]).is_err());
        assert!(check_policy("password1234", &[]).is_err());
        assert!(check_policy("qwertyuiop123", &[]).is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa", &[]).is_err());
        assert!(check_policy("margaret.hamilton1969", &["margaret.hamilton@example.com"]).is_err());
        assert!(check_policy("correct horse battery staple 42", &[]).is_ok());
        assert!(check_policy("vX9#qL2!mT7@wR4$", &[]).is_ok());
    }

    #[tokio::test]
    async fn argon2id_hashes_verify_and_unknown_accounts_never_do() {
        let hasher = PasswordHasher::new(FAST, 1, 4).expect("hasher");
        let password = Secret::new("correct horse battery staple".to_owned());
        let hash = hasher.hash(&password).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(hasher.verify(&password, Some(&hash)).await.expect("verify"), Verified::Yes);
        let wrong = Secret::new("wrong horse battery staple".to_owned());
        assert_eq!(hasher.verify(&wrong, Some(&hash)).await.expect("verify"), Verified::No);
        assert_eq!(hasher.verify(&password, None).await.expect("verify"), Verified::No);
        assert_eq!(hasher.verify(&password, Some("garbage")).await.expect("verify"), Verified::No);
    }

    #[tokio::test]
    async fn bcrypt_and_weaker_argon2_hashes_are_upgraded_on_success() {
        let hasher = PasswordHasher::new(FAST, 1, 4).expect("hasher");
        let password = Secret::new("imported from the old system".to_owned());
        let bcrypt_hash = bcrypt::hash(password.expose(), 4).expect("bcrypt");
        match hasher.verify(&password, Some(&bcrypt_hash)).await.expect("verify") {
            Verified::YesRehashed(new) => assert!(new.starts_with("$argon2id$"), "{new}"),
            other => panic!("expected a rehash, got {other:?}"),
        }
        let weak = PasswordHasher::new(
            HashParams { memory_kib: 512, iterations: 1, parallelism: 1 },
            1,
            4,
        )
        .expect("hasher");
        let weak_hash = weak.hash(&password).await.expect("hash");
        assert!(matches!(
            hasher.verify(&password, Some(&weak_hash)).await.expect("verify"),
            Verified::YesRehashed(_)
        ));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hasher = PasswordHasher::new(FAST, 1, 0).expect("hasher");
        let _held = hasher.admitted.clone().try_acquire_owned().expect("the only permit");
        let password = Secret::new("anything at all here".to_owned());
        assert!(matches!(hasher.hash(&password).await, Err(HashError::Busy)));
    }
}
