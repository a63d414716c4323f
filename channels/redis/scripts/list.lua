-- list.lua answers GET /channels in one step: the app's occupied channels whose name starts with a
-- prefix, each with its subscription count and, when asked, its presence member count.
-- ARGV: prefix, app, name prefix, users ('1'/'0'). Returns name, subscriptions, users triples.
local app, prefix, users = ARGV[2], ARGV[3], ARGV[4] == '1'
local all = redis.call('HGETALL', akey(app, 'occ'))
local result = {}
for i = 1, #all, 2 do
  local name = all[i]
  if string.sub(name, 1, #prefix) == prefix then
    result[#result + 1] = name
    result[#result + 1] = tonumber(all[i + 1])
    local n = 0
    if users and string.sub(name, 1, 9) == 'presence-' then n = redis.call('HLEN', akey(app, 'm', name)) end
    result[#result + 1] = n
  end
end
return result
