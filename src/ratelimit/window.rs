//! The sliding-window counter both backends use (the Redis script mirrors `hit`).
//!
//! Each key keeps the count of the current fixed window and of the previous one; the
//! estimate of the last `window` is `previous × (unelapsed share of the current window) +
//! current`. A request is admitted while the estimate stays under the limit, so "at most N
//! per window" holds at every instant to within the weighting, without storing a log.

/// A key's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Index of the current window (`now / window`).
    pub window: u64,
    pub current: u32,
    pub previous: u32,
    /// The 80 % warning was given for this window.
    pub warned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests left in the current estimate after this one.
    pub remaining: u32,
    /// Milliseconds until the current window ends.
    pub reset_ms: u64,
    /// When refused: milliseconds until one more request would be admitted.
    pub retry_after_ms: u64,
    /// This request took the estimate past 80 % of the limit for the first time this window.
    pub crossed_warning: bool,
}

/// Counts one request at `now_ms` against `limit` per `window_ms`.
pub fn hit(counter: &mut Counter, now_ms: u64, limit: u32, window_ms: u64) -> Decision {
    let window_ms = window_ms.max(1);
    let index = now_ms / window_ms;
    if index != counter.window {
        counter.previous = if index == counter.window + 1 { counter.current } else { 0 };
        counter.current = 0;
        counter.window = index;
        counter.warned = false;
    }
    let elapsed = now_ms - index * window_ms;
    let reset_ms = window_ms - elapsed;
    let weight = reset_ms as f64 / window_ms as f64;
    let estimate = f64::from(counter.previous) * weight + f64::from(counter.current);
    let limit_f = f64::from(limit);
    if estimate + 1.0 > limit_f {
        return Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_ms,
            retry_after_ms: retry_after(counter, elapsed, limit, window_ms),
            crossed_warning: false,
        };
    }
    counter.current += 1;
    let estimate = estimate + 1.0;
    let crossed_warning = !counter.warned && estimate >= 0.8 * limit_f;
    if crossed_warning {
        counter.warned = true;
    }
    Decision {
        allowed: true,
        limit,
        remaining: (limit_f - estimate).floor().max(0.0) as u32,
        reset_ms,
        retry_after_ms: 0,
        crossed_warning,
    }
}

/// How long until the estimate lets one more request in.
fn retry_after(counter: &Counter, elapsed: u64, limit: u32, window_ms: u64) -> u64 {
    let (w, l) = (window_ms as f64, f64::from(limit));
    let (p, c) = (f64::from(counter.previous), f64::from(counter.current));
    let wait = if c + 1.0 > l {
        // Not within this window: in the next one the current count becomes the previous.
        (w - elapsed as f64) + w * (1.0 - (l - 1.0) / c.max(1.0))
    } else if p > 0.0 {
        // previous × (1 - (elapsed + t) / w) + current + 1 <= limit
        w * (1.0 - (l - 1.0 - c) / p) - elapsed as f64
    } else {
        0.0
    };
    wait.ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    #[test]
    fn the_limit_plus_one_request_in_a_window_is_refused() {
        let mut c = Counter::default();
        for n in 0..20 {
            let d = hit(&mut c, 1_000 + n, 20, MINUTE);
            assert!(d.allowed, "request {}", n + 1);
            assert_eq!(d.remaining, 19 - n as u32);
        }
        let d = hit(&mut c, 1_100, 20, MINUTE);
        assert!(!d.allowed);
        assert!(d.retry_after_ms >= 1 && d.retry_after_ms <= 2 * MINUTE);
    }

    #[test]
    fn the_previous_window_still_weighs_after_the_boundary() {
        let mut c = Counter::default();
        for n in 0..20 {
            hit(&mut c, 50_000 + n, 20, MINUTE);
        }
        // Just after the boundary almost all of the previous window still counts.
        assert!(!hit(&mut c, 61_000, 20, MINUTE).allowed);
        // Half way through the next window, half of it does.
        let mut admitted = 0;
        for n in 0..20 {
            if hit(&mut c, 90_000 + n, 20, MINUTE).allowed {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10);
        // Two windows later, nothing of it is left.
        assert!(hit(&mut c, 200_000, 20, MINUTE).allowed);
    }

    #[test]
    fn the_warning_fires_once_per_window_at_80_percent() {
        let mut c = Counter::default();
        let crossed: Vec<bool> =
            (0..10).map(|n| hit(&mut c, n, 10, MINUTE).crossed_warning).collect();
        assert_eq!(crossed.iter().filter(|x| **x).count(), 1);
        assert!(crossed[7], "the 8th of 10 crosses 80 %");
    }

    #[test]
    fn retry_after_admits_the_next_request() {
        let mut c = Counter::default();
        for n in 0..5 {
            hit(&mut c, 10_000 + n, 5, MINUTE);
        }
        let refused = hit(&mut c, 10_010, 5, MINUTE);
        assert!(!refused.allowed);
        let later = 10_010 + refused.retry_after_ms;
        assert!(hit(&mut c, later, 5, MINUTE).allowed, "retry after {} ms", refused.retry_after_ms);
    }
}
