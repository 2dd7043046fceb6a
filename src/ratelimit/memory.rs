//! The in-process backend: counters in sharded maps, bounded in memory.
//!
//! A counter whose windows have both passed holds no information and is swept; past
//! `max_keys` a shard drops its stale entries and then, if still full, arbitrary ones (a
//! flood of distinct keys can then reset some counters, but never grow memory without bound).
//! Keys are kept as 64-bit keyed hashes (SipHash with a per-process random key, so clients
//! cannot aim for collisions): about 50 bytes per counter.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use super::window::{self, Counter, Decision};

const SHARDS: usize = 32;

pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<u64, (Counter, u64)>>>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl MemoryStore {
    pub fn new(max_keys: usize) -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (max_keys / SHARDS).max(16),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<HashMap<u64, (Counter, u64)>> {
        // The modulo keeps the index in range.
        &self.shards[(hash as usize) % SHARDS]
    }

    pub fn hit(&self, key: &str, now_ms: u64, limit: u32, window_ms: u64) -> Decision {
        let hash = self.hasher.hash_one(key);
        let Ok(mut shard) = self.shard(hash).lock() else {
            // A poisoned lock means a panic mid-update elsewhere; admit rather than fail
            // every request of this shard.
            return Decision {
                allowed: true,
                limit,
                remaining: limit,
                reset_ms: window_ms,
                retry_after_ms: 0,
                crossed_warning: false,
            };
        };
        if !shard.contains_key(&hash) && shard.len() >= self.per_shard {
            evict(&mut shard, now_ms, self.per_shard);
        }
        let (counter, window) = shard.entry(hash).or_insert((Counter::default(), window_ms));
        *window = window_ms;
        window::hit(counter, now_ms, limit, window_ms)
    }

    /// Drops counters whose windows have passed. Called periodically.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            if let Ok(mut shard) = shard.lock() {
                let before = shard.len();
                shard.retain(|_, (counter, window)| !is_stale(counter, *window, now_ms));
                let keep = shard.len() * 2;
                shard.shrink_to(keep);
                removed += before - shard.len();
            }
        }
        metrics::gauge!("rate_limit_keys").set(self.len() as f64);
        removed
    }

    pub fn len(&self) -> usize {
        self.shards.iter().filter_map(|s| s.lock().ok()).map(|s| s.len()).sum()
    }
}

fn is_stale(counter: &Counter, window_ms: u64, now_ms: u64) -> bool {
    now_ms / window_ms.max(1) > counter.window + 1
}

fn evict(shard: &mut HashMap<u64, (Counter, u64)>, now_ms: u64, cap: usize) {
    shard.retain(|_, (counter, window)| !is_stale(counter, *window, now_ms));
    if shard.len() >= cap {
        let excess = shard.len() + 1 - cap * 3 / 4;
        let victims: Vec<u64> = shard.keys().take(excess).copied().collect();
        for key in victims {
            shard.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_per_key() {
        let store = MemoryStore::new(1000);
        for _ in 0..3 {
            assert!(store.hit("a", 0, 3, 60_000).allowed);
        }
        assert!(!store.hit("a", 1, 3, 60_000).allowed);
        assert!(store.hit("b", 1, 3, 60_000).allowed);
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_within_the_cap() {
        let store = MemoryStore::new(10_000);
        for n in 0..200_000u64 {
            store.hit(&format!("client-{n}"), n, 10, 60_000);
        }
        assert!(store.len() <= 10_000 + SHARDS, "{} keys kept", store.len());
    }

    #[test]
    fn stale_counters_are_swept() {
        let store = MemoryStore::new(1000);
        store.hit("a", 0, 3, 1000);
        store.hit("b", 2500, 3, 1000);
        assert_eq!(store.sweep(2600), 1);
        assert_eq!(store.len(), 1);
    }
}
