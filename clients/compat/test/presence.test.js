'use strict';
// Presence channels (PROTOCOL.md §2.4–2.5, §5.7, §9 items 49–63, 126, 143).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, waitFor, subscribe, recordChannel, hmacHex, uniq } = require('../harness');

const names = (log) => log.map((e) => e.name);

function parsePresence(msg) {
  assert.equal(typeof msg.data, 'string', 'presence subscription_succeeded data must be a string');
  const { presence } = JSON.parse(msg.data);
  assert.ok(presence, `missing presence object: ${msg.data}`);
  assert.ok(Array.isArray(presence.ids));
  assert.equal(typeof presence.hash, 'object');
  assert.notEqual(presence.hash, null);
  assert.ok(!Array.isArray(presence.hash), 'hash must be a JSON object');
  assert.ok(Number.isInteger(presence.count));
  return presence;
}

async function expectRejected(r, channel, data) {
  r.send({ event: 'pusher:subscribe', data: { channel, ...data } });
  const err = await r.nextEvent('pusher:error');
  assert.equal(typeof err.data, 'object');
  assert.equal(err.data.code, null);
  const se = await r.nextEvent('pusher:subscription_error', channel);
  assert.equal(typeof se.data, 'string');
  const d = JSON.parse(se.data);
  await r.ping();
  assert.ok(r.isOpen);
  assert.ok(!r.events().some((e) => e.event === 'pusher_internal:subscription_succeeded' && e.channel === channel));
  return d;
}

