'use strict';
// Webhooks (PROTOCOL.md §6, §7.1, §9 items 130–140): a real HTTP receiver checks every request with
// the `pusher` package's webhook() helper while pusher-js clients subscribe, join presence, send
// client events, disconnect and reload. HERALD_WEBHOOK_DELAY=1 keeps the removal delay short.
//
// Absence is proved by order, never with a sleep: an endpoint receives its requests in order, and
// removals go out in the order they were scheduled, so a removal that should not exist would reach
// the endpoint before a marker removal scheduled after it.

const assert = require('node:assert/strict');
const { describe, after } = require('node:test');
const { useHerald, useWebhookReceiver, subscribe, eventually, uniq } = require('../harness');

const APP = { appId: '3001', key: 'wh-key', secret: 'wh-secret' };
const HOOK_WAIT_MS = 8000; // a removal takes the 1 s delay, a retry up to 1 s of back-off

// One line per event: "name channel [user_id]".
const line = (e) => [e.name, e.channel, e.user_id].filter((x) => x !== undefined).join(' ');

// Next request to `path` carrying an event on one of `channels`.
function nextOn(rx, path, channels, ms = HOOK_WAIT_MS) {
  return rx.next(
    (r) => r.path === path && r.events.some((e) => channels.includes(e.channel)),
    ms, `a webhook to ${path} about ${channels.join(', ')}`,
  );
}

// Reads the next requests to `path` about `channels` and checks their events, one line per event.
async function expectOn(rx, path, channels, want) {
  const got = [];
  while (got.length < want.length) {
    const r = await nextOn(rx, path, channels);
    assert.ok(Number.isInteger(r.timeMs), `time_ms must be an integer: ${r.rawBody}`);
    assert.ok(Math.abs(r.time.getTime() - Date.now()) < 60000, `time_ms is not now: ${r.rawBody}`);
    got.push(...r.events.map(line));
  }
  assert.deepEqual(got, want);
}

function assertAllValid(rx) {
  assert.deepEqual(rx.invalid.map((r) => `${r.path} ${JSON.stringify(r.headers)} ${r.rawBody}`), [],
    'every webhook must pass pusher.webhook().isValid()');
}

