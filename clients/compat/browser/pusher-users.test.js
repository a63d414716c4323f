'use strict';
// Stock pusher-js in headless Chromium: user sign-in and sendToUser, the watchlist, cache channels
// and subscription counts. Sign-in uses pusher-js's default /pusher/user-auth, served by the backend.

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, uniq } = require('../harness');
const { useChromium, useBrowser } = require('./browser');
const { pusherPage, subscribeIn, nextEvent, eventNames } = require('./pusher-pages');

// In the page: report user events and watchlist events, then pusher.signin(). pusher-js joins the
// user's #server-to-user- channel once Herald confirmed the sign-in; that is reported as `signed-in`.
function signinInPage() {
  window.pusher.connection.bind('message', (m) => {
    if (m.event === 'pusher_internal:subscription_succeeded' && m.channel.startsWith('#server-to-user-')) {
      report('signed-in', { channel: m.channel, userData: window.pusher.user.user_data });
    }
  });
  window.pusher.user.bind_global((event, data) => report('user-event', { event, data }));
  window.pusher.user.watchlist.bind('online', (e) => report('watchlist', { name: 'online', ids: e.user_ids }));
  window.pusher.user.watchlist.bind('offline', (e) => report('watchlist', { name: 'offline', ids: e.user_ids }));
  window.pusher.signin();
}

async function signedInPage(p, user) {
  const page = await pusherPage(p, 'pusher.html', user);
  await page.run(signinInPage);
  const done = await page.next('signed-in');
  assert.equal(done.channel, `#server-to-user-${user.id}`);
  return page;
}

const chrome = useChromium();

describe('browser: pusher-js users, watchlist, cache channels', () => {
  const h = useHerald({ label: 'herald-browser-users', env: { HERALD_WATCHLIST_GRACE: '1' } });
  const b = useBrowser(h, chrome);

  b.test('signin + sendToUser: the signed-in page gets its user\'s event, another user\'s page does not', async (s, p) => {
    const ann = await signedInPage(p, { id: 'ann', name: 'Ann' });
    const bob = await signedInPage(p, { id: 'bob', name: 'Bob' });
    assert.equal((await ann.run(() => window.pusher.user.user_data)).id, 'ann');
    const auth = b.backend.authRequests.filter((r) => r.path === '/pusher/user-auth');
    assert.deepEqual(auth.map((r) => r.user), ['ann', 'bob']);

    const got = ann.next('user-event', (d) => d.event === 'private-note');
    await b.backend.sdk.sendToUser('ann', 'private-note', { text: 'for ann' });
    assert.deepEqual((await got).data, { text: 'for ann' });

    const marker = bob.next('user-event', (d) => d.event === 'marker');
    await b.backend.sdk.sendToUser('bob', 'marker', {});
    await marker;
    assert.deepEqual(bob.reports.filter((r) => r.kind === 'user-event').map((r) => r.data.event), ['marker']);
  });

  b.test('watchlist: offline at sign-in, online when the friend signs in, offline when their page closes', async (s, p) => {
    const wendy = await pusherPage(p, 'pusher.html', { id: 'wendy', name: 'Wendy', watchlist: ['fred'] });
    await wendy.run(signinInPage);
    assert.deepEqual(await wendy.next('watchlist'), { name: 'offline', ids: ['fred'] });

    const online = wendy.next('watchlist');
    const fred = await signedInPage(p, { id: 'fred', name: 'Fred' });
    assert.deepEqual(await online, { name: 'online', ids: ['fred'] });

    const offline = wendy.next('watchlist'); // after HERALD_WATCHLIST_GRACE (1 s)
    await fred.close();
    assert.deepEqual(await offline, { name: 'offline', ids: ['fred'] });
  });

  b.test('cache channel: pusher:cache_miss when empty, then the last event replayed to a new page', async (s, p) => {
    const name = uniq('cache-scores');
    const first = await pusherPage(p, 'pusher.html');
    await subscribeIn(first, name);
    await nextEvent(first, name, 'pusher:cache_miss');
    const live = nextEvent(first, name, 'score');
    await b.backend.sdk.trigger(name, 'score', { home: 2, away: 1 });
    assert.deepEqual(await live, { home: 2, away: 1 });

    const later = await pusherPage(p, 'pusher.html');
    await subscribeIn(later, name);
    assert.deepEqual(await nextEvent(later, name, 'score'), { home: 2, away: 1 });
    assert.deepEqual(eventNames(later, name), ['score'], 'a replay, not a cache miss');
  });
});

describe('browser: pusher-js subscription_count', () => {
  const h = useHerald({ label: 'herald-browser-count', env: { HERALD_APP_SUBSCRIPTION_COUNT: 'true' } });
  const b = useBrowser(h, chrome);

  b.test('pusher:subscription_count follows pages joining and leaving; channel.subscriptionCount too', async (s, p) => {
    const name = uniq('lobby');
    const count = (page, n) => page.next('event', (d) => d.channel === name && d.event === 'pusher:subscription_count' && d.data.subscription_count === n);
    const a = await pusherPage(p, 'pusher.html');
    await subscribeIn(a, name);
    await count(a, 1);

    const two = count(a, 2);
    const c = await pusherPage(p, 'pusher.html');
    await subscribeIn(c, name);
    await two;
    await count(c, 2);
    assert.equal(await a.run((n) => window.pusher.channel(n).subscriptionCount, name), 2);

    const one = count(a, 1);
    await c.close();
    await one;
    assert.equal(await a.run((n) => window.pusher.channel(n).subscriptionCount, name), 1);
  });
});
