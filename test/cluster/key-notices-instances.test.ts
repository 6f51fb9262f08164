/**
 * Key-rotation notices between two mcp-warden instances on one PostgreSQL schema and one Redis
 * (src/cluster/key-notices.ts): after `mcp-warden keys rotate` against the shared store, or a
 * reload one instance did on its own (SIGHUP), every instance signs with and publishes the new
 * key without waiting for its key check. The key check runs every 60 s here (the default), so
 * anything picked up within the waits below came through a notice.
 *
 * What is measured (reported as a diagnostic, not asserted): the time from the end of the
 * rotation to instance A issuing a token under the new key and instance B publishing it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { decodeProtectedHeader } from 'jose';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { coalesceReloads, parseKeyNotice } from '../../src/cluster/key-notices.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { runCli } from '../helpers/cli.ts';
import { discover } from '../helpers/oauth.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { roundRobin } from '../helpers/round-robin.ts';

const PASSWORD = 'correct horse battery staple';
const AGENT_SECRET = 'agent-secret-0123456789abcdefghij';
const insecure = { [oauth.allowInsecureRequests]: true } as const;
/** Far below the 60 s key check, far above a notice on a loaded machine. */
const NOTICE_WAIT = { timeoutMs: 5000, intervalMs: 20 };

