/**
 * SSE streaming through the gateway: what event IDs, the replay buffer and paced writes cost.
 * A stdio upstream (test/gateway/fixtures/tiny-server.mjs, tool `flood`) writes N progress
 * notifications at once; the client reads the POST's SSE stream to its end. Reports events/s at
 * 1 and 8 concurrent sessions (median of rounds) and the gateway heap held per session after a
 * flood (the replay buffer at its limits) and per idle session that never streamed.
 * Run: npm run bench -- gateway-sse [--quick] [--json]
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startTestWarden } from '../test/gateway/fixtures/warden.ts';
import { median } from './fixtures/median.ts';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const ROUNDS = quick ? 3 : 7;
const EVENTS = quick ? 1000 : 3000;
const SIZE = 200;
const TINY = fileURLToPath(new URL('../test/gateway/fixtures/tiny-server.mjs', import.meta.url));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const { issuer, endpoint: url, close } = await startTestWarden({
  servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: { command: process.execPath, args: [TINY] } }, maxSessionsPerCaller: 100 }],
});
const token = await issuer.mint({ aud: url });
const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-11-25' };

async function open(): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: base, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }) });
  await res.text();
  const sid = res.headers.get('mcp-session-id')!;
  await (await fetch(url, { method: 'POST', headers: { ...base, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  return sid;
}

let nextId = 1;
/** One flood call read to its end; returns the number of events seen. */
async function flood(sid: string, count: number): Promise<number> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'flood', arguments: { count, size: SIZE }, _meta: { progressToken: 'b' } } });
  const res = await fetch(url, { method: 'POST', headers: { ...base, 'mcp-session-id': sid }, body });
  const text = await res.text();
  return text.split('\n\n').filter((e) => e.includes('data: {')).length;
}

async function round(sids: string[]): Promise<number> {
  const started = performance.now();
  const seen = await Promise.all(sids.map((s) => flood(s, EVENTS)));
  const seconds = (performance.now() - started) / 1000;
  for (const n of seen) if (n !== EVENTS + 1) throw new Error(`expected ${EVENTS + 1} events, saw ${n}`);
  return (EVENTS * sids.length) / seconds;
}

const heap = () => {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

try {
  const results: Record<string, number> = {};
  for (const c of [1, 8]) {
    const sids = await Promise.all(Array.from({ length: c }, open));
    await round(sids); // warm-up
    const rates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) rates.push(await round(sids));
    results[`c${c} events/s`] = Math.round(median(rates));
    await Promise.all(sids.map((sid) => fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } }).then((r) => r.text())));
  }
  // Memory: sessions that never streamed, then the same number after one flood each.
  const N = quick ? 10 : 30;
  const before = heap();
  const sids = [];
  for (let i = 0; i < N; i++) sids.push(await open());
  const idle = heap();
  for (const sid of sids) await flood(sid, EVENTS);
  const streamed = heap();
  const memory = { sessions: N, idleBytesPerSession: Math.round((idle - before) / N), afterFloodBytesPerSession: Math.round((streamed - before) / N) };
  const machine = { cpus: cpus().length, node: process.version };
  if (asJson) console.log(JSON.stringify({ machine, rounds: ROUNDS, events: EVENTS, eventBytes: SIZE, results, memory }, null, 2));
  else {
    console.log(`${EVENTS} progress events of ~${SIZE} B per call, ${ROUNDS} rounds, median; Node ${machine.node}, ${machine.cpus} CPUs`);
    for (const [k, v] of Object.entries(results)) console.log(`  ${k}: ${v}`);
    console.log(`  gateway heap per session (${N}): idle ${memory.idleBytesPerSession} B, after one ${EVENTS}-event flood ${memory.afterFloodBytesPerSession} B (children not counted)`);
  }
} finally {
  await close();
}
