/**
 * What a request pays when its session is held by another instance (docs/benchmarks.md, "MCP
 * sessions across instances"): two in-process instances sharing one Redis (cluster.redis), a stdio
 * session (tiny server) and an HTTP-upstream session (the SDK's Streamable HTTP server), both
 * opened on instance A. Sequential `tools/call echo` requests, each mode in turn per round so
 * drift hits all alike:
 *  - stdio on A (held here) vs stdio on B (forwarded to A over the instance hop);
 *  - HTTP on A (opened here) vs HTTP on B (adopted: its own connection to the upstream session).
 * Client, instances and upstreams share this process and the machine's cores: compare the modes
 * with each other, not with other tables.
 *
 * `npm run bench -- session-hop [--rounds 5] [--requests 400]`
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startWarden, type Warden } from '../src/app.ts';
import { parseConfig } from '../src/config/load.ts';
import { startFixtureIssuer } from '../test/gateway/fixtures/issuer.ts';
import { startHttpUpstream } from '../test/gateway/fixtures/http-upstream.ts';
import { openSession, post, TINY_SERVER } from '../test/gateway/fixtures/raw.ts';
import { testKeyPrefix, TEST_REDIS_URL } from '../test/helpers/redis.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '400' } } });
const ROUNDS = Number(values.rounds);
const REQUESTS = Number(values.requests);

const issuer = await startFixtureIssuer();
const upstream = await startHttpUpstream();
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-hop-'));
const front = 'http://127.0.0.1:9';
const prefix = testKeyPrefix();
const wardens: Warden[] = [];
for (let i = 0; i < 2; i++) {
  wardens.push(await startWarden((port) => parseConfig({
    listen: { host: '127.0.0.1', port },
    publicUrl: front,
    allowedHosts: ['127.0.0.1'],
    storage: { sqlite: { path: join(dir, `w${i}.db`) } },
    authorizationServer: { external: { issuer: issuer.issuer } },
    log: { level: 'silent' },
    cluster: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix }, secret: 'bench-secret-0123456789abcdefghijklmnop' },
    servers: [
      { name: 'tiny', path: '/mcp/tiny', upstream: { stdio: TINY_SERVER } },
      { name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url } } },
    ],
  })));
}
const [a, b] = wardens as [Warden, Warden];
const tokens = { tiny: await issuer.mint({ aud: `${front}/mcp/tiny`, exp: Math.floor(Date.now() / 1000) + 3600 }), remote: await issuer.mint({ aud: `${front}/mcp/remote`, exp: Math.floor(Date.now() / 1000) + 3600 }) };
const sessions = { tiny: await openSession(`${a.url}/mcp/tiny`, tokens.tiny), remote: await openSession(`${a.url}/mcp/remote`, tokens.remote) };

const modes = [
  { name: 'stdio, held here (A)', url: `${a.url}/mcp/tiny`, path: 'tiny' as const },
  { name: 'stdio, forwarded (B → A)', url: `${b.url}/mcp/tiny`, path: 'tiny' as const },
  { name: 'HTTP, opened here (A)', url: `${a.url}/mcp/remote`, path: 'remote' as const },
  { name: 'HTTP, adopted (B)', url: `${b.url}/mcp/remote`, path: 'remote' as const },
];
const samples = new Map<string, number[]>(modes.map((m) => [m.name, []]));
let id = 0;
async function once(m: (typeof modes)[number]): Promise<number> {
  const started = performance.now();
  const res = await post(m.url, tokens[m.path], { jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, { 'mcp-session-id': sessions[m.path], 'mcp-protocol-version': '2025-11-25', accept: 'application/json, text/event-stream' });
  await res.text();
  if (res.status !== 200) throw new Error(`${m.name}: HTTP ${res.status}`);
  return performance.now() - started;
}
// Warm-up: connections, the adoption on B, JIT.
for (const m of modes) for (let i = 0; i < 100; i++) await once(m);
for (let r = 0; r < ROUNDS; r++) {
  for (const m of modes) for (let i = 0; i < REQUESTS; i++) samples.get(m.name)!.push(await once(m));
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
console.log(`${ROUNDS} rounds × ${REQUESTS} sequential tools/call per mode; ms`);
console.log('| mode | p50 | p90 | p99 |');
console.log('|---|---|---|---|');
for (const m of modes) {
  const xs = samples.get(m.name)!.sort((x, y) => x - y);
  console.log(`| ${m.name} | ${pct(xs, 50).toFixed(2)} | ${pct(xs, 90).toFixed(2)} | ${pct(xs, 99).toFixed(2)} |`);
}

for (const w of wardens) await w.close();
await upstream.close();
await issuer.close();
rmSync(dir, { recursive: true, force: true });
