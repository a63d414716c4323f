-- members.lua reads a presence channel's members in join order, with the app's version they reflect,
-- in one step. ARGV: prefix, app, channel. Returns {version, user, info, user, info...}.
local app, channel = ARGV[2], ARGV[3]
return roster(app, channel, {tonumber(redis.call('GET', akey(app, 'ver')) or '0')})
