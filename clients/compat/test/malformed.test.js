'use strict';
// Malformed input robustness (PROTOCOL.md §1.1, §1.3, §2.2, §9 items 20–22, 31, 35, 38–39).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, waitFor, subscribe, uniq } = require('../harness');

const N_EVENTS = 50;

function assertNoHighCloseCode(close) {
  assert.ok(!(close.code >= 4300 && close.code <= 4999), `close code ${close.code} >= 4300 is forbidden`);
}

describe('malformed input', () => {
  const h = useHerald({ label: 'herald-malformed' });

  h.test('invalid JSON -> pusher:error code null, socket stays open', async (s) => {
    const r = await s.rawConnected();
    r.send('{"event":"pusher:subscribe", this is not json');
    const err = await r.nextEvent('pusher:error');
    assert.equal(typeof err.data, 'object');
    assert.equal(err.data.code, null);
    assert.equal(typeof err.data.message, 'string');
    await r.ping();
    assert.ok(r.isOpen);
  });

  h.test('frame without event -> pusher:error, socket stays open', async (s) => {
    const r = await s.rawConnected();
    r.send({ data: { channel: 'x' } });
    const err = await r.nextEvent('pusher:error');
    assert.equal(typeof err.data, 'object');
    await r.ping();
    assert.ok(r.isOpen);
  });

  h.test('binary frame does not crash the server or close the socket with 43xx', async (s) => {
    const r = await s.rawConnected();
    r.sendBinary([0x00, 0xff, 0x7b, 0x22, 0x01]);
    r.sendBinary(Buffer.from('{"event":"pusher:ping","data":{}}'));
    // Either ignored or answered with pusher:error; the socket must still work.
    r.send({ event: 'pusher:ping', data: {} });
    await r.next((m) => m.json && m.json.event === 'pusher:pong', 5000, 'pong after binary frames');
    assert.ok(r.isOpen);
  });

  h.test('subscribe without channel / with non-object data -> pusher:error, socket open', async (s) => {
    const r = await s.rawConnected();
    for (const frame of [
      { event: 'pusher:subscribe', data: {} },
      { event: 'pusher:subscribe' },
      { event: 'pusher:subscribe', data: null },
      { event: 'pusher:subscribe', data: 42 },
      { event: 'pusher:subscribe', data: { channel: 123 } },
    ]) {
      r.send(frame);
      const err = await r.nextEvent('pusher:error', undefined, 5000)
        .catch((e) => { throw new Error(`no pusher:error for ${JSON.stringify(frame)}: ${e.message}`); });
      assert.equal(typeof err.data, 'object', JSON.stringify(frame));
    }
    await r.ping();
    assert.ok(r.isOpen);
  });

  h.test('string-encoded data in subscribe is decoded (lenient servers)', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('strdata');
    r.send({ event: 'pusher:subscribe', data: JSON.stringify({ channel: name, auth: '' }) });
    const m = await r.nextEvent('pusher_internal:subscription_succeeded', name);
    assert.equal(m.data, '{}');
  });

  h.test('garbage burst on one socket while a pusher-js client receives all N events in order', async (s) => {
    const stream = uniq('stream');
    const c = await s.connected();
    const ch = await subscribe(c, stream);
    const received = [];
    const all = waitFor(ch, 'seq', 15000, (d) => { received.push(d.i); return d.i === N_EVENTS - 1; });

    const r = await s.rawConnected();
    const garbage = [
      '{not json',
      '',
      '[]',
      '"just a string"',
      'null',
      '12345',
      '{}',
      '{"event":123}',
      '{"event":null,"data":{}}',
      '{"event":"pusher:subscribe","data":{"channel":"bad name"}}',
      '{"event":"pusher:subscribe","data":{"channel":""}}',
      `{"event":"pusher:subscribe","data":{"channel":"${'z'.repeat(200)}"}}`,
      '{"event":"pusher:subscribe","data":{"channel":"#foo"}}',
      '{"event":"pusher:subscribe","data":{"channel":"a/b"}}',
      '{"event":"pusher:subscribe","data":{"channel":"private-x","auth":"nocolon"}}',
      '{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"k:0","channel_data":"{not json"}}',
      '{"event":"pusher:subscribe","data":"{not json either"}',
      '{"event":"pusher:subscribe","data":[1,2,3]}',
      '{"event":"pusher:unsubscribe","data":{"channel":"never-subscribed"}}',
      '{"event":"pusher:unsubscribe","data":{}}',
      `{"event":"client-x","channel":"${stream}","data":{}}`, // client event on a public channel
      '{"event":"client-x","channel":"private-not-subscribed","data":{}}',
      '{"event":"pusher:unknown_thing","data":{}}',
      '\u0000\u0001\u0002',
      '{"event":"pusher:subscribe","data":{"channel":"ok-\u00e9\u4e2d"}}',
    ];

    // Interleave REST triggers with the garbage; triggers are awaited sequentially to keep order.
    const triggers = (async () => {
      for (let i = 0; i < N_EVENTS; i++) {
        await s.sdk.trigger(stream, 'seq', { i });
      }
    })();
    for (let round = 0; round < 3; round++) {
      for (const g of garbage) r.send(g);
      r.sendBinary([0xde, 0xad, 0xbe, 0xef]);
      r.sendBinary(new Uint8Array(1024));
    }
    await triggers;

    // The garbage socket is still open and answers a ping.
    r.send({ event: 'pusher:ping', data: {} });
    await r.next((m) => m.json && m.json.event === 'pusher:pong', 5000, 'pong after garbage burst');
    assert.ok(r.isOpen, 'socket must stay open after non-oversized garbage');
    assert.ok(!r.events().some((e) => e.event === 'pusher_internal:subscription_succeeded'),
      `no garbage subscribe may succeed: ${r.transcript()}`);
    for (const e of r.events().filter((x) => x.event === 'pusher:error')) {
      assert.equal(typeof e.data, 'object', 'pusher:error data must be an object');
      assert.ok(e.data.code === null || (e.data.code >= 4000 && e.data.code < 4400), JSON.stringify(e));
    }

    // Oversized frame (100 KB): the server may drop the connection, but not with a 43xx code,
    // and if it keeps it open it must still answer a ping.
    r.send(JSON.stringify({ event: 'client-big', channel: 'private-x', data: 'y'.repeat(100 * 1024) }));
    r.send({ event: 'pusher:ping', data: {} });
    try {
      await r.next((m) => m.json && m.json.event === 'pusher:pong', 5000, 'pong after oversized frame');
    } catch (e) {
      if (!r.closeInfo) throw e; // neither answered nor closed
      assertNoHighCloseCode(r.closeInfo);
    }

    await all;
    assert.deepEqual(received, Array.from({ length: N_EVENTS }, (_, i) => i), 'every event, in order, exactly once');
    assert.equal(c.connection.state, 'connected');

    // A fresh connection still works after all of this.
    const fresh = await s.rawConnected();
    await fresh.ping();
  });
});
