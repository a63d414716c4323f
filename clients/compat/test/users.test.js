'use strict';
// Users, cache channels, subscription counts and token authorization, seen through stock pusher-js
// and the pusher server SDK (issue 3).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, afterEach } = require('node:test');
const { useHerald, waitFor, waitForArgs, PusherClient, uniq } = require('../harness');

// Clients made here (with userAuthentication or token endpoints) are disconnected after each test.
// One already disconnected is left alone: disconnecting it again makes faye-websocket (pusher-js's
// Node transport) arm a 30 s close timer that nothing clears, holding the test process open.
const made = [];
afterEach(() => {
  while (made.length) {
    const c = made.pop();
    if (c.connection.state === 'disconnected') continue;
    try { c.disconnect(); } catch { /* already gone */ }
  }
});

function userClient(server, userData, extra = {}) {
  const sdk = server.sdk();
  const c = new PusherClient(server.key, {
    cluster: 'mt1', wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
    userAuthentication: {
      customHandler: (params, cb) => cb(null, sdk.authenticateUser(params.socketId, userData)),
    },
    channelAuthorization: {
      customHandler: (params, cb) => cb(null, sdk.authorizeChannel(params.socketId, params.channelName)),
    },
    ...extra,
  });
  made.push(c);
  return c;
}

