'use strict';
// The debug console in headless Firefox (Debian's firefox-esr, over WebDriver BiDi: see firefox.js):
// signing in, the stream of a stock pusher-js client's connection and subscription, the counts, and
// the event creator reaching that client. The Chromium tests (console.test.js) cover the rest; this
// shows the page works in the other engine.

const assert = require('node:assert/strict');
const { after, before, describe } = require('node:test');
const { useHerald, subscribe, waitFor, uniq } = require('../harness');
const { launchFirefox } = require('./firefox');

const WAIT_MS = 5000;

// In the page: resolves once `selector` matches an element (with the text `text`, unless null);
// throws with what it saw after `ms`.
async function until([selector, text, ms]) {
  const end = Date.now() + ms;
  for (;;) {
    const el = document.querySelector(selector);
    if (el && (text === null || el.textContent === text)) return true;
    if (Date.now() > end) throw new Error(`${selector}: "${el ? el.textContent : 'no such element'}", want "${text}"`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// In the page: fills a form's fields ({ id: value }) and submits it.
function submit([form, fields]) {
  for (const [id, value] of Object.entries(fields)) document.getElementById(id).value = value;
  document.getElementById(form).requestSubmit();
  return true;
}

describe('firefox: debug console', () => {
  const h = useHerald({ label: 'herald-firefox-console', clientEvents: true, env: { HERALD_CONSOLE: 'true' } });
  let ff = null;
  before(async () => { ff = await launchFirefox(); }, { timeout: 60000 });
  after(async () => { if (ff) await ff.close(); });

  h.test('sign-in, the stream, the counts and the event creator work in Firefox', async (s) => {
    const wait = (selector, text = null) => ff.run(until, [selector, text, WAIT_MS]);
    await ff.open(`${h.server.httpBase}/console/`);
    assert.match(await ff.run(() => navigator.userAgent), /Firefox\//);
    await wait('#signin:not([hidden])');
    await ff.run(submit, ['signin-app', { 'signin-app-id': s.server.appId, 'signin-secret': 'wrong' }]);
    await wait('#signin-error', 'wrong app id and secret, or wrong token');
    await ff.run(submit, ['signin-app', { 'signin-app-id': s.server.appId, 'signin-secret': s.server.secret }]);
    await wait('#status.live');

    const client = await s.connected();
    const sid = client.connection.socket_id;
    const name = uniq('ff-orders');
    const channel = await subscribe(client, name);
    await wait(`#events tr[data-kind=connect][data-socket="${sid}"]`);
    await wait(`#events tr[data-kind=subscribe][data-channel="${name}"]`);
    await wait('#conn-count', '1');
    await wait(`#channels tr[data-channel="${name}"] td:nth-child(2)`, '1');

    const got = waitFor(channel, 'from-firefox');
    await ff.run(submit, ['send', { 'send-channel': name, 'send-event': 'from-firefox', 'send-data': '{"n":1}' }]);
    assert.deepEqual(await got, { n: 1 });
    await wait('#send-result', 'sent');
    await wait(`#events tr[data-kind=publish][data-event=from-firefox]`);
  });
});
