-- Rotates a refresh token: marks it rotated, deletes the grant's access tokens, stores the new
-- access token and (optionally) refresh token.
-- KEYS[1] old refresh key, KEYS[2] revoked marker, KEYS[3] grant access set,
-- KEYS[4] grant refresh set, KEYS[5] tokens index, KEYS[6] grants index, KEYS[7] new access key,
-- KEYS[8] new refresh key (optional).
-- ARGV[1] now, ARGV[2] grant id of the new tokens, ARGV[3] access JSON, ARGV[4] access expiry,
-- ARGV[5] refresh JSON, ARGV[6] refresh expiry (both only with KEYS[8]).
-- Returns {0, ''} missing, expired or revoked; {1, ''} rotated; {2, grant} already rotated;
-- {3, grant} the new tokens name another grant than the old one (nothing stored).
local v = redis.call('HMGET', KEYS[1], 'grant_id', 'rotated', 'expires_at')
if not v[1] or tonumber(v[3]) <= tonumber(ARGV[1]) then
  return {0, ''}
end
if v[2] == '1' then
  return {2, v[1]}
end
if v[1] ~= ARGV[2] then
  return {3, v[1]}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, ''}
end
redis.call('HSET', KEYS[1], 'rotated', '1', 'rotated_at', ARGV[1])
delete_members(KEYS[3])
store_access(KEYS[7], ARGV[3], tonumber(ARGV[4]), KEYS[3], KEYS[5], KEYS[6])
if KEYS[8] then
  store_refresh(KEYS[8], ARGV[5], tonumber(ARGV[6]), ARGV[2], KEYS[4], KEYS[5], KEYS[6])
end
return {1, ''}
