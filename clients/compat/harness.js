'use strict';
// Test harness for the Herald stock-SDK compatibility suite.
//
// - builds (or takes from HERALD_BIN) the server binary, once per process;
// - starts one Herald per test file / suite on a free port and kills it in `after`;
// - gives event-driven, bounded waits (`waitFor`) for pusher-js objects, EventEmitters
//   and the raw WebSocket wrapper;
// - signs raw REST requests per PROTOCOL.md §5.2 for the cases the `pusher` SDK refuses to send.
//
// No sleeps are used as synchronisation; the only timed loop is the bounded readiness poll of
// GET /up (as specified) and the bounded `eventually` helper (REST condition polling).

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { before, after, it } = require('node:test');

const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_WAIT_MS = 5000;
const READY_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;
const TEST_TIMEOUT_MS = 20000;
const LOG_CAP = 256 * 1024;
// HERALD_COMPAT_TRANSPORT=xhr_streaming or xhr_polling runs the pusher-js clients of the scopes over
// that HTTP transport instead of WebSocket.
const HTTP_TRANSPORT = process.env.HERALD_COMPAT_TRANSPORT || '';

// pusher-js answers a 4000–4099 close of an established connection ("refused") by closing it again,
// and faye-websocket, its Node transport, arms a 30 s close timer even on an already closed socket,
// which nothing then clears. In a browser that second close is a no-op; here it would hold each test
// process open for 30 s. Such timers are unref'd: they can still fire, they just keep nobody waiting
// (pusher-js's own 30 s pong timeout is unref'd too; no test waits that long).
const FAYE_CLOSE_TIMEOUT_MS = 30000;
const realSetTimeout = global.setTimeout;
global.setTimeout = function setTimeoutUnrefFayeClose(fn, ms, ...args) {
  const t = realSetTimeout(fn, ms, ...args);
  if (ms === FAYE_CLOSE_TIMEOUT_MS && typeof t.unref === 'function') t.unref();
  return t;
};

// A fixed 32-byte master key for encrypted channels (server SDK side only).
const ENCRYPTION_MASTER_KEY_B64 = Buffer.from('herald-compat-master-key-32bytes').toString('base64');

// ---------------------------------------------------------------------------------------------
// Binary

function buildHerald(outPath) {
  try {
    execFileSync('go', ['build', '-o', outPath, './cmd/herald'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 5 * 60 * 1000,
    });
  } catch (e) {
    const detail = e.stderr ? e.stderr.toString() : e.message;
    throw new Error(`go build ./cmd/herald failed (cwd ${REPO_ROOT}):\n${detail}`);
  }
  return outPath;
}

let builtBinary = null;
function heraldBinary() {
  if (process.env.HERALD_BIN) return process.env.HERALD_BIN;
  if (builtBinary) return builtBinary;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-bin-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  builtBinary = buildHerald(path.join(dir, 'herald'));
  return builtBinary;
}

// ---------------------------------------------------------------------------------------------
// Generic bounded waits

function describeTarget(target) {
  if (target && target.name && typeof target.name === 'string') return `channel ${target.name}`;
  return (target && target.constructor && target.constructor.name) || 'target';
}

