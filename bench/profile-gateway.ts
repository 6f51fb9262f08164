/**
 * Where the gateway's own CPU goes per request: runs mcp-warden (bench/gateway-servers.ts warden)
 * under `node --cpu-prof`, sends tools/call through /mcp/http-policy (JWT + scope + policy +
 * audit, HTTP upstream) at concurrency 1 and 32, and summarises the samples taken while the load
 * ran (not start-up): self time per function and per file/package, in µs per request.
 * Run: npm run bench -- profile-gateway [--quick] [--path /mcp/http] [--proxy [ROLE]] [--only-c N] [--top N] [--interval US] [--warmup N]
 * After the profile: CPU per thread of the process under test at each concurrency, from /proc.
 *   --proxy [ROLE]  profiles a bare pass-through instead (a bench/gateway-servers.ts proxy role:
 *                   proxy-undici by default, proxy-dispatch for the stricter line, proxy).
 *   --only-c N      one concurrency (1 or 32) instead of both.
 *   --warmup N      requests before the profiled ones at each concurrency (default: as many as are
 *                   profiled, 12 000, or 3 000 with --quick). With 1 000, V8's compiler and
 *                   collector threads were still busy with start-up in the profiled window (c=32,
 *                   per thread: 33 µs/request on the gateway's helper threads in the first 12 000
 *                   requests, 3 afterwards).
 * The .cpuprofile stays in the printed directory (open it in Chrome DevTools for a flame graph).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, openSession, closeSession, startServersChild, stopChildren, threadsCpu } from './fixtures/mcp-load.ts';

const quick = process.argv.includes('--quick');
const pathIndex = process.argv.indexOf('--path');
const PATH = pathIndex === -1 ? '/mcp/http-policy' : process.argv[pathIndex + 1]!;
const REQUESTS = quick ? 3000 : 12_000;
const warmupIndex = process.argv.indexOf('--warmup');
const WARMUP = warmupIndex === -1 ? REQUESTS : Number(process.argv[warmupIndex + 1]);
if (!(Number.isInteger(WARMUP) && WARMUP >= 0)) throw new Error('--warmup takes a number of requests, e.g. --warmup 12000');
const topIndex = process.argv.indexOf('--top');
/** Rows of the per-function table (`--top N`, default 40). */
const TOP = topIndex === -1 ? 40 : Number(process.argv[topIndex + 1]);
const intervalIndex = process.argv.indexOf('--interval');
/** V8's sampling interval in µs (`--interval US`, default V8's 1000): smaller gives more samples per function. */
const INTERVAL = intervalIndex === -1 ? undefined : Number(process.argv[intervalIndex + 1]);

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

function printThreads(before: Map<number, { name: string; ms: number }>, after: Map<number, { name: string; ms: number }>, requests: number, c: number): void {
  const rows = new Map<string, number>();
  for (const [tid, { name, ms }] of after) {
    const used = ms - (before.get(tid)?.ms ?? 0);
    // Node names every thread it starts "node" (worker threads, libuv's pool, V8's helpers): one row per thread.
    if (used > 0) rows.set(`${name} [${tid}]`, used);
  }
  const total = [...rows.values()].reduce((a, b) => a + b, 0);
  console.log(`
c=${c}: CPU per thread (/proc ticks, ±${((10 * 1000) / requests).toFixed(2)} µs/request per thread): whole process ${((total * 1000) / requests).toFixed(1)} µs/request`);
  console.log('| µs/request | thread [id] |');
  console.log('|---|---|');
  for (const [name, ms] of [...rows].sort((a, b) => b[1] - a[1])) console.log(`| ${((ms * 1000) / requests).toFixed(1)} | ${name} |`);
}

