/**
 * Async resources created per request (async_hooks `init`, by type): promises, process.nextTick
 * callbacks (TickObject), timers and immediates, in the gateway and in the stricter line, for
 * tools/call at concurrency 1. Counts, not times: they do not move with the machine, so a change
 * that adds or removes a promise on the request's path shows here exactly, where a time
 * measurement on a noisy 2-vCPU VM could not see it. Each one costs the main thread an allocation
 * and a turn of the microtask or tick queue.
 * Run: npm run bench -- async-resources [--requests N]
 */
import { fileURLToPath } from 'node:url';
import { countOption, load, openSession, startServersChild, stopChildren } from './fixtures/mcp-load.ts';

const REQUESTS = countOption('--requests', 2000);
const COUNTER = fileURLToPath(new URL('./fixtures/async-resource-counter.mjs', import.meta.url));

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const rows: [string, Record<string, number>][] = [];
  let lineToken: string | undefined;
  const systems = [
    ['gateway, JWT+scope+policy+audit', ['warden', upstream], 'http-policy'],
    ['gateway, JWT+scope', ['warden', upstream], 'http'],
    ['stricter line (undici dispatch)', ['proxy-dispatch', upstream], undefined],
  ] as const;
  for (const [name, args, path] of systems) {
    let output = '';
    const { child, info } = await startServersChild([...args], { nodeArgs: ['--import', COUNTER], onOutput: (text) => { output += text; } });
    /** The child's counts so far (it writes them on SIGUSR2). */
    const counts = async (): Promise<Record<string, number>> => {
      output = '';
      child.kill('SIGUSR2');
      // The counts' whole line, not the first output: the child may print other lines too.
      for (let i = 0; i < 250 && !/^ASYNC-RESOURCES [^\n]*\n/m.test(output); i++) await new Promise((r) => setTimeout(r, 20));
      const line = output.split('\n').find((l) => l.startsWith('ASYNC-RESOURCES '));
      if (!line) throw new Error(`${name}: no counts from the child`);
      return JSON.parse(line.slice('ASYNC-RESOURCES '.length)) as Record<string, number>;
    };
    // The line's client sends the gateway's bearer token too (the same request bytes); the line drops it.
    if (path) lineToken ??= info.tokens['http-policy'] as string;
    const session = await openSession({ name, url: path ? `${info.url}/mcp/${path}` : (info.url as string), token: path ? info.tokens[path] : lineToken }, 1);
    await load(session, 1, 500);
    const before = await counts();
    await load(session, 1, REQUESTS);
    const after = await counts();
    const perRequest: Record<string, number> = {};
    for (const [type, n] of Object.entries(after)) perRequest[type] = (n - (before[type] ?? 0)) / REQUESTS;
    rows.push([name, perRequest]);
    child.kill('SIGTERM');
  }
  const types = [...new Set(rows.flatMap(([, r]) => Object.keys(r).filter((t) => r[t]! >= 0.01)))].sort();
  console.log(`\ntools/call at c=1, ${REQUESTS} requests after 500 of warm-up; async resources created per request, by async_hooks type`);
  console.log(`\n| system | ${types.join(' | ')} |`);
  console.log(`|---|${types.map(() => '---').join('|')}|`);
  for (const [name, r] of rows) console.log(`| ${name} | ${types.map((t) => (r[t] ?? 0).toFixed(2)).join(' | ')} |`);
} finally {
  stopChildren();
}
