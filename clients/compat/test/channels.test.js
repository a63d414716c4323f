'use strict';
// Public, private and encrypted channels (PROTOCOL.md §2.1–2.4, §2.6, §9 items 32–48).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe } = require('node:test');
const { useHerald, waitFor, subscribe, hmacHex, uniq } = require('../harness');

function parseSubscriptionError(msg) {
  assert.equal(typeof msg.data, 'string', `pusher:subscription_error data must be a JSON string: ${JSON.stringify(msg)}`);
  const d = JSON.parse(msg.data);
  assert.equal(typeof d.type, 'string');
  assert.equal(typeof d.error, 'string');
  assert.ok(Number.isInteger(d.status), `status must be an integer: ${msg.data}`);
  return d;
}

function assertPusherErrorNull(msg) {
  assert.equal(typeof msg.data, 'object', `pusher:error data must be an object: ${JSON.stringify(msg)}`);
  assert.notEqual(msg.data, null);
  assert.equal(msg.data.code, null, `pusher:error code must be null: ${JSON.stringify(msg)}`);
  assert.equal(typeof msg.data.message, 'string');
}

// Sends a subscribe that must fail; returns { error, subError } after proving the socket is open
// (ping/pong) and that no subscription_succeeded arrived for the channel.
async function expectSubscribeRejected(r, channel, data) {
  r.send({ event: 'pusher:subscribe', data: { channel, ...data } });
  const error = await r.nextEvent('pusher:error');
  assertPusherErrorNull(error);
  const subErrMsg = await r.nextEvent('pusher:subscription_error', channel);
  const subError = parseSubscriptionError(subErrMsg);
  await r.ping();
  assert.ok(r.isOpen, 'socket must stay open');
  assert.ok(!r.events().some((e) => e.event === 'pusher_internal:subscription_succeeded' && e.channel === channel),
    `must not receive subscription_succeeded for ${channel}`);
  return { error, subError };
}

