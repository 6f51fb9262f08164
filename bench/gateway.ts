/**
 * Gateway benchmark: tools/call throughput and p50/p99 latency at
 * concurrency 1 and 32 for
 *   - the upstream directly,
 *   - three bare pass-through proxies (node:http server; http.Agent or undici Pool, streaming both
 *     ways: the cheaper is the ceiling for any gateway, which does strictly more work per request;
 *     and undici dispatch with the request body read whole, as the gateway reads it: a stricter line),
 *   - mcp-warden with an HTTP upstream (JWT verification, required scope and a policy on),
 *   - stdio upstreams: mcp-warden (auth on) against supergateway (no auth), same stdio server;
 * plus gateway memory per idle session, and CPU ms per request of each process under test (and of
 * the upstream behind it), read from /proc/<pid>/stat before and after each round.
 * Run: npm run bench -- gateway [--quick] [--json] [--rounds N] [--processes N] [--baseline <dir>] [--no-stdio]
 *   --processes N     runs every system under test in N processes, round r served by process r mod N
 *                     (the upstream and supergateway stay one; rounds are rounded up to a multiple of
 *                     N): a process's placement and heap move its cost by itself.
 *   --baseline <dir>  also runs <dir>'s own bench/gateway-servers.ts warden (another checkout of
 *                     mcp-warden, e.g. the tree before a change) on the same upstream, interleaved.
 *
 * Method: every system under test runs in its own child process; this process is the load
 * generator (undici Pool, one keep-alive connection per concurrent worker). Each target gets one
 * MCP session (initialize + notifications/initialized), a warm-up, then a fixed number of
 * requests; rounds are interleaved across targets, the order rotating each round, and the median
 * round is reported. Loopback only.
 * c=1 is measured a second way too: each gateway taking turns with each line request by request
 * (`alternate`), which keeps the VM's drift between rounds out of the p50 ratio; and c=32 with
 * each gateway taking turns with each line in slices of 2 000 requests (`inSlices`), for the same
 * reason: one round of each, one after the other, moved their throughput ratio from 0.64 to 1.35
 * within a run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { resolve as resolvePath } from 'node:path';
import { alternate, closeSession, inSlices, countOption, measureRounds, median, openSession, pathOption, printSummary, processesOf, startServersChild, stopChildren, summarize, trackChild, type Session, type Target } from './fixtures/mcp-load.ts';

const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
/** Processes per system under test (`--processes N`): round r is served by process r mod N of each. */
const PROCESSES = countOption('--processes', 1);
// Every process serves as many rounds as the others.
const ROUNDS = Math.ceil(countOption('--rounds', quick ? 1 : 3) / PROCESSES) * PROCESSES;
const BASELINE = pathOption('--baseline') ?? process.env.BENCH_BASELINE;
const withStdio = !process.argv.includes('--no-stdio');
const REQUESTS = { 1: quick ? 500 : 2000, 32: quick ? 3000 : 8000 } as const;
const WARMUP = 300;
/** Requests per slice of the c=32 pass taking turns (`inSlices`): ~0.1 s at this VM's rates. */
const SLICE = quick ? 500 : 2000;
const MEMORY_SESSIONS = { http: quick ? 100 : 500, sh: quick ? 30 : 100 };
const TINY = fileURLToPath(new URL('../test/gateway/fixtures/tiny-server.mjs', import.meta.url));

const startChild = (args: string[], ipc = false) => startServersChild(args, { ipc, exposeGc: true });

async function startSupergateway(): Promise<{ url: string; pid: number }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const bin = require.resolve('supergateway/dist/index.js');
  const child = spawn(process.execPath, [bin, '--stdio', `${process.execPath} ${TINY}`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  trackChild(child);
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url, { method: 'GET' });
      return { url, pid: child.pid! };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('supergateway did not start');
}

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

const PROXY = 'bare proxy (node:http, http.Agent, pipe)';
const PROXY_UNDICI = 'bare proxy (node:http, undici Pool)';
const PROXY_DISPATCH = 'bare proxy (node:http, undici dispatch, body read whole)';
const WARDEN = 'mcp-warden → HTTP (JWT+scope)';
const WARDEN_POLICY = 'mcp-warden → HTTP (JWT+scope+policy+audit)';
const BASE_WARDEN = 'baseline mcp-warden → HTTP (JWT+scope)';
const BASE_WARDEN_POLICY = 'baseline mcp-warden → HTTP (JWT+scope+policy+audit)';
const SUPERGATEWAY = 'supergateway → stdio (no auth)';
const WARDEN_STDIO = 'mcp-warden → stdio (JWT+scope+policy+audit)';

