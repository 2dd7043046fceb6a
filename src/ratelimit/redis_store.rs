//! The Redis backend: the sliding-window counter of `window.rs` as one Lua script, so each
//! decision is atomic across instances, timed by the Redis server's clock so instances with
//! skewed clocks agree on window boundaries.

use super::window::Decision;
use crate::redis_link::{RedisError, RedisLink};

const SCRIPT: &str = r#"
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local index = math.floor(now / window)
local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p', 'x')
local w = tonumber(h[1]) or -1
local c = tonumber(h[2]) or 0
local p = tonumber(h[3]) or 0
local warned = h[4] == '1'
if index ~= w then
  if index == w + 1 then p = c else p = 0 end
  c = 0
  warned = false
end
local elapsed = now - index * window
local reset = window - elapsed
local estimate = p * (reset / window) + c
local allowed = 1
local remaining = 0
local retry = 0
local crossed = 0
if estimate + 1 > limit then
  allowed = 0
  local wait = 0
  if c + 1 > limit then
    wait = (window - elapsed) + window * (1 - (limit - 1) / math.max(c, 1))
  elseif p > 0 then
    wait = window * (1 - (limit - 1 - c) / p) - elapsed
  end
  retry = math.max(1, math.ceil(wait))
else
  c = c + 1
  estimate = estimate + 1
  if (not warned) and estimate >= 0.8 * limit then
    warned = true
    crossed = 1
  end
  remaining = math.max(0, math.floor(limit - estimate))
end
redis.call('HSET', KEYS[1], 'w', index, 'c', c, 'p', p, 'x', warned and '1' or '0')
redis.call('PEXPIRE', KEYS[1], window * 2)
return {allowed, remaining, reset, retry, crossed}
"#;

pub struct RedisStore {
    redis: RedisLink,
    script: redis::Script,
}

impl RedisStore {
    pub fn new(redis: RedisLink) -> RedisStore {
        RedisStore { redis, script: redis::Script::new(SCRIPT) }
    }

    pub async fn hit(&self, key: &str, limit: u32, window_ms: u64) -> Result<Decision, RedisError> {
        let redis_key = format!("bulwark:rl:{key}");
        let (limit_arg, window_arg) = (limit.to_string(), window_ms.to_string());
        let (allowed, remaining, reset, retry, crossed): (i64, i64, i64, i64, i64) =
            self.redis.script(&self.script, &[&redis_key], &[&limit_arg, &window_arg]).await?;
        let positive = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Decision {
            allowed: allowed == 1,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_ms: positive(reset),
            retry_after_ms: positive(retry),
            crossed_warning: crossed == 1,
        })
    }
}
