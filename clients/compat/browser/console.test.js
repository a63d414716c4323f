'use strict';
// Herald's debug console (/console) in headless Chromium: signing in, the live stream of a stock
// pusher-js page's life, the counts, the event creator, and one app's view never showing another's.
// The last test leaves a screenshot (HERALD_CONSOLE_SCREENSHOT names the file; docs/console.png is
// made this way).

const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { after, describe } = require('node:test');
const PusherServer = require('pusher');
const { useHerald, useWebhookReceiver, uniq } = require('../harness');
const { useChromium, useBrowser } = require('./browser');
const { pusherPage, subscribeIn, nextEvent } = require('./pusher-pages');

const chrome = useChromium();

const A = { appId: '1001', key: 'herald-compat-key', secret: 'herald-compat-secret' };
const B = { appId: '2002', key: 'other-key', secret: 'other-secret' };
const TOKEN = 'compat-console-admin-token';
const WAIT_MS = 5000;

/** Opens the console page. */
async function openConsole(p, h) {
  return p.open(`${h.server.httpBase}/console/`, null, 'console');
}

/** Signs the console in with an app id and secret and waits for its stream to be live. */
async function signIn(con, app, secret) {
  await con.page.fill('#signin-app-id', app);
  await con.page.fill('#signin-secret', secret);
  await con.page.click('#signin-app button[type=submit]');
}

async function live(con) {
  await con.page.waitForSelector('#status.live', { timeout: WAIT_MS });
}

/** Waits for a row of the stream matching `selector`; resolves with the milliseconds since `since`. */
async function row(con, selector, since) {
  await con.page.waitForSelector(`#events tr${selector}`, { state: 'attached', timeout: WAIT_MS });
  return Date.now() - since;
}

/** Waits until the element's text is `text`. */
async function text(con, selector, want) {
  try {
    await con.page.waitForFunction(([sel, w]) => {
      const el = document.querySelector(sel);
      return el && el.textContent === w;
    }, [selector, want], { timeout: WAIT_MS });
  } catch (e) {
    const got = await con.page.$eval(selector, (el) => el.textContent).catch(() => '(no such element)');
    throw new Error(`${selector}: "${got}", want "${want}" (${e.message})`);
  }
}

const socketIdOf = (page) => page.run(() => window.pusher.connection.socket_id);

