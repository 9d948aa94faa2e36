-- Shared by every script that stores something; prepended to it with concat!.
--
-- Scripts run atomically: Redis executes nothing else while one runs, which is what makes each
-- storage operation all-or-nothing and linearizable. Times are seconds since the epoch.

-- Sets `key` to expire at `at` and adds it to the expiry index `idx`, so that purge can find
-- it by the caller's clock. Index entries whose score lies before the server's clock belong to
-- keys Redis has already expired, so they are dropped here: the index never outgrows the live
-- data, even if purge is never called.
local function expire_and_index(key, at, idx)
  redis.call('EXPIREAT', key, at)
  redis.call('ZADD', idx, at, key)
  local server_now = tonumber(redis.call('TIME')[1])
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. server_now)
end

-- Extends the life of a grant's token set `set` to at least `at` (never shortens it).
local function extend(set, at, idx)
  local current = redis.call('EXPIRETIME', set)
  if current < at then
    redis.call('EXPIREAT', set, at)
  end
  redis.call('ZADD', idx, 'GT', at, set)
end

-- Stores an access token (a JSON string) and files it under its grant.
local function store_access(key, json, at, grant_set, tokens_idx, grants_idx)
  redis.call('SET', key, json)
  expire_and_index(key, at, tokens_idx)
  redis.call('SADD', grant_set, key)
  extend(grant_set, at, grants_idx)
end

-- Stores a refresh token (a hash with its state) and files it under its grant.
local function store_refresh(key, json, at, grant_id, grant_set, tokens_idx, grants_idx)
  redis.call('DEL', key)
  redis.call('HSET', key, 'record', json, 'rotated', '0', 'expires_at', at, 'grant_id', grant_id)
  expire_and_index(key, at, tokens_idx)
  redis.call('SADD', grant_set, key)
  extend(grant_set, at, grants_idx)
end

-- Deletes every key listed in `set`, then the set.
local function delete_members(set)
  local members = redis.call('SMEMBERS', set)
  for i = 1, #members, 500 do
    redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
  end
  redis.call('DEL', set)
end

