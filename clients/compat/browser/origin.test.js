'use strict';
// allowed_origins in a real browser: stock pusher-js in Chromium, on a page served from
// http://127.0.0.1:<port>. An app that allows only another origin refuses the page's connection at the
// handshake with 4009, which pusher-js reports as an error and does not retry; an app whose list
// names the page's host accepts it.

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald } = require('../harness');
const { useChromium, useBrowser } = require('./browser');

const chrome = useChromium();

// In the page: a pusher-js client for appKey that reports its states and errors, tagged with appKey.
function connectWithKey(appKey) {
  const cfg = window.HERALD;
  const p = new Pusher(appKey, { cluster: 'mt1', wsHost: cfg.wsHost, wsPort: cfg.wsPort, forceTLS: false, enabledTransports: ['ws'] });
  p.connection.bind('state_change', (s) => report('state', { key: appKey, current: s.current }));
  // pusher-js wraps the server's pusher:error in the WebSocket error it reports.
  p.connection.bind('error', (e) => {
    const perr = (e && e.error && e.error.data) || (e && e.data) || {};
    report('error', { key: appKey, code: perr.code === undefined ? null : perr.code, message: perr.message });
  });
}

describe('browser: allowed_origins', () => {
  const h = useHerald({
    label: 'herald-browser-origin',
    config: {
      apps: [
        { id: '1001', key: 'herald-compat-key', secret: 'herald-compat-secret' },
        { id: '1002', key: 'locked-key', secret: 's2', allowed_origins: ['https://elsewhere.example'] },
        { id: '1003', key: 'own-key', secret: 's3', allowed_origins: ['https://elsewhere.example', '127.0.0.1'] },
      ],
    },
  });
  const b = useBrowser(h, chrome);

  b.test('a foreign origin is refused with 4009 and pusher-js stops; an allowed one connects', async (s, p) => {
    const page = await p.open('pusher.html');
    await page.run(connectWithKey, 'locked-key');
    await page.next('error', (d) => d.key === 'locked-key' && d.code === 4009); // pusher:error 4009
    await page.next('state', (d) => d.key === 'locked-key' && (d.current === 'failed' || d.current === 'disconnected'));
    await page.run(connectWithKey, 'own-key');
    await page.next('state', (d) => d.key === 'own-key' && d.current === 'connected');
    // Refused, not retried: by the time the allowed client connected, the refused one had gone no
    // further than disconnected (pusher-js reconnects after a 4100–4299 close, not after 4009).
    const locked = page.reports.filter((r) => r.kind === 'state' && r.data.key === 'locked-key').map((r) => r.data.current);
    assert.deepEqual(locked, ['disconnected']);
  });
});
