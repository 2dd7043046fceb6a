//! One bounded in-memory cache for the request path's lookups (sessions, API keys, verified
//! tokens): entries older than the time-to-live are misses, and past `max` entries the
//! expired ones go and, if that is not enough, everything (a flood of distinct keys costs a
//! cold start, never unbounded memory). A poisoned lock is a miss: the caller reads the
//! database instead.

use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys are ids and tokens this server issued (a token is stored only once verified), so a
/// fast seeded hash serves: SipHash of a 300-byte token was the largest cost of a cache hit.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    ttl: Duration,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TtlCache { entries: Mutex::new(HashMap::default()), ttl, max }
    }

    /// The value stored for `key` less than the time-to-live ago.
    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max {
                entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
                if entries.len() >= self.max {
                    entries.clear();
                }
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    /// Drops the entries `which` names.
    pub fn evict(&self, which: impl Fn(&K, &V) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, (v, _)| !which(k, v));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_evict_and_stay_bounded() {
        let cache = TtlCache::new(Duration::from_millis(50), 3);
        cache.put("a".to_owned(), 1);
        assert_eq!(cache.get("a"), Some(1));
        cache.evict(|k, _| k == "a");
        assert_eq!(cache.get("a"), None);
        for (n, k) in ["b", "c", "d", "e"].into_iter().enumerate() {
            cache.put(k.to_owned(), n);
        }
        let kept = ["b", "c", "d", "e"].iter().filter(|k| cache.get(**k).is_some()).count();
        assert!(kept <= 3, "{kept} entries in a cache of 3");
        assert_eq!(cache.get("e"), Some(3), "the newest entry is kept");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("e"), None, "an entry past its time-to-live is a miss");
    }
}
