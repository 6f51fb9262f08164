/**
 * kill -9 of the instance that opened sessions (docs/deployment.md "Scale-out: MCP sessions"): a
 * real `mcp-warden start` child beside two in-process instances, on one PostgreSQL schema and one
 * Redis. After SIGKILL nothing of the child cleans up: its heartbeat key lives on for seconds and
 * its directory entries stay. Its stdio session ends (the hop is refused: 404, the entry goes, a
 * new initialize works); its HTTP-upstream session goes on at the survivors; a stdio session
 * another instance holds is untouched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startFixtureIssuer, type FixtureIssuer } from '../gateway/fixtures/issuer.ts';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { messagesOf, openSession, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';

const BIN = fileURLToPath(new URL('../../bin/mcp-warden.js', import.meta.url));
const SECRET = 'cluster-secret-0123456789abcdefghijklmnop';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('kill -9 of the instance holding sessions', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let issuer: FixtureIssuer;
  let upstream: HttpUpstreamFixture;
  let dir: string;
  let child: ChildProcess | undefined;
  let childUrl: string;
  const prefix = testKeyPrefix();
  const wardens: Warden[] = [];
  let tokens: { http: string; stdio: string };
  const front = 'http://127.0.0.1:9'; // the balancer's address: the audience every instance serves

  before(async () => {
    pg = await openTestPostgres();
    issuer = await startFixtureIssuer();
    upstream = await startHttpUpstream();
    const base = {
      publicUrl: front,
      allowedHosts: ['127.0.0.1'],
      storage: { postgres: { url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 3 } },
      authorizationServer: { external: { issuer: issuer.issuer } },
      log: { level: 'error' },
      cluster: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix }, secret: SECRET },
      servers: [
        { name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url } } },
        { name: 'tiny', path: '/mcp/tiny', upstream: { stdio: TINY_SERVER } },
      ],
    };
    dir = mkdtempSync(join(tmpdir(), 'warden-kill-'));
    const port = await freePort();
    childUrl = `http://127.0.0.1:${port}`;
    const configFile = join(dir, 'warden.json');
    writeFileSync(configFile, JSON.stringify({ ...base, listen: { host: '127.0.0.1', port } }));
    const proc = spawn(process.execPath, [BIN, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: dir } });
    child = proc;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`mcp-warden start exited (${code}): ${out}`));
      for (const s of [proc.stdout!, proc.stderr!]) s.setEncoding('utf8').on('data', (c: string) => {
        out = (out + c).slice(-4000);
        if (out.includes('listening on')) {
          proc.off('exit', onExit);
          resolve();
        }
      });
      proc.once('exit', onExit);
    });
    for (let i = 0; i < 2; i++) wardens.push(await startWarden((p) => parseConfig({ ...base, listen: { host: '127.0.0.1', port: p } })));
    tokens = { http: await issuer.mint({ aud: `${front}/mcp/remote` }), stdio: await issuer.mint({ aud: `${front}/mcp/tiny` }) };
  });

  after(async () => {
    child?.kill('SIGKILL');
    for (const w of wardens) await w.close();
    await upstream?.close();
    await issuer?.close();
    await pg?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const h = (sid: string) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  const pid = async (url: string, sid: string, id: number) => {
    const res = await post(url, tokens.stdio, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'pid', arguments: {} } }, h(sid));
    return { status: res.status, text: res.status === 200 ? (await messagesOf(res))[0].result.content[0].text as string : await res.text() };
  };

  it('MCP 2025-11-25 transports §Session Management: the killed instance\'s stdio session is 404 (then a new one works), its HTTP session continues, other sessions are untouched', async () => {
    const [b, c] = wardens as [Warden, Warden];
    // Opened on the child, as a balancer would have sent the initialize there.
    const stdio = await openSession(`${childUrl}/mcp/tiny`, tokens.stdio);
    const http = await openSession(`${childUrl}/mcp/remote`, tokens.http);
    const other = await openSession(`${b.url}/mcp/tiny`, tokens.stdio);
    const childPid = (await pid(`${b.url}/mcp/tiny`, stdio, 1)).text;
    assert.equal((await pid(`${c.url}/mcp/tiny`, stdio, 2)).text, childPid, 'forwarded to the child\'s instance from both');
    const otherPid = (await pid(`${c.url}/mcp/tiny`, other, 3)).text;

    child!.kill('SIGKILL');
    await new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    // Nothing cleaned up: the heartbeat key is still there, so the hop is tried and refused.
    const redis = createClient({ url: TEST_REDIS_URL });
    await redis.connect();
    try {
      assert.ok((await redis.keys(`${prefix}instance:*`)).length === 3, 'the killed instance still looks alive');
      assert.ok(await redis.get(`${prefix}session:${stdio}`));

      assert.equal((await pid(`${c.url}/mcp/tiny`, stdio, 4)).status, 404);
      // The 404 does not wait for the entry's removal (the DEL is sent beside it).
      await waitFor(async () => (await redis.get(`${prefix}session:${stdio}`)) === null, 'its entry to be gone');
      assert.equal((await pid(`${b.url}/mcp/tiny`, stdio, 5)).status, 404, 'and 404 at every instance');
    } finally {
      redis.destroy();
    }
    const again = await openSession(`${c.url}/mcp/tiny`, tokens.stdio);
    assert.equal((await pid(`${b.url}/mcp/tiny`, again, 6)).status, 200, 'a new initialize works');

    for (const w of [b, c]) {
      const res = await post(`${w.url}/mcp/remote`, tokens.http, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'alive' } } }, h(http));
      assert.equal(res.status, 200);
      assert.deepEqual((await messagesOf(res))[0].result.content, [{ type: 'text', text: 'alive' }]);
    }
    assert.equal((await pid(`${c.url}/mcp/tiny`, other, 8)).text, otherPid, 'another instance\'s stdio session: same child, untouched');
  });
});
