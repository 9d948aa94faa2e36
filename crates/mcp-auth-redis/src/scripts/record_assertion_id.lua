-- Records an assertion id if absent; an entry expired at the caller's `now` counts as absent.
-- KEYS[1] assertion key, KEYS[2] assertions index. ARGV[1] expires_at, ARGV[2] now.
-- Returns 1 for the first use, 0 for a replay.
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) > tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
expire_and_index(KEYS[1], tonumber(ARGV[1]), KEYS[2])
return 1
