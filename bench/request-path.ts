/**
 * Where a request's time goes inside the process at concurrency 1: the gateway (/mcp/http-policy:
 * JWT, scope, policy, audit) against the stricter line (bench/gateway-servers.ts proxy-dispatch:
 * undici `dispatch`, body read whole), and `--baseline`'s gateway (another checkout), all with the
 * same preloaded timers (bench/fixtures/request-path-timer.mjs) and none's code touched:
 *   A    request event → upstream request created in undici
 *   U    → undici completing the upstream's reply (right before the handler's onComplete)
 *   B    → res.end() called
 *   end  the res.end() call (the write to the client)
 * plus the client's p50 for each. They take turns request by request (fixtures/mcp-load.ts
 * `alternate`), so all see the same moment of the machine. Medians per round, then the median
 * over rounds, in µs. The timers cost each the same few calls of performance.now() per request.
 * Run: npm run bench -- request-path [--rounds N] [--processes N] [--baseline <dir>]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alternate, closeSession, countOption, median, openSession, pathOption, startServersChild, stopChildren, type Session } from './fixtures/mcp-load.ts';

const PROCESSES = countOption('--processes', 3);
// Every process serves as many rounds as the others.
const ROUNDS = Math.ceil(countOption('--rounds', 9) / PROCESSES) * PROCESSES;
const BASELINE = pathOption('--baseline');
const REQUESTS = 2000;
const TIMER = fileURLToPath(new URL('./fixtures/request-path-timer.mjs', import.meta.url));
process.env.REQUEST_PATH_OUT = join(mkdtempSync(join(tmpdir(), 'warden-request-path-')), 'medians');

type Phases = { A: number; U: number; B: number; end: number };
const PHASES = ['A', 'U', 'B', 'end'] as const;

/** The medians the timer of `pid` wrote for the requests it served last. */
async function phasesOf(pid: number): Promise<Phases> {
  // The last round's file goes first: a read can only find what this signal made.
  rmSync(`${process.env.REQUEST_PATH_OUT}.${pid}`, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    try {
      return JSON.parse(readFileSync(`${process.env.REQUEST_PATH_OUT}.${pid}`, 'utf8')) as Phases;
    } catch {
      // not written yet
    }
  }
  throw new Error(`process ${pid} wrote no timings`);
}

const systems = ['stricter line (undici dispatch)', 'gateway (JWT+scope+policy+audit)', ...(BASELINE ? ['baseline gateway'] : [])];

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const options = { nodeArgs: ['--import', TIMER] };
  const sets: { sessions: Session[]; pids: number[] }[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    const line = await startServersChild(['proxy-dispatch', upstream], options);
    const gateways = [await startServersChild(['warden', upstream], options)];
    // The baseline's own bench/gateway-servers.ts, from its own tree; the timers are this tree's.
    if (BASELINE) gateways.push(await startServersChild(['warden', upstream], { ...options, servers: `${BASELINE}/bench/gateway-servers.ts`, cwd: BASELINE }));
    // The line's client sends the gateway's bearer token too (the same request bytes); the line drops it.
    const sessions = [await openSession({ name: 'line', url: line.info.url, token: gateways[0]!.info.tokens['http-policy'] }, 1)];
    for (const g of gateways) sessions.push(await openSession({ name: 'gateway', url: `${g.info.url}/mcp/http-policy`, token: g.info.tokens['http-policy'] }, 1));
    // A warm-up as long as a round: with 300 requests, a set's first round still ran cold (B up to 4×).
    await alternate(sessions, REQUESTS);
    sets.push({ sessions, pids: [line.child.pid!, ...gateways.map((g) => g.child.pid!)] });
  }
  const rows = systems.map(() => ({ A: [] as number[], U: [] as number[], B: [] as number[], end: [] as number[], 'client p50': [] as number[] }));
  for (let round = 0; round < ROUNDS; round++) {
    const set = sets[round % PROCESSES]!;
    const p50s = await alternate(set.sessions, REQUESTS);
    for (let k = 0; k < systems.length; k++) {
      const phases = await phasesOf(set.pids[k]!);
      rows[k]!['client p50'].push(p50s[k]! * 1000);
      for (const p of PHASES) rows[k]![p].push(phases[p]);
    }
    console.error(`  round ${round + 1}: ${systems.map((name, k) => `${name} B ${rows[k]!.B.at(-1)}`).join(', ')}`);
  }
  for (const set of sets) for (const s of set.sessions) await closeSession(s);
  console.log(`c=1, ${ROUNDS} rounds of ${REQUESTS} requests each, taking turns; ${PROCESSES} process(es) each; medians in µs`);
  console.log(`| phase | ${systems.join(' | ')} |`);
  console.log(`|---|${systems.map(() => '---|').join('')}`);
  for (const p of [...PHASES, 'client p50'] as const) console.log(`| ${p} | ${rows.map((r) => median(r[p]).toFixed(1)).join(' | ')} |`);
} finally {
  stopChildren();
}
