'use strict';
// Connection handshake, URL/protocol validation, app state (PROTOCOL.md §1.1–1.4, §9 items 1–19).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, waitFor, subscribe, signedFetch, eventually, uniq } = require('../harness');

const SOCKET_ID_RE = /^\d+\.\d+$/;

// The pusher-js error object nests the server's {code,message} differently depending on whether
// it came from a handshake `pusher:error`, a close frame, or a later `pusher:error`.
function errorCode(err) {
  if (!err) return undefined;
  if (err.error && err.error.data && err.error.data.code !== undefined) return err.error.data.code;
  if (err.data && err.data.code !== undefined) return err.data.code;
  return undefined;
}

// Asserts the raw socket is refused with one of `codes`: no connection_established, an optional
// (or required) `pusher:error` with object data and matching code first, then a Close with that code.
async function expectRefused(raw, codes, { requireError = false } = {}) {
  const close = await raw.waitClose(5000);
  const events = raw.events();
  assert.ok(!events.some((e) => e.event === 'pusher:connection_established'),
    `connection must not be established; received ${raw.transcript()}`);
  assert.ok(codes.includes(close.code), `close code ${close.code} not in ${codes.join('/')} (reason ${JSON.stringify(close.reason)})`);
  assert.ok(Buffer.byteLength(close.reason || '', 'utf8') <= 123, 'close reason must be <= 123 bytes');
  const errors = events.filter((e) => e.event === 'pusher:error');
  if (requireError) assert.ok(errors.length >= 1, `expected pusher:error before close; received ${raw.transcript()}`);
  for (const e of errors) {
    assert.equal(typeof e.data, 'object', 'pusher:error data must be an object');
    assert.notEqual(e.data, null);
    assert.equal(e.data.code, close.code, 'pusher:error code must equal the close code');
    assert.equal(typeof e.data.message, 'string');
  }
  return close;
}

describe('connection: default app', () => {
  const h = useHerald({ label: 'herald-connection' });

  h.test('pusher-js connects: state connected, socket_id format, distinct ids', async (s) => {
    const a = await s.connected();
    const b = await s.connected();
    assert.equal(a.connection.state, 'connected');
    assert.equal(b.connection.state, 'connected');
    assert.match(a.connection.socket_id, SOCKET_ID_RE);
    assert.match(b.connection.socket_id, SOCKET_ID_RE);
    assert.notEqual(a.connection.socket_id, b.connection.socket_id);
  });

  h.test('raw: first frame is connection_established with string data, activity_timeout 120', async (s) => {
    const r = s.raw();
    const data = await r.established();
    assert.equal(r.messages[0].json.event, 'pusher:connection_established');
    assert.equal(typeof r.messages[0].json.data, 'string');
    assert.match(data.socket_id, SOCKET_ID_RE);
    assert.ok(Number.isInteger(data.activity_timeout), 'activity_timeout must be an integer');
    assert.equal(data.activity_timeout, 120);
  });

  for (const [label, query] of [
    ['protocol=5 (Java)', '?client=java-client&protocol=5&version=2.4.0'],
    ['protocol=4', '?protocol=4'],
    ['protocol=6', '?protocol=6&client=js&version=8.4.0'],
    ['no query string (push.js)', ''],
  ]) {
    h.test(`raw: ${label} is accepted`, async (s) => {
      const r = s.raw(`/app/${s.key}${query}`);
      const data = await r.established();
      assert.match(data.socket_id, SOCKET_ID_RE);
      const pong = await r.ping();
      assert.equal(pong.data, '{}');
      assert.ok(r.isOpen);
    });
  }

  h.test('raw: protocol=3 -> pusher:error 4007 then close 4007', async (s) => {
    const r = s.raw(`/app/${s.key}?protocol=3&client=js&version=8.4.0`);
    await expectRefused(r, [4007], { requireError: true });
  });

  h.test('raw: protocol=99 -> close 4007', async (s) => {
    const r = s.raw(`/app/${s.key}?protocol=99&client=js&version=8.4.0`);
    await expectRefused(r, [4007]);
  });

  h.test('raw: protocol=abc -> close 4006 or 4007', async (s) => {
    const r = s.raw(`/app/${s.key}?protocol=abc&client=js&version=8.4.0`);
    await expectRefused(r, [4006, 4007]);
  });

  h.test('raw: unknown app key -> pusher:error {code:4001} (object data) then close 4001', async (s) => {
    const r = s.raw('/app/no-such-key?protocol=7&client=js&version=8.4.0&flash=false');
    await expectRefused(r, [4001], { requireError: true });
  });

  h.test('pusher-js: unknown app key -> error code 4001 and connection ends disconnected', async (s) => {
    const c = s.client({ key: 'no-such-key' });
    const err = waitFor(c.connection, 'error', 5000, (e) => errorCode(e) === 4001);
    const ended = waitFor(c.connection, 'state_change', 5000,
      (st) => ['disconnected', 'unavailable', 'failed'].includes(st.current));
    await err;
    const st = await ended;
    assert.ok(['disconnected', 'unavailable', 'failed'].includes(st.current));
    assert.equal(c.connection.socket_id, undefined, 'no socket id must have been assigned');
  });

  h.test('raw: upgrade on /foo never yields an established socket', async (s) => {
    const r = s.raw('/foo?protocol=7');
    const close = await r.waitClose(5000);
    assert.ok(!r.events().some((e) => e.event === 'pusher:connection_established'),
      `must not receive connection_established; received ${r.transcript()}`);
    if (r.everOpened) {
      // Upgraded anyway: then it must be closed with 4005 (Path not found).
      assert.equal(close.code, 4005, `socket opened on /foo and was closed with ${close.code}, expected 4005`);
    }
  });
});

