-- Deletes the signing keys of generations below ARGV[1] (decimal); returns how many.
-- KEYS[1] signing keys hash, whose fields are generations as Rust formats an i64.
--
-- Generations are compared as decimal strings, exactly: Lua numbers are doubles, which cannot
-- tell every pair of i64 apart.
local function below(a, b)
  local a_negative, b_negative = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if a_negative ~= b_negative then
    return a_negative
  end
  if a_negative then
    -- Of two negative numbers the one of greater magnitude is smaller.
    a, b = b:sub(2), a:sub(2)
  end
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end

local deleted = 0
for _, generation in ipairs(redis.call('HKEYS', KEYS[1])) do
  if below(generation, ARGV[1]) then
    deleted = deleted + redis.call('HDEL', KEYS[1], generation)
  end
end
return deleted
