/**
 * Which process is the busiest stage at c=32: the load generator (this process), the system under
 * test or the upstream, as the share of wall time each one's main thread and all its threads are
 * on a CPU while the load runs, with the machine's idle share (/proc/stat, proc(5)). On a 2-vCPU
 * machine the three share two CPUs; the one whose main thread is busiest limits throughput, so its
 * CPU per request is what the throughput ratio follows.
 * Run: npm run bench -- stage-cpu [--rounds N] [--requests N]
 *
 * Targets (bench/fixtures/mcp-load.ts startCpuTargets): the gateway's /mcp/http-policy (JWT,
 * scope, policy, audit) and /mcp/http (JWT, scope), and the stricter line (bench/gateway-servers.ts
 * proxy-dispatch), each warmed with a round's worth of requests, then in turn per round (the order
 * reversed every other round). Medians.
 */
import { readFileSync } from 'node:fs';
import { closeSession, countOption, inTurn, load, median, startCpuTargets, startServersChild, stopChildren, threadsCpu, type CpuTarget } from './fixtures/mcp-load.ts';

const ROUNDS = countOption('--rounds', 6);
const REQUESTS = countOption('--requests', 20_000);
const C = 32;

/** CPU ms of `pid`'s main thread and of all its threads. */
function cpuOf(pid: number): { main: number; all: number } {
  const threads = threadsCpu(pid);
  let all = 0;
  for (const t of threads.values()) all += t.ms;
  return { main: threads.get(pid)?.ms ?? 0, all };
}

/** The machine's CPU time so far, total and idle (idle + iowait), in USER_HZ ticks. */
function machine(): { total: number; idle: number } {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { total: ticks.reduce((a, b) => a + b, 0), idle: ticks[3]! + ticks[4]! };
}

interface Target extends CpuTarget {
  rows: Record<string, number[]>;
}

try {
  const upstream = await startServersChild(['upstream']);
  const targets: Target[] = (await startCpuTargets(upstream.info.url as string, { connections: C, warmup: REQUESTS })).map((t) => ({ ...t, rows: {} }));

  for (let round = 0; round < ROUNDS; round++) {
    for (const t of inTurn(targets, round)) {
      const pids = { client: process.pid, proxy: t.pid, upstream: upstream.child.pid! };
      const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid)]));
      const m0 = machine();
      const t0 = performance.now();
      await load(t.session, C, REQUESTS);
      const ms = performance.now() - t0;
      const m1 = machine();
      const push = (key: string, v: number) => (t.rows[key] ??= []).push(v);
      push('req/s', (REQUESTS * 1000) / ms);
      for (const [k, pid] of Object.entries(pids)) {
        const after = cpuOf(pid);
        push(`${k} main`, (100 * (after.main - before[k]!.main)) / ms);
        push(`${k} all`, (100 * (after.all - before[k]!.all)) / ms);
      }
      push('idle', (100 * (m1.idle - m0.idle)) / (m1.total - m0.total));
    }
    console.error(`round ${round + 1}/${ROUNDS}`);
  }
  console.log(`\nc=${C}, ${ROUNDS} rounds of ${REQUESTS} tools/call per target; % of wall time on a CPU (main thread / all threads), medians`);
  console.log('\n| system under test | req/s | load generator | system under test | upstream | machine idle |');
  console.log('|---|---|---|---|---|---|');
  const pct = (t: Target, k: string) => `${median(t.rows[`${k} main`]!).toFixed(0)} / ${median(t.rows[`${k} all`]!).toFixed(0)}`;
  for (const t of targets) {
    console.log(`| ${t.name} | ${median(t.rows['req/s']!).toFixed(0)} | ${pct(t, 'client')} | ${pct(t, 'proxy')} | ${pct(t, 'upstream')} | ${median(t.rows.idle!).toFixed(1)} % |`);
  }
  for (const t of targets) await closeSession(t.session);
} finally {
  stopChildren();
}
