/**
 * How much of the gateway's extra CPU per request at c=32 is its process rather than its work per
 * request: the stricter line's own code (bench/gateway-servers.ts proxy-dispatch) served from its
 * own process, from inside a gateway's process that serves requests of its own in turn, and from
 * inside a gateway's process that serves none. The line's code is the same in all three; what
 * differs is the process around it (the gateway's modules and heap, its threads and timers, and
 * V8's inline caches in node's http code shared with the gateway's requests).
 *
 * And the gateway with an AsyncLocalStorage in use, as once the embedded authorization server has
 * served one request (oidc-provider runs each of its requests in one: lib/helpers/als.js): on
 * Node 20 and 22 async_hooks' promise hook then stays on for the life of the process, and every
 * promise the gateway makes runs it. (Node 24 carries AsyncLocalStorage in V8's continuation data
 * and needs no hook.) The same process serves those rounds, the storage turned on before each of
 * them and off before every other (SIGUSR2, bench/gateway-servers.ts), so that the process's own
 * placement, which moves its CPU per request by up to ±15 % here, is the same on both sides.
 * Every gateway uses the external fixture issuer, as bench/gateway.ts's does.
 *
 * Run: npm run bench -- process-share [--rounds N] [--requests N]
 * CPU from /proc per thread (bench/fixtures/mcp-load.ts cpuWindow), each target warmed with a
 * round's worth of requests, then rounds of `--requests` (default 12 000) at c=32 in turn, the
 * order reversed every other round. Every client sends the gateway's bearer token; the lines drop it.
 */
import { closeSession, countOption, cpuWindow, inTurn, load, median, openSession, startServersChild, stopChildren, type Session } from './fixtures/mcp-load.ts';

const ROUNDS = countOption('--rounds', 8);
const REQUESTS = countOption('--requests', 12_000);
const C = 32;

interface Target {
  name: string;
  session: Session;
  pid: number;
  /** Whether the gateway's AsyncLocalStorage is on while this target is measured (its process only). */
  asyncLocalStorage: boolean;
  /** µs per request, one entry per round: the main thread, and the whole process. */
  main: number[];
  total: number[];
}

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  let output = '';
  const gateway = await startServersChild(['warden', upstream, 'worker', '--line-in-process', '--async-local-storage'], { onOutput: (text) => (output += text) });
  const idle = await startServersChild(['warden', upstream, 'worker', '--line-in-process']);
  const line = await startServersChild(['proxy-dispatch', upstream]);
  const token = gateway.info.tokens['http-policy'] as string;
  const gatewayPid = gateway.child.pid!;
  let storageOn = false;
  /** Turns the gateway's AsyncLocalStorage on or off, and waits until it says so. */
  const setStorage = async (on: boolean) => {
    if (on === storageOn) return;
    output = '';
    process.kill(gatewayPid, 'SIGUSR2');
    const expected = JSON.stringify({ asyncLocalStorage: on });
    for (let i = 0; i < 250 && !output.includes(expected); i++) await new Promise((r) => setTimeout(r, 20));
    if (!output.includes(expected)) throw new Error(`the gateway did not turn its AsyncLocalStorage ${on ? 'on' : 'off'}`);
    storageOn = on;
  };
  const targets: Target[] = [];
  const add = async (name: string, url: string, pid: number, bearer: string, asyncLocalStorage = false) => {
    targets.push({ name, session: await openSession({ name, url, token: bearer }, C), pid, asyncLocalStorage, main: [], total: [] });
  };
  await add('stricter line, its own process', line.info.url as string, line.child.pid!, token);
  await add('stricter line, in the gateway\'s process', gateway.info.lineUrl as string, gatewayPid, token);
  await add('stricter line, in a gateway process serving nothing else', idle.info.lineUrl as string, idle.child.pid!, token);
  await add('gateway JWT+scope+policy+audit', `${gateway.info.url}/mcp/http-policy`, gatewayPid, token);
  await add('gateway JWT+scope', `${gateway.info.url}/mcp/http`, gatewayPid, gateway.info.tokens.http as string);
  await add('gateway JWT+scope+policy+audit, AsyncLocalStorage in use', `${gateway.info.url}/mcp/http-policy`, gatewayPid, token, true);
  await add('gateway JWT+scope, AsyncLocalStorage in use', `${gateway.info.url}/mcp/http`, gatewayPid, gateway.info.tokens.http as string, true);
  for (const t of targets) {
    if (t.pid === gatewayPid) await setStorage(t.asyncLocalStorage);
    await load(t.session, C, REQUESTS);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of inTurn(targets, round)) {
      if (t.pid === gatewayPid) await setStorage(t.asyncLocalStorage);
      const { main, others } = await cpuWindow(t.pid, REQUESTS, () => load(t.session, C, REQUESTS));
      t.main.push(main);
      t.total.push(main + others);
    }
    console.error(`  round ${round + 1}/${ROUNDS}: ${targets.map((t) => `${t.name} ${t.main.at(-1)!.toFixed(1)}`).join(', ')} µs/request (main thread)`);
  }
  const [own, inGateway] = targets as [Target, Target];
  const paired = (t: Target, base: Target, pick: (x: Target) => number[]) => median(pick(t).map((v, i) => v / pick(base)[i]!)).toFixed(3);
  console.log(`\nc=${C}, ${ROUNDS} rounds of ${REQUESTS} tools/call per target after a warm-up of as many; CPU µs per request, medians; ratios paired per round`);
  console.log('\n| target | main thread | whole process | main ÷ the line in its own process | main ÷ the line in the gateway\'s process |');
  console.log('|---|---|---|---|---|');
  for (const t of targets) {
    console.log(`| ${t.name} | ${median(t.main).toFixed(1)} | ${median(t.total).toFixed(1)} | ${paired(t, own, (x) => x.main)} | ${paired(t, inGateway, (x) => x.main)} |`);
  }
  const byName = (name: string) => targets.find((t) => t.name === name)!;
  console.log('\nAsyncLocalStorage in use ÷ not, the same route, whole process, paired per round:');
  for (const route of ['JWT+scope+policy+audit', 'JWT+scope']) {
    console.log(`  ${route}: ${paired(byName(`gateway ${route}, AsyncLocalStorage in use`), byName(`gateway ${route}`), (x) => x.total)}`);
  }
  for (const t of targets) await closeSession(t.session);
} finally {
  stopChildren();
}
