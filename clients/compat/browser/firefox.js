'use strict';
// Real headless Firefox (Debian's firefox-esr, or $FIREFOX_BIN) for the console's cross-browser test,
// driven over WebDriver BiDi, which stock Firefox speaks itself: playwright-core drives only its own
// patched Firefox builds, and its BiDi mode needs commands this ESR lacks. So this is a small BiDi
// client of its own: navigate, evaluate, close. Every call is bounded; there are no sleeps.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { withTimeout } = require('../harness');

const FIREFOX_BIN = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';
const LAUNCH_TIMEOUT_MS = 30000;
const CALL_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;

// The network here is closed: nothing of Firefox's own should try it.
const PREFS = {
  'app.update.disabledForTesting': true,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/',
  'extensions.update.enabled': false,
};

/** Starts Firefox with a fresh profile and opens a BiDi session; resolves with a Firefox. */
async function launchFirefox() {
  if (!fs.existsSync(FIREFOX_BIN)) {
    throw new Error(`${FIREFOX_BIN} not found: install Debian's firefox-esr package or set FIREFOX_BIN`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-firefox-'));
  fs.writeFileSync(path.join(profile, 'user.js'),
    Object.entries(PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`).join('\n'));
  const child = spawn(FIREFOX_BIN, ['--headless', '--no-remote', '--remote-debugging-port=0', '--profile', profile, 'about:blank'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const endpoint = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output = (output + chunk.toString()).slice(-64 * 1024);
      const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(output);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => reject(new Error(`firefox exited (${code}) before BiDi was up:\n${output}`)));
  });
  endpoint.catch(() => {});
  const ff = new Firefox(child, profile, exited, () => output);
  try {
    await ff.connect(await withTimeout(endpoint, LAUNCH_TIMEOUT_MS, 'firefox BiDi endpoint'));
  } catch (e) {
    await ff.close();
    throw e;
  }
  return ff;
}

class Firefox {
  constructor(child, profile, exited, output) {
    Object.assign(this, { child, profile, exited, output, ws: null, nextId: 1, pending: new Map(), context: null });
  }

  async connect(url) {
    this.ws = new WebSocket(`${url}/session`);
    await withTimeout(new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}/session`));
    }), CALL_TIMEOUT_MS, 'firefox BiDi connection');
    this.ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      const p = this.pending.get(msg.id);
      if (!p) return; // an event: none is subscribed to
      this.pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new Error(`${msg.error}: ${msg.message}`));
      else p.resolve(msg.result);
    };
    this.ws.onclose = () => {
      for (const p of this.pending.values()) p.reject(new Error('firefox BiDi connection closed'));
      this.pending.clear();
    };
    await this.send('session.new', { capabilities: {} });
    const tree = await this.send('browsingContext.getTree', {});
    this.context = tree.contexts[0].context;
  }

  /** One BiDi command, answered within CALL_TIMEOUT_MS. */
  send(method, params) {
    const id = this.nextId++;
    const answer = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.ws.send(JSON.stringify({ id, method, params }));
    return withTimeout(answer, CALL_TIMEOUT_MS, `firefox ${method}`);
  }

  /** Loads url in the tab and waits for its load event. */
  async open(url) {
    await this.send('browsingContext.navigate', { context: this.context, url, wait: 'complete' });
  }

  /**
   * Runs `fn(arg)` in the page and resolves with its awaited result, which travels as JSON. A thrown
   * error or a rejected promise fails the call with its message.
   */
  async run(fn, arg) {
    const expression = `(async () => JSON.stringify(await (${fn})(${JSON.stringify(arg)})))()`;
    const r = await this.send('script.evaluate', { expression, target: { context: this.context }, awaitPromise: true });
    if (r.type === 'exception') throw new Error(`in firefox: ${r.exceptionDetails.text}`);
    return r.result.value === undefined ? undefined : JSON.parse(r.result.value);
  }

  async close() {
    if (this.ws) {
      try { await this.send('session.end', {}); } catch { /* stopping anyway */ }
      this.ws.close();
    }
    this.child.kill('SIGTERM');
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, 'firefox exit');
    } catch {
      this.child.kill('SIGKILL');
      await withTimeout(this.exited, STOP_TIMEOUT_MS, 'firefox exit after SIGKILL');
    }
    fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
}

module.exports = { launchFirefox };
