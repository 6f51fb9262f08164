/**
 * System calls per request: the gateway against the bare undici pass-through (the ceiling) and
 * the stricter line (undici dispatch, body read whole), counted with `strace -c -f` (all threads)
 * while N tools/call requests run at concurrency 1, or at `--concurrency C`. Counts, not times,
 * are the result: strace slows the traced process, and at C > 1 it changes how requests batch
 * into reads and writes, so compare columns of one run only. Linux with strace installed only.
 * Run: npm run bench -- syscalls [--quick] [--concurrency C]
 */
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachTracer, closeSession, countOption, load, openSession, startServersChild, stopChildren, type Target } from './fixtures/mcp-load.ts';

const N = process.argv.includes('--quick') ? 1000 : 4000;
const C = countOption('--concurrency', 1);
const dir = mkdtempSync(join(tmpdir(), 'warden-strace-'));

async function count(target: Target, pid: number): Promise<Map<string, number>> {
  const s = await openSession(target, C);
  await load(s, C, 300 * C);
  const out = join(dir, `${pid}.txt`);
  const strace = await attachTracer('strace', ['-c', '-f', '-p', String(pid), '-o', out], 500);
  await load(s, C, N);
  await strace.stop();
  await closeSession(s);
  const calls = new Map<string, number>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 5 && /^\d/.test(f[0]!) && f[f.length - 1] !== 'total') calls.set(f[f.length - 1]!, Number(f[3]));
  }
  return calls;
}

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const proxy = await startServersChild(['proxy-undici', upstream]);
  const line = await startServersChild(['proxy-dispatch', upstream]);
  const warden = await startServersChild(['warden', upstream]);
  const results = {
    // The lines' client sends the gateway's bearer token too (the same request bytes); they drop it.
    'bare proxy (undici Pool)': await count({ name: 'proxy', url: proxy.info.url, token: warden.info.tokens['http-policy'] }, proxy.child.pid!),
    'stricter line (undici dispatch)': await count({ name: 'line', url: line.info.url, token: warden.info.tokens['http-policy'] }, line.child.pid!),
    'mcp-warden /mcp/http (JWT+scope)': await count({ name: 'http', url: `${warden.info.url}/mcp/http`, token: warden.info.tokens.http }, warden.child.pid!),
    'mcp-warden /mcp/http-policy (+policy+audit)': await count({ name: 'http-policy', url: `${warden.info.url}/mcp/http-policy`, token: warden.info.tokens['http-policy'] }, warden.child.pid!),
  };
  const names = [...new Set(Object.values(results).flatMap((m) => [...m.keys()]))].sort();
  console.log(`| syscall (per request, ${N} requests at c=${C}) | ${Object.keys(results).join(' | ')} |`);
  console.log(`|---|${Object.keys(results).map(() => '---').join('|')}|`);
  for (const n of names) {
    const row = Object.values(results).map((m) => ((m.get(n) ?? 0) / N).toFixed(2));
    if (row.some((v) => Number(v) >= 0.05)) console.log(`| ${n} | ${row.join(' | ')} |`);
  }
  const totals = Object.values(results).map((m) => ([...m.values()].reduce((a, b) => a + b, 0) / N).toFixed(2));
  console.log(`| **total** | ${totals.join(' | ')} |`);
} finally {
  stopChildren();
}