describe('browser: debug console', () => {
  const rx = useWebhookReceiver(A);
  const h = useHerald(() => ({
    label: 'herald-browser-console',
    ...A,
    env: { HERALD_CONSOLE: 'true', HERALD_CONSOLE_TOKEN: TOKEN },
    config: {
      apps: [
        { id: A.appId, key: A.key, secret: A.secret, client_events: true, webhooks: [{ url: `${rx.url}/hooks` }] },
        { id: B.appId, key: B.key, secret: B.secret },
      ],
    },
  }));
  after(() => rx.close());
  const b = useBrowser(h, chrome);
  const appB = () => new PusherServer({ appId: B.appId, key: B.key, secret: B.secret, host: '127.0.0.1', port: h.server.port, useTLS: false });

  b.test('sign-in: a wrong secret is refused, the right one opens the app', async (s, p) => {
    const con = await openConsole(p, h);
    await signIn(con, A.appId, 'not-the-secret');
    await text(con, '#signin-error', 'wrong app id and secret, or wrong token');
    assert.equal(await con.page.isVisible('#view'), false);
    await signIn(con, A.appId, A.secret);
    await live(con);
    assert.equal(await con.page.$eval('#app', (el) => el.value), A.appId);
  });

  b.test('a pusher-js page connecting, subscribing, triggering and leaving shows in the stream, with matching counts', async (s, p, t) => {
    const con = await openConsole(p, h);
    await signIn(con, A.appId, A.secret);
    await live(con);
    await text(con, '#conn-count', '0');
    const name = uniq('presence-console');
    const took = {};

    let since = Date.now();
    const ann = await pusherPage(p, 'pusher.html', { id: 'ann', name: 'Ann' });
    const annSocket = await socketIdOf(ann);
    took.connect = await row(con, `[data-kind=connect][data-socket="${annSocket}"]`, since);
    since = Date.now();
    await subscribeIn(ann, name);
    took.subscribe = await row(con, `[data-kind=subscribe][data-channel="${name}"][data-socket="${annSocket}"]`, since);

    const bob = await pusherPage(p, 'pusher.html', { id: 'bob', name: 'Bob' });
    await subscribeIn(bob, name);
    // The counts: connections, the channel's subscribers and users, and its members with user_info.
    await text(con, '#conn-count', '2');
    await text(con, `#channels tr[data-channel="${name}"] td:nth-child(2)`, '2');
    await text(con, `#channels tr[data-channel="${name}"] td:nth-child(3)`, '2');
    await text(con, '#channels tr[data-member="ann"] code', '{"id":"ann","name":"Ann"}');

    since = Date.now();
    await b.backend.sdk.trigger(name, 'order-placed', { id: 1 });
    took.publish = await row(con, `[data-kind=publish][data-channel="${name}"][data-event=order-placed]`, since);
    since = Date.now();
    await ann.run((n) => window.pusher.channel(n).trigger('client-typing', { who: 'ann' }), name);
    took.client_event = await row(con, `[data-kind=client_event][data-event=client-typing][data-socket="${annSocket}"]`, since);
    await row(con, `[data-kind=webhook][data-channel="${name}"]`, Date.now()); // channel_occupied, sent
    assert.match(await con.page.$eval(`#events tr[data-kind=webhook][data-channel="${name}"]`, (el) => el.textContent), /status 200/);

    since = Date.now();
    await ann.close();
    took.disconnect = await row(con, `[data-kind=disconnect][data-socket="${annSocket}"]`, since);
    await row(con, `[data-kind=unsubscribe][data-channel="${name}"][data-socket="${annSocket}"]`, since);
    await text(con, '#conn-count', '1');
    await text(con, `#channels tr[data-channel="${name}"] td:nth-child(2)`, '1');
    t.diagnostic(`from the action to its row in the console, ms: ${JSON.stringify(took)}`);

    // The filters hide what does not match.
    await con.page.selectOption('#filter-kind', 'publish');
    const shown = await con.page.$$eval('#events tr', (rows) => rows.filter((r) => !r.hidden).map((r) => r.dataset.kind));
    assert.ok(shown.length > 0 && shown.every((k) => k === 'publish'), JSON.stringify(shown));
  });

  b.test('the event creator publishes through Herald to a pusher-js page', async (s, p) => {
    const con = await openConsole(p, h);
    await signIn(con, A.appId, A.secret);
    await live(con);
    const name = uniq('orders');
    const page = await pusherPage(p, 'pusher.html');
    await subscribeIn(page, name);
    const got = nextEvent(page, name, 'from-console');
    await con.page.fill('#send-channel', name);
    await con.page.fill('#send-event', 'from-console');
    await con.page.fill('#send-data', '{"hello":"world"}');
    await con.page.click('#send button[type=submit]');
    assert.deepEqual(await got, { hello: 'world' });
    await text(con, '#send-result', 'sent');
    await row(con, `[data-kind=publish][data-channel="${name}"][data-event=from-console]`, Date.now());
    // A bad channel name is refused with the REST API's reason.
    await con.page.fill('#send-channel', 'no spaces allowed');
    await con.page.click('#send button[type=submit]');
    await con.page.waitForFunction(() => /channel/i.test(document.getElementById('send-result').textContent) &&
      document.getElementById('send-result').textContent !== 'sent', null, { timeout: WAIT_MS });
  });

  b.test('app B\'s events never show in app A\'s view, and app A\'s session cannot open app B', async (s, p) => {
    const con = await openConsole(p, h);
    await signIn(con, A.appId, A.secret);
    await live(con);
    const other = uniq('b-only');
    await appB().trigger(other, 'secret-of-b', { n: 1 });
    await appB().trigger(other, 'secret-of-b', { n: 2 });
    // Two markers of app A after them, in separate batches: by the second, anything of app B's
    // would have been shown.
    for (const marker of ['marker-1', 'marker-2']) {
      await b.backend.sdk.trigger('a-markers', marker, {});
      await row(con, `[data-kind=publish][data-event=${marker}]`, Date.now());
    }
    assert.equal(await con.page.$$eval(`#events tr[data-channel="${other}"]`, (r) => r.length), 0);
    assert.equal(await con.run(async (id) => (await fetch(`api/apps/${id}/stream`)).status, B.appId), 403);
  });

  b.test('the admin token opens every app', async (s, p) => {
    const con = await openConsole(p, h);
    await con.page.fill('#signin-token', TOKEN);
    await con.page.click('#signin-admin button[type=submit]');
    await live(con);
    assert.deepEqual(await con.page.$$eval('#app option', (o) => o.map((x) => x.value)), [A.appId, B.appId]);
    await con.page.selectOption('#app', B.appId);
    await live(con);
    const name = uniq('b-news');
    await appB().trigger(name, 'headline', {});
    await row(con, `[data-kind=publish][data-channel="${name}"]`, Date.now());
  });

  b.test('screenshot of a busy app', async (s, p) => {
    const con = await openConsole(p, h);
    await con.page.setViewportSize({ width: 1400, height: 820 });
    await signIn(con, A.appId, A.secret);
    await live(con);
    const lobby = 'presence-lobby';
    const people = [{ id: 'ann', name: 'Ann' }, { id: 'bob', name: 'Bob' }, { id: 'cat', name: 'Cat' }];
    const pages = [];
    for (const u of people) {
      const page = await pusherPage(p, 'pusher.html', u);
      await subscribeIn(page, lobby);
      pages.push(page);
    }
    await subscribeIn(pages[0], 'private-orders');
    await subscribeIn(pages[1], 'news');
    await b.backend.sdk.trigger('news', 'headline', { title: 'Herald 1.0 is out' });
    await b.backend.sdk.trigger(['private-orders', 'news'], 'order-shipped', { id: 42 });
    await pages[1].run((n) => window.pusher.channel(n).trigger('client-typing', { who: 'bob' }), lobby);
    await row(con, '[data-kind=client_event]', Date.now());
    await text(con, '#conn-count', '3');
    await text(con, `#channels tr[data-channel="${lobby}"] td:nth-child(3)`, '3');
    const file = process.env.HERALD_CONSOLE_SCREENSHOT || path.join(os.tmpdir(), 'herald-console.png');
    await con.page.screenshot({ path: file });
  });
});
