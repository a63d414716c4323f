#!/usr/bin/env node
'use strict';
// `npm test` entry point: builds Herald once (unless HERALD_BIN is set), then runs
// `node --test` over test/*.test.js with that binary. Extra arguments are passed through
// (e.g. `npm test -- test/rest.test.js` or `npm test -- --test-name-pattern=presence`).
// `--dir=browser` (`npm run test:browser`) runs browser/*.test.js instead of test/*.test.js when no
// file is named; a directory argument stands for its *.test.js files.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { buildHerald } = require('./harness');

const args = process.argv.slice(2);
const dirArg = args.find((a) => a.startsWith('--dir='));
const defaultDir = dirArg ? dirArg.slice('--dir='.length) : 'test';
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-') && a !== dirArg);

let tmpDir = null;
const env = { ...process.env };
if (!env.HERALD_BIN) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-bin-'));
  const out = path.join(tmpDir, 'herald');
  process.stderr.write('building ./cmd/herald ...\n');
  try {
    buildHerald(out);
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    fs.rmSync(tmpDir, { recursive: true, force: true });
    process.exit(1);
  }
  env.HERALD_BIN = out;
}

const testFilesIn = (dir) => fs.readdirSync(path.join(__dirname, dir))
  .filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(dir, f));
const isDir = (f) => { try { return fs.statSync(path.join(__dirname, f)).isDirectory(); } catch { return false; } };
const testFiles = files.length
  ? files.flatMap((f) => (isDir(f) ? testFilesIn(f) : [f]))
  : testFilesIn(defaultDir);

const nodeArgs = [
  '--experimental-websocket', // global WebSocket on Node 20 (raw-protocol cases)
  '--test',
  '--test-concurrency=1',
  '--test-reporter=spec',
  ...flags,
  ...testFiles,
];
const child = spawn(process.execPath, nodeArgs, { cwd: __dirname, env, stdio: 'inherit' });
const forward = (sig) => () => child.kill(sig);
process.on('SIGINT', forward('SIGINT'));
process.on('SIGTERM', forward('SIGTERM'));
child.on('exit', (code, signal) => {
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  process.exit(code === null ? (signal ? 1 : 0) : code);
});