// Subscribe to `event` on a pusher-js Dispatcher (bind/unbind), a DOM-style EventTarget
// (addEventListener) or a Node EventEmitter (on/off). Resolves with the listener's argument list.
function waitForArgs(target, event, ms = DEFAULT_WAIT_MS, filter = null) {
  let cleanup = () => {};
  const promise = new Promise((resolve, reject) => {
    const handler = (...args) => {
      if (filter) {
        let ok = false;
        try { ok = filter(...args); } catch (e) { cleanup(); reject(e); return; }
        if (!ok) return;
      }
      cleanup();
      resolve(args);
    };
    let unhook;
    if (typeof target.bind === 'function' && typeof target.unbind === 'function') {
      target.bind(event, handler);
      unhook = () => target.unbind(event, handler);
    } else if (typeof target.addEventListener === 'function') {
      target.addEventListener(event, handler);
      unhook = () => target.removeEventListener(event, handler);
    } else if (typeof target.on === 'function') {
      target.on(event, handler);
      unhook = () => target.off(event, handler);
    } else {
      throw new TypeError('waitFor: unsupported target');
    }
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for '${event}' on ${describeTarget(target)}`));
    }, ms);
    cleanup = () => { clearTimeout(timer); unhook(); };
  });
  // Mark as handled so an un-awaited wait (test already failed elsewhere) cannot crash the run;
  // awaiting `promise` still observes the rejection.
  promise.catch(() => {});
  // cancel(): stop listening and clear the timer (the promise then never settles).
  promise.cancel = () => cleanup();
  return promise;
}

// Resolves with the first listener argument.
function waitFor(target, event, ms = DEFAULT_WAIT_MS, filter = null) {
  const p = waitForArgs(target, event, ms, filter).then((args) => args[0]);
  p.catch(() => {});
  return p;
}

// Bounded race of a promise against a timeout.
function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Bounded condition polling (for state only observable through REST, e.g. occupancy).
async function eventually(fn, ms = DEFAULT_WAIT_MS, what = 'condition', intervalMs = 25) {
  const deadline = Date.now() + ms;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { lastErr = e; }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Ports and server lifecycle

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const liveServers = new Set();

async function httpStatus(url, ca) {
  if (url.startsWith('https:')) {
    return new Promise((resolve) => {
      const req = https.get(url, { ca, timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode); });
      req.on('error', () => resolve(0));
      req.on('timeout', () => { req.destroy(); resolve(0); });
    });
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

let serverSeq = 0;

/**
 * Start a Herald process.
 * opts: { appId, key, secret, clientEvents (bool), activityTimeout (s), pathPrefix,
 *         config (object -> JSON file passed as HERALD_CONFIG), env (extra env), label,
 *         port (default: a free one; given, e.g. to restart Herald where its clients reconnect),
 *         tls: { cert, key } PEM files: Herald serves https/wss, and the readiness poll trusts cert }
 */
async function startHerald(opts = {}) {
  const bin = heraldBinary();
  const port = opts.port || await freePort();
  const label = opts.label || `herald#${++serverSeq}`;
  const appId = opts.appId || '1001';
  const key = opts.key || 'herald-compat-key';
  const secret = opts.secret || 'herald-compat-secret';
  const pathPrefix = opts.pathPrefix || '';

  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('HERALD_')) delete env[k];
  env.HERALD_ADDR = `127.0.0.1:${port}`;
  env.HERALD_LOG_LEVEL = opts.logLevel || 'warn';
  let tmpDir = null;
  if (opts.config) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-cfg-'));
    const file = path.join(tmpDir, 'herald.json');
    fs.writeFileSync(file, JSON.stringify(opts.config, null, 2));
    env.HERALD_CONFIG = file;
  } else {
    env.HERALD_APP_ID = appId;
    env.HERALD_APP_KEY = key;
    env.HERALD_APP_SECRET = secret;
    if (opts.clientEvents !== undefined) env.HERALD_APP_CLIENT_EVENTS = String(!!opts.clientEvents);
  }
  if (opts.activityTimeout !== undefined) env.HERALD_ACTIVITY_TIMEOUT = String(opts.activityTimeout);
  // A polling client that disconnects between two polls is gone only when its session times out:
  // shorter than the default here, so the departures the tests wait for come within their bounds.
  if (HTTP_TRANSPORT) env.HERALD_HTTP_SESSION_TIMEOUT = '2';
  if (pathPrefix) env.HERALD_PATH_PREFIX = pathPrefix;
  if (opts.tls) {
    env.HERALD_TLS_CERT = opts.tls.cert;
    env.HERALD_TLS_KEY = opts.tls.key;
  }
  Object.assign(env, opts.env || {});
  const scheme = opts.tls ? 'https' : 'http';
  const ca = opts.tls ? fs.readFileSync(opts.tls.cert) : undefined;

  let output = '';
  const append = (chunk) => {
    output += chunk.toString();
    if (output.length > LOG_CAP) output = output.slice(output.length - LOG_CAP);
  };
  const child = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', append);
  child.stderr.on('data', append);

  const server = {
    label, port, appId, key, secret, pathPrefix, child,
    host: '127.0.0.1',
    httpBase: `${scheme}://127.0.0.1:${port}`,
    wsBase: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    stopping: false,
    exited: null,
    output: () => output,
  };

  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      server.exited = { code, signal };
      liveServers.delete(server);
      if (!server.stopping) {
        process.stderr.write(`\n[harness] ${label} exited unexpectedly (code ${code}, signal ${signal}); output:\n${output}\n`);
      }
      resolve(server.exited);
    });
    child.on('error', (err) => {
      append(`[harness] spawn error: ${err.message}\n`);
      server.exited = { code: null, signal: null, error: err };
      liveServers.delete(server);
      resolve(server.exited);
    });
  });
  server.exitPromise = exitPromise;
  liveServers.add(server);

  // Readiness: poll GET /up until 200 (bounded).
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const upUrls = [`${server.httpBase}/up`];
  if (pathPrefix) upUrls.push(`${server.httpBase}${pathPrefix}/up`);
  let ready = false;
  while (!ready) {
    if (server.exited) {
      cleanupTmp();
      throw new Error(`${label} exited before becoming ready (${JSON.stringify(server.exited)}); output:\n${output}`);
    }
    for (const u of upUrls) {
      if ((await httpStatus(u, ca)) === 200) { ready = true; break; }
    }
    if (ready) break;
    if (Date.now() > deadline) {
      server.stopping = true;
      child.kill('SIGKILL');
      cleanupTmp();
      throw new Error(`${label} did not answer 200 on /up within ${READY_TIMEOUT_MS} ms; output:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  function cleanupTmp() {
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }

  server.sdk = (overrides = {}) => new PusherServer({
    appId: overrides.appId || appId,
    key: overrides.key || key,
    secret: overrides.secret || secret,
    host: '127.0.0.1',
    port: String(port),
    useTLS: !!opts.tls,
    encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY_B64,
    timeout: 5000,
  });

  server.stop = async () => {
    const early = server.exited && !server.stopping;
    server.stopping = true;
    if (!server.exited) {
      child.kill('SIGTERM');
      try {
        await withTimeout(exitPromise, STOP_TIMEOUT_MS, `${label} exit after SIGTERM`);
      } catch {
        process.stderr.write(`[harness] ${label} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; sending SIGKILL\n`);
        child.kill('SIGKILL');
        await withTimeout(exitPromise, STOP_TIMEOUT_MS, `${label} exit after SIGKILL`);
      }
    }
    cleanupTmp();
    if (early) {
      throw new Error(`${label} had exited unexpectedly during the tests (${JSON.stringify(server.exited)}); output:\n${output}`);
    }
  };

  return server;
}

function dumpServerOutput(testName) {
  for (const s of liveServers) {
    const out = s.output();
    process.stderr.write(`\n----- ${s.label} output (test failed: ${testName}) -----\n${out || '(empty)'}\n----- end ${s.label} -----\n`);
  }
}

/**
 * Register before/after hooks in the current suite/file that start and stop one Herald. `opts` is
 * startHerald's options or a (possibly async) function returning them, called in the `before` hook.
 * Returns a handle whose fields are filled in `before`; use `h.test(name, fn)` to get a per-test
 * scope (`s`) that tracks clients/sockets and closes them afterwards.
 */
function useHerald(opts = {}) {
  const handle = { server: null };
  before(async () => {
    // opts may be a function, called here: its values (e.g. a webhook receiver's URL) can then come
    // from an earlier `before` hook.
    handle.server = await startHerald(typeof opts === 'function' ? await opts() : opts);
  }, { timeout: 5 * 60 * 1000 });
  after(async () => {
    if (handle.server) await handle.server.stop();
  });
  handle.test = (name, fn, testOpts = {}) => scopedTest(name, testOpts, () => {
    if (!handle.server) throw new Error('Herald was not started (see before hook failure)');
    return [handle.server];
  }, (scopes, t) => fn(scopes[0], t));
  return handle;
}

// scopedTest registers a test that gets one Scope per server servers() returns, fails if a server
// exits during it (unless expected: server.stopping), and closes every scope's clients afterwards.
function scopedTest(name, testOpts, servers, fn) {
  return it(name, { timeout: TEST_TIMEOUT_MS, ...testOpts }, async (t) => {
    const list = servers();
    const scopes = list.map((server) => new Scope(server));
    try {
      await fn(scopes, t);
      for (const server of list) {
        if (server.exited && !server.stopping) {
          throw new Error(`${server.label} exited during the test (${JSON.stringify(server.exited)})`);
        }
      }
    } catch (e) {
      dumpServerOutput(name);
      throw e;
    } finally {
      await Promise.all(scopes.map((scope) => scope.cleanup()));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Redis and clusters

/**
 * Start a redis-server of the test's own on a free loopback port, without persistence, so that a
 * restart loses everything as a crashed Redis does. Returns { port, url, stop(), start() }: stop
 * kills it (SIGKILL), start runs it again on the same port.
 */
async function startRedis() {
  const port = await freePort();
  const redis = { port, url: `redis://127.0.0.1:${port}`, child: null };
  redis.start = async () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
    const spawned = new Promise((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
    try {
      await spawned;
    } catch (e) {
      throw new Error(`cannot start redis-server (${e.message}); the cluster tests need it: apt-get install redis-server`);
    }
    redis.child = child;
    redis.exited = new Promise((resolve) => child.once('exit', resolve));
    await eventually(() => redisPing(port), READY_TIMEOUT_MS, `redis-server on port ${port} answering PING`);
  };
  redis.stop = async () => {
    if (!redis.child) return;
    redis.child.kill('SIGKILL');
    await withTimeout(redis.exited, STOP_TIMEOUT_MS, 'redis-server exit');
    redis.child = null;
  };
  // get reads a string key (null when absent), for tests that must know the cluster's state.
  redis.get = (key) => new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.setTimeout(2000, () => { sock.destroy(); reject(new Error(`redis GET ${key}: timeout`)); });
    sock.on('error', reject);
    sock.on('connect', () => sock.write(`GET ${key}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      const m = /^\$(-?\d+)\r\n/.exec(buf);
      if (!m) return;
      const n = Number(m[1]);
      if (n < 0) { sock.destroy(); resolve(null); return; }
      const start = m[0].length;
      if (buf.length >= start + n + 2) { sock.destroy(); resolve(buf.slice(start, start + n)); }
    });
  });
  await redis.start();
  return redis;
}

// redisPing resolves true once a PING on a fresh connection is answered with PONG.
function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString() === '+PONG\r\n'));
  });
}

// waitReady polls a node's GET /ready until it answers want (bounded).
function waitReady(server, want = 200, ms = 15000) {
  return eventually(async () => (await httpStatus(`${server.httpBase}/ready`)) === want, ms,
    `${server.label} /ready answering ${want}`);
}

/**
 * Register before/after hooks that start a redis-server and `nodes` Herald nodes on it. `opts` is
 * startHerald's options (or a function returning them), shared by every node; each node gets its own
 * port and node id, and `opts.nodeEnv(i)` adds node i's own variables (i from 1). The handle's
 * `servers` and `redis` are filled in `before`; `h.test(name, fn)`
 * calls fn with one Scope per node.
 */
function useCluster(nodes, opts = {}) {
  const handle = { servers: [], redis: null };
  before(async () => {
    handle.redis = await startRedis();
    const base = typeof opts === 'function' ? await opts() : opts;
    for (let i = 1; i <= nodes; i++) {
      handle.servers.push(await startHerald({
        ...base, label: `${base.label || 'herald'}-n${i}`,
        env: { ...(base.env || {}), ...(base.nodeEnv ? base.nodeEnv(i) : {}), HERALD_REDIS_URL: handle.redis.url, HERALD_NODE_ID: `n${i}` },
      }));
    }
    await Promise.all(handle.servers.map((server) => waitReady(server)));
  }, { timeout: 5 * 60 * 1000 });
  after(async () => {
    await Promise.all(handle.servers.map((server) => server.stop()));
    if (handle.redis) await handle.redis.stop();
  });
  handle.test = (name, fn, testOpts = {}) => scopedTest(name, testOpts, () => {
    if (handle.servers.length !== nodes) throw new Error('the cluster was not started (see before hook failure)');
    return handle.servers;
  }, fn);
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Per-test scope

class Scope {
  constructor(server) {
    this.server = server;
    this.sdk = server.sdk();
    this.clients = [];
    this.raws = [];
  }

  get key() { return this.server.key; }
  get port() { return this.server.port; }

  // pusher-js client (not yet awaited). `user` = presence channel_data for authorizeChannel;
  // `authorize(params)` overrides the auth response entirely.
  client(opts = {}) {
    const server = this.server;
    const sdk = opts.sdk || this.sdk;
    const pusherOpts = {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: server.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      channelAuthorization: {
        customHandler: (params, cb) => {
          let res;
          try {
            if (opts.authorize) {
              res = opts.authorize(params);
            } else {
              const presence = params.channelName.startsWith('presence-') ? opts.user : undefined;
              res = sdk.authorizeChannel(params.socketId, params.channelName, presence);
            }
          } catch (e) {
            cb(e, null);
            return;
          }
          cb(null, res);
        },
      },
    };
    if (opts.wsPath !== undefined) pusherOpts.wsPath = opts.wsPath;
    if (HTTP_TRANSPORT) {
      // The suite again over one of pusher-js's HTTP fallbacks (npm run test:xhr_streaming, test:xhr_polling).
      Object.assign(pusherOpts, { httpHost: '127.0.0.1', httpPort: server.port, enabledTransports: [HTTP_TRANSPORT] });
      if (opts.wsPath !== undefined) pusherOpts.httpPath = opts.wsPath;
    }
    const c = new PusherClient(opts.key || server.key, pusherOpts);
    this.clients.push(c);
    return c;
  }

  // pusher-js client awaited until state `connected`.
  async connected(opts = {}, ms = DEFAULT_WAIT_MS) {
    const c = this.client(opts);
    if (c.connection.state !== 'connected') {
      await waitFor(c.connection, 'connected', ms);
    }
    return c;
  }

  // Raw WebSocket. `pathAndQuery` defaults to the pusher-js style URL for the app key.
  raw(pathAndQuery) {
    const p = pathAndQuery === undefined
      ? `${this.server.pathPrefix}/app/${this.server.key}?protocol=7&client=js&version=8.4.0&flash=false`
      : pathAndQuery;
    const r = new RawSocket(`${this.server.wsBase}${p}`);
    this.raws.push(r);
    return r;
  }

  // Raw WebSocket awaited until `pusher:connection_established`; `.socketId` is set.
  async rawConnected(pathAndQuery, ms = DEFAULT_WAIT_MS) {
    const r = this.raw(pathAndQuery);
    await r.established(ms);
    return r;
  }

  // Raw subscribe with server-SDK auth for private/presence channels; resolves with the
  // subscription_succeeded message.
  async rawSubscribe(raw, channel, channelData, ms = DEFAULT_WAIT_MS) {
    const data = { channel };
    if (channel.startsWith('private-') || channel.startsWith('presence-')) {
      const a = this.sdk.authorizeChannel(raw.socketId, channel, channelData);
      data.auth = a.auth;
      if (a.channel_data !== undefined) data.channel_data = a.channel_data;
    } else {
      data.auth = '';
    }
    raw.send({ event: 'pusher:subscribe', data });
    return raw.next(
      (m) => m.json && m.json.channel === channel &&
        (m.json.event === 'pusher_internal:subscription_succeeded' || m.json.event === 'pusher:subscription_error'),
      ms, `subscription result for ${channel}`,
    ).then((m) => {
      if (m.json.event !== 'pusher_internal:subscription_succeeded') {
        throw new Error(`subscription to ${channel} failed: ${m.text}`);
      }
      return m.json;
    });
  }

  rest(opts) {
    return signedFetch(this.server, opts);
  }

  async cleanup() {
    for (const c of this.clients) {
      try { c.disconnect(); } catch { /* ignore */ }
    }
    await Promise.all(this.raws.map((r) => r.closeAndWait(2000).catch(() => {})));
  }
}

// ---------------------------------------------------------------------------------------------
// pusher-js helpers

// Subscribe and await `pusher:subscription_succeeded`; rejects early on `pusher:subscription_error`.
async function subscribe(client, channelName, ms = DEFAULT_WAIT_MS) {
  const ch = client.subscribe(channelName);
  if (ch.subscribed) return ch;
  const ok = waitForArgs(ch, 'pusher:subscription_succeeded', ms);
  const failWait = waitForArgs(ch, 'pusher:subscription_error', ms + 1000);
  const fail = failWait.then(([err]) => {
    throw new Error(`subscription to ${channelName} failed: ${JSON.stringify(err)}`);
  });
  fail.catch(() => {});
  try {
    await Promise.race([ok, fail]);
  } finally {
    ok.cancel();
    failWait.cancel();
  }
  return ch;
}

// Records every event (name, data) emitted on a pusher-js channel, in order.
function recordChannel(channel) {
  const log = [];
  channel.bind_global((name, data) => log.push({ name, data }));
  return log;
}

// ---------------------------------------------------------------------------------------------
// Raw WebSocket wrapper (Node 20 global WebSocket, enabled by --experimental-websocket)

function getWebSocketCtor() {
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  throw new Error('global WebSocket is not available: run with `node --experimental-websocket` (Node 20) or Node >= 22 (npm test does this)');
}

class RawSocket {
  constructor(url) {
    const WS = getWebSocketCtor();
    this.url = url;
    this.messages = []; // { text, json, binary, consumed }
    this.waiters = [];
    this.everOpened = false;
    this.closeInfo = null;
    this.socketId = null;
    this.ws = new WS(url);
    this.ws.binaryType = 'arraybuffer';
    let rejectOpen;
    this.openPromise = new Promise((resolve, reject) => {
      rejectOpen = reject;
      this.ws.addEventListener('open', () => { this.everOpened = true; resolve(); });
    });
    this.openPromise.catch(() => {});
    this.closedPromise = new Promise((resolve) => {
      const onClosed = (info) => {
        if (this.closeInfo) return;
        this.closeInfo = info;
        rejectOpen(new Error(`socket closed before open (code ${info.code})`));
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`socket closed (code ${info.code}, reason ${JSON.stringify(info.reason)}) while waiting for ${w.what}; received: ${this.transcript()}`));
        }
        resolve(info);
      };
      this.ws.addEventListener('close', (ev) => onClosed({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean }));
      // Node 20's undici WebSocket fires only 'error' (never 'close') when the upgrade is refused
      // with a non-101 HTTP status; treat an error before open as an abnormal close (1006).
      this.ws.addEventListener('error', () => {
        if (!this.everOpened) onClosed({ code: 1006, reason: '', wasClean: false, handshakeFailed: true });
      });
    });
    this.ws.addEventListener('message', (ev) => {
      const binary = typeof ev.data !== 'string';
      const text = binary ? null : ev.data;
      let json;
      if (!binary) { try { json = JSON.parse(text); } catch { json = undefined; } }
      const m = { text, json, binary, consumed: false };
      this.messages.push(m);
      for (let i = 0; i < this.waiters.length; i++) {
        const w = this.waiters[i];
        let ok = false;
        try { ok = w.pred(m); } catch { ok = false; }
        if (ok) {
          m.consumed = true;
          this.waiters.splice(i, 1);
          clearTimeout(w.timer);
          w.resolve(m);
          break;
        }
      }
    });
  }

  get isOpen() { return this.ws.readyState === 1; }

  transcript() {
    return JSON.stringify(this.messages.map((m) => (m.binary ? '<binary>' : m.text)).slice(-20));
  }

  open(ms = DEFAULT_WAIT_MS) {
    return withTimeout(this.openPromise, ms, `open ${this.url}`);
  }

  // Next not-yet-consumed message (in arrival order) matching `pred`.
  next(pred = () => true, ms = DEFAULT_WAIT_MS, what = 'message') {
    for (const m of this.messages) {
      if (!m.consumed && pred(m)) { m.consumed = true; return Promise.resolve(m); }
    }
    if (this.closeInfo) {
      return Promise.reject(new Error(`socket already closed (code ${this.closeInfo.code}) while waiting for ${what}; received: ${this.transcript()}`));
    }
    const p = new Promise((resolve, reject) => {
      const w = { pred, resolve, reject, what };
      w.timer = setTimeout(() => {
        const idx = this.waiters.indexOf(w);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`timed out after ${ms} ms waiting for ${what} on ${this.url}; received: ${this.transcript()}`));
      }, ms);
      this.waiters.push(w);
    });
    p.catch(() => {});
    return p;
  }

  // Next message with the given event name (and channel, if given); resolves with the parsed JSON.
  async nextEvent(event, channel, ms = DEFAULT_WAIT_MS) {
    const m = await this.next(
      (x) => x.json && x.json.event === event && (channel === undefined || x.json.channel === channel),
      ms, `event ${event}${channel !== undefined ? ` on ${channel}` : ''}`,
    );
    return m.json;
  }

  // Awaits `pusher:connection_established`, which must be the first frame; returns parsed data.
  async established(ms = DEFAULT_WAIT_MS) {
    const m = await this.next(() => true, ms, 'first frame (pusher:connection_established)');
    if (!m.json || m.json.event !== 'pusher:connection_established') {
      throw new Error(`first frame is not pusher:connection_established: ${m.binary ? '<binary>' : m.text}`);
    }
    if (typeof m.json.data !== 'string') {
      throw new Error(`connection_established data is not a string: ${m.text}`);
    }
    const data = JSON.parse(m.json.data);
    this.socketId = data.socket_id;
    this.establishedData = data;
    return data;
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendBinary(bytes) {
    this.ws.send(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  // Sends pusher:ping and awaits pusher:pong; resolves with the pong message JSON.
  async ping(ms = DEFAULT_WAIT_MS) {
    this.send({ event: 'pusher:ping', data: {} });
    return this.nextEvent('pusher:pong', undefined, ms);
  }

  waitClose(ms = DEFAULT_WAIT_MS) {
    return withTimeout(this.closedPromise, ms, `close of ${this.url}; received: ${this.transcript()}`);
  }

  async closeAndWait(ms = 2000) {
    if (this.closeInfo) {
      if (this.closeInfo.handshakeFailed) { try { this.ws.close(); } catch { /* ignore */ } }
      return this.closeInfo;
    }
    try { this.ws.close(); } catch { /* ignore */ }
    return this.waitClose(ms);
  }

  // Messages received (parsed), in order.
  events() {
    return this.messages.filter((m) => m.json).map((m) => m.json);
  }
}

// ---------------------------------------------------------------------------------------------
// Webhook receiver (PROTOCOL.md §6)

/**
 * A real HTTP server receiving Herald's webhooks. Every request is checked with the `pusher`
 * package's own `webhook({headers, rawBody})` helper, exactly as an application would; requests it
 * rejects are kept in `invalid`. Requests are recorded in arrival order as
 * { path, headers, rawBody, valid, events, timeMs, status, consumed }.
 * `respond(record)` (optional) returns the HTTP status to answer (default 200).
 */
class WebhookReceiver {
  constructor({ appId, key, secret }) {
    this.sdk = new PusherServer({ appId, key, secret, host: '127.0.0.1' });
    this.records = [];
    this.invalid = [];
    this.waiters = [];
    this.respond = null;
    this.url = null;
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks).toString('utf8');
        const rec = { path: req.url, headers: req.headers, rawBody, valid: false, events: [], timeMs: undefined, consumed: false };
        try {
          const hook = this.sdk.webhook({ headers: req.headers, rawBody });
          rec.valid = hook.isValid();
          if (rec.valid) {
            rec.events = hook.getEvents();
            rec.time = hook.getTime();
            rec.timeMs = JSON.parse(rawBody).time_ms;
          }
        } catch (e) {
          rec.error = e.message;
        }
        if (!rec.valid) this.invalid.push(rec);
        rec.status = this.respond ? this.respond(rec) : 200;
        res.writeHead(rec.status, { 'content-type': 'text/plain' });
        res.end('ok');
        this.records.push(rec);
        for (let i = 0; i < this.waiters.length; i++) {
          const w = this.waiters[i];
          let ok = false;
          try { ok = w.pred(rec); } catch { ok = false; }
          if (ok) {
            rec.consumed = true;
            this.waiters.splice(i, 1);
            clearTimeout(w.timer);
            w.resolve(rec);
            break;
          }
        }
      });
    });
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.url = `http://127.0.0.1:${this.server.address().port}`;
        resolve(this.url);
      });
    });
  }

  transcript() {
    return JSON.stringify(this.records.slice(-20).map((r) => `${r.status} ${r.path} ${r.rawBody}`));
  }

  // Next not-yet-consumed request (in arrival order) matching `pred`.
  next(pred = () => true, ms = DEFAULT_WAIT_MS, what = 'webhook') {
    for (const r of this.records) {
      if (!r.consumed && pred(r)) { r.consumed = true; return Promise.resolve(r); }
    }
    const p = new Promise((resolve, reject) => {
      const w = { pred, resolve, reject };
      w.timer = setTimeout(() => {
        const idx = this.waiters.indexOf(w);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; received: ${this.transcript()}`));
      }, ms);
      this.waiters.push(w);
    });
    p.catch(() => {});
    return p;
  }

  async close() {
    for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.reject(new Error('receiver closed')); }
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// Registers a `before` hook that starts a WebhookReceiver: call it before the `useHerald` whose
// config points at `receiver.url`, and register `after(() => receiver.close())` after that
// `useHerald` (node:test runs `after` hooks in registration order), so that Herald's shutdown can
// still deliver the webhooks it flushes.
function useWebhookReceiver(opts) {
  const rx = new WebhookReceiver(opts);
  before(() => rx.listen());
  return rx;
}

// ---------------------------------------------------------------------------------------------
// REST signing (PROTOCOL.md §5.2)

const hmacHex = (secret, s) => crypto.createHmac('sha256', secret).update(s, 'utf8').digest('hex');
const md5Hex = (s) => crypto.createHash('md5').update(s, 'utf8').digest('hex');

/**
 * Build the signed query string.
 * params: extra query params (values are put on the wire unescaped, Node SDK style).
 */
function signRequest({ method, path: reqPath, params = {}, body, key, secret, timestamp, bodyMd5 }) {
  const q = {
    auth_key: key,
    auth_timestamp: String(timestamp !== undefined ? timestamp : Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  for (const [k, v] of Object.entries(params)) q[k.toLowerCase()] = String(v);
  if (bodyMd5 !== undefined) {
    if (bodyMd5 !== null) q.body_md5 = bodyMd5;
  } else if (body) {
    q.body_md5 = md5Hex(body);
  }
  const canonical = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const stringToSign = `${method.toUpperCase()}\n${reqPath}\n${canonical}`;
  const signature = hmacHex(secret, stringToSign);
  return { query: `${canonical}&auth_signature=${signature}`, stringToSign, signature };
}

/**
 * Raw signed REST call.
 * opts: { method='GET', path ('/events', relative to /apps/{appId}), params, body (object|string),
 *         appId, key, secret (signing secret), timestamp, bodyMd5, urlPrefix (prepended to the URL path
 *         only, not to the signed path) }
 * Resolves with { status, contentType, text, json, stringToSign, signature }.
 */
async function signedFetch(server, opts) {
  const method = (opts.method || 'GET').toUpperCase();
  const appId = opts.appId || server.appId;
  const signedPath = `/apps/${appId}${opts.path}`;
  const body = opts.body === undefined ? undefined
    : (typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
  const signed = signRequest({
    method,
    path: signedPath,
    params: opts.params,
    body,
    key: opts.key || server.key,
    secret: opts.secret || server.secret,
    timestamp: opts.timestamp,
    bodyMd5: opts.bodyMd5,
  });
  const url = `${server.httpBase}${opts.urlPrefix || ''}${signedPath}?${signed.query}`;
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, body, headers, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    text,
    json,
    stringToSign: signed.stringToSign,
    signature: signed.signature,
  };
}

// Response body/JSON of a `pusher` SDK call (it resolves with a node-fetch Response).
async function sdkJson(promise) {
  const res = await promise;
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), text, json: JSON.parse(text) };
}

// Runs an SDK call expected to fail; resolves with the RequestError (status, body).
async function sdkError(promiseOrFn) {
  try {
    const p = typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn;
    const res = await p;
    const text = await res.text();
    throw Object.assign(new Error(`expected the request to fail but got ${res.status}: ${text}`), { unexpectedSuccess: true });
  } catch (e) {
    if (e.unexpectedSuccess) throw e;
    if (e.status === undefined) throw e; // SDK-side or network failure, not an HTTP error
    return e;
  }
}

function uniq(prefix = 'ch') {
  return `${prefix}-${crypto.randomBytes(5).toString('hex')}`;
}


// ---------------------------------------------------------------------------------------------
// TLS

/**
 * Makes a one-day self-signed certificate for 127.0.0.1 with openssl, in a new temp directory, for the
 * tests of Herald's own TLS and of TLS at a proxy. Returns { dir, cert, key } (paths); the caller
 * removes dir.
 */
function selfSignedCert(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
  { stdio: 'ignore' });
  return { dir, cert, key };
}


// ---------------------------------------------------------------------------------------------
// nginx

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));

/**
 * Starts Debian's nginx in the foreground, as the proxy tests' load balancer or TLS terminator, on a
 * free port. `httpBlock(dir, port)` returns what goes inside `http { }` (the temp paths and logs are
 * set here, in a directory of its own); `readyPath` is polled until nginx proxies it with 200, over
 * https when `ca` (a certificate to trust) is given. Returns { port, dir, stop }.
 */
async function startNginx(httpBlock, readyPath, ca) {
  if (!NGINX) throw new Error('nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-nginx-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${httpBlock(dir, port)}
}`);
  let output = '';
  const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (c) => { output += c; });
  child.stderr.on('data', (c) => { output += c; });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const url = `${ca ? 'https' : 'http'}://127.0.0.1:${port}${readyPath}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (await httpStatus(url, ca) !== 200) {
    if (Date.now() > deadline || child.exitCode !== null) {
      const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
      await stop();
      throw new Error(`nginx did not proxy ${readyPath} within ${READY_TIMEOUT_MS} ms: ${output}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50)); // polling a starting process, with a deadline
  }
  return { port, dir, stop };
}

module.exports = {
  REPO_ROOT,
  DEFAULT_WAIT_MS,
  ENCRYPTION_MASTER_KEY_B64,
  PusherClient,
  PusherServer,
  buildHerald,
  heraldBinary,
  httpStatus,
  startHerald,
  startNginx,
  selfSignedCert,
  useHerald,
  useCluster,
  startRedis,
  waitReady,
  waitFor,
  waitForArgs,
  withTimeout,
  eventually,
  subscribe,
  recordChannel,
  RawSocket,
  WebhookReceiver,
  useWebhookReceiver,
  signRequest,
  signedFetch,
  sdkJson,
  sdkError,
  hmacHex,
  md5Hex,
  uniq,
};
