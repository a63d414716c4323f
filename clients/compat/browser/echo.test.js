'use strict';
// Stock Laravel Echo (IIFE build) over stock pusher-js in headless Chromium, configured as Laravel's
// docs say for the `pusher` broadcaster on a self-hosted server and for the `reverb` broadcaster
// (which is pusher-js with `cluster: ''`). Echo's default auth endpoint, /broadcasting/auth, is
// served by the backend like Laravel's broadcasting routes; events are named as Laravel broadcasts
// them (the event class, `App\Events\…`, unless broadcastAs gives a name).

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, uniq } = require('../harness');
const { useChromium, useBrowser } = require('./browser');

// In the page: `window.Echo` (replacing the IIFE's namespace object, as Laravel's bootstrap does)
// for `broadcaster`, with Herald's host and port from window.HERALD. Reports the connection status.
function echoInPage(broadcaster) {
  const cfg = window.HERALD;
  const options = broadcaster === 'reverb'
    ? {
      broadcaster: 'reverb',
      key: cfg.key,
      wsHost: cfg.wsHost,
      wsPort: cfg.wsPort,
      wssPort: cfg.wsPort,
      forceTLS: false,
      enabledTransports: ['ws', 'wss'],
    }
    : {
      broadcaster: 'pusher',
      key: cfg.key,
      cluster: 'mt1',
      wsHost: cfg.wsHost,
      wsPort: cfg.wsPort,
      wssPort: cfg.wsPort,
      forceTLS: false,
      enabledTransports: ['ws', 'wss'],
    };
  const EchoClass = window.Echo.default;
  window.Echo = new EchoClass(options);
  // Echo 2.x's connector reports connection changes (as 'connected', 'connecting', ...).
  window.Echo.connector.onConnectionChange((status) => report('status', { status, socketId: window.Echo.socketId() }));
}

const chrome = useChromium();

