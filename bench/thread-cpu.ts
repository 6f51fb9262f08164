/**
 * The gateway's own CPU per request at c=32 once it is warm, thread by thread, side by side with
 * the stricter line (bench/gateway-servers.ts proxy-dispatch: undici `dispatch`, body read whole,
 * no parsing, no token, no policy). CPU is read from outside (/proc/<pid>/task/<tid>/stat,
 * proc(5)), so what is measured costs the measured process nothing, and every thread counts: the
 * main thread, the audit writer, V8's collector and compiler helpers.
 * Run: npm run bench -- thread-cpu [--rounds N] [--requests N] [--baseline <dir>]
 *
 * Targets (bench/fixtures/mcp-load.ts startCpuTargets): this tree's gateway through
 * /mcp/http-policy (JWT, scope, policy, audit) and /mcp/http (JWT, scope), the same two of
 * `--baseline`'s gateway and the line. Each is first warmed with a round's worth of requests (in
 * the first 12 000 requests the helper threads spend ~10× what they spend later). Then rounds of
 * `--requests` (default 12 000) at concurrency 32 per target, in turn, the order reversed every
 * other round; a round's figures are µs of CPU per request. Shown: medians over rounds, and the
 * median of each round's ratio of the target's whole-process CPU to the line's in the same round.
 *
 * Why it exists: bench/gateway.ts's throughput at c=32 takes the client and the upstream's CPU too
 * and moves ±0.05 between runs on a noisy 2-core VM; this is the gateway's part of it, and moves
 * ±1 µs.
 */
import { closeSession, countOption, cpuWindow, inTurn, load, median, pathOption, startCpuTargets, startServersChild, stopChildren, type CpuTarget } from './fixtures/mcp-load.ts';

const ROUNDS = countOption('--rounds', 8);
const REQUESTS = countOption('--requests', 12_000);
const C = 32;
const BASELINE = pathOption('--baseline');

interface Target extends CpuTarget {
  /** µs per request, one entry per round. */
  main: number[];
  others: number[];
  total: number[];
}

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const targets: Target[] = (await startCpuTargets(upstream, { connections: C, warmup: REQUESTS, baseline: BASELINE })).map((t) => ({ ...t, main: [], others: [], total: [] }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of inTurn(targets, round)) {
      const { main, others } = await cpuWindow(t.pid, REQUESTS, () => load(t.session, C, REQUESTS));
      t.main.push(main);
      t.others.push(others);
      t.total.push(main + others);
    }
    console.error(`  round ${round + 1}/${ROUNDS}: ${targets.map((t) => `${t.name} ${t.total.at(-1)!.toFixed(1)}`).join(', ')} µs/request`);
  }
  const lineTarget = targets.at(-1)!;
  console.log(`\nc=${C}, ${ROUNDS} rounds of ${REQUESTS} requests per target after a warm-up of as many; CPU µs per request (/proc ticks: ±${((10 * 1000) / REQUESTS).toFixed(2)} per thread and round), medians`);
  console.log('\n| target | main thread | other threads | whole process | whole process / the line, paired per round |');
  console.log('|---|---|---|---|---|');
  for (const t of targets) {
    const ratio = median(t.total.map((v, i) => v / lineTarget.total[i]!));
    console.log(`| ${t.name} | ${median(t.main).toFixed(1)} | ${median(t.others).toFixed(1)} | ${median(t.total).toFixed(1)} | ${ratio.toFixed(3)} |`);
  }
  for (const t of targets) await closeSession(t.session);
} finally {
  stopChildren();
}