describe('channels', () => {
  const h = useHerald({ label: 'herald-channels' });

  h.test('pusher-js public subscribe -> pusher:subscription_succeeded; receives a REST trigger', async (s) => {
    const c = await s.connected();
    const name = uniq('public');
    const ch = await subscribe(c, name);
    assert.equal(ch.subscribed, true);
    const got = waitFor(ch, 'greet', 5000);
    await s.sdk.trigger(name, 'greet', { hello: 'world', n: 42 });
    assert.deepEqual(await got, { hello: 'world', n: 42 });
  });

  h.test('raw public subscribe: succeeded has data "{}" and channel; with and without auth key', async (s) => {
    const r = await s.rawConnected();
    const a = uniq('public-raw');
    const b = uniq('public-raw');
    r.send({ event: 'pusher:subscribe', data: { auth: '', channel: a } }); // pusher-js form
    r.send({ event: 'pusher:subscribe', data: { channel: b } }); // Java / push.js form
    const ma = await r.nextEvent('pusher_internal:subscription_succeeded', a);
    const mb = await r.nextEvent('pusher_internal:subscription_succeeded', b);
    assert.deepEqual(ma, { event: 'pusher_internal:subscription_succeeded', channel: a, data: '{}' });
    assert.deepEqual(mb, { event: 'pusher_internal:subscription_succeeded', channel: b, data: '{}' });
    const ev = r.nextEvent('ping-event', a);
    await s.sdk.trigger(a, 'ping-event', 'plain string data');
    const m = await ev;
    assert.deepEqual(m, { event: 'ping-event', channel: a, data: 'plain string data' });
  });

  h.test('channel name of 164 chars is accepted, 165 rejected with InvalidChannel/400', async (s) => {
    const r = await s.rawConnected();
    const ok = `ok-${'a'.repeat(161)}`;
    const bad = `bad-${'b'.repeat(161)}`;
    assert.equal(ok.length, 164);
    assert.equal(bad.length, 165);
    await s.rawSubscribe(r, ok);
    const { subError } = await expectSubscribeRejected(r, bad, { auth: '' });
    assert.equal(subError.type, 'InvalidChannel');
    assert.equal(subError.status, 400);
  });

  h.test('invalid channel names (space, slash, #foo) are rejected; socket stays open', async (s) => {
    const r = await s.rawConnected();
    for (const bad of ['has space', 'a/b', '#foo']) {
      const { subError } = await expectSubscribeRejected(r, bad, { auth: '' });
      if (bad !== '#foo') {
        assert.equal(subError.type, 'InvalidChannel', `for ${JSON.stringify(bad)}`);
        assert.equal(subError.status, 400);
      }
    }
  });

  h.test('unsubscribe: no more events on that channel (proved against a still-subscribed channel)', async (s) => {
    const a = await s.connected();
    const b = await s.connected();
    const x = uniq('unsub-x');
    const y = uniq('unsub-y');
    await subscribe(a, x);
    const chAy = await subscribe(a, y);
    const chBx = await subscribe(b, x);

    a.unsubscribe(x);
    // Barrier: frames on one socket are processed in order, so once a later subscribe succeeds the
    // unsubscribe has been applied server-side.
    await subscribe(a, uniq('unsub-barrier'));

    const seenByA = [];
    a.connection.bind('message', (m) => { if (m.channel === x) seenByA.push(m); });
    const bGotX = waitFor(chBx, 'after-unsub', 5000);
    const aGotY = waitFor(chAy, 'marker', 5000);
    await s.sdk.trigger(x, 'after-unsub', { n: 1 });
    assert.deepEqual(await bGotX, { n: 1 }, 'the other subscriber still receives events on x');
    await s.sdk.trigger(y, 'marker', { n: 2 });
    assert.deepEqual(await aGotY, { n: 2 });
    assert.deepEqual(seenByA, [], 'the unsubscribed socket must not receive events on x');
  });

  h.test('raw: unsubscribe produces no reply; unknown-channel unsubscribe is ignored', async (s) => {
    const r = await s.rawConnected();
    const x = uniq('raw-unsub');
    await s.rawSubscribe(r, x);
    r.send({ event: 'pusher:unsubscribe', data: { channel: x } });
    r.send({ event: 'pusher:unsubscribe', data: { channel: uniq('never-subscribed') } });
    await r.ping();
    const after = r.events().slice(2).map((e) => e.event); // skip established + succeeded
    assert.deepEqual(after, ['pusher:pong'], `unexpected replies: ${r.transcript()}`);
  });

  h.test('pusher-js private channel with server-SDK auth: subscribes and receives a trigger', async (s) => {
    const c = await s.connected();
    const name = uniq('private');
    const ch = await subscribe(c, name);
    const got = waitFor(ch, 'secret-thing', 5000);
    await s.sdk.trigger(name, 'secret-thing', { ok: true });
    assert.deepEqual(await got, { ok: true });
  });

  h.test('raw private subscribe with valid signature -> succeeded data "{}"', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('private-raw');
    const msg = await s.rawSubscribe(r, name);
    assert.deepEqual(msg, { event: 'pusher_internal:subscription_succeeded', channel: name, data: '{}' });
  });

  h.test('pusher-js private-encrypted channel: server SDK encrypts, pusher-js decrypts', async (s) => {
    const c = await s.connected();
    const name = uniq('private-encrypted');
    const ch = await subscribe(c, name);
    const got = waitFor(ch, 'sealed', 5000);
    await s.sdk.trigger(name, 'sealed', { msg: 'end-to-end', list: [1, 2, 3] });
    assert.deepEqual(await got, { msg: 'end-to-end', list: [1, 2, 3] });
  });

  h.test('private-encrypted: REST data string is forwarded byte-identical to a raw subscriber', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('private-encrypted-raw');
    const sub = await s.rawSubscribe(r, name);
    assert.equal(sub.data, '{}');
    // Unusual spacing and key order: any re-serialisation by the server would change the bytes.
    const nonce = crypto.randomBytes(24).toString('base64');
    const ciphertext = crypto.randomBytes(64).toString('base64');
    const data = `{"nonce": "${nonce}",  "ciphertext":"${ciphertext}" }`;
    const got = r.nextEvent('sealed', name);
    const res = await s.rest({ method: 'POST', path: '/events', body: { name: 'sealed', channels: [name], data } });
    assert.equal(res.status, 200, res.text);
    const m = await got;
    assert.equal(m.data, data);
    assert.equal(m.channel, name);
  });

  h.test('raw: wrong signature -> pusher:error code null + subscription_error AuthError/401; expected signature never revealed', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('private-bad');
    const expected = s.sdk.authorizeChannel(r.socketId, name).auth.split(':')[1];
    const wrong = `${s.key}:${hmacHex('not-the-secret', `${r.socketId}:${name}`)}`;
    const { error, subError } = await expectSubscribeRejected(r, name, { auth: wrong });
    assert.equal(subError.type, 'AuthError');
    assert.equal(subError.status, 401);
    assert.ok(!error.data.message.includes(expected), 'error message must not contain the expected signature');
    assert.ok(!r.messages.some((m) => m.text && m.text.includes(expected)), 'no frame may contain the expected signature');
  });

  h.test('raw: other bad auth forms are rejected (other socket id, wrong key prefix, no colon)', async (s) => {
    const r = await s.rawConnected();
    const base = uniq('private-bad2');
    const cases = [
      ['signature for another socket_id', (ch) => `${s.key}:${hmacHex(s.server.secret, `1234.5678:${ch}`)}`],
      ['correct signature, wrong key prefix', (ch) => `other-key:${hmacHex(s.server.secret, `${r.socketId}:${ch}`)}`],
      ['no colon', (ch) => hmacHex(s.server.secret, `${r.socketId}:${ch}`)],
      ['empty auth on private channel', () => ''],
    ];
    let i = 0;
    for (const [label, mk] of cases) {
      const ch = `${base}-${i++}`;
      const { subError } = await expectSubscribeRejected(r, ch, { auth: mk(ch) });
      assert.equal(subError.type, 'AuthError', label);
      assert.equal(subError.status, 401, label);
    }
  });

  h.test('pusher-js: server-rejected auth is delivered to channel.bind("pusher:subscription_error")', async (s) => {
    const c = await s.connected({
      authorize: (params) => ({ auth: `${s.key}:${'0'.repeat(64)}` }),
    });
    const name = uniq('private-sdkbad');
    const connErr = waitFor(c.connection, 'error', 5000, (e) => e && e.type === 'PusherError');
    const ch = c.subscribe(name);
    const subErr = await waitFor(ch, 'pusher:subscription_error', 5000);
    assert.equal(subErr.type, 'AuthError');
    assert.equal(subErr.status, 401);
    const e = await connErr;
    assert.equal(e.data.code, null);
    assert.equal(ch.subscribed, false);
    assert.equal(c.connection.state, 'connected');
  });

  h.test('subscribing twice is idempotent: second succeeded, counted once', async (s) => {
    const r = await s.rawConnected();
    const name = uniq('twice');
    await s.rawSubscribe(r, name);
    await s.rawSubscribe(r, name);
    const res = await s.sdk.get({ path: `/channels/${name}`, params: { info: 'subscription_count' } });
    const body = await res.json();
    assert.equal(body.occupied, true);
    assert.equal(body.subscription_count, 1);
  });
});
