-- Stores one record with its expiry.
-- KEYS[1] record key, KEYS[2] expiry index.
-- ARGV[1] expires_at; ARGV[2] 'string' or 'hash'; ARGV[3] the value, or ARGV[3..] field/value
-- pairs of the hash.
local at = tonumber(ARGV[1])
redis.call('DEL', KEYS[1])
if ARGV[2] == 'string' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
end
expire_and_index(KEYS[1], at, KEYS[2])
return 1
