-- GCRA (the generic cell rate algorithm, as governor computes it locally) on one key.
-- KEYS[1]: the budget's key. ARGV[1]: the replenish interval in microseconds; ARGV[2]: burst.
-- Returns {1, 0} when a unit was taken, {0, wait_us} when the budget is spent.
--
-- Time is Redis' own clock only (TIME), so instances with skewed clocks still share one
-- budget exactly. The key stores the theoretical arrival time and expires when the budget is
-- full again, so an idle key costs nothing and the key space stays bounded by activity.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allowed_at = new_tat - burst * interval
if allowed_at > now then
  return {0, allowed_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, 0}
