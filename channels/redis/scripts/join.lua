-- join.lua records one socket's subscription to a channel and decides, in the same atomic step,
-- what it changed cluster-wide:
--   * the channel's first subscription: channel_occupied goes to the outbox;
--   * a user's first socket in a presence channel: member_added is announced to the channel's
--     subscribers on every node (except the joiner) and goes to the outbox;
--   * a new user past the member limit is refused (returns {-1}) and nothing changes.
-- An addition that matches a removal still in its grace cancels it instead (a reload).
--   * on a counted channel (its app has subscription_count on), the new count goes to the outbox.
-- A quiet join (a node re-recording its sockets after Redis lost them) announces and records nothing.
-- ARGV: prefix, app, channel, socket, node, user ('' off presence), user_info, max members,
--       member_added frame, quiet ('1'/'0'), counted ('1'/'0').
-- Returns {count, version, occupied, added, members...} with members as user, info pairs in join order.
local app, channel, socket, node, user = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local info, maxm, frame, quiet, count_it = ARGV[7], tonumber(ARGV[8]), ARGV[9], ARGV[10], ARGV[11] == '1'
local subs, occ, members = akey(app, 's', channel), akey(app, 'occ'), akey(app, 'm', channel)
local function reply(result)
  if user == '' then return result end
  return roster(app, channel, result)
end
if redis.call('HEXISTS', subs, socket) == 1 then -- recorded already: a retried or repeated join
  local version = tonumber(redis.call('GET', akey(app, 'ver')) or '0')
  return reply({tonumber(redis.call('HGET', occ, channel) or '0'), version, 0, 0})
end
local added = 0
if user ~= '' and redis.call('HEXISTS', members, user) == 0 then
  if maxm > 0 and redis.call('HLEN', members) >= maxm then return {-1} end
  added = 1
end
local version = redis.call('INCR', akey(app, 'ver'))
redis.call('HSET', subs, socket, (count_it and 'c' or '-') .. node .. '\n' .. user)
redis.call('SADD', P .. ':node:' .. node, app .. '\n' .. channel .. '\n' .. socket)
holds(node)
if user ~= '' then
  redis.call('HINCRBY', members, user, 1)
  if added == 1 then
    redis.call('HSET', akey(app, 'i', channel), user, info)
    redis.call('ZADD', akey(app, 'o', channel), version, user)
  end
end
local count = redis.call('HINCRBY', occ, channel, 1)
if quiet ~= '1' then
  if count == 1 then began(app, 'o', 'v', channel, '') end
  if added == 1 then
    announce(app, channel, socket, version, frame)
    began(app, 'a', 'r', channel, user)
  end
  if count_it then counted(app, channel, count) end
end
return reply({count, version, count == 1 and 1 or 0, added})
