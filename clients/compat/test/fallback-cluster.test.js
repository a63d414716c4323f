'use strict';
// HTTP fallback sessions on two nodes behind Debian's nginx, round-robin with no affinity. Each node
// has a host name of its own (--http-hostname: 127.0.0.2 and 127.0.0.3, which nginx routes to that node
// alone); a session's open frame names it, and pusher-js sends the session's later requests there.
// Without it, a session's requests would land on both nodes.

const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const { useCluster, startNginx, waitFor, subscribe, PusherClient, uniq } = require('../harness');

const hostOf = (i) => `127.0.0.${i + 1}`;

describe('HTTP fallback on two nodes behind a load balancer without affinity', { skip: !!process.env.HERALD_COMPAT_TRANSPORT }, () => {
  const APP = { appId: '4101', key: 'fallback-key', secret: 'fallback-secret' };
  const h = useCluster(2, {
    label: 'herald-fallback', ...APP,
    config: { apps: [{ id: APP.appId, key: APP.key, secret: APP.secret }] },
    nodeEnv: (i) => ({ HERALD_HTTP_HOSTNAME: hostOf(i) }),
  });
  let proxy;
  before(async () => {
    const [n1, n2] = h.servers;
    proxy = await startNginx((dir, port) => `
  upstream both { server 127.0.0.1:${n1.port}; server 127.0.0.1:${n2.port}; }
  upstream n1 { server 127.0.0.1:${n1.port}; }
  upstream n2 { server 127.0.0.1:${n2.port}; }
  proxy_http_version 1.1;
  proxy_buffering off;
  proxy_read_timeout 60s;
  server { listen ${port} default_server; location / { proxy_pass http://both; } }
  server { listen ${port}; server_name ${hostOf(1)}; location / { proxy_pass http://n1; } }
  server { listen ${port}; server_name ${hostOf(2)}; location / { proxy_pass http://n2; } }`, '/up');
  });
  after(() => proxy && proxy.stop());

  for (const transport of ['xhr_streaming', 'xhr_polling']) {
    h.test(`${transport}: several clients through the balancer subscribe and receive events`, async (scopes) => {
      const channel = uniq(`lb-${transport}`);
      const clients = [];
      for (let i = 0; i < 4; i++) { // enough that the balancer sends sessions to both nodes
        const c = new PusherClient(APP.key, {
          cluster: 'mt1', httpHost: '127.0.0.1', httpPort: proxy.port, forceTLS: false,
          enabledTransports: [transport], disableStats: true,
        });
        scopes[0].clients.push(c);
        await waitFor(c.connection, 'connected', 10000);
        clients.push(c);
      }
      const channels = [];
      for (const c of clients) channels.push(await subscribe(c, channel));
      const got = channels.map((ch) => waitFor(ch, 'balanced', 5000));
      await scopes[1].sdk.trigger(channel, 'balanced', { n: 1 });
      for (const g of got) assert.deepEqual(await g, { n: 1 });
      const info = await (await scopes[0].sdk.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } })).json();
      assert.equal(info.subscription_count, 4, 'each client is one subscription, on one node');
    });
  }
});
