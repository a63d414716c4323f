'use strict';
// Stock pusher-js in headless Chromium survives a Herald restart: Herald goes away, a new Herald
// starts on the same port, and the page, left alone, reconnects with a new socket id, resubscribes
// (re-authorizing its private channel for the new socket) and receives events on its old
// subscriptions.

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, startHerald, withTimeout, uniq } = require('../harness');
const { useChromium, useBrowser } = require('./browser');
const { pusherPage, subscribeIn, nextEvent } = require('./pusher-pages');

// How long pusher-js may take to come back. After a 4200 it retries at once (after an abnormal
// close, 1 s later); the new Herald is usually up by then. When the retry lands in the moment
// between the two Heralds it is refused, and pusher-js's ws strategy ignores that failure until its
// attempt timeout (15 s for the first) runs out, then tries again: the test then takes ~17 s. The
// bound covers that; a second refused try would mean Herald took over 15 s to start.
const RECONNECT_MS = 40000;

const chrome = useChromium();

describe('browser: pusher-js reconnect after a Herald restart', () => {
  const opts = { label: 'herald-browser-reconnect' };
  const h = useHerald(opts);
  const b = useBrowser(h, chrome);

  // Connects a page with a public and a private subscription, lets `stop` end the current Herald,
  // starts a new one on the same port and checks that the page is back on both channels.
  async function survivesRestart(p, stop, label) {
    const pub = uniq('ticker');
    const priv = uniq('private-ticker');
    const page = await pusherPage(p, 'pusher.html', { id: 'ann', name: 'Ann' });
    const firstId = page.reports.find((r) => r.kind === 'connected').data.socketId;
    await subscribeIn(page, pub);
    await subscribeIn(page, priv);
    const before = nextEvent(page, pub, 'tick');
    await b.backend.sdk.trigger(pub, 'tick', { n: 0 });
    await before;

    const old = h.server;
    const dropped = page.next('state', (st) => st.previous === 'connected', 10000);
    await stop(old);
    // At once, without waiting for the page: pusher-js's next attempt should find the new Herald.
    // h.server is what useHerald stops after the file and what h.test checks for an early exit.
    h.server = await startHerald({ ...opts, label, port: old.port });
    await dropped;

    const { socketId } = await page.next('connected', undefined, RECONNECT_MS);
    assert.notEqual(socketId, firstId);
    // pusher-js resubscribes every channel on the new connection.
    await page.next('subscribed', (d) => d.channel === pub);
    await page.next('subscribed', (d) => d.channel === priv);
    const auth = b.backend.authRequests.filter((r) => r.channelName === priv).map((r) => r.socketId);
    assert.deepEqual(auth, [firstId, socketId], 'the private channel is authorized again for the new socket');

    const gotPub = nextEvent(page, pub, 'tick');
    const gotPriv = nextEvent(page, priv, 'tick');
    await b.backend.sdk.trigger([pub, priv], 'tick', { n: 1 });
    assert.deepEqual(await gotPub, { n: 1 });
    assert.deepEqual(await gotPriv, { n: 1 });
  }

  b.test('graceful restart (SIGTERM, 4200): the page comes back on its old subscriptions', async (s, p) => {
    await survivesRestart(p, (old) => old.stop(), 'herald-browser-reconnect-2');
  }, { timeout: RECONNECT_MS + 20000 });

  b.test('crash (SIGKILL, no close frame): the page comes back on its old subscriptions', async (s, p) => {
    await survivesRestart(p, async (old) => {
      old.stopping = true; // an expected exit: the harness does not report it
      old.child.kill('SIGKILL');
      await withTimeout(old.exitPromise, 5000, `${old.label} exit after SIGKILL`);
      await old.stop(); // removes its temp files
    }, 'herald-browser-reconnect-3');
  }, { timeout: RECONNECT_MS + 20000 });
});
