/**
 * The better-sqlite3 each Node.js loads (src/storage/sqlite/driver.ts): 13, built on Node-API 10,
 * where Node-API 10 is (Node 22.14 and later); 12 elsewhere (Node 20). 12 built against Node
 * 24.19's or later headers aborts the process when V8 finalizes a statement while no Node.js
 * context is current (a collection while an ES module's code runs). CI runs this file under
 * Node 20, 22 and 24. On Node 22 and 23, 12 is the fallback when 13's addon does not load: that
 * test uses a 12 built for the Node it runs on (scripts/legacy-sqlite-driver.mjs, which `npm test`
 * runs first), as npm install builds it on a platform 13 ships no addon for.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { SQLITE_DRIVER, SQLITE_DRIVERS, sqliteDriver } from '../../src/storage/sqlite/driver.ts';
import { freePort } from '../helpers/free-port.ts';
import { runBin, runNode } from '../helpers/cli.ts';
import { fallsBackToLegacyDriver, legacySqliteDriverDir } from '../../scripts/legacy-sqlite-driver.mjs';

const require = createRequire(import.meta.url);
const NAPI = Number(process.versions.napi);
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
/** Where this Node tries 12 after 13 (Node-API 10, before 24): see driver.ts. */
const FALLS_BACK_TO_12 = SQLITE_DRIVERS.length === 2;

/**
 * A process that makes and drops statements in an ES module on its main thread and in a worker
 * thread (as the audit writer does), so that V8 collects them while the module runs, then exits.
 * With better-sqlite3 12 on Node 24.21 this aborts within the first thousands of statements.
 */
const FINALIZERS = `
import { createRequire } from 'node:module';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
const { driver, file } = isMainThread ? { driver: process.argv[2], file: process.argv[3] } : workerData;
const Database = createRequire(import.meta.url)(driver);
const db = new Database(file);
db.exec('CREATE TABLE IF NOT EXISTS t (n INTEGER)');
async function churn(label) {
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 4000; i++) {
      db.prepare('SELECT ? AS n').get(i);
      void new Array(64).fill(label);
    }
    db.prepare('INSERT INTO t (n) VALUES (?)').run(round);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { driver, file } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  await churn('main');
  const code = await exited;
  console.log(JSON.stringify({ worker: code, rows: db.prepare('SELECT COUNT(*) AS c FROM t').pluck().get() }));
} else {
  await churn('worker');
  parentPort.close();
}
`;

