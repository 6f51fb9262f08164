/**
 * Gateway benchmark (issue 2 "Must show"): tools/call throughput and p50/p99 latency at
 * concurrency 1 and 32 for
 *   - the upstream directly,
 *   - a bare node:http pass-through proxy (the Node limit),
 *   - mcp-warden with an HTTP upstream (JWT verification, required scope and a policy on),
 *   - stdio upstreams: mcp-warden (auth on) against supergateway (no auth), same stdio server;
 * plus gateway memory per idle session. Run: npm run bench -- gateway [--quick] [--json]
 *
 * Method: every system under test runs in its own child process; this process is the load
 * generator (undici Pool, one keep-alive connection per concurrent worker). Each target gets one
 * MCP session (initialize + notifications/initialized), a warm-up, then a fixed number of
 * requests; rounds are interleaved across targets and the median round is reported. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Pool } from 'undici';

const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const ROUNDS = quick ? 1 : 3;
const REQUESTS = { 1: quick ? 500 : 2000, 32: quick ? 3000 : 8000 } as const;
const WARMUP = 300;
const MEMORY_SESSIONS = { http: quick ? 100 : 500, sh: quick ? 30 : 100 };
const SERVERS = fileURLToPath(new URL('./gateway-servers.ts', import.meta.url));
const TINY = fileURLToPath(new URL('../test/gateway/fixtures/tiny-server.mjs', import.meta.url));

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}
process.on('exit', cleanup);

/** Starts a child and resolves with the first JSON line it prints. */
function startChild(args: string[], ipc = false): Promise<{ child: ChildProcess; info: any }> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SERVERS, ...args], { stdio: ['ignore', 'pipe', 'inherit', ...(ipc ? ['ipc' as const] : [])] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolve({ child, info: JSON.parse(buf.slice(0, nl)) });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
}

async function startSupergateway(): Promise<string> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const bin = require.resolve('supergateway/dist/index.js');
  const child = spawn(process.execPath, [bin, '--stdio', `${process.execPath} ${TINY}`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url, { method: 'GET' });
      return url;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('supergateway did not start');
}

interface Target {
  name: string;
  url: string;
  token?: string;
}

interface Session {
  pool: Pool;
  path: string;
  headers: Record<string, string>;
}

