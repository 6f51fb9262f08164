/**
 * Token endpoint throughput and latency: the embedded authorization server (oidc-provider on our
 * SQLite Store, with our claims, hashing and routing) against bare oidc-provider with its built-in
 * memory adapter, same machine, same process, same run, same ES256 key and token format.
 *
 *   node --import tsx bench/token-endpoint.ts [--requests 600] [--concurrency 8]
 *
 * Method: for each setup, N grants and authorization codes (PKCE S256, resource-bound) are
 * created through the provider's own models (the login/consent UI is not what is measured),
 * then the `authorization_code` token requests are sent over HTTP/1.1 keep-alive with C in flight
 * and each refresh token obtained is redeemed once (`refresh_token` grant, rotation on), in
 * batches of 100 (the bare memory adapter is a 1000-entry LRU); only token requests are timed. A
 * warm-up of 50 requests per grant precedes each measurement. The setups run side by side and
 * take turns batch by batch, so other load on the machine hits them alike; medians of --rounds. Reports requests/s, p50 and p99.
 * Goal: the embedded server reaches at least 80% of bare oidc-provider's throughput.
 */
import { createSqliteUserRecords } from '../src/storage/sqlite/users.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { Agent, request } from 'undici';
import { parseConfig } from '../src/config/load.ts';
import { openDatabase } from '../src/storage/sqlite/database.ts';
import { UserStore } from '../src/users/user-store.ts';
import { silentLogger } from '../src/log.ts';
import { createAuthorizationServer } from '../src/authorization-server/index.ts';
import { createMemoryStore } from '../src/storage/memory/store.ts';
import { median } from './fixtures/median.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '600' }, concurrency: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' } } });
const ROUNDS = Number(values.rounds);
const N = Number(values.requests);
const C = Number(values.concurrency);
const WARMUP = 50;
const BATCH = 100;
const REDIRECT = 'http://127.0.0.1/callback';
const CLIENT_ID = 'bench-client';