describe('webhooks', () => {
  const rx = useWebhookReceiver(APP);
  const h = useHerald(() => ({
    label: 'herald-webhooks',
    ...APP,
    env: { HERALD_WEBHOOK_DELAY: '1' },
    config: {
      apps: [{
        id: APP.appId, key: APP.key, secret: APP.secret, client_events: true,
        webhooks: [
          { url: `${rx.url}/all` },
          {
            url: `${rx.url}/members`, event_types: ['member_added', 'member_removed'],
            filter: { channel_name_starts_with: 'presence-' }, headers: { 'X-Herald-Test': 'members' },
          },
          { url: `${rx.url}/webman`, naming: 'webman', filter: { channel_name_ends_with: '-webman' } },
          { url: `${rx.url}/flaky`, filter: { channel_name_starts_with: 'flaky-' } },
        ],
      }],
    },
  }));
  after(() => rx.close());

  h.test('presence lifecycle and client events arrive signed, typed and in order', async (s) => {
    const P = uniq('presence-life');
    const a = await s.connected({ user: { user_id: 'u-1', user_info: { name: 'Ann' } } });
    await subscribe(a, P);
    await expectOn(rx, '/all', [P], [`channel_occupied ${P}`, `member_added ${P} u-1`]);

    const b = await s.connected({ user: { user_id: 'u-2' } });
    const chB = await subscribe(b, P);
    await expectOn(rx, '/all', [P], [`member_added ${P} u-2`]);

    chB.trigger('client-wave', { hello: 'world' });
    const ce = (await nextOn(rx, '/all', [P])).events[0];
    assert.deepEqual(ce, {
      name: 'client_event', channel: P, event: 'client-wave', data: '{"hello":"world"}',
      socket_id: b.connection.socket_id, user_id: 'u-2',
    });

    b.disconnect();
    await expectOn(rx, '/all', [P], [`member_removed ${P} u-2`]);
    a.disconnect();
    await expectOn(rx, '/all', [P], [`member_removed ${P} u-1`, `channel_vacated ${P}`]);

    // The members endpoint got exactly its types, in order, with its custom header, signed anew.
    const members = [];
    for (let i = 0; i < 4; i++) {
      const r = await nextOn(rx, '/members', [P]);
      assert.equal(r.headers['x-herald-test'], 'members');
      assert.equal(r.headers['content-type'], 'application/json');
      members.push(...r.events.map(line));
    }
    assert.deepEqual(members, [`member_added ${P} u-1`, `member_added ${P} u-2`, `member_removed ${P} u-2`, `member_removed ${P} u-1`]);
    assertAllValid(rx);
  });

  h.test('private channel: occupied, client_event without user_id, vacated after the delay', async (s) => {
    const C = uniq('private-chat');
    const a = await s.connected();
    const b = await s.connected();
    await subscribe(a, C);
    const chB = await subscribe(b, C);
    await expectOn(rx, '/all', [C], [`channel_occupied ${C}`]);
    chB.trigger('client-typing', 'plain string');
    const ce = (await nextOn(rx, '/all', [C])).events[0];
    assert.equal(ce.name, 'client_event');
    assert.equal(ce.user_id, undefined);
    assert.equal(ce.data, 'plain string', 'string data is passed as the string itself, as clients receive it');
    const left = Date.now();
    a.disconnect();
    b.disconnect();
    await expectOn(rx, '/all', [C], [`channel_vacated ${C}`]);
    assert.ok(Date.now() - left >= 900, 'channel_vacated waited for the 1 s delay');
    assertAllValid(rx);
  });

  h.test('a reload within the delay sends no removal and no second occupied/added', async (s) => {
    const R = uniq('presence-reload');
    const Z = uniq('presence-marker');
    const user = { user_id: 'u-reload' };
    const page1 = await s.connected({ user });
    await subscribe(page1, R);
    await expectOn(rx, '/all', [R], [`channel_occupied ${R}`, `member_added ${R} u-reload`]);
    const marker = await s.connected({ user: { user_id: 'u-marker' } });
    await subscribe(marker, Z);
    await expectOn(rx, '/all', [Z], [`channel_occupied ${Z}`, `member_added ${Z} u-marker`]);

    // The reload: the old page goes, the new page (already connected) subscribes again.
    const page2 = await s.connected({ user });
    page1.disconnect();
    await eventually(async () => {
      const res = await s.rest({ path: `/channels/${R}`, params: { info: 'user_count' } });
      return res.status === 200 && res.json.occupied === false;
    }, 5000, `${R} empty after the old page left`);
    await subscribe(page2, R);
    // The marker's removals are scheduled after R's would have been, and an endpoint receives its
    // requests in order: a removal for R would arrive first.
    marker.unsubscribe(Z);
    await expectOn(rx, '/all', [R, Z], [`member_removed ${Z} u-marker`, `channel_vacated ${Z}`]);
    await expectOn(rx, '/members', [R, Z], [`member_added ${R} u-reload`, `member_added ${Z} u-marker`, `member_removed ${Z} u-marker`]);

    // The real leave is still reported, once.
    page2.disconnect();
    await expectOn(rx, '/all', [R], [`member_removed ${R} u-reload`, `channel_vacated ${R}`]);
    await expectOn(rx, '/members', [R], [`member_removed ${R} u-reload`]);
    assertAllValid(rx);
  });

  h.test('webman naming: channel_added/removed and user_added/removed with integer time_ms', async (s) => {
    const W = `${uniq('room')}-webman`;
    const PW = `${uniq('presence-room')}-webman`;
    const a = await s.connected({ user: { user_id: '42' } });
    await subscribe(a, W);
    await subscribe(a, PW);
    const got = [];
    // One unsubscribe at a time: over pusher-js's HTTP transports two frames sent together travel as
    // two concurrent requests, in no set order.
    a.unsubscribe(W);
    await eventually(async () => {
      got.length = 0;
      for (const r of rx.records.filter((x) => x.path === '/webman')) got.push(...r.events.map(line));
      return got.includes(`channel_removed ${W}`);
    }, 10000, `channel_removed ${W}`);
    a.unsubscribe(PW);
    got.length = 0;
    while (got.length < 6) {
      const r = await nextOn(rx, '/webman', [W, PW]);
      assert.ok(Number.isInteger(r.timeMs) && r.timeMs > 1e12, `time_ms must be integer milliseconds: ${r.rawBody}`);
      got.push(...r.events.map(line));
    }
    assert.deepEqual(got, [
      `channel_added ${W}`, `channel_added ${PW}`, `user_added ${PW} 42`,
      `channel_removed ${W}`, `user_removed ${PW} 42`, `channel_removed ${PW}`,
    ]);
    assertAllValid(rx);
  });

  h.test('a receiver answering 500 gets the same signed request again, and nothing twice after a 200', async (s) => {
    const F = uniq('flaky-a');
    const G = uniq('flaky-b');
    let failures = 0;
    rx.respond = (rec) => (rec.path === '/flaky' && rec.rawBody.includes(F) && failures++ < 1 ? 500 : 200);
    try {
      const a = await s.connected();
      await subscribe(a, F);
      const first = await nextOn(rx, '/flaky', [F]);
      assert.equal(first.status, 500);
      const again = await nextOn(rx, '/flaky', [F]);
      assert.equal(again.status, 200);
      assert.equal(again.rawBody, first.rawBody, 'a retry resends the same body');
      assert.equal(again.headers['x-pusher-signature'], first.headers['x-pusher-signature']);
      await subscribe(a, G);
      const next = await nextOn(rx, '/flaky', [F, G]);
      assert.deepEqual(next.events.map(line), [`channel_occupied ${G}`], 'no further delivery of the accepted request');
    } finally {
      rx.respond = null;
    }
    assertAllValid(rx);
  });
});

