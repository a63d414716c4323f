'use strict';
// REST API through the `pusher` server SDK (PROTOCOL.md §5.3–5.7, §9 items 108–110, 117–127, 129).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, waitFor, subscribe, recordChannel, sdkJson, uniq } = require('../harness');

function assertJsonOk(r) {
  assert.equal(r.status, 200);
  assert.match(r.contentType || '', /^application\/json\b/, `content-type ${r.contentType}`);
}

describe('REST via pusher (pusher-http-node)', () => {
  const h = useHerald({ label: 'herald-rest' });

  // Must run first in this file: the server has no channels yet.
  h.test('GET /channels with no channels -> exactly {"channels":{}}', async (s) => {
    const r = await sdkJson(s.sdk.get({ path: '/channels' }));
    assertJsonOk(r);
    assert.deepEqual(r.json, { channels: {} });
  });

  h.test('trigger to one channel -> 200 application/json {} and delivery', async (s) => {
    const name = uniq('rest-one');
    const c = await s.connected();
    const ch = await subscribe(c, name);
    const got = waitFor(ch, 'created', 5000);
    const r = await sdkJson(s.sdk.trigger(name, 'created', { id: 1, tags: ['a'] }));
    assertJsonOk(r);
    assert.deepEqual(r.json, {});
    assert.deepEqual(await got, { id: 1, tags: ['a'] });
  });

  h.test('trigger to several channels: one copy per subscribed channel', async (s) => {
    const c1 = uniq('multi');
    const c2 = uniq('multi');
    const c3 = uniq('multi-unoccupied');
    const r = await s.rawConnected();
    await s.rawSubscribe(r, c1);
    await s.rawSubscribe(r, c2);
    const pc = await s.connected();
    const ch1 = await subscribe(pc, c1);
    const log1 = recordChannel(ch1);
    const res = await sdkJson(s.sdk.trigger([c1, c2, c3], 'multi', { x: 'y' }));
    assertJsonOk(res);
    const m1 = await r.nextEvent('multi', c1);
    const m2 = await r.nextEvent('multi', c2);
    assert.equal(m1.data, JSON.stringify({ x: 'y' }));
    assert.equal(m2.data, JSON.stringify({ x: 'y' }));
    const marker = waitFor(ch1, 'marker', 5000);
    const rawMarker = r.nextEvent('marker', c1);
    await s.sdk.trigger(c1, 'marker', {});
    await marker;
    await rawMarker;
    assert.equal(r.events().filter((e) => e.event === 'multi').length, 2);
    assert.deepEqual(log1.map((e) => e.name), ['multi', 'marker']);
  });

  h.test('triggerBatch: events delivered in order to their channels; response {}', async (s) => {
    const c1 = uniq('batch');
    const c2 = uniq('batch');
    const r = await s.rawConnected();
    await s.rawSubscribe(r, c1);
    await s.rawSubscribe(r, c2);
    const res = await sdkJson(s.sdk.triggerBatch([
      { channel: c1, name: 'b1', data: { i: 1 } },
      { channel: c2, name: 'b2', data: 'plain' },
      { channel: c1, name: 'b3', data: { i: 3 } },
    ]));
    assertJsonOk(res);
    assert.deepEqual(res.json, {});
    const e1 = await r.nextEvent('b1', c1);
    const e2 = await r.nextEvent('b2', c2);
    const e3 = await r.nextEvent('b3', c1);
    assert.equal(e1.data, '{"i":1}');
    assert.equal(e2.data, 'plain');
    assert.equal(e3.data, '{"i":3}');
    const onC1 = r.events().filter((e) => e.channel === c1 && e.event.startsWith('b')).map((e) => e.event);
    assert.deepEqual(onC1, ['b1', 'b3']);
  });

  h.test('trigger with socket_id excludes that socket only', async (s) => {
    const name = uniq('exclude');
    const a = await s.connected();
    const b = await s.connected();
    const chA = await subscribe(a, name);
    const chB = await subscribe(b, name);
    const logA = recordChannel(chA);
    const bGot = waitFor(chB, 'excluded', 5000);
    const res = await sdkJson(s.sdk.trigger(name, 'excluded', { n: 1 }, { socket_id: a.connection.socket_id }));
    assertJsonOk(res);
    assert.deepEqual(await bGot, { n: 1 });
    const marker = waitFor(chA, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(logA.map((e) => e.name), ['marker'], 'excluded socket must not receive the event');
  });

  h.test('trigger with info=user_count,subscription_count -> integer counts per channel', async (s) => {
    const p = uniq('presence-info');
    const q = uniq('public-info');
    const u1 = await s.connected({ user: { user_id: 'u1' } });
    const u2a = await s.connected({ user: { user_id: 'u2' } });
    const u2b = await s.connected({ user: { user_id: 'u2' } });
    await subscribe(u1, p);
    await subscribe(u2a, p);
    await subscribe(u2b, p);
    await subscribe(u1, q);
    await subscribe(u2a, q);
    const res = await sdkJson(s.sdk.trigger([p, q], 'counted', {}, { info: 'user_count,subscription_count' }));
    assertJsonOk(res);
    const chans = res.json.channels;
    assert.equal(typeof chans, 'object');
    assert.deepEqual(Object.keys(chans).sort(), [p, q].sort());
    assert.equal(chans[p].user_count, 2);
    if ('subscription_count' in chans[p]) assert.equal(chans[p].subscription_count, 3);
    assert.equal(chans[q].subscription_count, 2);
    assert.ok(!('user_count' in chans[q]), 'user_count only on presence channels');
    for (const v of [chans[p].user_count, chans[q].subscription_count]) assert.ok(Number.isInteger(v));
  });

  h.test('GET /channels lists occupied channels (with filter_by_prefix and info=user_count)', async (s) => {
    const tag = uniq('lst');
    const pub1 = `${tag}-a`;
    const pub2 = `${tag}-b`;
    const pres = `presence-${tag}-p`;
    const u1 = await s.connected({ user: { user_id: 'l1' } });
    const u2 = await s.connected({ user: { user_id: 'l2' } });
    await subscribe(u1, pub1);
    await subscribe(u2, pub1);
    await subscribe(u1, pub2);
    await subscribe(u1, pres);
    await subscribe(u2, pres);

    const all = await sdkJson(s.sdk.get({ path: '/channels' }));
    assertJsonOk(all);
    for (const n of [pub1, pub2, pres]) assert.ok(n in all.json.channels, `${n} missing from ${all.text}`);

    const filtered = await sdkJson(s.sdk.get({ path: '/channels', params: { filter_by_prefix: tag } }));
    assertJsonOk(filtered);
    assert.deepEqual(filtered.json, { channels: { [pub1]: {}, [pub2]: {} } });

    const counted = await sdkJson(s.sdk.get({
      path: '/channels',
      params: { filter_by_prefix: `presence-${tag}`, info: 'user_count' },
    }));
    assertJsonOk(counted);
    assert.deepEqual(counted.json, { channels: { [pres]: { user_count: 2 } } });

    const none = await sdkJson(s.sdk.get({ path: '/channels', params: { filter_by_prefix: uniq('nothing') } }));
    assert.deepEqual(none.json, { channels: {} });
  });

  h.test('GET /channels/{name}?info=subscription_count and unoccupied channel', async (s) => {
    const name = uniq('info');
    const a = await s.connected();
    const b = await s.connected();
    await subscribe(a, name);
    await subscribe(b, name);
    const r = await sdkJson(s.sdk.get({ path: `/channels/${name}`, params: { info: 'subscription_count' } }));
    assertJsonOk(r);
    assert.deepEqual(r.json, { occupied: true, subscription_count: 2 });

    const plain = await sdkJson(s.sdk.get({ path: `/channels/${name}` }));
    assertJsonOk(plain);
    assert.equal(plain.json.occupied, true);

    const un = await sdkJson(s.sdk.get({ path: `/channels/${uniq('nobody')}` }));
    assertJsonOk(un);
    assert.deepEqual(un.json, { occupied: false });
  });

  h.test('GET /channels/{presence}?info=user_count,subscription_count -> integers', async (s) => {
    const name = uniq('presence-cnt');
    const a = await s.connected({ user: { user_id: 'c1' } });
    const b = await s.connected({ user: { user_id: 'c1' } });
    await subscribe(a, name);
    await subscribe(b, name);
    const r = await sdkJson(s.sdk.get({ path: `/channels/${name}`, params: { info: 'user_count,subscription_count' } }));
    assertJsonOk(r);
    assert.equal(r.json.occupied, true);
    assert.equal(r.json.user_count, 1);
    assert.equal(r.json.subscription_count, 2);
  });

  h.test('occupancy follows unsubscribe (channel leaves GET /channels)', async (s) => {
    const name = uniq('leave');
    const a = await s.connected();
    await subscribe(a, name);
    a.unsubscribe(name);
    await subscribe(a, uniq('barrier'));
    const r = await sdkJson(s.sdk.get({ path: `/channels/${name}` }));
    assert.deepEqual(r.json, { occupied: false });
    const list = await sdkJson(s.sdk.get({ path: '/channels', params: { filter_by_prefix: name } }));
    assert.deepEqual(list.json, { channels: {} });
  });
});
