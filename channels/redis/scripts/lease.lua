-- lease.lua takes or renews the cluster's webhook lease for a node, in one step: a holder renews
-- only a lease it still holds, so a holder that stalled past its expiry never extends another's.
-- ARGV: prefix, node, ttl ms. Returns 1 when the node holds the lease, 0 otherwise.
local lease, node, ttl = P .. ':lease', ARGV[2], tonumber(ARGV[3])
if redis.call('SET', lease, node, 'NX', 'PX', ttl) then return 1 end
if redis.call('GET', lease) == node then
  redis.call('PEXPIRE', lease, ttl)
  return 1
end
return 0
