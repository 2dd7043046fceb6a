//! Passwords: the policy, and Argon2id hashing on a bounded pool.
//!
//! Hashing is deliberately expensive, so it never runs on the async workers: a fixed number
//! of blocking workers hash, a bounded queue waits for them, and when the queue is full a
//! caller is refused at once (`Busy`, answered 503 with Retry-After) instead of piling up.
//! A login flood therefore costs at most `workers` cores and cannot starve other requests.
//!
//! The workers are threads of their own, alive as long as the hasher, and each keeps one
//! Argon2 memory (19 MiB with the defaults) for every hash it runs. Allocating it per hash,
//! on tokio's blocking pool, left the allocator holding freed 19 MiB blocks in every arena a
//! hash had touched: a 3-minute soak with logins held 370 MiB (bench/run.sh). Now the process
//! holds `workers` × 19 MiB for hashing once the first login came, reused by every hash.
//! (Freeing it when idle was tried: the allocator keeps the pages anyway.)
//! `hash_with` and `matches` are the library's `hash_password` and `verify_password` with
//! that memory passed in (`hash_password_into_with_memory`); comparison stays the PHC
//! `Output`'s constant-time equality.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// A hashing thread's Argon2 memory, allocated on its first hash and kept.
type Memory = Vec<Block>;
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// The hashing threads' queue; they end when the last hasher is dropped.
    jobs: mpsc::Sender<Job>,
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
        let (jobs, queue_rx) = mpsc::channel::<Job>();
        let queue_rx = Arc::new(Mutex::new(queue_rx));
        for n in 0..workers {
            let queue_rx = queue_rx.clone();
            std::thread::Builder::new()
                .name(format!("bulwark-hash-{n}"))
                .spawn(move || {
                    let mut memory = Memory::new();
                    loop {
                        // A poisoned lock means another worker panicked while taking a job;
                        // the queue itself is intact, so carry on with it.
                        let job = queue_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { return };
                        // A panicking job must not take its thread with it (the queue would
                        // be left to the others, or to nobody); its caller sees the failure.
                        let run = std::panic::AssertUnwindSafe(|| job(&mut memory));
                        let _ = std::panic::catch_unwind(run);
                    }
                })
                .map_err(|err| HashError::Failed(err.to_string()))?;
        }
        // Not a hash of anything: our parameters, a random salt and a random output, so that
        // verifying against it costs exactly one hash with our parameters and never matches
        // (a 2^-256 chance). Hashing a random password at start cost 19 MiB of memory that
        // the allocator then kept for the life of the process (issue 14's idle RSS).
        let dummy_output = crate::crypto::random_bytes::<{ Params::DEFAULT_OUTPUT_LEN }>();
        let dummy_hash = phc_string(&params, &crate::crypto::random_bytes::<16>(), &dummy_output)?;
        Ok(PasswordHasher {
            params,
            jobs,
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
        self.run(&admission, move |memory| hash_with(&params, password.as_bytes(), memory)).await?
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
        self.run(admission, move |memory| {
            Ok(verify_blocking(&params, &password, &hash, real, memory))
        })
        .await?
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
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        // The worker permit travels with the job and is released when the job ends, not when
        // the caller stops waiting: a cancelled request's hash still counts against the
        // `workers` bound, so abandoned work can never queue up ahead of live logins.
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Failed("pool closed".into()))?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _worker = worker;
            // The caller is gone (its request was cancelled): nobody needs the hash.
            if !done.is_closed() {
                let _ = done.send(work(memory));
            }
        });
        self.jobs.send(job).map_err(|_| HashError::Failed("the hashing threads ended".into()))?;
        // A dropped sender means the job panicked on its thread.
        result.await.map_err(|_| HashError::Failed("a hashing job panicked".into()))
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn failed(err: impl std::fmt::Display) -> HashError {
    HashError::Failed(err.to_string())
}

/// The largest cost a stored hash may ask for (an import): more is refused, not attempted,
/// so one crafted hash can neither exhaust memory nor hold a hashing thread for hours.
const MAX_STORED_M_KIB: u32 = 256 * 1024;
const MAX_STORED_T: u32 = 10;
const MAX_STORED_P: u32 = 16;

