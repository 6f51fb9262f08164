/**
 * Soak: does the gateway hold its memory under hours of mixed traffic? One real
 * `mcp-warden start` child (gateway + embedded AS, SQLite) with two stdio servers:
 *   - /mcp: the demo notes server (src/demo/notes-server.mjs), one child per session;
 *   - /mcp/slow: test/gateway/fixtures/deadline-server.ts, whose `hang` tool never answers, with
 *     requestTimeoutSeconds 2 and maxPendingRequests 4.
 * Traffic, all at once until the end:
 *   - normal: 3 official MCP SDK clients (sign-in once, refreshed every 5 minutes) doing
 *     tools/list + tools/call, each reconnecting (new session, DELETE of the old) every 50 rounds;
 *   - never answered: an SDK client calling `hang`; the gateway answers -32001 at the deadline
 *     (MCP 2025-11-25 lifecycle §Timeouts);
 *   - abandoned: raw POSTs whose client goes away before the answer (a `hang` once its SSE
 *     stream opened, a tools/call on /mcp right after sending); a disconnect is not a cancellation
 *     (transports §Cancellation), so only the deadline frees the pending place;
 *   - refused by the caps: a raw session filling maxPendingRequests, one more POST must be 429
 *     (servers[].maxPendingRequests), then abandoning the four and waiting until a ping passes.
 * RSS of the gateway process (not its stdio children) is read from /proc every 10 s. RSS of a V8
 * process swings with its garbage collector (±10 % between two samples here), so each point is a
 * one-minute window of six samples: start the first minute after the warm-up, middle the minute
 * around the midpoint of the rest, end the last minute; each window gives its median and its
 * maximum (the high-water mark), and the ratios to start are taken for both. Errors are counted by kind; the defined ones (429 of the cap, -32001 of the
 * deadline, the client's own abort) are expected outcomes, everything else is an error.
 *
 * Run: npm run bench -- soak --minutes=30 [--warmup-minutes=2]
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { demoServerCommand } from '../src/config/demo.ts';
import { obtainTokens, refreshTokens } from '../test/helpers/oauth.ts';
import { createWardenChild, rssKb } from './fixtures/warden-child.ts';
import { median } from './fixtures/median.ts';

const require = createRequire(import.meta.url);
/** `--name value` or `--name=value` (bench/run.ts passes only arguments that start with a dash: use the second form there). */
function flag(name: string, fallback: number): number {
  const inline = process.argv.find((a) => a.startsWith(`--${name}=`));
  const i = process.argv.indexOf(`--${name}`);
  const value = inline ? Number(inline.slice(name.length + 3)) : i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number of minutes`);
  return value;
}
const MINUTES = flag('minutes', 30);
const WARMUP_MS = flag('warmup-minutes', Math.min(2, MINUTES / 10)) * 60_000;
const SAMPLE_MS = 10_000;
const PASSWORD = 'soak password';
const DEADLINE_SERVER = { command: process.execPath, args: ['--import', require.resolve('tsx'), fileURLToPath(new URL('../test/gateway/fixtures/deadline-server.ts', import.meta.url))] };
const MAX_PENDING = 4;

const counts: Record<string, number> = {};
const errors: Record<string, number> = {};
const firstErrors: string[] = [];
const count = (k: string) => { counts[k] = (counts[k] ?? 0) + 1; };
function error(kind: string, err: unknown): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  if (firstErrors.length < 20) firstErrors.push(`${new Date().toISOString()} ${kind}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 400));
}
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const warden = await createWardenChild({
  dirPrefix: 'warden-soak-',
  password: PASSWORD,
  clientSecret: 'soak client secret',
  servers: [
    { name: 'notes', path: '/mcp', upstream: { stdio: demoServerCommand() }, scopes: ['notes:read'] },
    { name: 'slow', path: '/mcp/slow', upstream: { stdio: DEADLINE_SERVER }, scopes: ['notes:read'], requestTimeoutSeconds: 2, maxPendingRequests: MAX_PENDING, sse: { streamAfterMs: 50 } },
  ],
});
const endAt = Date.now() + MINUTES * 60_000;
let stopping = false;
const running = () => !stopping && Date.now() < endAt;

