-- Deletes up to ARGV[2] records whose expiry (their score in the index KEYS[1]) is at or before
-- ARGV[1], and their index entries. Returns {records deleted, index entries visited}; the
-- caller repeats while a full batch was visited, so no single call blocks Redis for long.
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #keys == 0 then
  return {0, 0}
end
local deleted = redis.call('DEL', unpack(keys))
redis.call('ZREM', KEYS[1], unpack(keys))
return {deleted, #keys}