describe('the SQLite driver for this Node.js', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'warden-sqlite-driver-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is better-sqlite3 13 where Node-API 10 is and 12 where it is not, and the store opens, migrates and writes through it', () => {
    assert.deepEqual(SQLITE_DRIVERS, NAPI >= 10 ? (NODE_MAJOR < 24 ? ['better-sqlite3', 'better-sqlite3-12'] : ['better-sqlite3']) : ['better-sqlite3-12']);
    // scripts/legacy-sqlite-driver.mjs repeats the rule (plain JavaScript, run before the tests).
    assert.equal(fallsBackToLegacyDriver(), FALLS_BACK_TO_12);
    const { version } = require(`${SQLITE_DRIVER}/package.json`) as { version: string };
    assert.equal(Number(version.split('.')[0]), NAPI >= 10 ? 13 : 12, `${SQLITE_DRIVER} ${version} on Node ${process.versions.node} (Node-API ${NAPI})`);
    assert.equal(sqliteDriver(), require(SQLITE_DRIVER));
    const db = openDatabase(join(dir, 'open.db'));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.exec('CREATE TABLE t (n INTEGER)');
    db.prepare('INSERT INTO t (n) VALUES (?)').run(7);
    assert.equal(db.prepare('SELECT n FROM t').pluck().get(), 7);
    db.close();
  });

  it('statements V8 collects while an ES module runs, on the main thread and in a worker thread, do not abort the process (node::ObjectWrap on Node.js 24.19 and later)', async () => {
    const script = join(dir, 'finalizers.mjs');
    writeFileSync(script, FINALIZERS);
    const r = await runNode([script, require.resolve(SQLITE_DRIVER), join(dir, 'finalizers.db')]);
    assert.doesNotMatch(r.stderr, /Assertion failed/);
    assert.equal(r.signal, null, `ended by ${r.signal}: ${r.stderr.slice(0, 400)}`);
    assert.equal(r.code, 0, r.stderr.slice(0, 400));
    assert.deepEqual(JSON.parse(r.stdout), { worker: 0, rows: 20 });
  });

  type Failure = 'package' | 'missing addon' | 'corrupt addon';

  /** A `--require` preload that makes the drivers' packages unresolvable, their addon files missing, or their addons fail to load. */
  function preload(kind: Failure): string {
    const file = join(dir, `${kind.replace(' ', '-')}.cjs`);
    const resolveFails = (pattern: string) => `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (${pattern}.test(request)) throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};`;
    writeFileSync(file, {
      package: resolveFails('/^better-sqlite3(-12)?$/'),
      // As an install with --ignore-scripts leaves 12, and a platform 13 ships no addon for.
      'missing addon': resolveFails('/better[-_]sqlite3.*[.]node$/'),
      'corrupt addon': `const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (/better[-_]sqlite3/.test(filename)) throw new Error(filename + ': invalid ELF header');
  return dlopen.call(this, module, filename, ...rest);
};`,
    }[kind]);
    return file;
  }

  /** The first line of what `name` reports for `kind`, as the error shows it. */
  function expected(kind: Failure, name: string): RegExp {
    if (kind === 'package') return new RegExp(`${name}: Cannot find module '${name}'`);
    if (kind === 'corrupt addon') return new RegExp(`${name}: \\S*better[-_]sqlite3\\S*\\.node: invalid ELF header`);
    return name === 'better-sqlite3-12'
      ? /better-sqlite3-12: no build\/Release\/better_sqlite3\.node: its install script did not run or failed/
      : /better-sqlite3: Cannot find module '\S*better-sqlite3\S*\.node'/;
  }

  function config(port: number, db = 'never.db'): string {
    const file = join(dir, `${db}.yaml`);
    writeFileSync(file, [
      `listen: { host: 127.0.0.1, port: ${port} }`,
      `publicUrl: http://127.0.0.1:${port}`,
      'servers:',
      '  - { name: notes, path: /mcp, upstream: { http: { url: "http://127.0.0.1:1/mcp" } } }',
      'storage:',
      `  sqlite: { path: ${JSON.stringify(join(dir, db))} }`,
    ].join('\n'));
    return file;
  }

  // Node 22 and 23 only: on Node 20, 12 is the first choice, and Node 24 never tries 12 (its
  // node::ObjectWrap aborts there): the first test holds SQLITE_DRIVERS to that.
  if (FALLS_BACK_TO_12) {
    it('on Node.js 22 and 23, better-sqlite3 12 built for this Node serves the store when 13\'s addon does not load: users add and list through it, and statements collected while an ES module runs do not abort the process', async () => {
      // scripts/test.mjs builds it before the tests (scripts/legacy-sqlite-driver.mjs), and says here why when it could not.
      const legacy = legacySqliteDriverDir();
      assert.ok(existsSync(join(legacy, 'build', 'Release', 'better_sqlite3.node')), process.env.MCP_WARDEN_TEST_LEGACY_SQLITE_FAILURE ?? `no better-sqlite3 12 built for Node.js ${process.versions.node} at ${legacy}: run the tests with npm test`);
      const loaded = join(dir, 'dlopened.txt');
      const port = await freePort();
      // 13's addon fails as on a platform it ships none for; `better-sqlite3-12` resolves to the
      // copy built above; every addon file loaded is written down.
      const redirect = join(dir, 'fallback.cjs');
      writeFileSync(redirect, `const Module = require('node:module');
const fs = require('node:fs');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, request === 'better-sqlite3-12' ? ${JSON.stringify(legacy)} : request, ...rest);
};
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (/better[-_]sqlite3/.test(filename) && filename.startsWith(${JSON.stringify(dirname(require.resolve('better-sqlite3/package.json')) + sep)})) throw new Error(filename + ': invalid ELF header');
  dlopen.call(this, module, filename, ...rest);
  fs.appendFileSync(${JSON.stringify(loaded)}, filename + '\\n');
};`);
      const env = { HOME: dir, NODE_OPTIONS: `--require "${redirect}"` };
      const yaml = config(port, 'fallback.db');
      const add = await runBin(['users', 'add', 'erin', '--role', 'admin', '--config', yaml], { cwd: dir, env, stdin: 'a long enough password\n' });
      assert.equal(add.code, 0, add.stderr);
      const list = await runBin(['users', 'list', '--json', '--config', yaml], { cwd: dir, env });
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(list.stdout.trim().split('\n').map((line) => JSON.parse(line) as { username: string; roles: string[] }).map((u) => [u.username, u.roles]), [['erin', ['admin']]]);
      const addons = readFileSync(loaded, 'utf8').trim().split('\n').filter((f) => /better[-_]sqlite3/.test(f));
      assert.ok(addons.length >= 2 && addons.every((f) => f.startsWith(legacy)), `only 12's addon built for this Node was loaded: ${addons.join(', ')}`);
      assert.ok(existsSync(join(dir, 'fallback.db')), 'the store was created through 12');
      // 12 built for this Node does not abort when V8 collects statements while an ES module runs (that abort is Node 24.19's).
      const script = join(dir, 'finalizers-12.mjs');
      writeFileSync(script, FINALIZERS);
      const r = await runNode([script, legacy, join(dir, 'finalizers-12.db')]);
      assert.equal(r.signal, null, `ended by ${r.signal}: ${r.stderr.slice(0, 400)}`);
      assert.equal(r.code, 0, r.stderr.slice(0, 400));
      assert.deepEqual(JSON.parse(r.stdout), { worker: 0, rows: 20 });
    });
  }

  for (const kind of ['package', 'missing addon', 'corrupt addon'] as const) {
    it(`a driver whose ${{ package: 'package is not installed', 'missing addon': 'addon file is missing', 'corrupt addon': 'addon does not load' }[kind]}: users list, start --config and start --demo stop with a ConfigError naming it and the ways out, no stack trace, nothing left running or created`, async () => {
      const port = await freePort();
      const demoDb = join(dir, 'demo', 'warden.db');
      const env = { HOME: dir, PORT: String(port), WARDEN_DB: demoDb, NODE_OPTIONS: `--require "${preload(kind)}"` };
      for (const args of [['users', 'list', '--config', config(port)], ['start', '--config', config(port)], ['start', '--demo']]) {
        const r = await runBin(args, { cwd: dir, env });
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`mcp-warden ${args[0]}: the embedded SQLite store did not load on Node\\.js ${process.versions.node.replace(/\./g, '\\.')} \\(`));
        for (const name of SQLITE_DRIVERS) assert.match(r.stderr, expected(kind, name), `${args.join(' ')} names ${name}`);
        assert.match(r.stderr, NAPI >= 10 ? /better-sqlite3 13 ships prebuilt addons/ : /without --omit=optional or --ignore-scripts\), or run it on Node\.js 22\.14 or later/);
        assert.match(r.stderr, /storage\.postgres\.url/);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        assert.equal(r.stderr.trim().split('\n').filter((line) => !line.startsWith('mcp-warden: note:')).length, 1, `one line: ${r.stderr}`);
      }
      assert.equal(existsSync(join(dir, 'demo')), false, 'the demo database folder was not created');
    });
  }
});
