-- Revokes a grant: deletes all its tokens and refuses new ones until keep_until.
-- KEYS[1] revoked marker, KEYS[2] grant access set, KEYS[3] grant refresh set,
-- KEYS[4] tokens index. ARGV[1] keep_until.
delete_members(KEYS[2])
delete_members(KEYS[3])
-- A second revocation may extend the refusal, never shorten it.
local keep_until = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > keep_until then
  keep_until = current
end
redis.call('SET', KEYS[1], keep_until)
expire_and_index(KEYS[1], keep_until, KEYS[4])
return 1
