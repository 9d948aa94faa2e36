-- Replaces a stored user's password hash; returns 1, or 0 when there is no such user (and
-- creates none).
-- KEYS[1] users hash. ARGV[1] user name, ARGV[2] the new PHC string.
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return 0
end
local user = cjson.decode(json)
user.password_hash = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(user))
return 1
