/**
 * Audit writer benchmark (issue 4 follow-up): does moving the SQLite audit inserts to a worker
 * thread help the request path? tools/call throughput and p50/p99 at concurrency 1 and 32 for
 *   - a bare node:http pass-through proxy (the Node limit),
 *   - mcp-warden, JWT + scope only (no policy, so no audit event),
 *   - mcp-warden, JWT + scope + policy + audit, SQLite writes inline (timer-batched on the event loop),
 *   - mcp-warden, JWT + scope + policy + audit, SQLite writes on the worker thread,
 * the two wardens in separate processes with identical configuration except `audit.writer`.
 * Run: npm run bench -- gateway-audit [--quick] [--json]
 *
 * Method as bench/gateway.ts: each system in its own child process, this process generates load
 * (undici Pool, one keep-alive connection per concurrent worker), one MCP session per target,
 * warm-up, then rounds interleaved across targets (so machine-load drift hits every target
 * alike); the median round is reported, and ratios are taken against the proxy of the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const ROUNDS = quick ? 2 : 5;
const REQUESTS = { 1: quick ? 500 : 2000, 32: quick ? 2000 : 8000 } as const;
const WARMUP = 500;
const SERVERS = fileURLToPath(new URL('./gateway-servers.ts', import.meta.url));

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}
process.on('exit', cleanup);

function startChild(args: string[]): Promise<any> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVERS, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolve(JSON.parse(buf.slice(0, nl)));
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
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

async function main(): Promise<void> {
  const upstream = (await startChild(['upstream'])).url as string;
  const proxy = (await startChild(['proxy', upstream])).url as string;
  const inline = await startChild(['warden', upstream, 'inline']);
  const worker = await startChild(['warden', upstream, 'worker']);
  const PROXY = 'bare node:http proxy';
  const NO_AUDIT = 'mcp-warden (JWT+scope, no audit)';
  const INLINE = 'mcp-warden (+policy+audit, inline writer)';
  const WORKER = 'mcp-warden (+policy+audit, worker writer)';
  const targets: Target[] = [
    { name: PROXY, url: proxy },
    { name: NO_AUDIT, url: `${inline.url}/mcp/http`, token: inline.tokens.http },
    { name: INLINE, url: `${inline.url}/mcp/http-policy`, token: inline.tokens['http-policy'] },
    { name: WORKER, url: `${worker.url}/mcp/http-policy`, token: worker.tokens['http-policy'] },
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
      // Alternate the order of the two writers each round, so neither always runs right after the proxy.
      const order = round % 2 === 0 ? targets : [targets[0]!, targets[1]!, targets[3]!, targets[2]!];
      for (const t of order) {
        const r = await load(sessions.get(t.name)!, concurrency, REQUESTS[concurrency]);
        const slot = ((results[t.name] ??= {})[concurrency] ??= { rps: [], p50: [], p99: [] });
        slot.rps.push(r.rps);
        slot.p50.push(r.p50);
        slot.p99.push(r.p99);
        if (!asJson) console.error(`  c=${concurrency} round ${round + 1} ${t.name}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms`);
      }
    }
    for (const s of sessions.values()) await s.pool.close();
  }
  const summary = Object.fromEntries(
    Object.entries(results).map(([name, byC]) => [name, Object.fromEntries(Object.entries(byC).map(([c, v]) => [c, { rps: median(v.rps), p50: median(v.p50), p99: median(v.p99) }]))]),
  );
  const get = (name: string, c: number) => summary[name]![c] as { rps: number; p50: number; p99: number };
  const ratios: Record<string, number> = {};
  for (const c of [1, 32]) {
    for (const [label, name] of [['no-audit', NO_AUDIT], ['inline', INLINE], ['worker', WORKER]] as const) {
      ratios[`c${c} ${label}/proxy p50`] = get(name, c).p50 / get(PROXY, c).p50;
      ratios[`c${c} ${label}/proxy throughput`] = get(name, c).rps / get(PROXY, c).rps;
    }
    ratios[`c${c} worker/inline p50`] = get(WORKER, c).p50 / get(INLINE, c).p50;
    ratios[`c${c} worker/inline throughput`] = get(WORKER, c).rps / get(INLINE, c).rps;
    // Paired per round (the two writers ran back to back): less exposed to one disturbed round.
    const w = results[WORKER]![c]!;
    const i = results[INLINE]![c]!;
    ratios[`c${c} worker/inline p50, paired per round`] = median(w.p50.map((v, k) => v / i.p50[k]!));
    ratios[`c${c} worker/inline throughput, paired per round`] = median(w.rps.map((v, k) => v / i.rps[k]!));
  }
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version };
  if (asJson) {
    console.log(JSON.stringify({ machine, rounds: ROUNDS, requests: REQUESTS, summary, ratios }, null, 2));
  } else {
    console.log(`machine: ${machine.cpus} CPUs (${machine.cpu}), Node ${machine.node}; ${ROUNDS} interleaved rounds, median shown`);
    console.log('| target | c | req/s | p50 ms | p99 ms |');
    console.log('|---|---|---|---|---|');
    for (const [name, byC] of Object.entries(summary)) for (const [c, r] of Object.entries(byC)) console.log(`| ${name} | ${c} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`);
    console.log('\nratios:');
    for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(3)}`);
  }
}

try {
  await main();
} finally {
  cleanup();
}
