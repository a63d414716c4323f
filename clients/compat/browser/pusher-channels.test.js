'use strict';
// Stock pusher-js (dist/web builds) in headless Chromium against Herald: public, private, presence,
// client events and encrypted channels. The backend (backend.js) serves the pages and signs auth.

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { useHerald, uniq } = require('../harness');
const { useChromium, useBrowser } = require('./browser');
const { pusherPage, subscribeIn, nextEvent, eventNames } = require('./pusher-pages');

const chrome = useChromium();

describe('browser: pusher-js channels', () => {
  const h = useHerald({ label: 'herald-browser-channels', clientEvents: true });
  const b = useBrowser(h, chrome);

  b.test('public channel: subscribe and receive an event triggered by the backend', async (s, p) => {
    const name = uniq('news');
    const page = await pusherPage(p, 'pusher.html');
    await subscribeIn(page, name);
    const got = nextEvent(page, name, 'headline');
    await b.backend.sdk.trigger(name, 'headline', { title: 'hello', n: 1 });
    assert.deepEqual(await got, { title: 'hello', n: 1 });
  });

  b.test('private channel: pusher-js asks the backend\'s /pusher/auth, then receives events', async (s, p) => {
    const name = uniq('private-orders');
    const page = await pusherPage(p, 'pusher.html', { id: 'ann', name: 'Ann' });
    await subscribeIn(page, name);
    const auth = b.backend.authRequests.filter((r) => r.channelName === name);
    assert.equal(auth.length, 1);
    assert.equal(auth[0].path, '/pusher/auth');
    assert.equal(auth[0].user, 'ann');
    const got = nextEvent(page, name, 'order-updated');
    await b.backend.sdk.trigger(name, 'order-updated', { id: 7, status: 'shipped' });
    assert.deepEqual(await got, { id: 7, status: 'shipped' });
  });

  b.test('presence between two pages: members, me, member_added, member_removed', async (s, p) => {
    const name = uniq('presence-room');
    const ann = await pusherPage(p, 'pusher.html', { id: 'ann', name: 'Ann' });
    const first = await subscribeIn(ann, name);
    assert.deepEqual(first.presence, { count: 1, me: { id: 'ann', info: { id: 'ann', name: 'Ann' } }, ids: ['ann'] });

    const bob = await pusherPage(p, 'pusher.html', { id: 'bob', name: 'Bob' });
    const added = nextEvent(ann, name, 'pusher:member_added');
    const second = await subscribeIn(bob, name);
    assert.deepEqual(second.presence, { count: 2, me: { id: 'bob', info: { id: 'bob', name: 'Bob' } }, ids: ['ann', 'bob'] });
    assert.deepEqual(await added, { id: 'bob', info: { id: 'bob', name: 'Bob' } });
    assert.equal(await ann.run((n) => window.pusher.channel(n).members.count, name), 2);

    // Bob closes his tab: Ann sees him leave.
    const removed = nextEvent(ann, name, 'pusher:member_removed');
    await bob.close();
    assert.deepEqual(await removed, { id: 'bob', info: { id: 'bob', name: 'Bob' } });
    assert.equal(await ann.run((n) => window.pusher.channel(n).members.count, name), 1);
  });

  b.test('client events between two pages on a private channel, not echoed to the sender', async (s, p) => {
    const name = uniq('private-chat');
    const a = await pusherPage(p, 'pusher.html', { id: 'ann', name: 'Ann' });
    const c = await pusherPage(p, 'pusher.html', { id: 'cat', name: 'Cat' });
    await subscribeIn(a, name);
    await subscribeIn(c, name);

    const got = nextEvent(c, name, 'client-typing');
    assert.equal(await a.run((n) => window.pusher.channel(n).trigger('client-typing', { who: 'ann' }), name), true);
    assert.deepEqual(await got, { who: 'ann' });

    const back = nextEvent(a, name, 'client-reply');
    await c.run((n) => window.pusher.channel(n).trigger('client-reply', { ok: true }), name);
    assert.deepEqual(await back, { ok: true });

    // The sender never got its own event: a later backend event arrives after the reply only.
    const marker = nextEvent(a, name, 'marker');
    await b.backend.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(eventNames(a, name), ['client-reply', 'marker']);
  });

  b.test('encrypted channel: pusher-with-encryption decrypts what the SDK encrypted; Herald only saw ciphertext', async (s, p) => {
    const name = uniq('private-encrypted-vault');
    const page = await pusherPage(p, 'pusher-with-encryption.html', { id: 'ann', name: 'Ann' });
    await subscribeIn(page, name);
    const got = nextEvent(page, name, 'secret');
    await b.backend.sdk.trigger(name, 'secret', { code: 'plaintext-4711' });
    assert.deepEqual(await got, { code: 'plaintext-4711' });

    const frame = page.framesReceived.map((f) => JSON.parse(f)).find((m) => m.event === 'secret' && m.channel === name);
    assert.ok(frame, `no 'secret' frame on the wire: ${JSON.stringify(page.framesReceived)}`);
    const wire = JSON.parse(frame.data);
    assert.equal(typeof wire.nonce, 'string');
    assert.equal(typeof wire.ciphertext, 'string');
    assert.ok(!frame.data.includes('plaintext-4711'), 'the event crossed Herald in clear');
  });
});
