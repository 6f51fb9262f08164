/**
 * The load the outage tests (fault-redis, fault-postgres) run while a shared service goes away:
 * tool calls, sign-ins, a refresh chain and registrations, each request's outcome recorded with
 * its start and end time, and the tallies per phase they print.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CLUSTER_PASSWORD, type Cluster } from '../helpers/cluster.ts';
import { obtainTokens, refreshTokens } from '../helpers/oauth.ts';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export type Op = 'tools/call' | 'sign-in' | 'refresh' | 'registration';
export interface Outcome { op: Op; start: number; end: number; ok: boolean; error?: string }

/** The longest a load runs when nobody stops it: the test runner's per-test limit (scripts/test.mjs). */
const MAX_LOAD_MS = 120_000;

export interface MixedLoad {
  outcomes: Outcome[];
  /** Ends every loop and waits for the requests in flight; safe to call again (from an `after` hook). */
  stop(): Promise<void>;
}

/**
 * Mixed load until `stop()` says so: one tool-call session per instance (reopened on failure),
 * sign-ins with a registered client, a refresh chain and registrations, all but the tool calls
 * through nginx. Every request's outcome is recorded with its start and end time.
 *
 * A test that fails before it calls `stop()` must not leave the loops running: they would retry
 * against a cluster its `after` hook stopped, forever, and the test file would never end. So the
 * tests stop the load in `after` too, and the loops end by themselves after `MAX_LOAD_MS`.
 */
export function mixedLoad(cluster: Cluster, o: { accessToken: string; clientId: string; refreshToken: string; addressBase: number }): MixedLoad {
  const outcomes: Outcome[] = [];
  const deadline = Date.now() + MAX_LOAD_MS;
  let halted = false;
  // Read by every loop before each request.
  const stoppedNow = () => halted || Date.now() > deadline;
  const timed = async (op: Op, f: () => Promise<unknown>) => {
    const start = Date.now();
    try {
      await f();
      outcomes.push({ op, start, end: Date.now(), ok: true });
      return true;
    } catch (err) {
      outcomes.push({ op, start, end: Date.now(), ok: false, error: (err as Error).message });
      await sleep(100);
      return false;
    }
  };
  const resource = `${cluster.front}/mcp`;
  const caller = async (i: number) => {
    while (!stoppedNow()) {
      const client = new Client({ name: `outage-${i}`, version: '1.0.0' });
      if (!await timed('tools/call', () => client.connect(new StreamableHTTPClientTransport(new URL(`${cluster.instances[i]!.url}/mcp`), { authProvider: { token: async () => o.accessToken } })))) continue;
      while (!stoppedNow() && await timed('tools/call', () => client.callTool({ name: 'echo', arguments: { message: 'x' } })));
      await client.close().catch(() => {});
    }
  };
  const signer = async () => {
    while (!stoppedNow()) await timed('sign-in', () => obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId: o.clientId }));
  };
  let refreshToken = o.refreshToken;
  const refresher = async () => {
    while (!stoppedNow()) {
      const ok = await timed('refresh', async () => {
        refreshToken = (await refreshTokens({ issuer: cluster.front, clientId: o.clientId, refreshToken, resource })).refresh_token!;
      });
      // OAuth 2.1 §4.3.1: a rotation committed but never answered (the connection broke) leaves the
      // client with a spent token; past the refresh grace it is refused, and the client signs in
      // again, as a real one does. The refusal is counted as a failed refresh.
      if (!ok && /invalid_grant/.test(outcomes.at(-1)?.error ?? '')) {
        await timed('sign-in', async () => {
          refreshToken = (await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId: o.clientId })).refresh_token!;
        });
      }
    }
  };
  const agents: Agent[] = [];
  const registrar = async () => {
    for (let n = 0; !stoppedNow(); n++) {
      // A fresh loopback source address every 15 registrations: under the limit of 20 per minute.
      if (n % 15 === 0) agents.push(new Agent({ localAddress: `127.0.${o.addressBase}.${1 + n / 15}` }));
      await timed('registration', async () => {
        const r = await undiciFetch(`${cluster.front}/oauth/register`, {
          method: 'POST', dispatcher: agents.at(-1)!, headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'outage load', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] }),
        });
        await r.arrayBuffer();
        if (r.status !== 201) throw new Error(`HTTP ${r.status}`);
      });
    }
  };
  const running = [...cluster.instances.map((_, i) => caller(i)), signer(), refresher(), registrar()];
  let stopping: Promise<void> | undefined;
  return {
    outcomes,
    stop() {
      halted = true;
      stopping ??= (async () => {
        await Promise.all(running);
        for (const a of agents) await a.close();
      })();
      return stopping;
    },
  };
}

/** Per operation: requests that started in [from, to), and how many of them failed. */
export function tally(outcomes: Outcome[], from: number, to: number): Map<Op, { total: number; failed: number; maxMs: number }> {
  const t = new Map<Op, { total: number; failed: number; maxMs: number }>();
  for (const x of outcomes) {
    if (x.start < from || x.start >= to) continue;
    const e = t.get(x.op) ?? { total: 0, failed: 0, maxMs: 0 };
    e.total++;
    if (!x.ok) e.failed++;
    e.maxMs = Math.max(e.maxMs, x.end - x.start);
    t.set(x.op, e);
  }
  return t;
}

export function describeTally(t: Map<Op, { total: number; failed: number; maxMs: number }>): string {
  return [...t].map(([op, e]) => `${op} ${e.total} (failed ${e.failed}, slowest ${e.maxMs} ms)`).join(', ');
}