describe('connection: path prefix', () => {
  const PREFIX = '/admin/wss';
  const h = useHerald({ label: 'herald-prefix', pathPrefix: PREFIX });

  h.test('pusher-js with wsPath connects under the prefix and receives a REST event sent under the prefix', async (s) => {
    const c = await s.connected({ wsPath: PREFIX });
    assert.match(c.connection.socket_id, SOCKET_ID_RE);
    const name = uniq('prefixed');
    const ch = await subscribe(c, name);
    const got = waitFor(ch, 'hello', 5000);
    // Signed for /apps/{id}/events (as SDKs sign), sent to PREFIX/apps/{id}/events (checklist 107).
    const res = await signedFetch(s.server, {
      method: 'POST', path: '/events', urlPrefix: PREFIX,
      body: { name: 'hello', channels: [name], data: JSON.stringify({ n: 1 }) },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(await got, { n: 1 });
  });

  h.test('raw: /admin/wss/app/{key} connects; REST GET under the prefix works', async (s) => {
    const r = s.raw(`${PREFIX}/app/${s.key}?protocol=7&client=js&version=8.4.0&flash=false`);
    const data = await r.established();
    assert.match(data.socket_id, SOCKET_ID_RE);
    const res = await signedFetch(s.server, { method: 'GET', path: '/channels', urlPrefix: PREFIX });
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof res.json, 'object');
    assert.equal(typeof res.json.channels, 'object');
  });
});

describe('connection: config file apps (enabled / disabled / max_connections)', () => {
  const h = useHerald({
    label: 'herald-config',
    appId: '2001',
    key: 'cfg-key',
    secret: 'cfg-secret',
    config: {
      apps: [
        { id: '2001', key: 'cfg-key', secret: 'cfg-secret', enabled: true, client_events: true },
        { id: '2002', key: 'cfg-disabled-key', secret: 'cfg-disabled-secret', enabled: false },
        { id: '2003', key: 'cfg-limited-key', secret: 'cfg-limited-secret', max_connections: 2 },
      ],
    },
  });

  h.test('enabled app from the config file connects (enabled defaults apply)', async (s) => {
    const r = s.raw('/app/cfg-key?protocol=7&client=js&version=8.4.0&flash=false');
    const data = await r.established();
    assert.match(data.socket_id, SOCKET_ID_RE);
  });

  h.test('raw: disabled app -> close 4003', async (s) => {
    const r = s.raw('/app/cfg-disabled-key?protocol=7&client=js&version=8.4.0&flash=false');
    await expectRefused(r, [4003]);
  });

  h.test('pusher-js: disabled app -> error code 4003 and connection ends disconnected', async (s) => {
    const c = s.client({ key: 'cfg-disabled-key' });
    const err = waitFor(c.connection, 'error', 5000, (e) => errorCode(e) === 4003);
    const ended = waitFor(c.connection, 'state_change', 5000,
      (st) => ['disconnected', 'unavailable', 'failed'].includes(st.current));
    await err;
    await ended;
  });

  h.test('max_connections=2: third connection gets close 4004, the first two stay open', async (s) => {
    const url = '/app/cfg-limited-key?protocol=7&client=js&version=8.4.0&flash=false';
    const a = await s.rawConnected(url);
    const b = await s.rawConnected(url);
    const c = s.raw(url);
    await expectRefused(c, [4004]);
    // The existing connections are unaffected and still served.
    assert.equal((await a.ping()).event, 'pusher:pong');
    assert.equal((await b.ping()).event, 'pusher:pong');
    assert.ok(a.isOpen && b.isOpen);
    // Freeing a slot admits a new connection (bounded retry: the server processes a's close
    // asynchronously, so an attempt may still be refused with 4004 for a short moment).
    await a.closeAndWait();
    await eventually(async () => {
      const d = s.raw(url);
      try { await d.established(2000); return true; } catch { return false; }
    }, 5000, 'a new connection to be admitted after one closed');
  });
});
