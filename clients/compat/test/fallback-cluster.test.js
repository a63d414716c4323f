'use strict';
// HTTP fallback sessions on two nodes behind Debian's nginx, round-robin with no affinity. Each node
// has a host name of its own (--http-hostname: 127.0.0.2 and 127.0.0.3, which nginx routes to that node
// alone); a session's open frame names it, and pusher-js sends the session's later requests there.
// Without it, a session's requests would land on both nodes.

const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { useCluster, httpStatus, waitFor, subscribe, PusherClient, uniq } = require('../harness');

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
const hostOf = (i) => `127.0.0.${i + 1}`;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
}

describe('HTTP fallback on two nodes behind a load balancer without affinity', { skip: !!process.env.HERALD_COMPAT_TRANSPORT }, () => {
  const APP = { appId: '4101', key: 'fallback-key', secret: 'fallback-secret' };
  const h = useCluster(2, {
    label: 'herald-fallback', ...APP,
    config: { apps: [{ id: APP.appId, key: APP.key, secret: APP.secret }] },
    nodeEnv: (i) => ({ HERALD_HTTP_HOSTNAME: hostOf(i) }),
  });
  const proxy = { port: 0, child: null, dir: null, output: '' };

  before(async () => {
    assert.ok(NGINX, 'nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)');
    proxy.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-lb-'));
    proxy.port = await freePort();
    const d = proxy.dir;
    const [n1, n2] = h.servers;
    fs.writeFileSync(path.join(d, 'nginx.conf'), `
daemon off;
master_process off;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  upstream both { server 127.0.0.1:${n1.port}; server 127.0.0.1:${n2.port}; }
  upstream n1 { server 127.0.0.1:${n1.port}; }
  upstream n2 { server 127.0.0.1:${n2.port}; }
  proxy_http_version 1.1;
  proxy_buffering off;
  proxy_read_timeout 60s;
  server { listen ${proxy.port} default_server; location / { proxy_pass http://both; } }
  server { listen ${proxy.port}; server_name ${hostOf(1)}; location / { proxy_pass http://n1; } }
  server { listen ${proxy.port}; server_name ${hostOf(2)}; location / { proxy_pass http://n2; } }
}`);
    proxy.child = spawn(NGINX, ['-p', d, '-c', path.join(d, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proxy.child.stdout.on('data', (c) => { proxy.output += c; });
    proxy.child.stderr.on('data', (c) => { proxy.output += c; });
    const deadline = Date.now() + 10000;
    while (await httpStatus(`http://127.0.0.1:${proxy.port}/up`) !== 200) {
      if (Date.now() > deadline || proxy.child.exitCode !== null) throw new Error(`nginx did not start: ${proxy.output}`);
      await new Promise((r) => setTimeout(r, 50)); // polling a starting process, with a deadline
    }
  });

  after(async () => {
    if (proxy.child && proxy.child.exitCode === null) {
      const exited = new Promise((r) => proxy.child.on('exit', r));
      proxy.child.kill('SIGTERM');
      await exited;
    }
    if (proxy.dir) fs.rmSync(proxy.dir, { recursive: true, force: true });
  });

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
