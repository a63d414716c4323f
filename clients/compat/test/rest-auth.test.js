'use strict';
// REST authentication and validation errors (PROTOCOL.md §5.2–5.7, §9 items 97–124, 127).
// Cases the `pusher` SDK refuses to send (101 channels, 201-char names, bad socket ids) use
// signedFetch, which signs per §5.2 itself.

const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const {
  useHerald, waitFor, subscribe, recordChannel, signRequest, sdkError, hmacHex, uniq,
} = require('../harness');

describe('REST signing helper (PROTOCOL.md §5.2 worked examples)', () => {
  const creds = { key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8', timestamp: 1353088179 };

  it('POST example: body_md5 and signature match the documented values', () => {
    const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
    const r = signRequest({ ...creds, method: 'POST', path: '/apps/3/events', body });
    assert.equal(r.stringToSign,
      'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f');
    assert.equal(r.signature, 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
  });

  it('GET example with filter_by_prefix and info', () => {
    const r = signRequest({
      ...creds, method: 'GET', path: '/apps/3/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' },
    });
    assert.equal(r.signature, '16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291');
  });
});

describe('REST errors', () => {
  const h = useHerald({ label: 'herald-rest-errors' });

  const post = (s, body, extra = {}) => s.rest({ method: 'POST', path: '/events', body, ...extra });

  h.test('baseline: a request signed by the test helper is accepted (200 {})', async (s) => {
    const r = await post(s, { name: 'ok', channels: [uniq('base')], data: '{}' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.contentType || '', /^application\/json\b/);
    assert.deepEqual(r.json, {});
  });

  h.test('SDK with a wrong secret -> 401', async (s) => {
    const bad = s.server.sdk({ secret: 'definitely-wrong' });
    const e = await sdkError(() => bad.trigger(uniq('x'), 'ev', {}));
    assert.equal(e.status, 401);
    assert.ok(e.body.includes(`/apps/${s.server.appId}/events`), `401 body should mention the string to sign: ${e.body}`);
  });

  h.test('wrong signature -> 401; body shows the string to sign but not the correct signature', async (s) => {
    const body = JSON.stringify({ name: 'ev', channels: [uniq('x')], data: '{}' });
    const r = await post(s, body, { secret: 'wrong-secret' });
    assert.equal(r.status, 401, r.text);
    const [, signedPath, canonicalQuery] = r.stringToSign.split('\n');
    const correct = hmacHex(s.server.secret, r.stringToSign);
    assert.ok(r.text.includes(canonicalQuery), `body should contain the canonical query "${canonicalQuery}": ${r.text}`);
    assert.ok(r.text.includes(signedPath), `body should contain the path: ${r.text}`);
    assert.ok(!r.text.includes(correct), 'body must not contain the correct signature');
  });

  h.test('auth_key of another app -> 401', async (s) => {
    const r = await post(s, { name: 'ev', channels: [uniq('x')], data: '{}' }, { key: 'not-this-apps-key' });
    assert.equal(r.status, 401, r.text);
  });

  h.test('auth_timestamp more than 600 s off -> 401; within 600 s -> 200', async (s) => {
    // ±605 / -595 rather than ±601 / -599: a second boundary may pass between signing and checking.
    const now = Math.floor(Date.now() / 1000);
    const body = { name: 'ev', channels: [uniq('ts')], data: '{}' };
    assert.equal((await post(s, body, { timestamp: now - 605 })).status, 401);
    assert.equal((await post(s, body, { timestamp: now + 605 })).status, 401);
    const ok = await post(s, body, { timestamp: now - 595 });
    assert.equal(ok.status, 200, ok.text);
  });

  h.test('body_md5 missing or not matching the body -> 401', async (s) => {
    const body = { name: 'ev', channels: [uniq('md5')], data: '{}' };
    assert.equal((await post(s, body, { bodyMd5: null })).status, 401);
    assert.equal((await post(s, body, { bodyMd5: 'd41d8cd98f00b204e9800998ecf8427e' })).status, 401);
  });

  h.test('unknown app id -> 404 (SDK and raw)', async (s) => {
    const other = s.server.sdk({ appId: '987654' });
    const e = await sdkError(() => other.trigger(uniq('x'), 'ev', {}));
    assert.equal(e.status, 404);
    const r = await s.rest({ method: 'GET', path: '/channels', appId: '987654' });
    assert.equal(r.status, 404);
  });

  h.test('101 channels -> 400; 100 channels -> 200', async (s) => {
    const tag = uniq('many');
    const chans = (n) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);
    const bad = await post(s, { name: 'ev', channels: chans(101), data: '{}' });
    assert.equal(bad.status, 400, bad.text);
    const ok = await post(s, { name: 'ev', channels: chans(100), data: '{}' });
    assert.equal(ok.status, 200, ok.text);
  });

  h.test('data of 10,241 bytes -> 413; 10,240 bytes -> 200 (SDK)', async (s) => {
    const name = uniq('size');
    const e = await sdkError(() => s.sdk.trigger(name, 'big', 'x'.repeat(10241)));
    assert.equal(e.status, 413);
    const ok = await s.sdk.trigger(name, 'big', 'x'.repeat(10240));
    assert.equal(ok.status, 200);
  });

  h.test('reserved event names pusher:foo / pusher_internal:foo -> 400 (SDK)', async (s) => {
    for (const ev of ['pusher:foo', 'pusher_internal:foo']) {
      const e = await sdkError(() => s.sdk.trigger(uniq('x'), ev, {}));
      assert.equal(e.status, 400, ev);
    }
  });

  h.test('event name of 201 chars -> 400; 200 chars -> 200', async (s) => {
    const name = uniq('long');
    const bad = await post(s, { name: 'e'.repeat(201), channels: [name], data: '{}' });
    assert.equal(bad.status, 400, bad.text);
    const ok = await post(s, { name: 'e'.repeat(200), channels: [name], data: '{}' });
    assert.equal(ok.status, 200, ok.text);
  });

  h.test('missing name or data -> 400', async (s) => {
    const name = uniq('missing');
    assert.equal((await post(s, { channels: [name], data: '{}' })).status, 400);
    assert.equal((await post(s, { name: 'ev', channels: [name] })).status, 400);
  });

  h.test('invalid channel name in a trigger -> 400', async (s) => {
    const r = await post(s, { name: 'ev', channels: ['bad name'], data: '{}' });
    assert.equal(r.status, 400, r.text);
  });

  h.test('malformed socket_id -> 400', async (s) => {
    for (const socketId of ['abc', '123', '1.2.3', '1.x']) {
      const r = await post(s, { name: 'ev', channels: [uniq('sid')], data: '{}', socket_id: socketId });
      assert.equal(r.status, 400, `socket_id ${socketId}: ${r.status} ${r.text}`);
    }
  });

  h.test('batch of 11 -> 400 and nothing from it delivered; batch of 10 -> 200', async (s) => {
    const name = uniq('batch11');
    const c = await s.connected();
    const ch = await subscribe(c, name);
    const log = recordChannel(ch);
    const batch = (n, ev) => Array.from({ length: n }, (_, i) => ({ channel: name, name: ev, data: { i } }));
    const e = await sdkError(() => s.sdk.triggerBatch(batch(11, 'from-11')));
    assert.equal(e.status, 400);
    const marker = waitFor(ch, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(log.map((x) => x.name), ['marker'], 'no event of the rejected batch may be delivered');

    const lastOf10 = waitFor(ch, 'from-10', 5000, (d) => d.i === 9);
    const ok = await s.sdk.triggerBatch(batch(10, 'from-10'));
    assert.equal(ok.status, 200);
    await lastOf10;
    assert.deepEqual(log.filter((x) => x.name === 'from-10').map((x) => x.data.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  h.test('invalid event inside a batch -> 400 and nothing from the batch delivered', async (s) => {
    const name = uniq('batchbad');
    const c = await s.connected();
    const ch = await subscribe(c, name);
    const log = recordChannel(ch);
    const e = await sdkError(() => s.sdk.triggerBatch([
      { channel: name, name: 'good', data: '{}' },
      { channel: name, name: 'pusher:bad', data: '{}' },
    ]));
    assert.equal(e.status, 400);
    const marker = waitFor(ch, 'marker', 5000);
    await s.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(log.map((x) => x.name), ['marker']);
  });

  h.test('info=user_count is presence-only: /channels without presence prefix and /channels/{public} -> 400', async (s) => {
    const r1 = await s.rest({ method: 'GET', path: '/channels', params: { info: 'user_count' } });
    assert.equal(r1.status, 400, r1.text);
    const r2 = await s.rest({ method: 'GET', path: `/channels/${uniq('pub')}`, params: { info: 'user_count' } });
    assert.equal(r2.status, 400, r2.text);
  });

  h.test('GET /channels/{public}/users -> 400', async (s) => {
    const e = await sdkError(() => s.sdk.get({ path: `/channels/${uniq('pub')}/users` }));
    assert.equal(e.status, 400);
  });

  h.test('query values percent-encoded (PHP style) verify correctly', async (s) => {
    // Signed over the decoded value, sent encoded.
    const name = uniq('presence-enc');
    const params = { info: 'user_count,subscription_count' };
    const signed = signRequest({
      method: 'GET', path: `/apps/${s.server.appId}/channels/${name}`, params, key: s.server.key, secret: s.server.secret,
    });
    const wire = signed.query.replace('info=user_count,subscription_count', 'info=user_count%2Csubscription_count');
    const res = await fetch(`${s.server.httpBase}/apps/${s.server.appId}/channels/${name}?${wire}`);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(JSON.parse(text).occupied, false);
  });
});
