-- disconnect.lua signs a socket out (see connect.lua). ARGV: prefix, app, user, socket.
-- Returns {the user's sockets after it}, or {-1, epoch} when the socket was not recorded (evicted,
-- or Redis lost its data: see leave.lua).
local app, user, socket = ARGV[2], ARGV[3], ARGV[4]
local sockets = akey(app, 'u', user)
local node = redis.call('HGET', sockets, socket)
if not node then return {-1, redis.call('GET', P .. ':epoch') or ''} end
redis.call('HDEL', sockets, socket)
redis.call('SREM', P .. ':nodeu:' .. node, app .. '\n' .. user .. '\n' .. socket)
return {redis.call('HLEN', sockets)}
