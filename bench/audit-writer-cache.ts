/**
 * What the audit writer thread's page cache costs in memory and page faults: its connection as
 * shipped (`openWriterConnection`, src/audit/sqlite-batches.ts: `WRITER_CACHE_PAGES`) against the
 * same connection with better-sqlite3's default cache (16 MB), on the busy load of audit-store
 * (batches of 256 events, as batch.ts makes them at saturation).
 * Run: npm run bench -- audit-writer-cache [--rounds N] [--batches N]
 *
 * Method: each round runs each cache in its own child process, on a fresh database file migrated
 * as the gateway migrates it, the order alternating by round, writing `--batches` batches (default
 * 800: 204 800 events) through `createBatchWriter`, one transaction each. Per child: the growth of
 * its resident set over the writes (after a full collection, so V8's garbage does not count), the
 * minor page faults per batch in the first and the last 200 batches (from /proc/thread-self/stat),
 * and CPU (user + system) per event. Medians over the rounds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../src/storage/sqlite/database.ts';
import { migrateAudit } from '../src/audit/sqlite-sink.ts';
import { createBatchWriter, openWriterConnection, WRITER_CACHE_PAGES } from '../src/audit/sqlite-batches.ts';
import { sqliteDriver } from '../src/storage/sqlite/driver.ts';
import { countOption } from './fixtures/mcp-load.ts';
import { median } from './fixtures/median.ts';
import { auditRows } from './fixtures/audit-rows.ts';

const ROUNDS = countOption('--rounds', 5);
const BATCHES = countOption('--batches', 800);
const WINDOW = 200;
const CACHES = { 'shipped (WRITER_CACHE_PAGES)': String(WRITER_CACHE_PAGES), 'better-sqlite3 default (16 MB)': '-16000' } as const;

interface Result {
  rssGrowthMb: number;
  faultsFirst: number;
  faultsLast: number;
  cpuUsPerEvent: number;
}

const minorFaults = (): number => {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
};

/** One cache's run, in this (child) process. */
function measure(cachePages: string): Result {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-writer-cache-'));
  try {
    const path = join(dir, 'audit.db');
    const main = openDatabase(path);
    migrateAudit(main);
    const db = openWriterConnection(sqliteDriver(), path, 5000);
    db.pragma(`cache_size = ${cachePages}`);
    const write = createBatchWriter(db);
    globalThis.gc!();
    const rss0 = process.memoryUsage().rss;
    const cpu0 = process.cpuUsage();
    let faultsFirst = 0;
    let faultsLast = 0;
    for (let b = 0; b < BATCHES; b++) {
      const rows = auditRows(b * 256, 256);
      const before = minorFaults();
      write(rows);
      const faults = minorFaults() - before;
      if (b < WINDOW) faultsFirst += faults;
      if (b >= BATCHES - WINDOW) faultsLast += faults;
    }
    const cpu = process.cpuUsage(cpu0);
    globalThis.gc!();
    const rssGrowthMb = (process.memoryUsage().rss - rss0) / 1048576;
    db.close();
    main.close();
    return { rssGrowthMb, faultsFirst: faultsFirst / WINDOW, faultsLast: faultsLast / WINDOW, cpuUsPerEvent: (cpu.user + cpu.system) / (BATCHES * 256) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const child = process.argv.indexOf('--child');
if (child !== -1) {
  process.stdout.write(JSON.stringify(measure(process.argv[child + 1]!)));
} else {
  const names = Object.keys(CACHES) as (keyof typeof CACHES)[];
  const results = Object.fromEntries(names.map((n) => [n, [] as Result[]])) as Record<keyof typeof CACHES, Result[]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 ? [...names].reverse() : names) {
      const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--batches', String(BATCHES), '--child', CACHES[name]], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
      results[name].push(JSON.parse(r.stdout) as Result);
    }
    console.error(`  round ${round + 1}/${ROUNDS}`);
  }
  console.log(`${ROUNDS} rounds of ${BATCHES} batches of 256 events, each cache in its own process; medians\n`);
  console.log(`| writer's page cache | resident set growth, MB | minor faults per batch, first ${WINDOW} | minor faults per batch, last ${WINDOW} | CPU µs per event |`);
  console.log('|---|---|---|---|---|');
  for (const name of names) {
    const xs = results[name];
    const m = (f: (r: Result) => number) => median(xs.map(f));
    console.log(`| ${name} | ${m((r) => r.rssGrowthMb).toFixed(1)} | ${m((r) => r.faultsFirst).toFixed(1)} | ${m((r) => r.faultsLast).toFixed(1)} | ${m((r) => r.cpuUsPerEvent).toFixed(2)} |`);
  }
}
