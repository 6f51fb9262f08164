/**
 * The better-sqlite3 each Node.js loads (src/storage/sqlite/driver.ts): 13, built on Node-API, on
 * Node 22 and later; 12 on Node 20. From Node 24.19 on, 12's `node::ObjectWrap` destructor
 * CHECKs for a current Environment, and a statement finalized outside one (a worker thread's
 * teardown, the process's exit) aborts the process. CI runs this file under Node 20, 22 and 24.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { SQLITE_DRIVER, sqliteDriver } from '../../src/storage/sqlite/driver.ts';
import { runBin } from '../helpers/cli.ts';

const require = createRequire(import.meta.url);
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

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

function runNode(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('the SQLite driver for this Node.js', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'warden-sqlite-driver-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is better-sqlite3 13 on Node.js 22 and later and 12 on Node 20, and the store opens, migrates and writes through it', () => {
    const { version } = require(`${SQLITE_DRIVER}/package.json`) as { version: string };
    assert.equal(Number(version.split('.')[0]), NODE_MAJOR >= 22 ? 13 : 12, `${SQLITE_DRIVER} ${version} on Node ${process.versions.node}`);
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

  it('one that does not load stops start-up with a ConfigError naming it and the ways out, not a stack trace', async () => {
    // The driver made unresolvable, as an install with --omit=optional leaves Node 20.
    const preload = join(dir, 'no-driver.cjs');
    writeFileSync(preload, `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === ${JSON.stringify(SQLITE_DRIVER)}) throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};`);
    const config = join(dir, 'warden.yaml');
    writeFileSync(config, [
      'publicUrl: http://127.0.0.1:1',
      'servers:',
      '  - { name: notes, path: /mcp, upstream: { http: { url: "http://127.0.0.1:1/mcp" } } }',
      'storage:',
      `  sqlite: { path: ${JSON.stringify(join(dir, 'never.db'))} }`,
    ].join('\n'));
    const r = await runBin(['users', 'list', '--config', config], { env: { HOME: dir, NODE_OPTIONS: `--require ${preload}` } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`the embedded SQLite store needs ${SQLITE_DRIVER} on Node\\.js ${process.versions.node.replace(/\./g, '\\.')}, and it did not load \\(Cannot find module '${SQLITE_DRIVER}'\\)`));
    assert.match(r.stderr, /Node\.js 22 or later/);
    assert.match(r.stderr, /storage\.postgres\.url/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
});
