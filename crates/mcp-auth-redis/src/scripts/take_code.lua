-- Consumes a code, leaving it as its own redemption marker until it expires.
-- KEYS[1] code key. ARGV[1] now.
-- Returns {0, ''} missing or expired, {1, record} taken, {2, record} already redeemed.
local v = redis.call('HMGET', KEYS[1], 'record', 'redeemed', 'expires_at')
if not v[1] or tonumber(v[3]) <= tonumber(ARGV[1]) then
  return {0, ''}
end
if v[2] == '1' then
  return {2, v[1]}
end
redis.call('HSET', KEYS[1], 'redeemed', '1')
return {1, v[1]}
