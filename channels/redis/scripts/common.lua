-- common.lua is prepended to every transition script: key names, the envelope of an announcement,
-- and the webhook outbox. ARGV[1] is always the key prefix. Keys are named here and in keys.go alike.
local P = ARGV[1]
local function akey(app, kind, name)
  if name then return P .. ':' .. app .. ':' .. kind .. ':' .. name end
  return P .. ':' .. app .. ':' .. kind
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- holds enters a node that records something into the cluster's node list, unless it is there:
-- when Redis lost its data, a node's records may come back before its heartbeat registers it again,
-- and a node that dies in between must still be reaped after the timeout, not leave ghosts.
local function holds(node)
  redis.call('ZADD', P .. ':nodes', 'NX', now_ms(), node)
end
-- announce publishes a frame to a channel's subscribers on every node, stamped with the roster
-- version it reports (see envelope.go): H1 <flags> <except> <roster> <cached> <count>\n<frame>.
local function announce(app, channel, except, version, frame)
  redis.call('PUBLISH', P .. ':m:' .. app .. ':' .. channel,
    'H1 0 ' .. except .. ' ' .. version .. ' 0 0\n' .. frame)
end
local OUTBOX_MAX = 100000
-- outbox appends a webhook to the app's outbox: k is its kind (o, v, a, r as below; n:
-- subscription_count, with the count as n).
local function outbox(app, kind, channel, user, count)
  if count then
    redis.call('XADD', akey(app, 'outbox'), 'MAXLEN', '~', OUTBOX_MAX, '*', 'k', kind, 'c', channel, 'u', user, 'n', count)
  else
    redis.call('XADD', akey(app, 'outbox'), 'MAXLEN', '~', OUTBOX_MAX, '*', 'k', kind, 'c', channel, 'u', user)
  end
end
-- counted records a subscription_count webhook for a channel's new count. A count above 100 is
-- recorded at most every COUNT_EVERY ms: one within that time of the last recorded schedules a
-- single recording at its end in the pending set, where due.lua records the count current then.
-- A count of 100 or less is recorded at once and ends the throttle, cancelling what it scheduled.
local COUNT_EVERY, COUNT_THROTTLE_ABOVE = 5000, 100
local function counted(app, channel, count)
  local last, later = akey(app, 'counted'), 'n\n' .. channel .. '\n'
  if count > COUNT_THROTTLE_ABOVE then
    local now = now_ms()
    local at = tonumber(redis.call('HGET', last, channel) or '0')
    if now - at < COUNT_EVERY then
      redis.call('ZADD', akey(app, 'pending'), 'NX', at + COUNT_EVERY, later)
      return
    end
    redis.call('HSET', last, channel, now)
  elseif redis.call('HDEL', last, channel) == 1 then
    redis.call('ZREM', akey(app, 'pending'), later)
  end
  outbox(app, 'n', channel, '', count)
end
-- began records an addition (o: channel_occupied, a: member_added) for its webhook, unless it
-- cancels the matching removal still waiting out its grace (a reload: nothing is sent for either).
local function began(app, kind, undo, channel, user)
  if redis.call('ZREM', akey(app, 'pending'), undo .. '\n' .. channel .. '\n' .. user) == 0 then
    outbox(app, kind, channel, user)
  end
end
-- ended records a removal (v: channel_vacated, r: member_removed): it waits out delay ms in the
-- pending set, where a new addition cancels it, before due.lua moves it to the outbox.
local function ended(app, kind, channel, user, delay)
  if delay <= 0 then
    outbox(app, kind, channel, user)
  else
    redis.call('ZADD', akey(app, 'pending'), now_ms() + delay, kind .. '\n' .. channel .. '\n' .. user)
  end
end
-- roster appends a presence channel's members to result, in join order, as user, info pairs.
local function roster(app, channel, result)
  local users = redis.call('ZRANGE', akey(app, 'o', channel), 0, -1)
  for i = 1, #users, 500 do
    local part = {unpack(users, i, math.min(i + 499, #users))}
    local infos = redis.call('HMGET', akey(app, 'i', channel), unpack(part))
    for j = 1, #part do
      result[#result + 1] = part[j]
      result[#result + 1] = infos[j] or 'null'
    end
  end
  return result
end
local function split3(s)
  local a = string.find(s, '\n', 1, true)
  local b = string.find(s, '\n', a + 1, true)
  return string.sub(s, 1, a - 1), string.sub(s, a + 1, b - 1), string.sub(s, b + 1)
end
-- A subscription is recorded in the channel's subscriptions hash as socket -> <c or -><node>\n<user>:
-- c when its app counts the channel's subscriptions, then the node holding the socket and the
-- presence user ('' off presence).
--
-- leave removes one socket's subscription and decides what it changed: the user's last socket in a
-- presence channel (member_removed, announced), the channel's last subscription (channel_vacated),
-- and the channel's count (subscription_count) on a counted channel.
-- It returns nil when the subscription is not recorded (left already, or evicted with its node).
local function leave(app, channel, socket, quiet, delay)
  local subs = akey(app, 's', channel)
  local rec = redis.call('HGET', subs, socket)
  if not rec then return nil end
  local nl = string.find(rec, '\n', 1, true)
  local count_it, node, user = string.sub(rec, 1, 1) == 'c', string.sub(rec, 2, nl - 1), string.sub(rec, nl + 1)
  redis.call('HDEL', subs, socket)
  redis.call('SREM', P .. ':node:' .. node, app .. '\n' .. channel .. '\n' .. socket)
  local version = redis.call('INCR', akey(app, 'ver'))
  local removed = 0
  if user ~= '' then
    local members = akey(app, 'm', channel)
    if redis.call('HINCRBY', members, user, -1) <= 0 then
      redis.call('HDEL', members, user)
      redis.call('HDEL', akey(app, 'i', channel), user)
      redis.call('ZREM', akey(app, 'o', channel), user)
      removed = 1
    end
  end
  local count = redis.call('HINCRBY', akey(app, 'occ'), channel, -1)
  if count <= 0 then
    redis.call('HDEL', akey(app, 'occ'), channel)
    count = 0
  end
  if quiet ~= '1' then
    if removed == 1 then
      local data = '{"user_id":' .. cjson.encode(user) .. '}'
      announce(app, channel, '-', version, '{"event":"pusher_internal:member_removed","channel":' ..
        cjson.encode(channel) .. ',"data":' .. cjson.encode(data) .. '}')
      ended(app, 'r', channel, user, delay)
    end
    if count == 0 then ended(app, 'v', channel, '', delay) end
    if count_it then counted(app, channel, count) end
  end
  return {count, version, count == 0 and 1 or 0, removed}
end