describe('key notices: parsing and coalescing', () => {
  it('RFC 7517 §5: only a list of kids is a notice; anything else is dropped', () => {
    assert.deepEqual(parseKeyNotice('{"kids":["a","b"]}'), { kids: ['a', 'b'] });
    for (const bad of ['', 'null', '[]', '{"kids":[]}', '{"kids":"a"}', '{"kids":[1]}', '{"kids":[""]}', `{"kids":["${'k'.repeat(129)}"]}`, JSON.stringify({ kids: Array(17).fill('k') })]) {
      assert.equal(parseKeyNotice(bad), undefined, bad);
    }
  });

  it('a flood of notices costs one reload running and one queued, not one each', async () => {
    let runs = 0;
    let release!: () => void;
    const onNotice = coalesceReloads(() => { runs++; return new Promise<void>((r) => { release = r; }); }, () => {});
    for (let i = 0; i < 100; i++) onNotice();
    assert.equal(runs, 1);
    release();
    await waitFor(() => runs === 2, 'the queued reload');
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(runs, 2);
  });
});

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('key notices on two instances sharing PostgreSQL and Redis', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let dir: string;
  let lb: Awaited<ReturnType<typeof roundRobin>>;
  let front: string;
  const wardens: Warden[] = [];
  const clients: Client[] = [];
  const prefix = testKeyPrefix();
  const files = { withRedis: '', withoutRedis: '', redisDown: '' };
  const [A, B] = [0, 1];
  const origin = (i: number) => `http://127.0.0.1:${wardens[i]!.port}`;

  before(async () => {
    pg = await openTestPostgres();
    dir = mkdtempSync(join(tmpdir(), 'warden-key-notices-'));
    lb = await roundRobin(() => wardens.map((w) => w.port));
    front = `http://127.0.0.1:${lb.port}`;
    const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: AGENT_SECRET, WARDEN_PUBLIC_URL: front, PORT: '0' };
    const document = (port: number, redis: boolean) => {
      const demo = buildDemoConfig(env);
      return {
        ...JSON.parse(JSON.stringify({ ...demo, servers: undefined })),
        listen: { host: '127.0.0.1', port },
        publicUrl: front,
        storage: { postgres: { url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 4 } },
        ...(redis ? { cluster: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix }, secret: 'cluster-secret-0123456789abcdefghijklmnop' } } : {}),
        servers: demo.servers,
      };
    };
    // One issuer behind a balancer; the test also talks to each instance directly.
    for (let i = 0; i < 2; i++) wardens.push(await startWarden((port): Config => parseConfig(document(port, true)), { env, announce: () => {} }));
    assert.equal((wardens[A]!.config.authorizationServer as { embedded: { signingKeyCheckSeconds: number } }).embedded.signingKeyCheckSeconds, 60, 'the periodic check is too slow to explain what this suite sees');
    files.withRedis = join(dir, 'with-redis.json');
    files.withoutRedis = join(dir, 'without-redis.json');
    writeFileSync(files.withRedis, JSON.stringify(document(wardens[A]!.port, true)));
    writeFileSync(files.withoutRedis, JSON.stringify(document(wardens[A]!.port, false)));
    files.redisDown = join(dir, 'redis-down.json');
    // Port 9 (discard): nothing answers there.
    writeFileSync(files.redisDown, JSON.stringify({ ...document(wardens[A]!.port, true), cluster: { redis: { url: 'redis://127.0.0.1:9', keyPrefix: prefix }, secret: 'cluster-secret-0123456789abcdefghijklmnop' } }));
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    for (const w of wardens) await w.close();
    lb?.server.close();
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client-credentials access token from instance `i`'s own token endpoint. */
  async function tokenFrom(i: number): Promise<string> {
    const as = { ...(await discover(front)), token_endpoint: `${origin(i)}/oauth/token` };
    const client = { client_id: 'demo-agent' };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(AGENT_SECRET), { resource: `${front}/mcp`, scope: 'notes:read' }, insecure);
    return (await oauth.processClientCredentialsResponse(as, client, response)).access_token;
  }
  const kidOf = (token: string) => decodeProtectedHeader(token).kid;
  const publishedKids = async (i: number) => ((await (await fetch(`${origin(i)}/oauth/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);

  /** An MCP session at B's gateway under `token`. */
  async function connectAtB(token: string): Promise<Client> {
    const client = new Client({ name: 'key-notices-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${origin(B)}/mcp`), { authProvider: { token: async () => token } }));
    clients.push(client);
    return client;
  }

  async function rotate(file: string, ...flags: string[]): Promise<{ kid: string; out: string }> {
    const r = await runCli(['keys', 'rotate', '--config', file, ...flags]);
    assert.equal(r.code, 0, r.err);
    const kid = /new signing key ([A-Za-z0-9_-]+)/.exec(r.out)?.[1];
    assert.ok(kid, r.out);
    return { kid, out: r.out };
  }

  it('RFC 7517 §5: after keys rotate on the shared store, A signs with the new key and B publishes it and accepts its token, through a notice', async (t) => {
    const before = await tokenFrom(A);
    await (await connectAtB(before)).listTools();
    const { kid, out } = await rotate(files.withRedis);
    const rotatedAt = Date.now();
    assert.match(out, /key notice sent over Redis: 2 instance\(s\)/, 'both instances are subscribed');
    assert.notEqual(kidOf(before), kid);
    let fresh = '';
    await waitFor(async () => kidOf(fresh = await tokenFrom(A)) === kid, 'A to sign with the new key', NOTICE_WAIT);
    const signing = Date.now() - rotatedAt;
    // B's published set, read without presenting any token: B reloaded on the notice, not on an unknown kid.
    await waitFor(async () => (await publishedKids(B))[0] === kid, 'B to publish the new key', NOTICE_WAIT);
    const published = Date.now() - rotatedAt;
    const { tools } = await (await connectAtB(fresh)).listTools();
    assert.ok(tools.length > 0, "B's gateway accepts A's token signed with the new key");
    t.diagnostic(`rotation → A signs with the new key: ${signing} ms; → B publishes it: ${published} ms`);
  });

  it('RFC 7517 §5: after keys rotate --force, the token signed with the retired key is refused at B through a notice', async () => {
    const old = await tokenFrom(A);
    const session = await connectAtB(old);
    await session.listTools();
    await rotate(files.withRedis, '--force');
    let refusal: unknown;
    await waitFor(async () => {
      try {
        await session.listTools();
        return false;
      } catch (err) {
        refusal = err;
        return true;
      }
    }, "B to refuse the retired key's token", NOTICE_WAIT);
    assert.match(String((refusal as Error).message), /401|nauthorized|invalid_token/i);
  });

  it('Redis unreachable from keys rotate: the key is still added, and the output says the instances pick it up at their next key check', async () => {
    const { kid, out } = await rotate(files.redisDown);
    assert.match(out, /key notice not sent \(.+\): running instances reload at their next key check/);
    const listed = await runCli(['keys', 'list', '--config', files.withoutRedis]);
    assert.match(listed.out, new RegExp(`^${kid}\\s.*signing$`, 'm'), 'the rotation itself is in the database');
    // Bring the instances up to date for the next test (as their key check would).
    await wardens[A]!.reloadSigningKeys();
    await waitFor(async () => (await publishedKids(B))[0] === kid, 'B to follow A', NOTICE_WAIT);
  });

  it("an instance that picks a rotation up itself (SIGHUP) announces it: the other publishes the new key too", async () => {
    // Rotated without cluster.redis: nobody is told.
    const { kid, out } = await rotate(files.withoutRedis);
    assert.doesNotMatch(out, /key notice/);
    assert.notEqual((await publishedKids(B))[0], kid, 'B has not heard of it');
    const reloaded = await wardens[A]!.reloadSigningKeys();
    assert.equal(reloaded.changed, true);
    await waitFor(async () => (await publishedKids(B))[0] === kid, 'B to publish the key A announced', NOTICE_WAIT);
  });
});
