'use strict';
// Real headless Chromium for the browser tests, driven with playwright-core over CDP.
//
// - `launchChromium()` starts the system Chromium (Debian's /usr/bin/chromium, or $CHROMIUM_BIN)
//   itself, with a fresh --user-data-dir removed afterwards and background networking off (the
//   network here is closed), and connects playwright-core to its DevTools endpoint. No tool ever
//   downloads a browser.
// - `useChromium()` (top of a test file) starts one browser for the file; `useBrowser(h, chrome)`
//   (after a `useHerald`) starts an AppBackend for that Herald; `b.test(name, fn)` is `h.test` plus
//   a BrowserScope `p` whose pages (each in its own context, i.e. its own cookies and storage: a
//   separate visitor) are closed after the test. On failure the pages' console output, reports and
//   page errors, the backend's auth requests and the end of Chromium's own output are printed next
//   to Herald's output.
// - Pages talk back with `report(kind, data)` (page-helpers.js); `TestPage.next(kind)` awaits the
//   next such report with a bound, like RawSocket.next in the harness. There are no sleeps.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after } = require('node:test');
const { chromium } = require('playwright-core');
const { withTimeout, DEFAULT_WAIT_MS } = require('../harness');
const { AppBackend } = require('./backend');

const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const LAUNCH_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 5000;
const EVALUATE_TIMEOUT_MS = 5000;
const PAGE_LOAD_TIMEOUT_MS = 10000;
const LOG_CAP = 64 * 1024;

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox', // running as root in a container
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking', // no update checks, safe browsing, etc. (closed network)
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  // No name resolves (no DNS query leaves the machine): a page that tries a host other than
  // 127.0.0.1 fails at once, and BrowserScope.verify reports the attempt.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--remote-debugging-address=127.0.0.1',
  '--remote-debugging-port=0', // Chromium prints the ws:// endpoint it picked on stderr
];

// ---------------------------------------------------------------------------------------------
// Chromium process