try {
  const proc = await warden.start();
  const pid = proc.pid!;
  proc.once('exit', (code, signal) => { if (!stopping) { error('gateway exited', `${code ?? signal}`); stopping = true; } });
  const { url } = warden;

  /** A signed-in user per resource; the access token is refreshed (rotating the refresh token) every 5 minutes. */
  async function session(resource: string) {
    let t = await obtainTokens({ issuer: url, username: 'alice', password: PASSWORD, resource, scope: 'notes:read' });
    const state = { access: t.access_token };
    const timer = setInterval(async () => {
      try {
        const r = await refreshTokens({ issuer: url, clientId: t.clientId, refreshToken: t.refresh_token!, resource });
        t = { ...t, access_token: r.access_token, refresh_token: r.refresh_token! };
        state.access = r.access_token;
        count('refresh');
      } catch (err) {
        error('refresh', err);
      }
    }, 5 * 60_000);
    return { state, stop: () => clearInterval(timer) };
  }
  const notes = await session(`${url}/mcp`);
  const slow = await session(`${url}/mcp/slow`);

  function raw(path: string, token: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    return fetch(`${url}${path}`, {
      method: 'POST', signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headers },
      body: JSON.stringify(body),
    });
  }
  async function rawSession(path: string, token: string): Promise<{ headers: Record<string, string>; close(): Promise<void> }> {
    const init = await raw(path, token, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'soak-raw', version: '1' } } });
    await init.text();
    const sid = init.headers.get('mcp-session-id');
    if (init.status !== 200 || !sid) throw new Error(`initialize answered ${init.status}`);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    await (await raw(path, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).text();
    return {
      headers,
      async close() {
        const res = await fetch(`${url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, ...headers } });
        await res.text();
      },
    };
  }
  async function sdkClient(path: string, token: () => string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const client = new Client({ name: 'soak', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${url}${path}`), { authProvider: { token: async () => token() } });
    await client.connect(transport);
    return { client, transport };
  }
  async function closeClient(c: { client: Client; transport: StreamableHTTPClientTransport }): Promise<void> {
    await c.transport.terminateSession().catch((err) => error('terminate session', err));
    await c.client.close();
  }

  async function normal(): Promise<void> {
    while (running()) {
      let c;
      try {
        c = await sdkClient('/mcp', () => notes.state.access);
        count('session opened');
      } catch (err) {
        error('normal: connect', err);
        await pause(1000);
        continue;
      }
      for (let i = 0; i < 50 && running(); i++) {
        try {
          const tools = await c.client.listTools();
          if (!tools.tools.some((t) => t.name === 'list_notes')) throw new Error('list_notes missing from tools/list');
          count('tools/list');
          const r = await c.client.callTool({ name: i % 2 ? 'whoami' : 'list_notes', arguments: {} });
          if (r.isError) throw new Error(`tool error: ${JSON.stringify(r.content).slice(0, 200)}`);
          count('tools/call');
        } catch (err) {
          error('normal: request', err);
        }
        await pause(20);
      }
      await closeClient(c);
    }
  }

  async function neverAnswered(): Promise<void> {
    while (running()) {
      let c;
      try {
        c = await sdkClient('/mcp/slow', () => slow.state.access);
      } catch (err) {
        error('never-answered: connect', err);
        await pause(1000);
        continue;
      }
      for (let i = 0; i < 50 && running(); i++) {
        try {
          await c.client.callTool({ name: 'hang', arguments: {} });
          error('never-answered', 'hang was answered');
        } catch (err) {
          // MCP lifecycle §Timeouts: the gateway answers the request itself with -32001 at its deadline.
          if ((err as { code?: number }).code === -32001) count('deadline (-32001)');
          else error('never-answered', err);
        }
      }
      await closeClient(c);
    }
  }

  async function abandoned(): Promise<void> {
    while (running()) {
      let slowS, notesS;
      try {
        slowS = await rawSession('/mcp/slow', slow.state.access);
        notesS = await rawSession('/mcp', notes.state.access);
      } catch (err) {
        error('abandoned: connect', err);
        await pause(1000);
        continue;
      }
      for (let i = 0; i < 100 && running(); i++) {
        // A hang, abandoned once the gateway holds it (its SSE stream opened).
        const a = new AbortController();
        try {
          const res = await raw('/mcp/slow', slow.state.access, { jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'hang', arguments: {} } }, slowS.headers, a.signal);
          if (res.status === 429) { count('refused by maxPendingRequests (429)'); await res.text(); }
          else if (res.status !== 200) error('abandoned: hang', `HTTP ${res.status} ${await res.text()}`);
          else { a.abort(); count('abandoned after the stream opened'); }
        } catch (err) {
          error('abandoned: hang', err);
        }
        // A tools/call whose client goes away right after sending it.
        const b = new AbortController();
        const p = raw('/mcp', notes.state.access, { jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'list_notes', arguments: {} } }, notesS.headers, b.signal);
        setTimeout(() => b.abort(), 1);
        try {
          const res = await p;
          await res.text();
          count('abandoned too late (answered)');
        } catch (err) {
          if ((err as Error).name === 'AbortError') count('abandoned before the answer');
          else error('abandoned: call', err);
        }
        await pause(800);
      }
      await slowS.close().catch((err) => error('abandoned: close', err));
      await notesS.close().catch((err) => error('abandoned: close', err));
    }
  }

  async function caps(): Promise<void> {
    let id = 1;
    while (running()) {
      let s;
      try {
        s = await rawSession('/mcp/slow', slow.state.access);
      } catch (err) {
        error('caps: connect', err);
        await pause(1000);
        continue;
      }
      for (let round = 0; round < 20 && running(); round++) {
        const held: AbortController[] = [];
        try {
          // Hangs until the cap refuses one: at most MAX_PENDING are admitted (fewer when some of
          // the previous round have not reached their deadline yet), the next must be 429.
          let refusedOne = false;
          for (let i = 0; i <= MAX_PENDING && !refusedOne; i++) {
            const a = new AbortController();
            const res = await raw('/mcp/slow', slow.state.access, { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'hang', arguments: {} } }, s.headers, a.signal);
            if (res.status === 200) {
              held.push(a);
              continue;
            }
            const body = await res.text();
            if (res.status === 429 && body.includes('maxPendingRequests')) {
              refusedOne = true;
              count('refused by maxPendingRequests (429)');
            } else {
              throw new Error(`hang answered HTTP ${res.status} ${body.slice(0, 200)}`);
            }
          }
          if (!refusedOne) error('caps', `${MAX_PENDING + 1} hangs admitted on one session: the cap did not hold`);
        } catch (err) {
          error('caps', err);
        } finally {
          for (const a of held) a.abort();
        }
        // The abandoned four leave at their deadline: wait until a ping passes again.
        for (let tries = 0; running(); tries++) {
          const res = await raw('/mcp/slow', slow.state.access, { jsonrpc: '2.0', id: id++, method: 'ping' }, s.headers).catch((err) => err as Error);
          if (res instanceof Error) { error('caps: ping', res); break; }
          await res.text();
          if (res.status === 200) break;
          if (res.status !== 429) { error('caps: ping', `HTTP ${res.status}`); break; }
          count('refused by maxPendingRequests (429)');
          await pause(250);
        }
      }
      await s.close().catch((err) => error('caps: close', err));
    }
  }

  const samples: { t: number; rssKb: number }[] = [];
  const started = Date.now();
  const sampler = setInterval(() => {
    try {
      samples.push({ t: Date.now() - started, rssKb: rssKb(pid) });
      const last = samples.at(-1)!;
      if (samples.length % 6 === 0) console.error(`  ${(last.t / 60_000).toFixed(1)} min: RSS ${(last.rssKb / 1024).toFixed(1)} MB, errors ${Object.values(errors).reduce((a, b) => a + b, 0)}, ${JSON.stringify(counts)}`);
    } catch (err) {
      error('sample', err);
    }
  }, SAMPLE_MS);

  await Promise.all([normal(), normal(), normal(), neverAnswered(), abandoned(), caps()]);
  stopping = true;
  clearInterval(sampler);
  notes.stop();
  slow.stop();

  const measured = samples.filter((s) => s.t >= WARMUP_MS).map((s) => s.rssKb / 1024);
  const WINDOW = 60_000 / SAMPLE_MS;
  const stat = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { median: median(sorted), max: sorted.at(-1)! };
  };
  const mid = Math.floor(measured.length / 2);
  const start = stat(measured.slice(0, WINDOW));
  const middle = stat(measured.slice(Math.max(0, mid - WINDOW / 2), mid + WINDOW / 2));
  const end = stat(measured.slice(-WINDOW));
  const peak = Math.max(...measured);
  const totalErrors = Object.values(errors).reduce((a, b) => a + b, 0);
  console.log(`soak: ${MINUTES} min, warm-up ${WARMUP_MS / 60_000} min, ${samples.length} RSS samples every ${SAMPLE_MS / 1000} s (gateway pid ${pid})`);
  for (const k of ['median', 'max'] as const) {
    console.log(`RSS MB, one-minute ${k}: start ${start[k].toFixed(1)}, middle ${middle[k].toFixed(1)} (x${(middle[k] / start[k]).toFixed(3)}), end ${end[k].toFixed(1)} (x${(end[k] / start[k]).toFixed(3)})`);
  }
  console.log(`RSS MB after the warm-up: min ${Math.min(...measured).toFixed(1)}, peak ${peak.toFixed(1)}`);
  console.log(`outcomes: ${JSON.stringify(counts)}`);
  console.log(`errors beyond the defined refusals: ${totalErrors} ${JSON.stringify(errors)}`);
  for (const line of firstErrors) console.log(`  ${line}`);
  console.log(`RSS samples (s:MB): ${samples.map((s) => `${Math.round(s.t / 1000)}:${(s.rssKb / 1024).toFixed(1)}`).join(' ')}`);
  const within = (['median', 'max'] as const).every((k) => Math.abs(middle[k] / start[k] - 1) <= 0.1 && Math.abs(end[k] / start[k] - 1) <= 0.1);
  console.log(within && totalErrors === 0 ? 'PASS: RSS within 10% of start, no errors beyond the refusals' : 'FAIL: see above');
  process.exitCode = within && totalErrors === 0 ? 0 : 1;
} finally {
  stopping = true;
  await warden.dispose();
}
