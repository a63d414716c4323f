'use strict';
// Client events (PROTOCOL.md §3, §9 items 73–83, 145).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, waitFor, waitForArgs, subscribe, recordChannel, uniq } = require('../harness');

const names = (log) => log.map((e) => e.name);

describe('client events enabled', () => {
  const h = useHerald({ label: 'herald-client-events', clientEvents: true });

  h.test('private channel: delivered to the other client, not echoed to the sender, no user_id', async (s) => {
    const name = uniq('private-chat');
    const a = await s.connected();
    const b = await s.connected();
    const chA = await subscribe(a, name);
    const chB = await subscribe(b, name);
    const logA = recordChannel(chA);

    const got = waitForArgs(chB, 'client-typing', 5000);
    assert.equal(chA.trigger('client-typing', { who: 'a', text: 'hi' }), true);
    const [data, metadata] = await got;
    assert.deepEqual(data, { who: 'a', text: 'hi' });
    assert.equal(metadata && metadata.user_id, undefined, 'no user_id on private channels');

    // And back the other way (whisper round trip).
    const back = waitFor(chA, 'client-reply', 5000);
    chB.trigger('client-reply', { ok: 1 });
    assert.deepEqual(await back, { ok: 1 });

    // Not echoed: A saw only B's reply, never its own client-typing (checked after a later marker).
    const marker = waitFor(chA, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(names(logA), ['client-reply', 'marker']);
  });

  h.test('raw: forwarded client event has string data and no user_id on private channels', async (s) => {
    const name = uniq('private-rawce');
    const sender = await s.rawConnected();
    const receiver = await s.rawConnected();
    await s.rawSubscribe(sender, name);
    await s.rawSubscribe(receiver, name);
    const got = receiver.nextEvent('client-obj', name);
    sender.send({ event: 'client-obj', channel: name, data: { a: 1, b: [true, null] } });
    const m = await got;
    assert.equal(typeof m.data, 'string', 'object data must be forwarded as a JSON string');
    assert.deepEqual(JSON.parse(m.data), { a: 1, b: [true, null] });
    assert.equal(m.user_id, undefined);
    assert.ok(!('user_id' in m));
  });

  h.test('presence channel: delivered with metadata.user_id of the sender', async (s) => {
    const name = uniq('presence-chat');
    const a = await s.connected({ user: { user_id: 'sender-1', user_info: { name: 'S' } } });
    const b = await s.connected({ user: { user_id: 'receiver-2' } });
    const chA = await subscribe(a, name);
    // B's arrival reaches A as pusher:member_added, possibly after B's own subscription_succeeded:
    // wait for it, so that A's log below holds only what follows the client event.
    const bJoined = waitFor(chA, 'pusher:member_added', 5000);
    const chB = await subscribe(b, name);
    await bJoined;
    const logA = recordChannel(chA);
    const got = waitForArgs(chB, 'client-typing', 5000);
    chA.trigger('client-typing', { typing: true });
    const [data, metadata] = await got;
    assert.deepEqual(data, { typing: true });
    assert.equal(metadata.user_id, 'sender-1');

    const marker = waitFor(chA, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(names(logA), ['marker'], 'sender must not receive its own client event');
  });

  h.test('raw: 11th client event within a second -> pusher:error 4301, connection kept, first 10 delivered', async (s) => {
    const name = uniq('private-rate');
    const sender = await s.rawConnected();
    await s.rawSubscribe(sender, name);
    const peer = await s.connected();
    const chPeer = await subscribe(peer, name);
    const received = [];
    chPeer.bind('client-burst', (d) => received.push(d.i));

    for (let i = 0; i < 11; i++) sender.send({ event: 'client-burst', channel: name, data: { i } });
    const err = await sender.nextEvent('pusher:error', undefined, 5000);
    assert.equal(typeof err.data, 'object');
    assert.equal(err.data.code, 4301);
    assert.equal(typeof err.data.message, 'string');
    await sender.ping();
    assert.ok(sender.isOpen, 'rate limiting must not close the connection');

    const marker = waitFor(chPeer, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(received, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(sender.events().filter((e) => e.event === 'pusher:error').length, 1);
  });

  h.test('public channel: client event rejected with pusher:error and not delivered', async (s) => {
    const name = uniq('public-ce');
    const a = await s.connected();
    const b = await s.connected();
    const chA = await subscribe(a, name);
    const chB = await subscribe(b, name);
    const logB = recordChannel(chB);
    const err = waitFor(a.connection, 'error', 5000, (e) => e && e.type === 'PusherError');
    chA.trigger('client-nope', { x: 1 }); // pusher-js sends it; the server must refuse
    const e = await err;
    assert.equal(e.data.code, null);
    const marker = waitFor(chB, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(names(logB), ['marker']);
    assert.equal(a.connection.state, 'connected');
  });

  h.test('raw: rejected client events (not client- prefixed, unsubscribed channel, encrypted channel)', async (s) => {
    const sub = uniq('private-sub');
    const enc = uniq('private-encrypted-ce');
    const r = await s.rawConnected();
    const other = await s.rawConnected();
    await s.rawSubscribe(r, sub);
    await s.rawSubscribe(r, enc);
    await s.rawSubscribe(other, sub);
    await s.rawSubscribe(other, enc);
    const cases = [
      { event: 'not-client', channel: sub, data: {} },
      { event: 'client-x', channel: uniq('private-notmine'), data: {} },
      { event: 'client-x', channel: enc, data: {} },
    ];
    for (const c of cases) {
      r.send(c);
      const err = await r.nextEvent('pusher:error');
      assert.equal(typeof err.data, 'object', JSON.stringify(c));
      assert.notEqual(err.data.code, 4301, JSON.stringify(c));
    }
    await r.ping();
    const marker = other.nextEvent('marker', sub);
    await s.sdk.trigger(sub, 'marker', {});
    await marker;
    const leaked = other.events().filter((e) => e.event === 'not-client' || e.event === 'client-x');
    assert.deepEqual(leaked, []);
  });
});

describe('client events disabled (HERALD_APP_CLIENT_EVENTS=false)', () => {
  const h = useHerald({ label: 'herald-no-client-events', clientEvents: false });

  h.test('private channel client event is rejected with pusher:error and not delivered', async (s) => {
    const name = uniq('private-off');
    const a = await s.connected();
    const b = await s.connected();
    const chA = await subscribe(a, name);
    const chB = await subscribe(b, name);
    const logB = recordChannel(chB);
    const err = waitFor(a.connection, 'error', 5000, (e) => e && e.type === 'PusherError');
    chA.trigger('client-typing', { x: 1 });
    const e = await err;
    assert.equal(typeof e.data.message, 'string');
    const marker = waitFor(chB, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(names(logB), ['marker']);
  });

  h.test('presence channel client event is rejected too', async (s) => {
    const name = uniq('presence-off');
    const a = await s.connected({ user: { user_id: 'x1' } });
    const b = await s.connected({ user: { user_id: 'x2' } });
    const chA = await subscribe(a, name);
    const chB = await subscribe(b, name);
    const logB = recordChannel(chB);
    const err = waitFor(a.connection, 'error', 5000, (e) => e && e.type === 'PusherError');
    chA.trigger('client-typing', { x: 1 });
    await err;
    const marker = waitFor(chB, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(names(logB), ['marker']);
  });
});