async function main(): Promise<void> {
  const { child: upstreamChild, info: upstreamInfo } = await startChild(['upstream']);
  const upstream = upstreamInfo.url as string;
  const up = upstreamChild.pid;
  // Each system under test runs in PROCESSES processes, the rounds taking them in turn: a process's
  // own placement and heap layout move its CPU per request by up to ±15 % on these VMs, the same
  // code in another process differing as much as two trees do.
  const many = async (start: () => Promise<{ child: ChildProcess; info: any }>) => {
    const list: { child: ChildProcess; info: any }[] = [];
    for (let i = 0; i < PROCESSES; i++) list.push(await start());
    return list;
  };
  /** A target served by each process of `list` in turn; `upstreamPid` undefined for a stdio upstream (its children are its own). */
  const system = (name: string, list: { child: ChildProcess; info: any }[], url: (info: any) => string, token?: (info: any) => string, upstreamPid: number | undefined = up): Target => {
    const [first, ...rest] = list.map(({ child, info }) => ({ url: url(info), ...(token ? { token: token(info) } : {}), pid: child.pid, upstreamPid }));
    return { name, ...first!, replicas: rest };
  };
  const proxies = await many(() => startChild(['proxy', upstream]));
  const proxiesUndici = await many(() => startChild(['proxy-undici', upstream]));
  const proxiesDispatch = await many(() => startChild(['proxy-dispatch', upstream]));
  const wardens = await many(() => startChild(['warden', upstream], true));
  const { child: wardenChild, info: warden } = wardens[0]!;
  // The lines' clients send the gateway's bearer token too: every target reads the same request
  // bytes, as any server in the gateway's place would (a client sends its token whatever stands
  // there). The lines drop it before the upstream (bench/gateway-servers.ts).
  const lineToken = () => warden.tokens['http-policy'] as string;
  const targets: Target[] = [
    { name: 'upstream directly', url: upstream, pid: up },
    system(PROXY, proxies, (i) => i.url, lineToken),
    system(PROXY_UNDICI, proxiesUndici, (i) => i.url, lineToken),
    system(PROXY_DISPATCH, proxiesDispatch, (i) => i.url, lineToken),
    system(WARDEN, wardens, (i) => `${i.url}/mcp/http`, (i) => i.tokens.http),
    system(WARDEN_POLICY, wardens, (i) => `${i.url}/mcp/http-policy`, (i) => i.tokens['http-policy']),
  ];
  if (BASELINE) {
    const dir = resolvePath(BASELINE);
    const bases = await many(() => startServersChild(['warden', upstream], { servers: `${dir}/bench/gateway-servers.ts`, cwd: dir }));
    targets.push(
      system(BASE_WARDEN, bases, (i) => `${i.url}/mcp/http`, (i) => i.tokens.http),
      system(BASE_WARDEN_POLICY, bases, (i) => `${i.url}/mcp/http-policy`, (i) => i.tokens['http-policy']),
    );
  }
  if (withStdio) {
    const supergateway = await startSupergateway();
    targets.push(
      { name: SUPERGATEWAY, url: supergateway.url, pid: supergateway.pid, token: lineToken() },
      system(WARDEN_STDIO, wardens, (i) => `${i.url}/mcp/stdio`, (i) => i.tokens.stdio, undefined),
    );
  }

  // Rotate the order every round: no target always runs first (warm caches) or right after the
  // heaviest one, so drift in the machine's load is spread over all of them.
  const order = (round: number) => targets.map((_, i) => targets[(i + round) % targets.length]!);
  const results = await measureRounds(targets, { rounds: ROUNDS, requests: REQUESTS, warmup: WARMUP, order, close: closeSession, quiet: asJson });

  // Each gateway once more against each line, the two taking turns: pairwise, so every process of
  // a pair serves half the requests (the two gateway routes share one process: alternating all
  // targets at once would keep that process busier, and warmer, than the lines'), per process as
  // the rounds above, after a warm-up. `turns` gives the line's figure and the gateway's; each
  // round's ratio of the two is kept, and their median reported.
  const alternated: Record<string, number> = {};
  const measured = summarize(results);
  const gatewayTargets = targets.filter((t) => [WARDEN, WARDEN_POLICY, BASE_WARDEN, BASE_WARDEN_POLICY].includes(t.name));
  const inTurns = async (c: 1 | 32, warmup: number, turns: (pair: [Session, Session], total: number) => Promise<number[]>, label: (target: string, line: string) => string): Promise<void> => {
    // The lines: the stricter one, and the ceiling at this concurrency (the cheaper streaming pass-through there).
    for (const lineName of [PROXY_DISPATCH, measured[PROXY_UNDICI]![c]!.cpu < measured[PROXY]![c]!.cpu ? PROXY_UNDICI : PROXY]) {
      const line = processesOf(targets.find((t) => t.name === lineName)!);
      for (const target of gatewayTargets) {
        const g = processesOf(target);
        const pairs: [Session, Session][] = [];
        for (let i = 0; i < PROCESSES; i++) {
          const pair: [Session, Session] = [await openSession(line[i]!, c), await openSession(g[i]!, c)];
          await turns(pair, warmup);
          pairs.push(pair);
        }
        const ratios: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const [lineFigure, gatewayFigure] = await turns(pairs[round % PROCESSES]!, REQUESTS[c]);
          ratios.push(gatewayFigure! / lineFigure!);
        }
        for (const [ls, gs] of pairs) {
          await closeSession(ls);
          await closeSession(gs);
        }
        alternated[label(target.name, lineName)] = median(ratios);
        if (!asJson) console.error(`  ${label(target.name, lineName)}, per round: ${ratios.map((r) => r.toFixed(3)).join(' ')}`);
      }
    }
  };
  // c=1 request by request (fixtures/mcp-load.ts `alternate`): the p50 ratio. A warm-up as long as
  // a round: shorter, a pair's first round ran cold (bench/request-path.ts).
  await inTurns(1, REQUESTS[1], (pair, total) => alternate(pair, total), (t, l) => `c1 ${t} / ${l}: p50, alternating request by request (median of ${ROUNDS} rounds)`);
  // c=32 in slices (`inSlices`): the throughput ratio.
  await inTurns(32, SLICE, (pair, total) => inSlices(pair, 32, total, SLICE), (t, l) => `c32 ${t} / ${l}: throughput, taking turns in slices of ${SLICE} (median of ${ROUNDS} rounds)`);

  const memHttp = await measureMemory(wardenChild, `${warden.url}/mcp/http`, warden.tokens.http, MEMORY_SESSIONS.http);
  const memStdio = withStdio ? await measureMemory(wardenChild, `${warden.url}/mcp/sh`, warden.tokens.sh, MEMORY_SESSIONS.sh) : undefined;

  const summary = summarize(results);
  const get = (name: string, c: number) => summary[name]![c]!;
  const ratios: Record<string, number> = {};
  for (const c of [1, 32]) {
    // Two lines, each the cheaper of its pass-throughs in CPU per request (the steadiest metric on a
    // shared box); a gateway does strictly more work than any of them. The ceiling streams both ways
    // (what a bare proxy is); the stricter line reads the request body whole first, as a gateway
    // must before it can check the message, and so pays for no stream on the upstream side.
    const cheaper = (names: string[]) => names.reduce((a, b) => (get(b, c).cpu < get(a, c).cpu ? b : a));
    const lines = { ceiling: cheaper([PROXY, PROXY_UNDICI]), 'stricter line': PROXY_DISPATCH };
    const gateways = [WARDEN, WARDEN_POLICY, ...(BASELINE ? [BASE_WARDEN, BASE_WARDEN_POLICY] : [])];
    for (const [label, line] of Object.entries(lines)) {
      const ceil = get(line, c);
      // Paired per round: each round's ratio to the line's same round (adjacent in time), then
      // the median over rounds; less exposed to load that changed between rounds.
      const paired = (name: string, metric: 'rps' | 'p50' | 'cpu') => median(results[name]![c]![metric].map((v, i) => v / results[line]![c]![metric][i]!));
      for (const name of gateways) {
        const r = get(name, c);
        const of = `c${c} ${name} / ${label} (${line})`;
        ratios[`${of}: throughput`] = r.rps / ceil.rps;
        ratios[`${of}: throughput, paired per round`] = paired(name, 'rps');
        ratios[`${of}: p50`] = r.p50 / ceil.p50;
        ratios[`${of}: p50, paired per round`] = paired(name, 'p50');
        ratios[`${of}: CPU ms per request, paired per round`] = paired(name, 'cpu');
        ratios[`c${c} ${name}: CPU ms/req over the ${label}'s`] = r.cpu - ceil.cpu;
      }
    }
    if (withStdio) ratios[`c${c} mcp-warden stdio / supergateway: throughput`] = get(WARDEN_STDIO, c).rps / get(SUPERGATEWAY, c).rps;
  }
  Object.assign(ratios, alternated);
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version };
  const memory = { httpUpstream: memHttp, stdioUpstream: memStdio };
  if (asJson) {
    console.log(JSON.stringify({ machine, rounds: ROUNDS, requests: REQUESTS, baseline: BASELINE, summary, ratios, memory }, null, 2));
  } else {
    console.log(`machine: ${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}; ${ROUNDS} rounds, median shown`);
    printSummary(summary, ratios);
    console.log(`\nidle session memory (gateway heap+external, after GC): HTTP upstream ${memHttp.bytesPerSession} B/session over ${memHttp.sessions} sessions${memStdio ? `; stdio upstream ${memStdio.bytesPerSession} B/session over ${memStdio.sessions} sessions (children not counted)` : ''}`);
  }
}

try {
  await main();
} finally {
  stopChildren();
}
