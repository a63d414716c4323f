-- heartbeat.lua tells the cluster this node is alive and tells the node where it stands:
--   {'ok', node, token, node, token...}  its registration holds; the pairs are the nodes silent for
--                    longer than the timeout, each with its registration token ('' if gone);
--   {'fenced'}       it was declared dead and evicted meanwhile (paused or partitioned): its records
--                    are gone and its sockets must be closed or recorded again;
--   {'reset', epoch} Redis lost the cluster's data (restarted empty, or a failover to a replica
--                    that never had it): every node must record its sockets again.
-- ARGV: prefix, node, token (this registration's), epoch (the one the node registered in), timeout ms.
local node, token, epoch, timeout = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local current = redis.call('GET', P .. ':epoch')
if current ~= epoch then return {'reset', current or ''} end
if redis.call('HGET', P .. ':alive', node) ~= token then return {'fenced'} end
local now = now_ms()
redis.call('ZADD', P .. ':nodes', now, node)
local result = {'ok'}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', P .. ':nodes', '-inf', now - timeout, 'LIMIT', 0, 16)) do
  result[#result + 1] = n
  result[#result + 1] = redis.call('HGET', P .. ':alive', n) or ''
end
return result
