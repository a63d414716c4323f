-- release.lua uncounts a connection admit.lua counted against its app's max_connections. A node
-- whose count is gone (it was evicted, which removed it) or zero has nothing to uncount: the count
-- never goes below zero, which would let the app past its quota.
-- ARGV: prefix, app, node. Returns the node's count before it.
local conns, node = akey(ARGV[2], 'conns'), ARGV[3]
local n = tonumber(redis.call('HGET', conns, node) or '0')
if n > 0 then redis.call('HINCRBY', conns, node, -1) end
return n
