'use strict';
// What the pusher-js browser tests run inside their pages: stock pusher-js (dist/web) configured
// the way a self-hosting app does, with every observation handed back through `report`.
// `connectInPage` and `subscribeInPage` run in the browser (page.evaluate): page globals only.

// In the page: `window.pusher` for Herald (window.HERALD comes from the backend), default auth
// endpoints (/pusher/auth, /pusher/user-auth) served by the backend. Reports `state` on every
// state change and `connected` with the socket id on every (re)connection.
function connectInPage(extra) {
  const cfg = window.HERALD;
  window.pusher = new Pusher(cfg.key, Object.assign({
    cluster: 'mt1',
    wsHost: cfg.wsHost,
    wsPort: cfg.wsPort,
    forceTLS: false,
    enabledTransports: ['ws'],
  }, extra || {}));
  window.pusher.connection.bind('state_change', (s) => report('state', s));
  window.pusher.connection.bind('connected', () => report('connected', { socketId: window.pusher.connection.socket_id }));
}

// In the page: subscribe and report every event of the channel as `event` { channel, event, data },
// subscription_succeeded as `subscribed` (presence: count, me, member ids) and errors as
// `subscription_error`.
function subscribeInPage(name) {
  const ch = window.pusher.subscribe(name);
  ch.bind_global((event, data) => {
    if (event === 'pusher:subscription_succeeded') {
      const m = ch.members;
      report('subscribed', {
        channel: name,
        presence: m && m.me ? { count: m.count, me: m.me, ids: Object.keys(m.members).sort() } : null,
      });
      return;
    }
    if (event === 'pusher:subscription_error') { report('subscription_error', { channel: name, error: data }); return; }
    report('event', { channel: name, event, data });
  });
}

/** Opens `pageName` as `user`, connects pusher-js (`extra` options merged in) and awaits `connected`. */
async function pusherPage(p, pageName, user, extra) {
  const page = await p.open(pageName, user);
  await page.run(connectInPage, extra || null);
  await page.next('connected');
  return page;
}

/** Subscribes the page to `name` and awaits the subscription; resolves with the `subscribed` report. */
async function subscribeIn(page, name) {
  await page.run(subscribeInPage, name);
  const ok = page.next('subscribed', (d) => d.channel === name);
  const failed = page.next('subscription_error', (d) => d.channel === name);
  try {
    return await Promise.race([ok, failed.then((d) => {
      throw new Error(`${page.label}: subscription to ${name} failed: ${JSON.stringify(d.error)}`);
    })]);
  } finally {
    ok.cancel();
    failed.cancel();
  }
}

/** Awaits the next `event` report for `channel` named `event`; resolves with its data. */
async function nextEvent(page, channel, event, ms) {
  const r = await page.next('event', (d) => d.channel === channel && d.event === event, ms);
  return r.data;
}

/** The events `page` has reported for `channel` so far, by name. */
function eventNames(page, channel) {
  return page.reports.filter((r) => r.kind === 'event' && r.data.channel === channel).map((r) => r.data.event);
}

module.exports = { connectInPage, subscribeInPage, pusherPage, subscribeIn, nextEvent, eventNames };
