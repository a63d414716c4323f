-- due.lua moves the removals whose grace has passed (channel_vacated, member_removed) from an app's
-- pending set to its outbox, at most a batch per call, oldest first, and records the counts whose
-- throttle interval has passed (subscription_count, with the count current now). It is atomic, so
-- whichever node runs it, each reaches the outbox once.
-- ARGV: prefix, app, batch. Returns how many it moved.
local app = ARGV[2]
local pending = akey(app, 'pending')
local due = redis.call('ZRANGEBYSCORE', pending, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  local kind, channel, user = split3(m)
  redis.call('ZREM', pending, m)
  if kind == 'n' then
    counted(app, channel, tonumber(redis.call('HGET', akey(app, 'occ'), channel) or '0'))
  else
    outbox(app, kind, channel, user)
  end
end
return #due
