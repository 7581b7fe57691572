//! The Lua scripts that change a timeline: each a check and a write that
//! must not be split by another client's command (a push between "does the
//! key exist?" and `ZADD` would recreate an invalidated timeline). Each
//! touches the keys of one user only, which share a hash tag (see
//! [`super::layout`]), so they run on a Redis Cluster too. They are sent by
//! SHA (`EVALSHA`) and loaded on a `NOSCRIPT` answer.
//!
//! The markers are the ones of [`super::layout`]: `""` complete, `"\0"`
//! being rebuilt, `"\0\0"` cut.

/// Trims a timeline to `capacity` ids, oldest first, keeping the markers
/// (ranked lowest); marks it cut when it dropped anything.
const TRIM: &str = r"
local function trim(key, capacity)
  local markers = redis.call('ZLEXCOUNT', key, '-', '[\0\0')
  if redis.call('ZREMRANGEBYRANK', key, markers, -(capacity + 1)) > 0 then
    redis.call('ZADD', key, 0, '\0\0')
  end
end
";

/// KEYS: timeline, the reader's activity record. ARGV: member, capacity,
/// active only (0|1), open (0|1), seconds an opened timeline lives. Adds
/// the member to a timeline that exists (complete, or being rebuilt): 1.
/// With "active only", a reader without an activity record is skipped
/// first, 2, unless their timeline is being rebuilt: a returning reader's
/// rebuild opens the timeline before it reads the stores, so a push skipped
/// before that is in what it reads, and one after must land. A timeline that does not exist is
/// skipped, 0, unless "open": then it is created as being rebuilt (the
/// first read still rebuilds it, and the rebuild merges what landed) for
/// the given seconds, and gets the member, 1.
const PUSH: &str = r"
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 0
  and not redis.call('ZSCORE', KEYS[1], '\0') then return 2 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[4] ~= '1' then return 0 end
  redis.call('ZADD', KEYS[1], 0, '\0')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
trim(KEYS[1], tonumber(ARGV[2]))
return 1
";

/// KEYS: timeline, rebuild token. ARGV: token, seconds to finish. Makes
/// `token` the current rebuild and opens the timeline to pushes.
const BEGIN_REBUILD: &str = r"
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[1], 0, '\0')
redis.call('EXPIRE', KEYS[1], ARGV[2], 'NX')
return 1
";

/// KEYS: timeline, rebuild token, pulled authors, the reader's activity
/// record. ARGV: token, ttl, capacity, cut (0|1), the pulled authors' ids
/// (one string), the activity window in seconds (0: none), then the tweet
/// ids. Completes the timeline, and stores its pulled authors beside it,
/// only if `token` is still the current rebuild and the timeline still
/// awaits it: an invalidation (which deletes every key of the user), a newer
/// rebuild (which replaced the token) or an eviction since the rebuild began
/// makes it a no-op returning 0. With a window, the reader is recorded as
/// active here, with the timeline that is now up to date, and not before.
const COMPLETE_REBUILD: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if not redis.call('ZSCORE', KEYS[1], '\0') then return 0 end
redis.call('ZREM', KEYS[1], '\0')
redis.call('ZADD', KEYS[1], 0, '')
if ARGV[4] == '1' then redis.call('ZADD', KEYS[1], 0, '\0\0') end
for first = 7, #ARGV, 500 do
  local args = {}
  for i = first, math.min(first + 499, #ARGV) do
    args[#args + 1] = 0
    args[#args + 1] = ARGV[i]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
trim(KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[2])
if ARGV[6] ~= '0' then redis.call('SET', KEYS[4], 1, 'EX', ARGV[6]) end
return 1
";

pub struct Scripts {
    pub push: redis::Script,
    pub begin_rebuild: redis::Script,
    pub complete_rebuild: redis::Script,
}

impl Scripts {
    pub fn new() -> Self {
        let with_trim = |body: &str| redis::Script::new(&format!("{TRIM}{body}"));
        Self {
            push: with_trim(PUSH),
            begin_rebuild: redis::Script::new(BEGIN_REBUILD),
            complete_rebuild: with_trim(COMPLETE_REBUILD),
        }
    }
}
