'use strict';
// pusher-js's automatic fallback: with its default transports, behind a proxy that refuses every
// WebSocket upgrade (as corporate proxies that strip Upgrade do), it ends connected over HTTP and
// receives events. The proxy here is a few lines of Node in front of Herald.

const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const http = require('node:http');
const { useHerald, waitFor, subscribe, PusherClient, uniq } = require('../harness');

// Its own transports: nothing to run again over the HTTP fallbacks (npm run test:xhr_*).
describe('automatic fallback to HTTP when WebSocket is refused', { skip: !!process.env.HERALD_COMPAT_TRANSPORT }, () => {
  const h = useHerald();
  const proxy = { server: null, port: 0, upgrades: 0 };

  before(async () => {
    proxy.server = http.createServer((req, res) => {
      const up = http.request({ host: '127.0.0.1', port: h.server.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => { res.destroy(); });
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
    proxy.server.on('upgrade', (req, socket) => {
      proxy.upgrades++;
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    await new Promise((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = proxy.server.address().port;
  });
  after(async () => {
    proxy.server.closeAllConnections();
    await new Promise((resolve) => proxy.server.close(resolve));
  });

  h.test('pusher-js with its default transports ends connected over HTTP and receives events', async (s) => {
    const client = new PusherClient(s.server.key, {
      cluster: 'mt1', wsHost: '127.0.0.1', wsPort: proxy.port, httpHost: '127.0.0.1', httpPort: proxy.port,
      forceTLS: false, disableStats: true,
    });
    s.clients.push(client);
    await waitFor(client.connection, 'connected', 15000);
    const transport = client.connection.connection.transport.name;
    assert.ok(['xhr_streaming', 'xhr_polling'].includes(transport), `connected over ${transport}`);
    assert.ok(proxy.upgrades > 0, 'pusher-js tried WebSocket first');
    const channel = uniq('fallback');
    const ch = await subscribe(client, channel);
    const got = waitFor(ch, 'over-http', 5000);
    await s.sdk.trigger(channel, 'over-http', { ok: true });
    assert.deepEqual(await got, { ok: true });
  });
});