describe('browser: Laravel Echo', () => {
  const h = useHerald({ label: 'herald-browser-echo', clientEvents: true });
  const b = useBrowser(h, chrome);

  async function echoPage(p, broadcaster, user) {
    const page = await p.open('echo.html', user);
    await page.run(echoInPage, broadcaster);
    const { socketId } = await page.next('status', (d) => d.status === 'connected');
    assert.match(socketId, /^\d+\.\d+$/);
    // Echo handed pusher-js Herald's host, port and key (wss only if ws had taken over 2 s).
    const wsUrls = page.requests.filter((u) => u.startsWith('ws'));
    const expected = `://127.0.0.1:${h.server.port}/app/${h.server.key}?protocol=7&`;
    assert.ok(wsUrls.length > 0 && wsUrls.every((u) => u.startsWith(`ws${expected}`) || u.startsWith(`wss${expected}`)), JSON.stringify(wsUrls));
    return page;
  }

  for (const broadcaster of ['pusher', 'reverb']) {
    b.test(`${broadcaster}: channel().listen with the App\\Events namespace and a '.'-prefixed name`, async (s, p) => {
      const name = uniq('orders');
      const page = await echoPage(p, broadcaster);
      await page.run((n) => {
        window.Echo.channel(n)
          .subscribed(() => report('subscribed', n))
          .listen('OrderShipped', (e) => report('OrderShipped', e))
          .listen('.order.custom', (e) => report('order.custom', e));
      }, name);
      await page.next('subscribed');

      const shipped = page.next('OrderShipped');
      await b.backend.sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 1 } });
      assert.deepEqual(await shipped, { order: { id: 1 } });
      const custom = page.next('order.custom');
      await b.backend.sdk.trigger(name, 'order.custom', { id: 2 });
      assert.deepEqual(await custom, { id: 2 });
      // The bare name is not the namespaced one: an event called just "OrderShipped" is not heard.
      await b.backend.sdk.trigger(name, 'OrderShipped', { wrong: true });
      const marker = page.next('order.custom');
      await b.backend.sdk.trigger(name, 'order.custom', { id: 3 });
      assert.deepEqual(await marker, { id: 3 });
      assert.deepEqual(page.kinds().filter((k) => k === 'OrderShipped'), ['OrderShipped']);
    });

    b.test(`${broadcaster}: private() authorizes through /broadcasting/auth and listens`, async (s, p) => {
      const id = uniq('orders');
      const page = await echoPage(p, broadcaster, { id: '7', name: 'Ann' });
      await page.run((n) => {
        window.Echo.private(n)
          .subscribed(() => report('subscribed', n))
          .error((e) => report('error', e))
          .listen('OrderUpdated', (e) => report('OrderUpdated', e));
      }, id);
      await page.next('subscribed');
      const auth = b.backend.authRequests.filter((r) => r.channelName === `private-${id}`);
      assert.deepEqual(auth.map((r) => [r.path, r.user]), [['/broadcasting/auth', '7']]);
      const got = page.next('OrderUpdated');
      await b.backend.sdk.trigger(`private-${id}`, 'App\\Events\\OrderUpdated', { status: 'paid' });
      assert.deepEqual(await got, { status: 'paid' });
    });

    b.test(`${broadcaster}: join() here / joining / leaving across two pages`, async (s, p) => {
      const room = uniq('chat');
      const joinInPage = (n) => {
        window.Echo.join(n)
          .here((users) => report('here', users))
          .joining((user) => report('joining', user))
          .leaving((user) => report('leaving', user));
      };
      const ann = await echoPage(p, broadcaster, { id: '1', name: 'Ann' });
      await ann.run(joinInPage, room);
      assert.deepEqual(await ann.next('here'), [{ id: '1', name: 'Ann' }]);

      const bob = await echoPage(p, broadcaster, { id: '2', name: 'Bob' });
      const joining = ann.next('joining');
      await bob.run(joinInPage, room);
      const here = await bob.next('here');
      assert.deepEqual(here.sort((x, y) => x.id.localeCompare(y.id)), [{ id: '1', name: 'Ann' }, { id: '2', name: 'Bob' }]);
      assert.deepEqual(await joining, { id: '2', name: 'Bob' });

      const leaving = ann.next('leaving');
      await bob.run((n) => window.Echo.leave(n), room);
      assert.deepEqual(await leaving, { id: '2', name: 'Bob' });
    });

    b.test(`${broadcaster}: whisper / listenForWhisper between two pages`, async (s, p) => {
      const id = uniq('chat');
      const listenInPage = (n) => {
        window.Echo.private(n)
          .subscribed(() => report('subscribed', n))
          .listenForWhisper('typing', (e) => report('typing', e))
          .listen('.marker', () => report('marker'));
      };
      const ann = await echoPage(p, broadcaster, { id: '1', name: 'Ann' });
      const bob = await echoPage(p, broadcaster, { id: '2', name: 'Bob' });
      await ann.run(listenInPage, id);
      await bob.run(listenInPage, id);
      await ann.next('subscribed');
      await bob.next('subscribed');

      const typing = bob.next('typing');
      await ann.run((n) => { window.Echo.private(n).whisper('typing', { name: 'Ann' }); }, id);
      assert.deepEqual(await typing, { name: 'Ann' });
      const back = ann.next('typing');
      await bob.run((n) => { window.Echo.private(n).whisper('typing', { name: 'Bob' }); }, id);
      assert.deepEqual(await back, { name: 'Bob' });
      // Nobody hears their own whisper: checked once a later backend event reached both pages.
      const markers = [ann.next('marker'), bob.next('marker')];
      await b.backend.sdk.trigger(`private-${id}`, 'marker', {});
      await Promise.all(markers);
      assert.deepEqual(ann.reports.filter((r) => r.kind === 'typing').map((r) => r.data), [{ name: 'Bob' }]);
      assert.deepEqual(bob.reports.filter((r) => r.kind === 'typing').map((r) => r.data), [{ name: 'Ann' }]);
    });
  }
});
