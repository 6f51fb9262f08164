/**
 * Which bare pass-through is the ceiling? tools/call through three correct node:http proxies to
 * the same lean upstream: http.Agent with .pipe(), http.Agent with stream.pipeline(), and undici's
 * Pool (the client the gateway uses). Throughput, p50/p95 and CPU ms per request of the proxy
 * process, 5 interleaved rounds with a rotating order, median shown.
 * Run: npm run bench -- proxies [--quick]
 */
import { closeSession, measureRounds, printSummary, startServersChild, stopChildren, summarize, type Target } from './fixtures/mcp-load.ts';

const quick = process.argv.includes('--quick');
const up = await startServersChild(['upstream']);
const targets: Target[] = [];
for (const role of ['proxy', 'proxy-pipeline', 'proxy-undici']) {
  const p = await startServersChild([role, up.info.url]);
  targets.push({ name: role, url: p.info.url, pid: p.child.pid, upstreamPid: up.child.pid });
}
const order = (round: number) => targets.map((_, i) => targets[(i + round) % targets.length]!);
try {
  const results = await measureRounds(targets, { rounds: quick ? 2 : 5, requests: { 1: quick ? 500 : 2000, 32: quick ? 2000 : 6000 }, warmup: 300, order, close: closeSession, quiet: true });
  printSummary(summarize(results), {});
} finally {
  stopChildren();
}
