-- leave.lua removes one socket's subscription and decides, atomically, what it changed (see leave in
-- common.lua): member_removed announced and, after the grace, to the outbox; channel_vacated after
-- the grace. A subscription no longer recorded changes nothing: its node was evicted meanwhile (the
-- eviction reported its departure), or Redis lost its data (the caller remembers the departure).
-- ARGV: prefix, app, channel, socket, quiet, delay ms.
-- Returns {count, version, vacated, removed}, or {count, version, 0, 0, epoch} when not recorded.
local r = leave(ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
if not r then
  return {tonumber(redis.call('HGET', akey(ARGV[2], 'occ'), ARGV[3]) or '0'),
    tonumber(redis.call('GET', akey(ARGV[2], 'ver')) or '0'), 0, 0, redis.call('GET', P .. ':epoch') or ''}
end
return r
