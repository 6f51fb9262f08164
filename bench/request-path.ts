/**
 * Where a request's time goes inside the process at concurrency 1: the gateway (/mcp/http-policy:
 * JWT, scope, policy, audit) against the stricter line (bench/gateway-servers.ts proxy-dispatch:
 * undici `dispatch`, body read whole), both with the same preloaded timers
 * (bench/fixtures/request-path-timer.mjs) and neither's code touched:
 *   A    request event → upstream request handed to undici
 *   U    → undici's onComplete for the upstream's reply
 *   B    → res.end() called
 *   end  the res.end() call (the write to the client)
 * plus the client's p50 for each. The two take turns request by request (fixtures/mcp-load.ts
 * `alternate`), so both see the same moment of the machine. Medians per round, then the median
 * over rounds, in µs. The timers cost both the same few calls of performance.now() per request.
 * Run: npm run bench -- request-path [--rounds N] [--processes N]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alternate, closeSession, load, median, openSession, startServersChild, stopChildren, type Session } from './fixtures/mcp-load.ts';

const roundsIndex = process.argv.indexOf('--rounds');
const ROUNDS = roundsIndex === -1 ? 9 : Number(process.argv[roundsIndex + 1]);
const processesIndex = process.argv.indexOf('--processes');
const PROCESSES = processesIndex === -1 ? 3 : Math.max(1, Number(process.argv[processesIndex + 1]));
const REQUESTS = 2000;
const TIMER = fileURLToPath(new URL('./fixtures/request-path-timer.mjs', import.meta.url));
process.env.REQUEST_PATH_OUT = join(mkdtempSync(join(tmpdir(), 'warden-request-path-')), 'medians');

type Phases = { A: number; U: number; B: number; end: number };
const PHASES = ['A', 'U', 'B', 'end'] as const;

/** The medians the timer of `pid` wrote for the requests it served last. */
async function phasesOf(pid: number): Promise<Phases> {
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

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const options = { nodeArgs: ['--import', TIMER] };
  const pairs: { line: Session; gateway: Session; linePid: number; gatewayPid: number }[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    const line = await startServersChild(['proxy-dispatch', upstream], options);
    const gateway = await startServersChild(['warden', upstream], options);
    const pair = {
      line: await openSession({ name: 'line', url: line.info.url }, 1),
      gateway: await openSession({ name: 'gateway', url: `${gateway.info.url}/mcp/http-policy`, token: gateway.info.tokens['http-policy'] }, 1),
      linePid: line.child.pid!,
      gatewayPid: gateway.child.pid!,
    };
    await load(pair.line, 1, 300);
    await load(pair.gateway, 1, 300);
    pairs.push(pair);
  }
  const rows: Record<'line' | 'gateway', Record<keyof Phases | 'client p50', number[]>> = {
    line: { A: [], U: [], B: [], end: [], 'client p50': [] },
    gateway: { A: [], U: [], B: [], end: [], 'client p50': [] },
  };
  for (let round = 0; round < ROUNDS; round++) {
    const pair = pairs[round % PROCESSES]!;
    const [lineP50, gatewayP50] = await alternate(pair.line, pair.gateway, REQUESTS);
    const phases = { line: await phasesOf(pair.linePid), gateway: await phasesOf(pair.gatewayPid) };
    rows.line['client p50'].push(lineP50 * 1000);
    rows.gateway['client p50'].push(gatewayP50 * 1000);
    for (const who of ['line', 'gateway'] as const) for (const p of PHASES) rows[who][p].push(phases[who][p]);
    console.error(`  round ${round + 1}: line ${JSON.stringify(phases.line)} gateway ${JSON.stringify(phases.gateway)}`);
  }
  for (const pair of pairs) {
    await closeSession(pair.line);
    await closeSession(pair.gateway);
  }
  console.log(`c=1, ${ROUNDS} rounds of ${REQUESTS} requests each, taking turns; ${PROCESSES} process(es) each; medians in µs`);
  console.log('| phase | stricter line (undici dispatch) | gateway (JWT+scope+policy+audit) | difference |');
  console.log('|---|---|---|---|');
  for (const p of [...PHASES, 'client p50'] as const) {
    const l = median(rows.line[p]);
    const g = median(rows.gateway[p]);
    console.log(`| ${p} | ${l.toFixed(1)} | ${g.toFixed(1)} | ${(g - l).toFixed(1)} |`);
  }
} finally {
  stopChildren();
}