/// The most expensive bcrypt cost an import may carry (each step doubles the work).
const MAX_BCRYPT_COST: u32 = 14;

/// Whether an imported hash is one this server verifies, at a cost it accepts: bcrypt up to
/// cost 14, or an Argon2id PHC string within the stored-hash caps above.
pub fn importable(hash: &str) -> bool {
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        return hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|cost| cost <= MAX_BCRYPT_COST && hash.as_bytes().get(6) == Some(&b'$'));
    }
    PasswordHash::new(hash).is_ok_and(|phc| {
        phc.algorithm.as_str() == "argon2id"
            && phc.salt.is_some()
            && phc.hash.is_some()
            && Params::try_from(&phc).is_ok_and(|p| within_caps(&p))
    })
}

fn within_caps(params: &Params) -> bool {
    params.m_cost() <= MAX_STORED_M_KIB
        && params.t_cost() <= MAX_STORED_T
        && params.p_cost() <= MAX_STORED_P
}

/// Wipes blocks when dropped, also when the hash panicked: what a hash leaves in its memory
/// is derived from the password (a "garbage collector" attack reads it).
struct Wiped<'a>(&'a mut [Block]);

impl Drop for Wiped<'_> {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(zeroize::Zeroize::zeroize);
    }
}

/// Runs `f` on the first `needed` blocks of the thread's memory, which is grown once to
/// `kept` (our own parameters' block count), and wipes them afterwards. A stored hash that
/// needs more than ours (an import) gets memory of its own for that one check, so the kept
/// memory stays our size; `None` when that memory cannot be had.
fn with_memory<T>(
    memory: &mut Memory,
    kept: usize,
    needed: usize,
    f: impl FnOnce(&mut [Block]) -> T,
) -> Option<T> {
    if needed > kept {
        let mut own = Memory::new();
        own.try_reserve_exact(needed).ok()?;
        own.resize(needed, Block::default());
        let blocks = Wiped(&mut own);
        return Some(f(&mut *blocks.0));
    }
    if memory.len() < kept {
        memory.try_reserve_exact(kept - memory.len()).ok()?;
        memory.resize(kept, Block::default());
    }
    let blocks = Wiped(&mut memory[..needed]);
    Some(f(&mut *blocks.0))
}

/// `Argon2::hash_password` (Argon2id, v19, a random 16-byte salt, 32-byte output) on the
/// thread's memory, as a PHC string.
fn hash_with(params: &Params, password: &[u8], memory: &mut Memory) -> Result<String, HashError> {
    let salt = crate::crypto::random_bytes::<16>();
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    let blocks = params.block_count();
    with_memory(memory, blocks, blocks, |blocks| {
        argon2(params).hash_password_into_with_memory(password, &salt, out.as_mut_slice(), blocks)
    })
    .ok_or_else(|| failed("no memory for the hash"))?
    .map_err(failed)?;
    phc_string(params, &salt, out.as_slice())
}

/// The PHC string of an Argon2id v19 hash with these parameters, salt and output.
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> Result<String, HashError> {
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(failed)?,
        salt: Some(Salt::new(salt).map_err(failed)?),
        hash: Some(Output::new(output).map_err(failed)?),
    };
    Ok(phc.to_string())
}

/// `Argon2::verify_password` on the thread's memory: the stored hash's own algorithm,
/// version and parameters, and `Output`'s constant-time comparison.
fn matches(ours: &Params, password: &[u8], stored: &PasswordHash, memory: &mut Memory) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else { return false };
    let Ok(version) = stored.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(stored) else { return false };
    if !within_caps(&params) {
        return false;
    }
    let mut out = Zeroizing::new(vec![0u8; expected.as_bytes().len()]);
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = with_memory(memory, ours.block_count(), params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt, out.as_mut_slice(), blocks)
    });
    computed.is_some_and(|c| c.is_ok())
        && Output::new(out.as_slice()).is_ok_and(|out| &out == expected)
}

