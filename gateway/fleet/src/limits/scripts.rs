//! The Lua scripts the fleet's counters are changed with: each runs
//! atomically in Redis, so two instances leasing at once never grant more
//! than the limit between them.

use std::sync::LazyLock;

use redis::Script;

/// A per-minute limit's lease: `KEYS[1]` the window's counter (what the
/// fleet granted in it); `ARGV` ask, limit, TTL in seconds. Grants
/// `min(ask, limit - granted)`; returns `{got, left}`.
pub(super) static LEASE_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[2])
local got = math.min(tonumber(ARGV[1]), limit - used)
if got < 0 then got = 0 end
if got > 0 then redis.call('INCRBY', KEYS[1], got) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local left = limit - used - got
if left < 0 then left = 0 end
return {got, left}
",
    )
});

/// An instance's settle of a window: `KEYS[1]` the counter; `ARGV`
/// delta (positive: an unused slice returned; negative: a debt charged),
/// TTL. Never below 0.
pub(super) static ADJUST_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], v, 'EX', ARGV[2])
return v
",
    )
});

/// A concurrency lease: `KEYS[1]` the tenant's hash (instance id -> slots
/// held), `KEYS[2]` the instances' sorted set (id -> lease expiry, ms);
/// `ARGV` id, ask, limit. Slots of instances whose lease expired are
/// dropped first. Returns `{got, left}`.
pub(super) static LEASE_CONC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  local exp = redis.call('ZSCORE', KEYS[2], all[i])
  if all[i] ~= ARGV[1] and (not exp or tonumber(exp) < now) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + tonumber(all[i + 1])
  end
end
local limit = tonumber(ARGV[3])
local got = math.min(tonumber(ARGV[2]), limit - total)
if got < 0 then got = 0 end
if got > 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], got) end
local left = limit - total - got
if left < 0 then left = 0 end
return {got, left}
",
    )
});

/// An instance's heartbeat: `KEYS[1]` the instances' sorted set; `ARGV`
/// id, lease TTL in ms. Drops expired instances; returns how many live.
pub(super) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
",
    )
});
