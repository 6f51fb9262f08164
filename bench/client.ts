/**
 * Client benchmark: what the client adds per request.
 * Run: node --import tsx bench/client.ts [--json]      (exit 1 if a goal is missed)
 *
 * Goals: a stored, fresh token is returned in ≤ 1 ms median (`currentAccessToken()`: one store
 * read + parse); the `connect` bridge adds ≤ 5 ms median to a tools/call compared with the SDK
 * client talking to the gateway directly with the same token; eight processes' worth of clients
 * sharing one store finish a coalesced refresh in ≤ 500 ms.
 *
 * Method: mcp-warden (demo config, embedded AS, demo notes server over stdio) on 127.0.0.1:0;
 * one sign-in over HTTP; each case warmed up, then timed per operation with
 * process.hrtime.bigint(); median and p95 reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { startWarden } from '../src/app.ts';
import { buildDemoConfig } from '../src/config/demo.ts';
import { WardenClient } from '../src/client/session.ts';
import { completeSignIn } from '../test/client/sign-in.ts';

const PASSWORD = 'bench client password';
const json = process.argv.includes('--json');
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-client-'));
const home = join(dir, 'home');
const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db'), WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: 'bench-agent-secret-0123456789abcdef' };
const warden = await startWarden((port: number) => buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` }), { env, announce: () => {} });
const endpoint = `${warden.config.publicUrl}/mcp`;

async function timeEach(n: number, warm: number, fn: () => Promise<unknown>): Promise<{ medianMs: number; p95Ms: number }> {
  for (let i = 0; i < warm; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { medianMs: ms[Math.floor(n / 2)]!, p95Ms: ms[Math.floor(n * 0.95)]! };
}

const results: Array<{ label: string; medianMs: number; p95Ms: number; goalMs?: number }> = [];
try {
  const signIn = async (url: URL) => void (await completeSignIn(url.href, 'alice', PASSWORD));
  const warden1 = new WardenClient({ serverUrl: endpoint, home, openUrl: signIn });
  const token = await warden1.accessToken();

  results.push({ label: 'currentAccessToken(): stored fresh token', ...(await timeEach(500, 50, () => warden1.currentAccessToken())), goalMs: 1 });

  const direct = new Client({ name: 'bench', version: '1' });
  await direct.connect(new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => token } }));
  const directCall = await timeEach(200, 20, () => direct.callTool({ name: 'list_notes', arguments: {} }));
  results.push({ label: 'tools/call list_notes: SDK client direct', ...directCall });
  await direct.close();

  const viaBridge = new Client({ name: 'bench', version: '1' });
  await viaBridge.connect(new StdioClientTransport({
    command: process.execPath,
    args: [join(import.meta.dirname, '../bin/mcp-warden.js'), 'connect', endpoint, '--no-browser'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MCP_WARDEN_HOME: home },
    stderr: 'ignore',
  }));
  const bridgeCall = await timeEach(200, 20, () => viaBridge.callTool({ name: 'list_notes', arguments: {} }));
  results.push({ label: 'tools/call list_notes: through mcp-warden connect', ...bridgeCall });
  results.push({ label: 'bridge overhead (median difference)', medianMs: bridgeCall.medianMs - directCall.medianMs, p95Ms: bridgeCall.p95Ms - directCall.p95Ms, goalMs: 5 });
  await viaBridge.close();

  let offset = 0;
  const clients = Array.from({ length: 8 }, () => new WardenClient({ serverUrl: endpoint, home, openUrl: signIn, now: () => Date.now() + offset }));
  const refresh = await timeEach(5, 0, async () => {
    offset += 16 * 60_000;
    await Promise.all(clients.map((c) => c.accessToken()));
  });
  results.push({ label: '8 clients, one store: coalesced refresh', ...refresh, goalMs: 500 });
} finally {
  await warden.close();
  rmSync(dir, { recursive: true, force: true });
}

const missed = results.filter((r) => r.goalMs !== undefined && r.medianMs > r.goalMs);
if (json) console.log(JSON.stringify({ results, missed: missed.map((r) => r.label) }, null, 2));
else {
  for (const r of results) console.log(`${r.label.padEnd(52)} median ${r.medianMs.toFixed(3).padStart(8)} ms   p95 ${r.p95Ms.toFixed(3).padStart(8)} ms${r.goalMs !== undefined ? `   goal ≤ ${r.goalMs} ms ${r.medianMs <= r.goalMs ? 'met' : 'MISSED'}` : ''}`);
}
process.exit(missed.length ? 1 : 0);