// signedIn connects a pusher-js client, signs it in and waits until pusher-js has joined the user's
// #server-to-user- channel, which it does once the server confirmed the sign-in.
async function signedIn(server, userData) {
  const c = userClient(server, userData);
  await waitFor(c.connection, 'connected', 5000);
  const joined = waitFor(c.connection, 'message', 5000, (m) =>
    m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${userData.id}`);
  c.signin();
  await joined;
  return c;
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// mintToken makes an HS256 JWT the way an app backend would, for Herald's token endpoints.
function mintToken(secret, claims) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 60, ...claims }));
  const sig = b64url(crypto.createHmac('sha256', secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${sig}`;
}

describe('users: sign-in, sendToUser, terminate, watchlist', () => {
  const h = useHerald({ label: 'herald-users', env: { HERALD_WATCHLIST_GRACE: '1' } });

  h.test('signin + user.bind receives sendToUser on every socket of the user, not others', async (s) => {
    const a1 = await signedIn(s.server, { id: 'ann' });
    const a2 = await signedIn(s.server, { id: 'ann' });
    const b = await signedIn(s.server, { id: 'bob' });
    const leaked = [];
    b.user.bind('private-note', (d) => leaked.push(d));
    const got = [waitForArgs(a1.user, 'private-note', 5000), waitForArgs(a2.user, 'private-note', 5000)];
    await s.sdk.sendToUser('ann', 'private-note', { text: 'for ann' });
    for (const [data] of await Promise.all(got)) assert.deepEqual(data, { text: 'for ann' });
    const marker = waitForArgs(b.user, 'marker', 5000);
    await s.sdk.sendToUser('bob', 'marker', {});
    await marker;
    assert.deepEqual(leaked, []);
  });

  h.test('terminateUserConnections closes the user\'s sockets with 4009 and no others', async (s) => {
    const victim = await signedIn(s.server, { id: 'mallory' });
    const bystander = await signedIn(s.server, { id: 'trent' });
    const closed = waitFor(victim.connection, 'error', 5000, (e) => e?.data?.code === 4009);
    const res = await s.sdk.terminateUserConnections('mallory');
    assert.equal(res.status, 200);
    await closed;
    // 4009 is in pusher-js's "refused" range: the client goes to disconnected and stays there.
    if (victim.connection.state !== 'disconnected') await waitFor(victim.connection, 'disconnected', 5000);
    assert.equal(bystander.connection.state, 'connected');
    const marker = waitForArgs(bystander.user, 'still-here', 5000);
    await s.sdk.sendToUser('trent', 'still-here', {});
    await marker;
  });

  h.test('watchlist online/offline through pusher.user.watchlist.bind', async (s) => {
    const watcher = userClient(s.server, { id: 'w', watchlist: ['friend'] });
    await waitFor(watcher.connection, 'connected', 5000);
    const initial = waitForArgs(watcher.user.watchlist, 'offline', 5000);
    watcher.signin();
    const [first] = await initial;
    assert.deepEqual(first.user_ids, ['friend']);

    const online = waitForArgs(watcher.user.watchlist, 'online', 5000);
    const friend = await signedIn(s.server, { id: 'friend' });
    assert.deepEqual((await online)[0].user_ids, ['friend']);
    const offline = waitForArgs(watcher.user.watchlist, 'offline', 5000);
    friend.disconnect();
    assert.deepEqual((await offline)[0].user_ids, ['friend']);
  });
});

describe('cache channels', () => {
  const h = useHerald({ label: 'herald-cache' });

  h.test('pusher:cache_miss on an empty cache, then the cached event replayed to a new subscriber', async (s) => {
    const name = uniq('cache-news');
    const a = await s.connected();
    const ch = a.subscribe(name);
    await waitFor(ch, 'pusher:cache_miss', 5000);
    const live = waitForArgs(ch, 'headline', 5000);
    await s.sdk.trigger(name, 'headline', { v: 1 });
    await live;
    const b = await s.connected();
    const chB = b.subscribe(name);
    const [replayed] = await waitForArgs(chB, 'headline', 5000);
    assert.deepEqual(replayed, { v: 1 });
    const info = await (await s.sdk.get({ path: `/channels/${name}`, params: { info: 'cache' } })).json();
    assert.equal(info.cache.data, JSON.stringify({ v: 1 }));
    assert.ok(info.cache.ttl > 0 && info.cache.ttl <= 1800);
  });
});

describe('subscription count', () => {
  const h = useHerald({ label: 'herald-count', env: { HERALD_APP_SUBSCRIPTION_COUNT: 'true' } });

  h.test('pusher:subscription_count reaches pusher-js and channel.subscriptionCount follows', async (s) => {
    const name = uniq('room');
    const a = await s.connected();
    const chA = a.subscribe(name);
    await waitForArgs(chA, 'pusher:subscription_count', 5000, (d) => d.subscription_count === 1);
    const two = waitForArgs(chA, 'pusher:subscription_count', 5000, (d) => d.subscription_count === 2);
    const b = await s.connected();
    b.subscribe(name);
    await two;
    assert.equal(chA.subscriptionCount, 2);
  });
});

describe('token authorization endpoints', () => {
  const h = useHerald({ label: 'herald-tokens' });

  function tokenClient(server, token) {
    const base = `${server.httpBase}/apps/${server.appId}`;
    const c = new PusherClient(server.key, {
      cluster: 'mt1', wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false,
      enabledTransports: ['ws'], disableStats: true,
      channelAuthorization: { endpoint: `${base}/auth/channel`, transport: 'ajax', headers: { Authorization: `Bearer ${token}` } },
      userAuthentication: { endpoint: `${base}/auth/user`, transport: 'ajax', headers: { Authorization: `Bearer ${token}` } },
    });
    made.push(c);
    return c;
  }

  h.test('pusher-js joins private and presence channels with a token and no auth route of its own', async (s) => {
    const token = mintToken(s.server.secret, {
      aud: s.server.appId, sub: '42', user_info: { name: 'Ann' }, channels: ['private-user-42', 'presence-room-*'],
    });
    const c = tokenClient(s.server, token);
    await waitFor(c.connection, 'connected', 5000);
    const priv = c.subscribe('private-user-42');
    await waitFor(priv, 'pusher:subscription_succeeded', 5000);
    const pres = c.subscribe('presence-room-1');
    const [members] = await waitForArgs(pres, 'pusher:subscription_succeeded', 5000);
    assert.equal(members.count, 1);
    assert.deepEqual(members.me, { id: '42', info: { name: 'Ann' } });
  });

  h.test('a channel outside the token, or a bad token, is refused with pusher:subscription_error', async (s) => {
    const token = mintToken(s.server.secret, { aud: s.server.appId, sub: '42', channels: ['private-user-42'] });
    const c = tokenClient(s.server, token);
    await waitFor(c.connection, 'connected', 5000);
    const [err] = await waitForArgs(c.subscribe('private-user-43'), 'pusher:subscription_error', 5000);
    assert.equal(err.status, 403);

    const forged = tokenClient(s.server, mintToken('not-the-secret', { aud: s.server.appId, sub: '42', channels: ['*'] }));
    await waitFor(forged.connection, 'connected', 5000);
    const [err2] = await waitForArgs(forged.subscribe('private-user-42'), 'pusher:subscription_error', 5000);
    assert.equal(err2.status, 401);
  });
});