/** CLOCK_MONOTONIC in µs: the clock V8's profiler stamps samples with. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

function where(url: string): string {
  if (!url) return '(native/V8)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return url;
  const src = url.indexOf('/src/');
  return src !== -1 ? url.slice(src + 1) : url.replace(/^file:\/\//, '');
}

/** Summarises the samples taken inside `windows` (each [from, to], µs on the profile's clock): the loads, not what came between them. */
function summarise(profile: Profile, windows: readonly [number, number][], requests: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfFn = new Map<string, number>();
  const selfFile = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (!windows.some(([from, to]) => t >= from && t <= to)) continue;
    const node = byId.get(profile.samples[i]!)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    const file = where(url);
    const fn = `${functionName || '(anonymous)'} ${file}${url ? `:${lineNumber + 1}` : ''}`;
    selfFn.set(fn, (selfFn.get(fn) ?? 0) + dt);
    selfFile.set(file, (selfFile.get(file) ?? 0) + dt);
    total += dt;
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  console.log(`\nbusy (non-idle) CPU while loaded: ${(total / requests).toFixed(1)} µs/request over ${requests} requests\n`);
  console.log('| self µs/request | share | file or package |');
  console.log('|---|---|---|');
  for (const [k, v] of top(selfFile, Math.max(25, TOP))) console.log(`| ${(v / requests).toFixed(2)} | ${((100 * v) / total).toFixed(1)} % | ${k} |`);
  // The project's own files, all of them: what a change to src/ can cut.
  const own = [...selfFile].filter(([k]) => k.startsWith('src/')).sort((a, b) => b[1] - a[1]);
  const ownTotal = own.reduce((sum, [, v]) => sum + v, 0);
  console.log(`\nsrc/ in all: ${(ownTotal / requests).toFixed(2)} µs/request`);
  console.log('\n| self µs/request | src/ file |');
  console.log('|---|---|');
  for (const [k, v] of own) console.log(`| ${(v / requests).toFixed(2)} | ${k} |`);
  console.log('\n| self µs/request | share | function |');
  console.log('|---|---|---|');
  for (const [k, v] of top(selfFn, TOP)) console.log(`| ${(v / requests).toFixed(2)} | ${((100 * v) / total).toFixed(1)} % | ${k.replace(/\|/g, '\\|')} |`);
}

const dir = mkdtempSync(join(tmpdir(), 'warden-cpu-prof-'));
try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const proxyIndex = process.argv.indexOf('--proxy');
  const proxy = proxyIndex !== -1;
  const proxyRole = proxy && process.argv[proxyIndex + 1]?.startsWith('proxy') ? process.argv[proxyIndex + 1]! : 'proxy-undici';
  const { child, info } = await startServersChild(proxy ? [proxyRole, upstream] : ['warden', upstream], { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...(INTERVAL ? [`--cpu-prof-interval=${INTERVAL}`] : [])] });
  const name = PATH.split('/').pop()!;
  // A proxy's client sends a gateway's bearer token too (the same request bytes; the proxy drops
  // it): a warden started for its token only, and stopped at once so that no idle process of its
  // own (timers, audit writer) shares the CPUs with the profiled one.
  let proxyToken: string | undefined;
  if (proxy) {
    const minter = await startServersChild(['warden', upstream]);
    proxyToken = minter.info.tokens['http-policy'] as string;
    minter.child.kill('SIGTERM');
  }
  const target = proxy ? { name: 'proxy', url: info.url as string, token: proxyToken } : { name: PATH, url: `${info.url}${PATH}`, token: info.tokens[name] };
  let requests = 0;
  const threadReports: (() => void)[] = [];
  // One window per concurrency: a warm-up (as long as the load) and the session changes between
  // them are not what is measured.
  const windows: [number, number][] = [];
  const onlyIndex = process.argv.indexOf('--only-c');
  const only = onlyIndex === -1 ? undefined : Number(process.argv[onlyIndex + 1]);
  if (only !== undefined && !(Number.isInteger(only) && only > 0)) throw new Error('--only-c takes a concurrency, e.g. --only-c 1');
  for (const c of only === undefined ? [1, 32] : [only]) {
    const s = await openSession(target, c);
    await load(s, c, WARMUP);
    const from = monotonicUs();
    const threadsBefore = threadsCpu(child.pid!);
    await load(s, c, REQUESTS);
    const threadsAfter = threadsCpu(child.pid!);
    threadReports.push(() => printThreads(threadsBefore, threadsAfter, REQUESTS, c));
    requests += REQUESTS;
    windows.push([from, monotonicUs()]);
    await closeSession(s);
  }
  const exited = new Promise((r) => child.once('exit', r));
  // The proxy has no SIGTERM handler of its own: exit cleanly so the profile is written.
  if (proxy) child.kill('SIGINT');
  else child.kill('SIGTERM');
  await exited;
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  console.log(`profile: ${join(dir, file)} (${proxy ? proxyRole : PATH}, ${requests} requests)`);
  summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, windows, requests);
  for (const report of threadReports) report();
} finally {
  stopChildren();
}
