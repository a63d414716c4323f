'use strict';
// The herald binary's own client commands against a running Herald, with a stock pusher-js
// subscriber: `herald trigger` (a shell backend's one-liner) publishes, signed from the environment.

const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { useHerald, heraldBinary, subscribe, waitFor, uniq } = require('../harness');

const run = promisify(execFile);

describe('herald trigger', () => {
  const h = useHerald();

  h.test('publishes to a pusher-js subscriber, signed with HERALD_APP_SECRET', async (s) => {
    const client = await s.connected();
    const channel = uniq('orders');
    const ch = await subscribe(client, channel);
    const got = waitFor(ch, 'paid', 5000);
    const env = {
      PATH: process.env.PATH, HERALD_URL: s.server.httpBase,
      HERALD_APP_ID: s.server.appId, HERALD_APP_KEY: s.server.key, HERALD_APP_SECRET: s.server.secret,
    };
    const { stdout } = await run(heraldBinary(), ['trigger', '--channel', channel, '--event', 'paid', '--data', '{"id":42}'], { env, timeout: 10000 });
    assert.match(stdout, /published paid/);
    assert.deepEqual(await got, { id: 42 });

    await assert.rejects(
      run(heraldBinary(), ['trigger', '--channel', channel, '--event', 'x'], { env: { ...env, HERALD_APP_SECRET: 'wrong' }, timeout: 10000 }),
      (e) => e.code === 1 && /401/.test(e.stderr),
    );
  });
});
