/**
 * Audit writer benchmark: does moving the SQLite audit inserts to a worker
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
import { cpus } from 'node:os';
import { measureRounds, median, printSummary, startServersChild, stopChildren, summarize, type Target } from './fixtures/mcp-load.ts';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const ROUNDS = quick ? 2 : 5;
const REQUESTS = { 1: quick ? 500 : 2000, 32: quick ? 2000 : 8000 } as const;
const WARMUP = 500;

const startChild = async (args: string[]) => (await startServersChild(args)).info;

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
    // The proxy's client sends the gateway's bearer token too (the same request bytes); it drops it.
    { name: PROXY, url: proxy, token: inline.tokens['http-policy'] },
    { name: NO_AUDIT, url: `${inline.url}/mcp/http`, token: inline.tokens.http },
    { name: INLINE, url: `${inline.url}/mcp/http-policy`, token: inline.tokens['http-policy'] },
    { name: WORKER, url: `${worker.url}/mcp/http-policy`, token: worker.tokens['http-policy'] },
  ];
  const results = await measureRounds(targets, {
    rounds: ROUNDS,
    requests: REQUESTS,
    warmup: WARMUP,
    // Alternate the order of the two writers each round, so neither always runs right after the proxy.
    order: (round) => (round % 2 === 0 ? targets : [targets[0]!, targets[1]!, targets[3]!, targets[2]!]),
    close: (s) => s.pool.close(),
    quiet: asJson,
  });
  const summary = summarize(results);
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
    printSummary(summary, ratios);
  }
}

try {
  await main();
} finally {
  stopChildren();
}
