-- members.lua reads a presence channel's members in join order, with the app's version they reflect,
-- in one step. ARGV: prefix, app, channel. Returns {version, user, info, user, info...}.
local app, channel = ARGV[2], ARGV[3]
local result = {tonumber(redis.call('GET', akey(app, 'ver')) or '0')}
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
