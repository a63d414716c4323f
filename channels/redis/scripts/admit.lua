-- admit.lua decides whether one more connection fits an app's cluster-wide max_connections, and
-- counts it on this node if so: the check and the increment are one step, so the quota is exact.
-- ARGV: prefix, app, node, max (0: unbounded). Returns 1 when admitted, 0 when over quota.
local app, node, max = ARGV[2], ARGV[3], tonumber(ARGV[4])
local conns = akey(app, 'conns')
if max > 0 then
  local total = 0
  for _, v in ipairs(redis.call('HVALS', conns)) do total = total + tonumber(v) end
  if total >= max then return 0 end
end
redis.call('HINCRBY', conns, node, 1)
redis.call('SADD', P .. ':nodeapps:' .. node, app)
holds(node)
return 1
