/**
 * One scale-out instance as the container image runs it (docs/deployment.md "Sizing"): the
 * compiled package (dist/, no TypeScript loader), `start --config` with PostgreSQL and Redis, the
 * embedded authorization server, one HTTP upstream. Reports, per run: the time from spawn to the
 * first 200 from /readyz, VmRSS idle 8 s after that, and VmRSS idle 8 s after 500 requests to the
 * authorization server metadata. PostgreSQL and Redis: WARDEN_TEST_POSTGRES_URL and
 * WARDEN_TEST_REDIS_URL (defaults as in the tests); each run gets its own schema and key prefix.
 *
 *   npm run bench -- instance-footprint [--runs 3]
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const root = new URL('..', import.meta.url).pathname;
const postgresUrl = process.env.WARDEN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.WARDEN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// The package's layout: package.json, bin/, dist/ (node_modules linked, as npm would install it).
const dir = mkdtempSync(join(tmpdir(), 'warden-footprint-'));
cpSync(join(root, 'package.json'), join(dir, 'package.json'));
cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { stdio: 'inherit' });
execFileSync(process.execPath, [join(root, 'scripts/copy-js-sources.mjs'), join(dir, 'dist')], { stdio: 'inherit' });

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(n: number): Promise<void> {
  const port = 18431 + n;
  const schema = `warden_footprint_${process.pid}_${n}`;
  const config = join(dir, `warden-${n}.json`);
  writeFileSync(config, JSON.stringify({
    listen: { host: '127.0.0.1', port },
    publicUrl: `http://127.0.0.1:${port}`,
    storage: { postgres: { url: postgresUrl, schema } },
    cluster: { redis: { url: redisUrl, keyPrefix: `footprint-${process.pid}-${n}:` }, secret: 'footprint-secret-0123456789abcdefghijklmnop' },
    authorizationServer: { embedded: { demo: false } },
    log: { level: 'error' },
    servers: [{ name: 'notes', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } }, scopes: ['notes:read'] }],
  }));
  const started = Date.now();
  const child = spawn(process.execPath, ['bin/mcp-warden.js', 'start', '--config', config], { cwd: dir, stdio: 'ignore', env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
  try {
    let readyMs: number | undefined;
    while (readyMs === undefined) {
      if (Date.now() - started > 60_000) throw new Error('not ready within 60 s');
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      if (ok) readyMs = Date.now() - started;
      else await sleep(50);
    }
    await sleep(8000);
    const idle = rssMb(child.pid!);
    for (let i = 0; i < 500; i++) await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).arrayBuffer();
    await sleep(8000);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    console.log(`run ${n + 1}: ready ${readyMs} ms, idle RSS ${idle.toFixed(1)} MB, after 500 metadata requests ${rssMb(child.pid!).toFixed(1)} MB (load ${load})`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const db = new pg.Client({ connectionString: postgresUrl });
    await db.connect();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  }
}

try {
  console.log(`node ${process.version}, compiled package, PostgreSQL + Redis`);
  for (let n = 0; n < Number(values.runs); n++) await run(n);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
