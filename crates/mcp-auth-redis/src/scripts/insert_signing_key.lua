-- Stores a signing key unless its generation is stored, and refuses a kid stored under another
-- generation. Check and write are one script, so of concurrent inserts of one generation
-- exactly one stores it, and no two generations ever share a kid. The hash holds a handful of
-- keys (see `SigningKeyStore`), so scanning its values costs little.
-- KEYS[1] signing keys hash. ARGV[1] generation (decimal), ARGV[2] kid, ARGV[3] the key's JSON.
-- Returns 1 stored; 0 the generation is stored; 2 the kid is stored under another generation
-- (nothing changed in either case).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
for _, json in ipairs(redis.call('HVALS', KEYS[1])) do
  if cjson.decode(json).kid == ARGV[2] then
    return 2
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
