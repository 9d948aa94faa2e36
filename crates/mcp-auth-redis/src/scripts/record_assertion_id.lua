-- Records an assertion id if absent, with one `SET key 1 EXAT at NX`: the key and its expiry
-- are created together, so a key without an expiry never exists, and whether an entry is still
-- there is decided by Redis' clock alone (the caller's clock only chose `at`, clamped by the
-- caller to `now + 1 ..= now + MAX_REPLAY_WINDOW`). The key is then filed in the expiry index,
-- so that purge can find it by the caller's clock.
-- KEYS[1] assertion key, KEYS[2] assertions index. ARGV[1] at (seconds since the epoch).
-- Returns 1 for the first use, 0 for a replay.
if not redis.call('SET', KEYS[1], '1', 'EXAT', ARGV[1], 'NX') then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
-- Index entries scored before the server's clock belong to keys Redis has already expired.
local server_now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. server_now)
return 1
