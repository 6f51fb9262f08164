/**
 * The cold path: what a new MCP session costs through the gateway, with a token it has verified
 * before and with one it has never seen, and what the first request of a new process costs. The
 * other benchmarks measure a warm session with a verified token; a client that opens a session
 * per task, or an agent fleet whose tokens are short-lived, pays these instead.
 *
 * 1. Sessions (MCP 2025-11-25 lifecycle and transports §Session Management). Per round, each
 *    target in turn (the order rotating) opens `--sessions` sessions one after another on one
 *    keep-alive connection: `initialize`, `notifications/initialized`, one `tools/call` of the
 *    echo tool, `DELETE`. Each step is timed at the client; the tables give the median over
 *    rounds of each round's median, and the 99th percentile of all sessions.
 *    Targets: the upstream directly; the stricter line (bench/gateway-servers.ts proxy-dispatch);
 *    the gateway's /mcp/http-policy (JWT, required scope, policy, audit), first with the one token
 *    every session shares (verified once, then answered from the verified-token cache), then with
 *    a token never seen before for each session (its ES256 signature verified and its claims
 *    checked on the request path: RFC 9068 §4), minted ahead of the round by the gateway's
 *    fixture issuer. Each target is warmed first with 50 sessions of its own kind.
 * 2. A new process's first request. `--starts` times, a new gateway process (its fixture issuer
 *    answering after `--issuer-delay-ms`, default 50, as a remote IdP one round trip away would)
 *    and a new line process, each asked as a balancer would: the gateway once `/readyz` answers
 *    200 (polled every 5 ms from when it printed its URL, on a connection of its own; the time is
 *    reported, and with the first answer's), the line at once; each first request on a new
 *    connection.
 *    Then the first session's `initialize`, its `tools/call`, and the second session's
 *    `initialize`. With `--baseline DIR`, DIR's gateway too (another checkout, its own
 *    bench/gateway-servers.ts).
 * Loopback only; the load generator is this process.
 * Run: npm run bench -- cold-path [--rounds N] [--sessions N] [--starts N] [--issuer-delay-ms N] [--baseline DIR]
 */
import type { ChildProcess } from 'node:child_process';
import { Pool } from 'undici';
import { countOption, inTurn, median, pathOption, startServersChild, stopChildren } from './fixtures/mcp-load.ts';

const ROUNDS = countOption('--rounds', 5);
const SESSIONS = countOption('--sessions', 200);
const STARTS = countOption('--starts', 5);
const ISSUER_DELAY_MS = countOption('--issuer-delay-ms', 50);
const BASELINE = pathOption('--baseline');
const WARMUP = 50;

const STEPS = ['initialize', 'initialized', 'tools/call', 'DELETE', 'session'] as const;
type Step = (typeof STEPS)[number];
type Timings = Record<Step, number>;

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
const INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
const CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}';