async function openSession(target: Target, connections: number): Promise<Session> {
  const u = new URL(target.url);
  const pool = new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const base: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (target.token) base.authorization = `Bearer ${target.token}`;
  const init = await pool.request({ path: u.pathname, method: 'POST', headers: base, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }) });
  await init.body.text();
  const sid = init.headers['mcp-session-id'];
  if (init.statusCode !== 200 || typeof sid !== 'string') throw new Error(`${target.name}: initialize answered ${init.statusCode}`);
  const headers = { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const note = await pool.request({ path: u.pathname, method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
  await note.body.text();
  return { pool, path: u.pathname, headers };
}

async function closeSession(s: Session): Promise<void> {
  const res = await s.pool.request({ path: s.path, method: 'DELETE', headers: s.headers });
  await res.body.text();
  await s.pool.close();
}

/** `total` tools/call requests by `concurrency` workers; returns throughput and latency percentiles. */
async function load(s: Session, concurrency: number, total: number): Promise<{ rps: number; p50: number; p99: number }> {
  const latencies = new Float64Array(total);
  let next = 0;
  let id = 1;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const body = `{"jsonrpc":"2.0","id":${id++},"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}`;
      const t0 = performance.now();
      const res = await s.pool.request({ path: s.path, method: 'POST', headers: s.headers, body });
      const text = await res.body.text();
      latencies[i] = performance.now() - t0;
      if (res.statusCode !== 200 || !text.includes('hello')) throw new Error(`unexpected answer ${res.statusCode}: ${text.slice(0, 200)}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort();
  return { rps: total / seconds, p50: latencies[Math.floor(total * 0.5)]!, p99: latencies[Math.floor(total * 0.99)]! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measureMemory(warden: ChildProcess, url: string, token: string, count: number): Promise<{ sessions: number; bytesPerSession: number }> {
  const ask = () =>
    new Promise<any>((resolve) => {
      warden.once('message', resolve);
      warden.send({ measure: true });
    });
  const before = await ask();
  const sessions: Session[] = [];
  for (let i = 0; i < count; i++) sessions.push(await openSession({ name: 'mem', url, token }, 1));
  await new Promise((r) => setTimeout(r, 500));
  const after = await ask();
  const delta = after.heapUsed + after.external - (before.heapUsed + before.external);
  for (const s of sessions) await closeSession(s);
  return { sessions: after.sessions - before.sessions, bytesPerSession: Math.round(delta / count) };
}

async function main(): Promise<void> {
  const upstream = (await startChild(['upstream'])).info.url as string;
  const proxy = (await startChild(['proxy', upstream])).info.url as string;
  const { child: wardenChild, info: warden } = await startChild(['warden', upstream], true);
  const supergateway = await startSupergateway();
  const targets: Target[] = [
    { name: 'upstream directly', url: upstream },
    { name: 'bare node:http proxy', url: proxy },
    { name: 'mcp-warden → HTTP (JWT+scope)', url: `${warden.url}/mcp/http`, token: warden.tokens.http },
    { name: 'mcp-warden → HTTP (JWT+scope+policy+audit)', url: `${warden.url}/mcp/http-policy`, token: warden.tokens['http-policy'] },
    { name: 'supergateway → stdio (no auth)', url: supergateway },
    { name: 'mcp-warden → stdio (JWT+scope+policy+audit)', url: `${warden.url}/mcp/stdio`, token: warden.tokens.stdio },
  ];

  const results: Record<string, Record<number, { rps: number[]; p50: number[]; p99: number[] }>> = {};
  for (const concurrency of [1, 32] as const) {
    const sessions = new Map<string, Session>();
    for (const t of targets) {
      const s = await openSession(t, concurrency);
      await load(s, concurrency, WARMUP);
      sessions.set(t.name, s);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const r = await load(sessions.get(t.name)!, concurrency, REQUESTS[concurrency]);
        const slot = ((results[t.name] ??= {})[concurrency] ??= { rps: [], p50: [], p99: [] });
        slot.rps.push(r.rps);
        slot.p50.push(r.p50);
        slot.p99.push(r.p99);
        if (!asJson) console.error(`  c=${concurrency} round ${round + 1} ${t.name}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms`);
      }
    }
    for (const s of sessions.values()) await closeSession(s);
  }

  const memHttp = await measureMemory(wardenChild, `${warden.url}/mcp/http`, warden.tokens.http, MEMORY_SESSIONS.http);
  const memStdio = await measureMemory(wardenChild, `${warden.url}/mcp/sh`, warden.tokens.sh, MEMORY_SESSIONS.sh);

  const summary = Object.fromEntries(
    Object.entries(results).map(([name, byC]) => [name, Object.fromEntries(Object.entries(byC).map(([c, v]) => [c, { rps: median(v.rps), p50: median(v.p50), p99: median(v.p99) }]))]),
  );
  const get = (name: string, c: number) => summary[name]![c] as { rps: number; p50: number; p99: number };
  const ratios: Record<string, number> = {};
  for (const c of [1, 32]) {
    const proxyR = get('bare node:http proxy', c);
    const wardenR = get('mcp-warden → HTTP (JWT+scope)', c);
    const policyR = get('mcp-warden → HTTP (JWT+scope+policy+audit)', c);
    ratios[`c${c} warden/proxy throughput`] = wardenR.rps / proxyR.rps;
    ratios[`c${c} warden/proxy p50`] = wardenR.p50 / proxyR.p50;
    ratios[`c${c} warden+policy/proxy throughput`] = policyR.rps / proxyR.rps;
    ratios[`c${c} warden+policy/proxy p50`] = policyR.p50 / proxyR.p50;
    ratios[`c${c} warden-stdio/supergateway throughput`] = get('mcp-warden → stdio (JWT+scope+policy+audit)', c).rps / get('supergateway → stdio (no auth)', c).rps;
  }
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version };
  const memory = { httpUpstream: memHttp, stdioUpstream: memStdio };
  if (asJson) {
    console.log(JSON.stringify({ machine, rounds: ROUNDS, requests: REQUESTS, summary, ratios, memory }, null, 2));
  } else {
    console.log(`machine: ${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}; ${ROUNDS} rounds, median shown`);
    console.log('| target | c | req/s | p50 ms | p99 ms |');
    console.log('|---|---|---|---|---|');
    for (const [name, byC] of Object.entries(summary)) for (const [c, r] of Object.entries(byC)) console.log(`| ${name} | ${c} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`);
    console.log('\nratios:');
    for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(3)}`);
    console.log(`\nidle session memory (gateway heap+external, after GC): HTTP upstream ${memHttp.bytesPerSession} B/session over ${memHttp.sessions} sessions; stdio upstream ${memStdio.bytesPerSession} B/session over ${memStdio.sessions} sessions (children not counted)`);
  }
}

try {
  await main();
} finally {
  cleanup();
}
