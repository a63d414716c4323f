'use strict';
// Client-initiated keep-alive (PROTOCOL.md §1.5, §9 items 23–25, 30).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, uniq, subscribe, waitFor } = require('../harness');

describe('keep-alive', () => {
  const h = useHerald({ label: 'herald-keepalive' });

  const variants = [
    ['{"event":"pusher:ping","data":{}} (pusher-js / push.js)', '{"event":"pusher:ping","data":{}}'],
    ['{"event":"pusher:ping"} without data (Java)', '{"event":"pusher:ping"}'],
    ['{"event":"pusher:ping","data":"{}"} (string data)', '{"event":"pusher:ping","data":"{}"}'],
  ];
  for (const [label, frame] of variants) {
    h.test(`${label} -> {"event":"pusher:pong","data":"{}"}`, async (s) => {
      const r = await s.rawConnected();
      r.send(frame);
      const m = await r.next((x) => x.json && x.json.event === 'pusher:pong', 5000, 'pusher:pong');
      assert.deepEqual(m.json, { event: 'pusher:pong', data: '{}' });
      assert.ok(r.isOpen);
    });
  }

  h.test('several pings each get exactly one pong, in order with other traffic', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('ka');
    r.send({ event: 'pusher:ping', data: {} });
    r.send({ event: 'pusher:subscribe', data: { channel: name, auth: '' } });
    r.send({ event: 'pusher:ping', data: {} });
    await r.nextEvent('pusher:pong');
    await r.nextEvent('pusher_internal:subscription_succeeded', name);
    await r.nextEvent('pusher:pong');
    const kinds = r.events().slice(1).map((e) => e.event);
    assert.deepEqual(kinds, ['pusher:pong', 'pusher_internal:subscription_succeeded', 'pusher:pong']);
  });

  h.test('inbound pusher:pong gets no reply (checked against a following ping)', async (s) => {
    const r = await s.rawConnected();
    r.send({ event: 'pusher:pong', data: {} });
    r.send({ event: 'pusher:ping', data: {} });
    await r.nextEvent('pusher:pong');
    // Everything after connection_established: exactly the one pong, nothing answering our pong.
    const after = r.events().slice(1);
    assert.deepEqual(after.map((e) => e.event), ['pusher:pong'], `unexpected frames: ${r.transcript()}`);
  });

  h.test('pusher-js connection stays usable after its own pusher:ping', async (s) => {
    const c = await s.connected();
    const pong = waitFor(c.connection, 'message', 5000, (m) => m.event === 'pusher:pong');
    c.connection.send_event('pusher:ping', {});
    const m = await pong;
    assert.equal(m.event, 'pusher:pong');
    const ch = await subscribe(c, uniq('after-ping'));
    assert.ok(ch.subscribed);
  });
});
