/**
 * Gateway benchmark (issue 2 "Must show"): tools/call throughput and p50/p99 latency at
 * concurrency 1 and 32 for
 *   - the upstream directly,
 *   - a bare node:http pass-through proxy (the Node limit),
 *   - mcp-warden with an HTTP upstream (JWT verification, required scope and a policy on),
 *   - stdio upstreams: mcp-warden (auth on) against supergateway (no auth), same stdio server;
 * plus gateway memory per idle session. Run: npm run bench -- gateway [--quick] [--json]
 *
 * Method: every system under test runs in its own child process; this process is the load
 * generator (undici Pool, one keep-alive connection per concurrent worker). Each target gets one
 * MCP session (initialize + notifications/initialized), a warm-up, then a fixed number of
 * requests; rounds are interleaved across targets and the median round is reported. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { closeSession, measureRounds, openSession, printSummary, startServersChild, stopChildren, summarize, trackChild, type Session, type Target } from './fixtures/mcp-load.ts';

const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const ROUNDS = quick ? 1 : 3;
const REQUESTS = { 1: quick ? 500 : 2000, 32: quick ? 3000 : 8000 } as const;
const WARMUP = 300;
const MEMORY_SESSIONS = { http: quick ? 100 : 500, sh: quick ? 30 : 100 };
const TINY = fileURLToPath(new URL('../test/gateway/fixtures/tiny-server.mjs', import.meta.url));

const startChild = (args: string[], ipc = false) => startServersChild(args, { ipc, exposeGc: true });

async function startSupergateway(): Promise<string> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const bin = require.resolve('supergateway/dist/index.js');
  const child = spawn(process.execPath, [bin, '--stdio', `${process.execPath} ${TINY}`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  trackChild(child);
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url, { method: 'GET' });
      return url;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('supergateway did not start');
}

async function measureMemory(warden: ChildProcess, url: string, token: string, count: number): Promise<{ sessions: number; bytesPerSession: number }> {
  const ask = () =>
    new Promise<any>((resolve) => {
      warden.once('message', resolve);
      warden.send({ measure: true });
    });
  const before = await ask();
  const sessions: Session[] = [];
  for (let i = 0; i < count; i++) sessions.push(await openSession({ name: 'mem', url, token }, 1));
  await new Promise((r) => setTimeout(r, 500));
  const after = await ask();
  const delta = after.heapUsed + after.external - (before.heapUsed + before.external);
  for (const s of sessions) await closeSession(s);
  return { sessions: after.sessions - before.sessions, bytesPerSession: Math.round(delta / count) };
}

async function main(): Promise<void> {
  const upstream = (await startChild(['upstream'])).info.url as string;
  const proxy = (await startChild(['proxy', upstream])).info.url as string;
  const { child: wardenChild, info: warden } = await startChild(['warden', upstream], true);
  const supergateway = await startSupergateway();
  const targets: Target[] = [
    { name: 'upstream directly', url: upstream },
    { name: 'bare node:http proxy', url: proxy },
    { name: 'mcp-warden → HTTP (JWT+scope)', url: `${warden.url}/mcp/http`, token: warden.tokens.http },
    { name: 'mcp-warden → HTTP (JWT+scope+policy+audit)', url: `${warden.url}/mcp/http-policy`, token: warden.tokens['http-policy'] },
    { name: 'supergateway → stdio (no auth)', url: supergateway },
    { name: 'mcp-warden → stdio (JWT+scope+policy+audit)', url: `${warden.url}/mcp/stdio`, token: warden.tokens.stdio },
  ];

  const results = await measureRounds(targets, { rounds: ROUNDS, requests: REQUESTS, warmup: WARMUP, close: closeSession, quiet: asJson });

  const memHttp = await measureMemory(wardenChild, `${warden.url}/mcp/http`, warden.tokens.http, MEMORY_SESSIONS.http);
  const memStdio = await measureMemory(wardenChild, `${warden.url}/mcp/sh`, warden.tokens.sh, MEMORY_SESSIONS.sh);

  const summary = summarize(results);
  const get = (name: string, c: number) => summary[name]![c] as { rps: number; p50: number; p99: number };
  const ratios: Record<string, number> = {};
  for (const c of [1, 32]) {
    const proxyR = get('bare node:http proxy', c);
    const wardenR = get('mcp-warden → HTTP (JWT+scope)', c);
    const policyR = get('mcp-warden → HTTP (JWT+scope+policy+audit)', c);
    ratios[`c${c} warden/proxy throughput`] = wardenR.rps / proxyR.rps;
    ratios[`c${c} warden/proxy p50`] = wardenR.p50 / proxyR.p50;
    ratios[`c${c} warden+policy/proxy throughput`] = policyR.rps / proxyR.rps;
    ratios[`c${c} warden+policy/proxy p50`] = policyR.p50 / proxyR.p50;
    ratios[`c${c} warden-stdio/supergateway throughput`] = get('mcp-warden → stdio (JWT+scope+policy+audit)', c).rps / get('supergateway → stdio (no auth)', c).rps;
  }
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version };
  const memory = { httpUpstream: memHttp, stdioUpstream: memStdio };
  if (asJson) {
    console.log(JSON.stringify({ machine, rounds: ROUNDS, requests: REQUESTS, summary, ratios, memory }, null, 2));
  } else {
    console.log(`machine: ${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}; ${ROUNDS} rounds, median shown`);
    printSummary(summary, ratios);
    console.log(`\nidle session memory (gateway heap+external, after GC): HTTP upstream ${memHttp.bytesPerSession} B/session over ${memHttp.sessions} sessions; stdio upstream ${memStdio.bytesPerSession} B/session over ${memStdio.sessions} sessions (children not counted)`);
  }
}

try {
  await main();
} finally {
  stopChildren();
}