describe('webhooks with batching', () => {
  const rx = useWebhookReceiver(APP);
  const h = useHerald(() => ({
    label: 'herald-webhooks-batching',
    ...APP,
    env: { HERALD_WEBHOOK_DELAY: '1' },
    config: {
      apps: [{
        id: APP.appId, key: APP.key, secret: APP.secret,
        webhooks: [{ url: `${rx.url}/batch`, event_types: ['channel_occupied'] }],
        webhook_batching: { enabled: true, window_ms: 1000, max_events: 3 },
      }],
    },
  }));
  after(() => rx.close());

  h.test('events are batched in order; private-encrypted- events travel alone', async (s) => {
    const base = uniq('bt');
    const names = [`${base}-1`, `${base}-2`, `private-encrypted-${base}`, `${base}-3`, `${base}-4`, `${base}-5`, `${base}-6`];
    const a = await s.connected();
    for (const n of names) await subscribe(a, n);
    const got = [];
    let total = 0;
    while (total < names.length) {
      const r = await nextOn(rx, '/batch', names);
      assert.ok(r.events.length <= 3, `at most max_events per request: ${r.rawBody}`);
      if (r.events.some((e) => e.channel.startsWith('private-encrypted-'))) {
        assert.equal(r.events.length, 1, `an encrypted-channel event is never batched with others: ${r.rawBody}`);
      }
      got.push(r.events.map((e) => e.channel));
      total += r.events.length;
    }
    assert.deepEqual(got.flat(), names, 'occurrence order is kept across and within requests');
    assert.ok(got.some((req) => req.length > 1), `some request carries several events: ${JSON.stringify(got)}`);
    assert.ok(got.some((req) => req.length === 1 && req[0] === names[2]), 'the encrypted-channel event went alone');
    assertAllValid(rx);
  });
});

describe('webhooks: cache_miss and subscription_count', () => {
  const rx = useWebhookReceiver(APP);
  const h = useHerald(() => ({
    label: 'herald-webhooks-counts',
    ...APP,
    config: {
      apps: [{
        id: APP.appId, key: APP.key, secret: APP.secret, subscription_count: true,
        webhooks: [{ url: `${rx.url}/counts`, event_types: ['cache_miss', 'subscription_count'] }],
      }],
    },
  }));
  after(() => rx.close());

  h.test('an empty cache channel fires cache_miss; subscription_count carries an integer count', async (s) => {
    const cache = uniq('cache-news');
    const room = uniq('room');
    const a = await s.connected();
    await subscribe(a, cache);
    await expectOn(rx, '/counts', [cache], [`cache_miss ${cache}`]);

    const count = async () => {
      const e = (await nextOn(rx, '/counts', [room])).events[0];
      assert.equal(e.name, 'subscription_count');
      assert.ok(Number.isInteger(e.subscription_count), `subscription_count must be an integer: ${JSON.stringify(e)}`);
      return e.subscription_count;
    };
    await subscribe(a, room);
    assert.equal(await count(), 1);
    const b = await s.connected();
    await subscribe(b, room);
    assert.equal(await count(), 2);
    b.unsubscribe(room);
    assert.equal(await count(), 1);
    assertAllValid(rx);
  });
});
