-- Deletes one record and its entry in an expiry index, so that a record deleted long before
-- its expiry leaves no index entry behind.
-- KEYS[1] record key, KEYS[2] expiry index.
redis.call('ZREM', KEYS[2], KEYS[1])
return redis.call('DEL', KEYS[1])
