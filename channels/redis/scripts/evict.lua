-- evict.lua removes up to a batch of a node's records: the node is dead (no heartbeat within the
-- node timeout), shut down, or starting again under the same id. Its subscriptions leave as if their
-- sockets had (member_removed announced, webhooks after the grace), its signed-in sockets sign out,
-- and its connections stop counting against the apps' quotas. Records are taken with SPOP, so two
-- nodes evicting the same one at once never remove a record twice. The caller repeats until it
-- returns 0 records.
-- A reaper names the registration it found dead (its token): if the node registered again since
-- (it was only paused), nothing more is removed, neither its new registration nor its new records.
-- ARGV: prefix, node, batch, delay ms, token ('*': whatever the registration).
-- Returns {records removed, app, user, app, user...}: the users that have no signed-in socket left,
-- for their watchlist offline events.
local node, batch, delay, token = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local alive = redis.call('HGET', P .. ':alive', node)
if token ~= '*' and alive and alive ~= token then return {0} end
redis.call('HDEL', P .. ':alive', node)
redis.call('ZREM', P .. ':nodes', node)
local result = {0}
local subs = redis.call('SPOP', P .. ':node:' .. node, batch)
for _, e in ipairs(subs) do
  local app, channel, socket = split3(e)
  leave(app, channel, socket, '0', delay)
end
local users = redis.call('SPOP', P .. ':nodeu:' .. node, batch)
for _, e in ipairs(users) do
  local app, user, socket = split3(e)
  local sockets = akey(app, 'u', user)
  if redis.call('HDEL', sockets, socket) == 1 and redis.call('HLEN', sockets) == 0 then
    result[#result + 1] = app
    result[#result + 1] = user
  end
end
if #subs < batch and #users < batch then
  for _, app in ipairs(redis.call('SMEMBERS', P .. ':nodeapps:' .. node)) do
    redis.call('HDEL', akey(app, 'conns'), node)
  end
  redis.call('DEL', P .. ':nodeapps:' .. node)
end
result[1] = #subs + #users
return result