describe('presence', () => {
  const h = useHerald({ label: 'herald-presence' });

  h.test('pusher-js: members.count and members.me after subscribe', async (s) => {
    const a = await s.connected({ user: { user_id: 'u-1', user_info: { name: 'Ann' } } });
    const name = uniq('presence-me');
    const ch = await subscribe(a, name);
    assert.equal(ch.members.count, 1);
    assert.deepEqual(ch.members.me, { id: 'u-1', info: { name: 'Ann' } });
  });

  h.test('pusher-js: join, same-user second socket, partial leave, last leave', async (s) => {
    const name = uniq('presence-room');
    const a = await s.connected({ user: { user_id: 'u-1', user_info: { name: 'Ann' } } });
    const chA = await subscribe(a, name);
    const logA = recordChannel(chA);

    // Second user joins -> member_added on the first.
    const added = waitFor(chA, 'pusher:member_added', 5000);
    const b1 = await s.connected({ user: { user_id: 'u-2', user_info: { name: 'Bo' } } });
    const chB1 = await subscribe(b1, name);
    assert.deepEqual(await added, { id: 'u-2', info: { name: 'Bo' } });
    assert.equal(chA.members.count, 2);
    assert.equal(chB1.members.count, 2);
    assert.deepEqual(chB1.members.me, { id: 'u-2', info: { name: 'Bo' } });
    assert.deepEqual(chB1.members.get('u-1'), { id: 'u-1', info: { name: 'Ann' } });

    // Same user on a second socket: no member_added to anyone, count unchanged.
    const b2 = await s.connected({ user: { user_id: 'u-2', user_info: { name: 'Bo' } } });
    const logB1 = recordChannel(chB1);
    const chB2 = await subscribe(b2, name);
    assert.equal(chB2.members.count, 2);
    let marker = waitFor(chA, 'marker-1', 5000);
    let markerB1 = waitFor(chB1, 'marker-1', 5000);
    await s.sdk.trigger(name, 'marker-1', {});
    await marker;
    await markerB1;
    assert.deepEqual(names(logA), ['pusher:member_added', 'marker-1'], 'no member_added for a second socket of u-2 (seen by u-1)');
    assert.deepEqual(names(logB1), ['marker-1'], 'no member_added for a second socket of u-2 (seen by u-2)');
    assert.equal(chA.members.count, 2);

    // One of u-2's two sockets leaves (unsubscribe): no member_removed.
    b1.unsubscribe(name);
    await subscribe(b1, uniq('barrier')); // in-order barrier: the unsubscribe has been processed
    marker = waitFor(chA, 'marker-2', 5000);
    await s.sdk.trigger(name, 'marker-2', {});
    await marker;
    assert.deepEqual(names(logA), ['pusher:member_added', 'marker-1', 'marker-2'], 'no member_removed while u-2 still has a socket');
    assert.equal(chA.members.count, 2);

    // u-2's last socket disconnects -> member_removed.
    const removed = waitFor(chA, 'pusher:member_removed', 5000);
    b2.disconnect();
    assert.deepEqual(await removed, { id: 'u-2', info: { name: 'Bo' } });
    assert.equal(chA.members.count, 1);
    assert.equal(chA.members.get('u-2'), null);
  });

  h.test('raw: numeric user_id is echoed as a string in ids, hash and member events; joiner gets no own member_added', async (s) => {
    const name = uniq('presence-num');
    const r1 = await s.rawConnected();
    const p1 = parsePresence(await s.rawSubscribe(r1, name, { user_id: 7, user_info: { n: 7 } }));
    assert.deepEqual(p1, { ids: ['7'], hash: { 7: { n: 7 } }, count: 1 });

    const r2 = await s.rawConnected();
    const addedP = r1.nextEvent('pusher_internal:member_added', name);
    const p2 = parsePresence(await s.rawSubscribe(r2, name, { user_id: 8, user_info: { n: 8 } }));
    assert.deepEqual([...p2.ids].sort(), ['7', '8']);
    assert.deepEqual(p2.hash, { 7: { n: 7 }, 8: { n: 8 } });
    assert.equal(p2.count, 2);
    const added = await addedP;
    assert.equal(typeof added.data, 'string');
    assert.deepEqual(JSON.parse(added.data), { user_id: '8', user_info: { n: 8 } });

    await r2.ping();
    assert.ok(!r2.events().some((e) => e.event === 'pusher_internal:member_added'), 'joiner must not get its own member_added');

    const res = await s.sdk.get({ path: `/channels/${name}/users` });
    const users = await res.json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['7', '8']);
    for (const u of users.users) assert.equal(typeof u.id, 'string');

    const removedP = r1.nextEvent('pusher_internal:member_removed', name);
    await r2.closeAndWait();
    const removed = await removedP;
    assert.equal(typeof removed.data, 'string');
    assert.equal(JSON.parse(removed.data).user_id, '8');
  });

  h.test('REST GET /channels/{presence}/users via server SDK lists distinct string ids', async (s) => {
    const name = uniq('presence-users');
    const a = await s.connected({ user: { user_id: 'alice', user_info: {} } });
    const b = await s.connected({ user: { user_id: 'bob' } });
    const b2 = await s.connected({ user: { user_id: 'bob' } });
    await subscribe(a, name);
    await subscribe(b, name);
    await subscribe(b2, name);
    const res = await s.sdk.get({ path: `/channels/${name}/users` });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^application\/json/);
    const body = await res.json();
    assert.deepEqual(Object.keys(body), ['users']);
    assert.deepEqual(body.users.map((u) => u.id).sort(), ['alice', 'bob']);

    const info = await (await s.sdk.get({ path: `/channels/${name}`, params: { info: 'user_count' } })).json();
    assert.equal(info.occupied, true);
    assert.equal(info.user_count, 2);
  });

  h.test('raw: presence without channel_data (not signed in) or without user_id is rejected', async (s) => {
    const r = await s.rawConnected();
    const c1 = uniq('presence-nodata');
    await expectRejected(r, c1, { auth: `${s.key}:${hmacHex(s.server.secret, `${r.socketId}:${c1}`)}` });
    const c2 = uniq('presence-nouser');
    const cd = JSON.stringify({ user_info: { name: 'x' } });
    await expectRejected(r, c2, { auth: `${s.key}:${hmacHex(s.server.secret, `${r.socketId}:${c2}:${cd}`)}`, channel_data: cd });
  });

  h.test('raw: user_info larger than 1 KB is rejected (LimitReached-style)', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('presence-big');
    const cd = JSON.stringify({ user_id: 'big', user_info: { blob: 'x'.repeat(1100) } });
    const d = await expectRejected(r, name, {
      auth: `${s.key}:${hmacHex(s.server.secret, `${r.socketId}:${name}:${cd}`)}`,
      channel_data: cd,
    });
    assert.ok([403, 413].includes(d.status), `status ${d.status}`);
    // A normal member can still join afterwards.
    await s.rawSubscribe(r, name, { user_id: 'small', user_info: { ok: true } });
  });
});
