-- Stores the tokens of a new issuance unless the grant is revoked.
-- KEYS[1] revoked marker, KEYS[2] grant access set, KEYS[3] grant refresh set,
-- KEYS[4] tokens index, KEYS[5] grants index, KEYS[6] access key, KEYS[7] refresh key (optional).
-- ARGV[1] grant id, ARGV[2] access JSON, ARGV[3] access expiry, ARGV[4] refresh JSON,
-- ARGV[5] refresh expiry (both only with KEYS[7]).
-- Returns 1 when stored, 0 when the grant is revoked (nothing stored).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
store_access(KEYS[6], ARGV[2], tonumber(ARGV[3]), KEYS[2], KEYS[4], KEYS[5])
if KEYS[7] then
  store_refresh(KEYS[7], ARGV[4], tonumber(ARGV[5]), ARGV[1], KEYS[3], KEYS[4], KEYS[5])
end
return 1
