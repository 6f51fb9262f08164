/**
 * What V8's young-generation collections (scavenges) cost each system under load, read from
 * `node --trace-gc --trace-gc-nvp`: scavenges per 1 000 requests, bytes promoted to the old
 * generation per scavenge (objects still alive at their second scavenge, or kept alive by garbage
 * in the old generation: src/kernel/churn-map.ts) and scavenge pause per request.
 * Run: npm run bench -- gc-promotion [--rounds N] [--baseline <dir>]
 *
 * Systems: mcp-warden (this tree, and `--baseline`'s with its own bench/gateway-servers.ts),
 * loaded through two sessions in turn (/mcp/http, then /mcp/http-policy: a gateway serves more
 * than one session), and the three bare pass-throughs of bench/gateway.ts through one session.
 * Rounds of 4 000 tools/call at concurrency 32, the systems in turn; per-round figures, median
 * over rounds. A round's scavenges are those its busiest isolate (the main thread) logged between
 * its start and its end (the log is read 100 ms after the load stops).
 */
import { cpus } from 'node:os';
import { closeSession, load, median, openSession, pathOption, startServersChild, stopChildren, type Session } from './fixtures/mcp-load.ts';

const roundsIndex = process.argv.indexOf('--rounds');
const ROUNDS = roundsIndex === -1 ? 9 : Number(process.argv[roundsIndex + 1]);
const BASELINE = pathOption('--baseline');
const REQUESTS = 4000;
const C = 32;

/** Scavenges logged so far by one process, per isolate (`[pid:0x…]`: the main thread, the tsx loader, the audit writer). */
type GcLog = Map<string, { scavenges: number; promoted: number; pauseMs: number }>;

/** Reads `--trace-gc-nvp` lines (`[pid:0x…]  N ms: pause=1.2 … gc=s … promoted=123 …`) as they arrive. */
function gcReader(log: GcLog): (text: string) => void {
  let rest = '';
  return (text) => {
    const lines = (rest + text).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const isolate = /^\[\d+:0x[0-9a-f]+\]/.exec(line)?.[0];
      if (!isolate || !line.includes(' gc=s ')) continue;
      let counts = log.get(isolate);
      if (!counts) log.set(isolate, (counts = { scavenges: 0, promoted: 0, pauseMs: 0 }));
      counts.scavenges++;
      counts.promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
      counts.pauseMs += Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
    }
  };
}

/**
 * What one round added, on the isolate that scavenged most in it: the main thread, which serves
 * the requests (the audit writer's isolate allocates far less).
 */
function roundDelta(before: GcLog, after: GcLog): { scavenges: number; promoted: number; pauseMs: number } {
  let best = { scavenges: 0, promoted: 0, pauseMs: 0 };
  for (const [isolate, a] of after) {
    const b = before.get(isolate) ?? { scavenges: 0, promoted: 0, pauseMs: 0 };
    const d = { scavenges: a.scavenges - b.scavenges, promoted: a.promoted - b.promoted, pauseMs: a.pauseMs - b.pauseMs };
    if (d.scavenges > best.scavenges) best = d;
  }
  return best;
}

const snapshot = (log: GcLog): GcLog => new Map([...log].map(([k, v]) => [k, { ...v }]));

interface System {
  name: string;
  log: GcLog;
  sessions: Session[];
  rounds: { scavengesPer1000: number[]; promotedKbPerScavenge: number[]; pauseUsPerRequest: number[] };
}

async function start(name: string, args: string[], paths: (info: any) => { url: string; token?: string }[], servers?: string): Promise<System> {
  const log: GcLog = new Map();
  const { info } = await startServersChild(args, { nodeArgs: ['--trace-gc', '--trace-gc-nvp'], onOutput: gcReader(log), ...(servers ? { servers: `${servers}/bench/gateway-servers.ts`, cwd: servers } : {}) });
  const sessions: Session[] = [];
  for (const [i, p] of paths(info).entries()) {
    const s = await openSession({ name: `${name} ${i}`, ...p }, C);
    await load(s, C, 1000);
    sessions.push(s);
  }
  return { name, log, sessions, rounds: { scavengesPer1000: [], promotedKbPerScavenge: [], pauseUsPerRequest: [] } };
}

const settle = () => new Promise((r) => setTimeout(r, 100));

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  let lineToken: string | undefined;
  const wardenPaths = (info: any) => {
    lineToken ??= info.tokens['http-policy'] as string;
    return [
      { url: `${info.url}/mcp/http`, token: info.tokens.http as string },
      { url: `${info.url}/mcp/http-policy`, token: info.tokens['http-policy'] as string },
    ];
  };
  const systems: System[] = [await start('mcp-warden, two sessions in turn', ['warden', upstream], wardenPaths)];
  if (BASELINE) systems.push(await start('baseline mcp-warden, two sessions in turn', ['warden', upstream], wardenPaths, BASELINE));
  for (const [role, name] of [['proxy', 'bare proxy (http.Agent, pipe)'], ['proxy-undici', 'bare proxy (undici Pool, streaming)'], ['proxy-dispatch', 'bare proxy (undici dispatch, body read whole)']] as const) {
    // The lines' client sends the gateway's bearer token too (the same request bytes); they drop it.
    systems.push(await start(name, [role, upstream], (info) => [{ url: info.url as string, token: lineToken }]));
  }
  for (let round = 0; round < ROUNDS; round++) {
    // The order rotates every round, so no system always follows the same one.
    for (let i = 0; i < systems.length; i++) {
      const s = systems[(i + round) % systems.length]!;
      await settle();
      const before = snapshot(s.log);
      // A warden's rounds alternate between its two sessions, as clients of one gateway take turns.
      const session = s.sessions[round % s.sessions.length]!;
      await load(session, C, REQUESTS);
      await settle();
      const d = roundDelta(before, s.log);
      s.rounds.scavengesPer1000.push((d.scavenges * 1000) / REQUESTS);
      s.rounds.promotedKbPerScavenge.push(d.scavenges ? d.promoted / d.scavenges / 1024 : 0);
      s.rounds.pauseUsPerRequest.push((d.pauseMs * 1000) / REQUESTS);
    }
    console.error(`round ${round + 1}/${ROUNDS}`);
  }
  console.log(`machine: ${cpus().length} CPUs (${cpus()[0]?.model}), Node ${process.version}; ${ROUNDS} rounds of ${REQUESTS} tools/call at c=${C}, median shown`);
  console.log('\n| system | scavenges per 1 000 requests | promoted per scavenge, KB | scavenge pause, µs per request |');
  console.log('|---|---|---|---|');
  for (const s of systems) {
    const r = s.rounds;
    console.log(`| ${s.name} | ${median(r.scavengesPer1000).toFixed(1)} | ${median(r.promotedKbPerScavenge).toFixed(0)} | ${median(r.pauseUsPerRequest).toFixed(2)} |`);
  }
  for (const s of systems) for (const session of s.sessions) await closeSession(session);
} finally {
  stopChildren();
}
