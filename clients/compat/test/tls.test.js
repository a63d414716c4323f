'use strict';
// Herald's own TLS (--tls-cert, --tls-key) with the stock SDKs: pusher-js with forceTLS:true connects
// over wss to a self-signed certificate made here with openssl, and the `pusher` SDK publishes over
// https. Node trusts the certificate through NODE_TLS_REJECT_UNAUTHORIZED=0, which only this test file's
// process sees; that the certificate served is the one made here is checked separately, with it as
// the only trusted CA.

const assert = require('node:assert/strict');
const { describe, after } = require('node:test');
const fs = require('node:fs');
const tls = require('node:tls');
const { useHerald, selfSignedCert, waitFor, subscribe, PusherClient, uniq } = require('../harness');

const { dir, cert, key } = selfSignedCert('herald-compat-tls-');
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

describe('TLS: Herald serves wss and https itself', () => {
  const h = useHerald({ tls: { cert, key } });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  h.test('the certificate served is the one configured', async (s) => {
    const socket = tls.connect({ host: '127.0.0.1', port: s.server.port, ca: fs.readFileSync(cert), rejectUnauthorized: true });
    await waitFor(socket, 'secureConnect');
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(socket.getProtocol()), socket.getProtocol());
    socket.destroy();
  });

  h.test('pusher-js with forceTLS connects over wss and receives an event published over https', async (s) => {
    const client = new PusherClient(s.server.key, {
      cluster: 'mt1', wsHost: '127.0.0.1', wssPort: s.server.port, forceTLS: true,
      enabledTransports: ['ws'], disableStats: true,
    });
    s.clients.push(client);
    await waitFor(client.connection, 'connected', 5000);
    const channel = uniq('tls');
    const ch = await subscribe(client, channel);
    const got = waitFor(ch, 'secured', 5000);
    await s.server.sdk().trigger(channel, 'secured', { over: 'tls' });
    assert.deepEqual(await got, { over: 'tls' });
  });
});
