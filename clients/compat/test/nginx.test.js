'use strict';
// Herald behind Debian's nginx, as docs/deploy/nginx.conf sets it up: nginx terminates TLS (a
// certificate made here with openssl) and proxies /ws/ to Herald running with --path-prefix /ws.
// Stock pusher-js connects over wss through it, and a REST publish signed for /apps/{id}/events
// goes through it under the prefix. NODE_TLS_REJECT_UNAUTHORIZED=0 lets Node accept the certificate;
// only this file's process sees it.

const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const fs = require('node:fs');
const { useHerald, startNginx, selfSignedCert, waitFor, subscribe, signedFetch, PusherClient, uniq } = require('../harness');

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

describe('behind nginx: TLS at the proxy, Herald under a path prefix', () => {
  const h = useHerald({ pathPrefix: '/ws' });
  const proxy = { port: 0, ca: null, stop: null };

  before(async () => {
    const { dir, cert, key } = selfSignedCert('herald-compat-cert-');
    proxy.ca = fs.readFileSync(cert);
    const nginx = await startNginx((d, port) => `
  upstream herald { server 127.0.0.1:${h.server.port}; keepalive 8; }
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location /ws/ {
      proxy_pass http://herald;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 3600s;
      proxy_buffering off;
    }
  }`, '/ws/up', proxy.ca);
    proxy.port = nginx.port;
    proxy.stop = async () => { await nginx.stop(); fs.rmSync(dir, { recursive: true, force: true }); };
  });

  after(() => proxy.stop && proxy.stop());

  h.test('pusher-js connects over wss through nginx and receives a REST publish sent through it', async (s) => {
    const client = new PusherClient(s.server.key, {
      cluster: 'mt1', wsHost: '127.0.0.1', wssPort: proxy.port, forceTLS: true, wsPath: '/ws',
      enabledTransports: ['ws'], disableStats: true,
    });
    s.clients.push(client);
    await waitFor(client.connection, 'connected', 5000);
    const channel = uniq('proxied');
    const ch = await subscribe(client, channel);
    const got = waitFor(ch, 'through-nginx', 5000);
    const viaProxy = { httpBase: `https://127.0.0.1:${proxy.port}`, appId: s.server.appId, key: s.server.key, secret: s.server.secret };
    const res = await signedFetch(viaProxy, {
      method: 'POST', path: '/events', urlPrefix: '/ws',
      body: { name: 'through-nginx', channels: [channel], data: JSON.stringify({ ok: true }) },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(await got, { ok: true });
  });
});
