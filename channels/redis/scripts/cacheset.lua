-- cacheset.lua stores a cache channel's last event with its TTL and stamps it with the next version
-- of the app, so sequence numbers keep growing across expiries and nodes.
-- ARGV: prefix, app, channel, frame, ttl ms. Returns the event's sequence number.
local app = ARGV[2]
local seq = redis.call('INCR', akey(app, 'ver'))
local k = akey(app, 'cache', ARGV[3])
redis.call('HSET', k, 'f', ARGV[4], 'q', seq)
redis.call('PEXPIRE', k, tonumber(ARGV[5]))
return seq
