-- register.lua enters a node into the cluster under a fresh token, starting the cluster's epoch if
-- there is none (a first node, or Redis restarted empty). ARGV: prefix, node, token, new epoch.
-- Returns the epoch the node is now registered in.
redis.call('SET', P .. ':epoch', ARGV[4], 'NX')
redis.call('HSET', P .. ':alive', ARGV[2], ARGV[3])
redis.call('ZADD', P .. ':nodes', now_ms(), ARGV[2])
return redis.call('GET', P .. ':epoch')
