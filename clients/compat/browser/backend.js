'use strict';
// The application backend of the browser tests: a tiny HTTP server on 127.0.0.1 that plays the part
// of a web app using Herald. It
//
// - serves the pages, which load the stock web builds straight from node_modules (pusher-js
//   dist/web/pusher.js and pusher-with-encryption.js, laravel-echo's IIFE build);
// - keeps a "session" in a cookie: a page opened with `?user=<base64url JSON>` is logged in as that
//   user ({ id, name, watchlist? }), like a page rendered for a signed-in visitor;
// - signs channel authorization (pusher-js's /pusher/auth, Laravel's /broadcasting/auth) and user
//   authentication (/pusher/user-auth, /broadcasting/user-auth) with the `pusher` server SDK, for the
//   session's user, exactly as an app would; every request is recorded in `authRequests`.
//
// Events are triggered by the tests through `backend.sdk` (the same `pusher` SDK instance).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const BUNDLES = {
  'pusher.js': require.resolve('pusher-js/dist/web/pusher.js'),
  'pusher-with-encryption.js': require.resolve('pusher-js/dist/web/pusher-with-encryption.js'),
  // laravel-echo exports its IIFE build (dist/echo.iife.js) as "laravel-echo/iife"; it defines the
  // global `Echo` (the class is `Echo.default`).
  'echo.iife.js': require.resolve('laravel-echo/iife'),
  'page-helpers.js': path.join(__dirname, 'page-helpers.js'),
};

// Which scripts each page loads, in order (Echo needs the global `Pusher` first).
const PAGES = {
  'pusher.html': ['pusher.js'],
  'pusher-with-encryption.html': ['pusher-with-encryption.js'],
  'echo.html': ['pusher.js', 'echo.iife.js'],
};

const SESSION_COOKIE = 'herald_session';
const b64urlJson = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const fromB64urlJson = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sessionUser(req) {
  const cookie = req.headers.cookie || '';
  for (const part of cookie.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === SESSION_COOKIE && v) {
      try { return fromB64urlJson(v); } catch { return null; }
    }
  }
  return null;
}

class AppBackend {
  /**
   * herald: a harness server (startHerald / useHerald's `h.server`). Only its host, port, key,
   * secret and appId are used, so the backend keeps working across a Herald restart on the same port.
   */
  constructor(herald) {
    this.herald = herald;
    this.sdk = herald.sdk(); // the harness configures encryptionMasterKeyBase64
    this.authRequests = []; // { path, socketId, channelName, user, status }
    this.url = null;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`backend error: ${e.message}`);
      });
    });
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.url = `http://127.0.0.1:${this.server.address().port}`;
        resolve(this.url);
      });
    });
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  // URL of a page, logged in as `user` ({ id, name, watchlist }) when given.
  pageUrl(page, user) {
    const q = user ? `?user=${b64urlJson(user)}` : '';
    return `${this.url}/${page}${q}`;
  }

  // What the page needs to know to reach Herald (an app would render this from its config).
  pageConfig() {
    return { key: this.herald.key, wsHost: this.herald.host, wsPort: this.herald.port };
  }

  transcript() {
    return JSON.stringify(this.authRequests.slice(-20));
  }

  async handle(req, res) {
    const url = new URL(req.url, this.url);
    const name = url.pathname.slice(1);

    if (req.method === 'GET' && PAGES[name]) {
      const headers = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' };
      const user = url.searchParams.get('user');
      if (user) headers['set-cookie'] = `${SESSION_COOKIE}=${user}; Path=/; HttpOnly; SameSite=Lax`;
      const scripts = ['page-helpers.js', ...PAGES[name]]
        .map((s) => `<script src="/vendor/${s}"></script>`).join('\n');
      res.writeHead(200, headers);
      res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>${name}</title><link rel="icon" href="data:,">
<script>window.HERALD = ${JSON.stringify(this.pageConfig())};</script>
${scripts}
</head><body>${name}</body></html>`);
      return;
    }

    if (req.method === 'GET' && url.pathname.startsWith('/vendor/') && BUNDLES[url.pathname.slice(8)]) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(fs.readFileSync(BUNDLES[url.pathname.slice(8)]));
      return;
    }

    if (req.method === 'POST' && (url.pathname === '/pusher/auth' || url.pathname === '/broadcasting/auth')) {
      const form = new URLSearchParams(await readBody(req));
      const socketId = form.get('socket_id');
      const channelName = form.get('channel_name');
      const user = sessionUser(req);
      const rec = { path: url.pathname, socketId, channelName, user: user && user.id, status: 200 };
      this.authRequests.push(rec);
      let body;
      try {
        if (channelName.startsWith('presence-')) {
          if (!user) throw Object.assign(new Error('presence channels need a signed-in user'), { status: 403 });
          // Laravel's presence callback returns the user's fields; they become user_info.
          body = this.sdk.authorizeChannel(socketId, channelName, {
            user_id: user.id, user_info: { id: user.id, name: user.name },
          });
        } else {
          // For private-encrypted- channels the SDK adds shared_secret (from the master key).
          body = this.sdk.authorizeChannel(socketId, channelName);
        }
      } catch (e) {
        rec.status = e.status || 400;
        res.writeHead(rec.status, { 'content-type': 'text/plain' });
        res.end(e.message);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return;
    }

    if (req.method === 'POST' && (url.pathname === '/pusher/user-auth' || url.pathname === '/broadcasting/user-auth')) {
      const form = new URLSearchParams(await readBody(req));
      const socketId = form.get('socket_id');
      const user = sessionUser(req);
      const rec = { path: url.pathname, socketId, channelName: null, user: user && user.id, status: 200 };
      this.authRequests.push(rec);
      if (!user) {
        rec.status = 403;
        res.writeHead(403, { 'content-type': 'text/plain' });
        res.end('not signed in');
        return;
      }
      const userData = { id: user.id, user_info: { name: user.name } };
      if (user.watchlist) userData.watchlist = user.watchlist;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(this.sdk.authenticateUser(socketId, userData)));
      return;
    }

    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }
}

module.exports = { AppBackend };