/** One session from `initialize` to `DELETE`, each answer checked; the time of each step, ms. */
async function oneSession(pool: Pool, path: string, token: string | undefined): Promise<Timings> {
  const base: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (token) base.authorization = `Bearer ${token}`;
  const t0 = performance.now();
  const init = await pool.request({ path, method: 'POST', headers: base, body: INITIALIZE });
  const initText = await init.body.text();
  const sid = init.headers['mcp-session-id'];
  if (init.statusCode !== 200 || typeof sid !== 'string') throw new Error(`initialize answered ${init.statusCode}: ${initText.slice(0, 200)}`);
  const t1 = performance.now();
  const headers = { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const note = await pool.request({ path, method: 'POST', headers, body: INITIALIZED });
  await note.body.text();
  if (note.statusCode !== 202) throw new Error(`notifications/initialized answered ${note.statusCode}`);
  const t2 = performance.now();
  const call = await pool.request({ path, method: 'POST', headers, body: CALL });
  const callText = await call.body.text();
  if (call.statusCode !== 200 || !callText.includes('hello')) throw new Error(`tools/call answered ${call.statusCode}: ${callText.slice(0, 200)}`);
  const t3 = performance.now();
  const del = await pool.request({ path, method: 'DELETE', headers });
  await del.body.text();
  if (del.statusCode >= 300) throw new Error(`DELETE answered ${del.statusCode}`);
  const t4 = performance.now();
  return { initialize: t1 - t0, initialized: t2 - t1, 'tools/call': t3 - t2, DELETE: t4 - t3, session: t4 - t0 };
}

interface SessionTarget {
  name: string;
  url: URL;
  /** The token of session `i` (undefined: none sent). */
  token(i: number): string | undefined;
  /** Called before each round with the number of sessions it will open (fresh tokens are minted here). */
  prepare?(sessions: number): Promise<void>;
}

/** Asks the gateway child for `n` tokens it has never seen. */
function mint(child: ChildProcess, n: number): Promise<string[]> {
  return new Promise((resolve) => {
    const onMessage = (m: { minted?: string[] }) => {
      if (!m.minted) return;
      child.off('message', onMessage);
      resolve(m.minted);
    };
    child.on('message', onMessage);
    child.send({ mint: n });
  });
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
};
const f = (ms: number) => ms.toFixed(3);

try {
  const upstream = await startServersChild(['upstream']);
  const upstreamUrl = upstream.info.url as string;
  const line = await startServersChild(['proxy-dispatch', upstreamUrl]);
  const warden = await startServersChild(['warden', upstreamUrl], { ipc: true });
  const gatewayUrl = new URL(`${warden.info.url}/mcp/http-policy`);
  const shared = warden.info.tokens['http-policy'] as string;
  let fresh: string[] = [];

  const targets: SessionTarget[] = [
    { name: 'upstream directly', url: new URL(upstreamUrl), token: () => undefined },
    // The line's client sends the gateway's token too (the same request bytes); the line drops it.
    { name: 'stricter line (undici dispatch)', url: new URL(line.info.url as string), token: () => shared },
    { name: 'gateway, a token verified before', url: gatewayUrl, token: () => shared },
    { name: 'gateway, a new token per session', url: gatewayUrl, token: (i) => fresh[i], prepare: async (n) => { fresh = await mint(warden.child, n); } },
  ];

  const run = async (t: SessionTarget, n: number): Promise<Timings[]> => {
    await t.prepare?.(n);
    const pool = new Pool(t.url.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
    try {
      const out: Timings[] = [];
      for (let i = 0; i < n; i++) out.push(await oneSession(pool, t.url.pathname, t.token(i)));
      return out;
    } finally {
      await pool.close();
    }
  };

  for (const t of targets) await run(t, WARMUP);
  const perRound = new Map<string, Timings[][]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of inTurn(targets, r)) perRound.get(t.name)!.push(await run(t, SESSIONS));
    process.stderr.write(`  round ${r + 1}/${ROUNDS} done\n`);
  }

  console.log(`\nNew sessions, ${ROUNDS} rounds of ${SESSIONS} per target, one after another on one keep-alive connection; ms at the client: median over rounds of each round's median (p99 of all sessions)`);
  console.log(`| target | ${STEPS.join(' | ')} |`);
  console.log(`|---|${STEPS.map(() => '---').join('|')}|`);
  const medians = new Map<string, Timings>();
  for (const t of targets) {
    const rounds = perRound.get(t.name)!;
    const m = {} as Timings;
    const cells = STEPS.map((s) => {
      m[s] = median(rounds.map((round) => median(round.map((x) => x[s]))));
      return `${f(m[s])} (${f(quantile(rounds.flat().map((x) => x[s]), 0.99))})`;
    });
    medians.set(t.name, m);
    console.log(`| ${t.name} | ${cells.join(' | ')} |`);
  }
  const lineM = medians.get(targets[1]!.name)!;
  const warm = medians.get(targets[2]!.name)!;
  const cold = medians.get(targets[3]!.name)!;
  console.log(`\nA session through the gateway: ${f(warm.session)} ms with a token verified before (${(warm.session / lineM.session).toFixed(2)}x the line's ${f(lineM.session)}, +${f(warm.session - lineM.session)} ms); with a new token ${f(cold.session)} ms (its initialize +${f(cold.initialize - warm.initialize)} ms over a verified token's).`);

  // 2. A new process's first request.
  const kinds: { name: string; start: () => ReturnType<typeof startServersChild>; gateway: boolean }[] = [
    { name: 'gateway', start: () => startServersChild(['warden', upstreamUrl, '--issuer-delay-ms', String(ISSUER_DELAY_MS)]), gateway: true },
    ...(BASELINE ? [{ name: 'baseline gateway', start: () => startServersChild(['warden', upstreamUrl, '--issuer-delay-ms', String(ISSUER_DELAY_MS)], { servers: `${BASELINE}/bench/gateway-servers.ts`, cwd: BASELINE }), gateway: true }] : []),
    { name: 'stricter line', start: () => startServersChild(['proxy-dispatch', upstreamUrl]), gateway: false },
  ];
  const firsts = new Map(kinds.map((k) => [k.name, { ready: [] as number[], first: [] as number[], answered: [] as number[], call: [] as number[], second: [] as number[] }]));
  for (let i = 0; i < STARTS; i++) {
    for (const kind of inTurn(kinds, i)) {
      const started = await kind.start();
      const url = new URL(kind.gateway ? `${started.info.url}/mcp/http-policy` : (started.info.url as string));
      const token = (kind.gateway ? started.info.tokens['http-policy'] : shared) as string;
      if (kind.gateway && started.info.issuerDelayMs !== ISSUER_DELAY_MS) throw new Error(`${kind.name}: its bench/gateway-servers.ts does not take --issuer-delay-ms (a checkout too old for this benchmark)`);
      // As a balancer would: the first request once /readyz says ready (the line has none),
      // polled on a connection of its own, so every target's first request opens its connection.
      const t0 = performance.now();
      if (kind.gateway) {
        const probe = new Pool(url.origin, { connections: 1 });
        for (;;) {
          const r = await probe.request({ path: '/readyz', method: 'GET' });
          await r.body.text();
          if (r.statusCode === 200) break;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        await probe.close();
      }
      const readyMs = performance.now() - t0;
      const pool = new Pool(url.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
      const a = await oneSession(pool, url.pathname, token);
      const b = await oneSession(pool, url.pathname, token);
      await pool.close();
      started.child.kill('SIGTERM');
      await new Promise((resolve) => started.child.once('exit', resolve));
      const v = firsts.get(kind.name)!;
      v.ready.push(readyMs);
      v.answered.push(readyMs + a.initialize);
      v.first.push(a.initialize);
      v.call.push(a['tools/call']);
      v.second.push(b.initialize);
    }
  }
  console.log(`\nA new process's first requests, ${STARTS} starts each, the gateway's issuer answering after ${ISSUER_DELAY_MS} ms; ms at the client (median; min–max)`);
  console.log('| process | URL printed → /readyz 200 | first initialize | URL printed → its answer | its tools/call | second session\'s initialize |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, v] of firsts) {
    const cell = (xs: number[]) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
    console.log(`| ${name} | ${name.includes('gateway') ? cell(v.ready) : '–'} | ${cell(v.first)} | ${cell(v.answered)} | ${cell(v.call)} | ${cell(v.second)} |`);
  }
} finally {
  stopChildren();
}