fn verify_blocking(
    params: &Params,
    password: &str,
    stored: &str,
    real: bool,
    memory: &mut Memory,
) -> Verified {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        if !importable(stored) {
            return Verified::No;
        }
        return match bcrypt::verify(password, stored) {
            Ok(true) if real => rehash(params, password, memory),
            _ => Verified::No,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else { return Verified::No };
    if !matches(params, password.as_bytes(), &parsed, memory) || !real {
        return Verified::No;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() >= params.m_cost() && p.t_cost() >= params.t_cost());
    if current { Verified::Yes } else { rehash(params, password, memory) }
}

fn rehash(params: &Params, password: &str, memory: &mut Memory) -> Verified {
    match hash_with(params, password.as_bytes(), memory) {
        Ok(hash) => Verified::YesRehashed(hash),
        // The password was right; keeping the old hash is better than refusing the login.
        Err(_) => Verified::Yes,
    }
}

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
        // The dummy costs what a real account costs: our parameters, a full-length output.
        let dummy = PasswordHash::new(&hasher.dummy_hash).expect("a PHC string");
        let costs = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost());
        assert_eq!(costs(&Params::try_from(&dummy).expect("params")), costs(&hasher.params));
        assert_eq!(dummy.hash.map(|h| h.len()), Some(Params::DEFAULT_OUTPUT_LEN));
        assert_eq!(hasher.verify(&password, Some("garbage")).await.expect("verify"), Verified::No);
    }

    /// `hash_with` and `matches` are the library's hashing and verification on kept memory:
    /// each accepts what the other side made, and only for the right password.
    #[test]
    fn kept_memory_hashing_agrees_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params =
            Params::new(FAST.memory_kib, FAST.iterations, FAST.parallelism, None).expect("params");
        let mut memory = Memory::new();
        let ours = hash_with(&params, b"correct horse", &mut memory).expect("hash");
        let zero = format!("{:?}", Block::new());
        assert!(memory.iter().all(|b| format!("{b:?}") == zero), "the memory is wiped after use");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(argon2(&params).verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2(&params).verify_password(b"wrong horse", &parsed).is_err());
        let theirs = argon2(&params).hash_password(b"correct horse").expect("hash").to_string();
        let theirs = PasswordHash::new(&theirs).expect("phc");
        assert!(matches(&params, b"correct horse", &theirs, &mut memory));
        assert!(!matches(&params, b"wrong horse", &theirs, &mut memory));
        // More memory than ours (an import) is checked on memory of its own.
        let big = Params::new(4 * FAST.memory_kib, 1, 1, None).expect("params");
        let imported = argon2(&big).hash_password(b"imported").expect("hash").to_string();
        let imported = PasswordHash::new(&imported).expect("phc");
        assert!(matches(&params, b"imported", &imported, &mut memory));
        assert_eq!(memory.len(), params.block_count(), "the kept memory stays our size");
        // A stored cost beyond the caps is refused, even for the right password.
        let slow = Params::new(FAST.memory_kib, MAX_STORED_T + 1, 1, None).expect("params");
        let slow = argon2(&slow).hash_password(b"correct horse").expect("hash").to_string();
        let slow = PasswordHash::new(&slow).expect("phc");
        assert!(!matches(&params, b"correct horse", &slow, &mut memory));
        assert!(importable(&ours) && !importable(&slow.to_string()));
        assert!(importable("$2b$12$abcdefghijklmnopqrstuu5ZO8ZRDRmjCy.7Pt5kUSHmJ6M5ELCJ2"));
        assert!(!importable("$2b$31$abcdefghijklmnopqrstuu5ZO8ZRDRmjCy.7Pt5kUSHmJ6M5ELCJ2"));
        assert!(!importable("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"));
        // A tampered output, salt or cost fails.
        for (from, to) in [("$m=1024", "$m=1025"), ("t=1,", "t=2,")] {
            let edited = ours.replacen(from, to, 1);
            assert_ne!(edited, ours);
            let edited = PasswordHash::new(&edited).expect("phc");
            assert!(!matches(&params, b"correct horse", &edited, &mut memory), "{from}");
        }
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
