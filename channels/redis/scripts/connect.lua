-- connect.lua and disconnect.lua record a socket signed in as a user; the user is online while it has
-- one on any node. connect.lua: ARGV prefix, app, user, socket, node. Returns the user's sockets after it.
local app, user, socket, node = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', akey(app, 'u', user), socket, node)
redis.call('SADD', P .. ':nodeu:' .. node, app .. '\n' .. user .. '\n' .. socket)
holds(node)
return redis.call('HLEN', akey(app, 'u', user))