async function launchChromium() {
  if (!fs.existsSync(CHROMIUM_BIN)) {
    throw new Error(`${CHROMIUM_BIN} not found: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_BIN`);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
  let output = '';
  const child = spawn(CHROMIUM_BIN, [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`, 'about:blank'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that its helper processes can be ended with it
  });
  const killOnExit = () => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } };
  process.on('exit', killOnExit);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
    child.on('error', (err) => { exited = { error: err.message }; resolve(exited); });
  });

  const endpoint = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk.toString();
      if (output.length > LOG_CAP) output = output.slice(-LOG_CAP);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(output);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exitPromise.then((e) => reject(new Error(`chromium exited before its DevTools endpoint was up (${JSON.stringify(e)}); output:\n${output}`)));
  });
  endpoint.catch(() => {});

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      try {
        await withTimeout(exitPromise, STOP_TIMEOUT_MS, 'chromium exit after SIGTERM');
      } catch {
        child.kill('SIGKILL');
        await withTimeout(exitPromise, STOP_TIMEOUT_MS, 'chromium exit after SIGKILL');
      }
    }
    // Chromium's helper processes (same process group: spawned detached) may outlive the browser
    // process for a moment and still write to the profile.
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* none left */ }
    process.off('exit', killOnExit);
    fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  };

  let browser;
  try {
    const ws = await withTimeout(endpoint, LAUNCH_TIMEOUT_MS, 'chromium DevTools endpoint')
      .catch((e) => { throw new Error(`${e.message}; chromium output:\n${output}`); });
    browser = await chromium.connectOverCDP(ws, { timeout: LAUNCH_TIMEOUT_MS });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    browser,
    output: () => output,
    async close() {
      try { await withTimeout(browser.close(), STOP_TIMEOUT_MS, 'playwright disconnect'); } catch { /* stop anyway */ }
      await stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pages

/** One page in its own browser context, with the reports it sent and its console output. */
class TestPage {
  constructor(scope, label) {
    this.scope = scope;
    this.label = label;
    this.context = null;
    this.page = null;
    this.reports = []; // { kind, data, consumed }
    this.waiters = [];
    this.console = [];
    this.errors = []; // uncaught page errors: a test fails if there are any
    this.requests = []; // every URL the page asked for (HTTP and WebSocket)
    this.framesReceived = []; // WebSocket frames from Herald, as text
  }

  async open(pageName, user) {
    const { browser, backend } = this.scope;
    this.openedAt = Date.now();
    this.context = await browser.newContext();
    const page = await this.context.newPage();
    this.page = page;
    page.on('console', (m) => this.log(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => { this.errors.push(e.message); this.log(`pageerror: ${e.stack || e.message}`); });
    page.on('request', (r) => this.requests.push(r.url()));
    page.on('websocket', (ws) => {
      this.requests.push(ws.url());
      this.log(`websocket open ${ws.url()}`);
      ws.on('framereceived', (f) => this.framesReceived.push(typeof f.payload === 'string' ? f.payload : '<binary>'));
      ws.on('close', () => this.log(`websocket closed ${ws.url()}`));
    });
    await page.exposeFunction('heraldReport', (kind, data) => this.onReport(kind, data));
    // A full URL is opened as it is (Herald's own pages); a name is one of the backend's pages.
    const url = /^https?:\/\//.test(pageName) ? pageName : backend.pageUrl(pageName, user);
    await page.goto(url, { waitUntil: 'load', timeout: PAGE_LOAD_TIMEOUT_MS });
    return this;
  }

  // Milliseconds since the page was opened, for transcripts.
  elapsed() {
    return this.openedAt ? Date.now() - this.openedAt : 0;
  }

  log(line) {
    this.console.push(`+${this.elapsed()}ms ${line}`);
    if (this.console.length > 500) this.console.shift();
  }

  onReport(kind, data) {
    const r = { kind, data, at: this.elapsed(), consumed: false };
    this.reports.push(r);
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i];
      let ok = false;
      try { ok = w.kind === kind && w.pred(data); } catch { ok = false; }
      if (ok) {
        r.consumed = true;
        this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(data);
        break;
      }
    }
  }

  transcript() {
    return JSON.stringify(this.reports.slice(-20).map((r) => [`+${r.at}ms`, r.kind, r.data]));
  }

  /** Next not-yet-consumed report of `kind` (in arrival order) whose data matches `pred`. */
  next(kind, pred = () => true, ms = DEFAULT_WAIT_MS) {
    for (const r of this.reports) {
      if (!r.consumed && r.kind === kind && pred(r.data)) {
        r.consumed = true;
        const done = Promise.resolve(r.data);
        done.cancel = () => {};
        return done;
      }
    }
    let w;
    const p = new Promise((resolve, reject) => {
      w = { kind, pred, resolve };
      w.timer = setTimeout(() => {
        const idx = this.waiters.indexOf(w);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`timed out after ${ms} ms waiting for report '${kind}' from ${this.label}; reports: ${this.transcript()}`));
      }, ms);
      this.waiters.push(w);
    });
    p.catch(() => {});
    // cancel(): stop waiting (the promise then never settles).
    p.cancel = () => {
      clearTimeout(w.timer);
      const idx = this.waiters.indexOf(w);
      if (idx >= 0) this.waiters.splice(idx, 1);
    };
    return p;
  }

  /** Kinds of all reports so far, in order. */
  kinds() {
    return this.reports.map((r) => r.kind);
  }

  /** Runs `fn(arg)` in the page (page.evaluate) with a bound; resolves with its (awaited) result. */
  run(fn, arg, ms = EVALUATE_TIMEOUT_MS) {
    return withTimeout(this.page.evaluate(fn, arg), ms, `page.evaluate in ${this.label}`);
  }

  /** Closes the page's context: the page goes away, and with it its WebSocket. */
  async close() {
    if (!this.context) return;
    const ctx = this.context;
    this.context = null;
    for (const w of this.waiters.splice(0)) clearTimeout(w.timer);
    await withTimeout(ctx.close(), STOP_TIMEOUT_MS, `close ${this.label}`);
  }

  dump(testName) {
    process.stderr.write(`\n----- ${this.label} (test failed: ${testName}) -----\n`
      + `reports: ${this.transcript()}\n${this.console.join('\n') || '(no console output)'}\n----- end ${this.label} -----\n`);
  }
}

class BrowserScope {
  constructor(chrome, backend) {
    this.chrome = chrome;
    this.browser = chrome.browser;
    this.backend = backend;
    this.pages = [];
  }

  /**
   * Opens `pageName` (pusher.html, pusher-with-encryption.html, echo.html, or a full URL) in a new
   * context, logged in as `user` ({ id, name, watchlist }) when given.
   */
  async open(pageName, user, label) {
    const p = new TestPage(this, label || `page#${this.pages.length + 1} ${pageName}${user ? ` as ${user.id}` : ''}`);
    this.pages.push(p);
    return p.open(pageName, user);
  }

  // Checks that hold for every test: no uncaught page errors, and nothing left 127.0.0.1 (no
  // fallback to Pusher's hosts, no stats, no CDN).
  verify() {
    for (const p of this.pages) {
      if (p.errors.length) throw new Error(`${p.label} had uncaught errors: ${JSON.stringify(p.errors)}`);
      const outside = p.requests.filter((u) => !/^(wss?|https?):\/\/127\.0\.0\.1[:/]/.test(u) && !u.startsWith('data:'));
      if (outside.length) throw new Error(`${p.label} made requests off 127.0.0.1: ${JSON.stringify(outside)}`);
    }
  }

  dump(testName) {
    for (const p of this.pages) p.dump(testName);
    process.stderr.write(`\n----- backend auth requests -----\n${this.backend.transcript()}\n`);
    // Without its D-Bus complaints (there is no bus in a container), which are all it says normally.
    const own = this.chrome.output().split('\n').filter((l) => l && !l.includes(':ERROR:dbus/')).join('\n');
    process.stderr.write(`----- chromium output (last 4 KB) -----\n${own.slice(-4096)}\n----- end chromium -----\n`);
  }

  async close() {
    await Promise.all(this.pages.map((p) => p.close().catch(() => {})));
  }
}

/**
 * Registers hooks that start one Chromium for the current level (call it at the top of a test file:
 * one browser per file) and close it after everything in it ran. Returns `{ browser }`, filled in
 * `before`.
 */
function useChromium() {
  const handle = { chrome: null, browser: null };
  before(async () => {
    handle.chrome = await launchChromium();
    handle.browser = handle.chrome.browser;
  }, { timeout: LAUNCH_TIMEOUT_MS * 2 });
  after(async () => {
    if (handle.chrome) await handle.chrome.close();
  });
  return handle;
}

/**
 * Registers hooks that start one AppBackend for `h`'s Herald (call it right after `useHerald`, in
 * the same describe) and pages in `chrome` (from `useChromium`). Returns `{ test(name, fn, opts),
 * backend }`; `fn(s, p, t)` gets the harness scope `s` and a BrowserScope `p`.
 */
function useBrowser(h, chrome) {
  const handle = { backend: null };
  before(async () => {
    if (!h.server) throw new Error('useBrowser: Herald was not started');
    handle.backend = new AppBackend(h.server);
    await handle.backend.listen();
  });
  after(async () => {
    if (handle.backend) await handle.backend.close();
  });
  handle.test = (name, fn, opts) => h.test(name, async (s, t) => {
    if (!chrome.browser) throw new Error('Chromium was not started (see before hook failure)');
    const p = new BrowserScope(chrome.chrome, handle.backend);
    try {
      await fn(s, p, t);
      p.verify();
    } catch (e) {
      p.dump(name);
      throw e;
    } finally {
      await p.close();
    }
  }, opts);
  return handle;
}

module.exports = { launchChromium, useChromium, useBrowser, CHROMIUM_FLAGS };