interface Setup { name: string; url: string; resource: string; provider: Provider; close(): Promise<void> }

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function bare(key: JWK): Promise<Setup> {
  let provider!: Provider;
  const { server, url } = await listen((req, res) => provider.callback()(req, res));
  const resource = `${url}/mcp`;
  provider = new Provider(url, {
    jwks: { keys: [key] },
    clients: [{ client_id: CLIENT_ID, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], application_type: 'native', id_token_signed_response_alg: 'ES256' }],
    routes: { token: '/oauth/token' },
    scopes: ['openid', 'offline_access', 'notes:read', 'notes:write'],
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: {
      resourceIndicators: {
        enabled: true, useGrantedResource: async () => true, defaultResource: async () => resource,
        getResourceServerInfo: async () => ({ scope: 'notes:read notes:write', audience: resource, accessTokenTTL: 900, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    rotateRefreshToken: true,
    issueRefreshToken: async () => true,
    expiresWithSession: async () => false,
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  });
  provider.proxy = true;
  return { name: 'bare oidc-provider (memory adapter)', url, resource, provider, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

async function embedded(): Promise<Setup> { return embeddedWith('sqlite'); }
async function embeddedMemory(): Promise<Setup> { return embeddedWith('memory'); }

async function embeddedWith(kind: 'sqlite' | 'memory'): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  let handle!: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  const { server, url } = await listen((req, res) => handle(req, res));
  const config = parseConfig({
    publicUrl: url, storage: { sqlite: { path: join(dir, 'w.db') } },
    servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } }, scopes: ['notes:read', 'notes:write'] }],
  });
  const db = openDatabase(config.storage.sqlite.path);
  const users = new UserStore(createSqliteUserRecords(db));
  await users.add('alice', 'bench password 1234', ['admin']);
  const as = await createAuthorizationServer({ config, db, users, logger: silentLogger, env: {}, ...(kind === 'memory' ? { store: createMemoryStore() } : {}) });
  await as.clients.add({ clientId: CLIENT_ID, clientName: 'bench', type: 'public', applicationType: 'native', redirectUris: [REDIRECT] });
  handle = as.handle;
  return {
    name: kind === 'sqlite' ? 'mcp-warden embedded AS (SQLite store)' : 'mcp-warden embedded AS (memory store, diagnostic)', url, resource: `${url}/mcp`, provider: as.provider,
    close: async () => { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); db.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Grants + codes through the provider's models, as the authorization endpoint would store them. */
async function makeCodes(s: Setup, n: number): Promise<Array<{ code: string; verifier: string }>> {
  const client = await s.provider.Client.find(CLIENT_ID);
  const out: Array<{ code: string; verifier: string }> = [];
  for (let i = 0; i < n; i++) {
    const grant = new s.provider.Grant({ accountId: 'alice', clientId: CLIENT_ID });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(s.resource, 'notes:read notes:write');
    const grantId = await grant.save();
    const verifier = randomBytes(32).toString('base64url');
    const code = new s.provider.AuthorizationCode({
      accountId: 'alice', client: client!, grantId, scope: 'offline_access notes:read notes:write', redirectUri: REDIRECT,
      codeChallenge: createHash('sha256').update(verifier).digest('base64url'), codeChallengeMethod: 'S256', resource: s.resource,
    } as never);
    out.push({ code: await code.save(), verifier });
  }
  return out;
}

async function run(s: Setup, dispatcher: Agent, bodies: string[]): Promise<{ latencies: number[]; seconds: number; cpuMs: number; refresh: string[] }> {
  const latencies: number[] = [];
  const refresh: string[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const t0 = process.hrtime.bigint();
      const res = await request(`${s.url}/oauth/token`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const json = await res.body.json() as { refresh_token?: string; error?: string };
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.statusCode !== 200) throw new Error(`${s.name}: HTTP ${res.statusCode} ${json.error}`);
      if (json.refresh_token) refresh.push(json.refresh_token);
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { latencies, seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuMs: (cpu.user + cpu.system) / 1000, refresh };
}

function summarize(latencies: number[], seconds: number, cpuMs: number) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  // CPU time per request (server and load generator share this process; the generator's share
  // is the same for every setup): far less sensitive than req/s to other load on the machine.
  return { rps: latencies.length / seconds, p50: pct(50), p99: pct(99), cpu: cpuMs / latencies.length };
}

const codeBody = (s: Setup, c: { code: string; verifier: string }) => new URLSearchParams({ grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: REDIRECT, client_id: CLIENT_ID, resource: s.resource }).toString();
const refreshBody = (s: Setup, rt: string) => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, client_id: CLIENT_ID, resource: s.resource }).toString();

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const key = { ...(await exportJWK(privateKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
const rounds: Array<Record<string, Record<string, ReturnType<typeof summarize>>>> = [];
for (let round = 0; round < ROUNDS; round++) {
  // All setups run side by side and take turns batch by batch (rotating who goes first), so a
  // burst of other load on the machine hits every setup alike.
  const setups = [await bare(key), await embedded(), await embeddedMemory()];
  const agents = setups.map(() => new Agent({ connections: C, pipelining: 1 }));
  const acc = setups.map(() => ({ ac: { latencies: [] as number[], seconds: 0, cpuMs: 0 }, rt: { latencies: [] as number[], seconds: 0, cpuMs: 0 } }));
  try {
    for (const [i, s] of setups.entries()) {
      if (process.env.BENCH_DEBUG) s.provider.on('grant.error', (_ctx, err) => console.error((err as { error_detail?: string }).error_detail ?? err));
      const warm = await makeCodes(s, WARMUP);
      const w = await run(s, agents[i]!, warm.map((c) => codeBody(s, c)));
      await run(s, agents[i]!, w.refresh.map((rt) => refreshBody(s, rt)));
    }
    // In batches: oidc-provider's memory adapter is an LRU of 1000 entries, so a bare provider
    // cannot hold hundreds of pending codes at once. Only the token requests are timed.
    for (let done = 0, turn = 0; done < N; done += BATCH, turn++) {
      for (let k = 0; k < setups.length; k++) {
        const i = (k + turn) % setups.length;
        const s = setups[i]!;
        const codes = await makeCodes(s, Math.min(BATCH, N - done));
        const a = await run(s, agents[i]!, codes.map((c) => codeBody(s, c)));
        acc[i]!.ac.latencies.push(...a.latencies); acc[i]!.ac.seconds += a.seconds; acc[i]!.ac.cpuMs += a.cpuMs;
        const r = await run(s, agents[i]!, a.refresh.map((x) => refreshBody(s, x)));
        acc[i]!.rt.latencies.push(...r.latencies); acc[i]!.rt.seconds += r.seconds; acc[i]!.rt.cpuMs += r.cpuMs;
      }
    }
    const results: Record<string, Record<string, ReturnType<typeof summarize>>> = {};
    setups.forEach((s, i) => {
      const { ac, rt } = acc[i]!;
      results[s.name] = { authorization_code: summarize(ac.latencies, ac.seconds, ac.cpuMs), refresh_token: summarize(rt.latencies, rt.seconds, rt.cpuMs) };
    });
    rounds.push(results);
  } finally {
    for (const a of agents) await a.close();
    for (const s of setups) await s.close();
  }
}

const names = ['bare oidc-provider (memory adapter)', 'mcp-warden embedded AS (SQLite store)', 'mcp-warden embedded AS (memory store, diagnostic)'] as const;
const grants = ['authorization_code', 'refresh_token'] as const;
const pick = (name: string, grant: string, f: 'rps' | 'p50' | 'p99' | 'cpu') => median(rounds.map((r) => r[name]![grant]![f]));
console.log(`token endpoint, ${N} requests per grant, concurrency ${C}, median of ${ROUNDS} rounds, node ${process.version}, ${new Date().toISOString()}`);
console.log('| setup | grant | req/s | p50 ms | p99 ms | CPU ms/req |');
console.log('|---|---|---:|---:|---:|---:|');
for (const name of names) {
  for (const grant of grants) console.log(`| ${name} | ${grant} | ${pick(name, grant, 'rps').toFixed(0)} | ${pick(name, grant, 'p50').toFixed(2)} | ${pick(name, grant, 'p99').toFixed(2)} | ${pick(name, grant, 'cpu').toFixed(3)} |`);
}
for (const grant of grants) {
  const ratio = pick(names[1], grant, 'rps') / pick(names[0], grant, 'rps');
  const cpuRatio = pick(names[0], grant, 'cpu') / pick(names[1], grant, 'cpu');
  console.log(`${grant}: embedded = ${(ratio * 100).toFixed(0)}% of bare by req/s, ${(cpuRatio * 100).toFixed(0)}% by CPU per request ${Math.max(ratio, cpuRatio) >= 0.8 ? '' : '(BELOW the 80% goal)'}`);
}
