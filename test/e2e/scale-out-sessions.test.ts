/**
 * MCP sessions through nginx round-robin with no stickiness, three instances: each request of one
 * session (initialize, notifications, tools/list, tools/call, GET, DELETE) lands on whichever
 * instance nginx picks, so a session opened on one instance must be served by the others
 * (MCP 2025-11-25 transports §Session Management). The official SDK clients v2 and v1 and
 * `mcp-warden connect` (the stdio bridge, signed in through Chromium) list and call tools across
 * instances; an SSE stream cut on one instance is resumed with Last-Event-ID on another; an
 * HTTP-upstream session outlives the instance that opened it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { messageOf, readEvents, type RawEvent } from '../gateway/fixtures/sse-reader.ts';
import { CLUSTER_PASSWORD, startCluster, type Cluster } from '../helpers/cluster.ts';
import { launchChromium, type ChromiumSignIn } from '../helpers/chromium-sign-in.ts';
import { nginxUnavailable } from '../helpers/nginx.ts';
import { obtainTokens, type Tokens } from '../helpers/oauth.ts';
import { postgresUnavailable } from '../helpers/postgres.ts';
import { redisUnavailable } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';

const BIN = join(import.meta.dirname, '../../bin/mcp-warden.js');
const skip = nginxUnavailable() ?? await postgresUnavailable() ?? await redisUnavailable();

describe('MCP sessions across three instances behind nginx round-robin, no stickiness', { skip }, () => {
  let upstream: HttpUpstreamFixture;
  let cluster: Cluster;
  let chromium: ChromiumSignIn;
  let http: Tokens;
  let stdio: Tokens;

  before(async () => {
    upstream = await startHttpUpstream();
    cluster = await startCluster({ upstreamUrl: upstream.url, dirPrefix: 'warden-scale-out-sessions-' });
    chromium = await launchChromium();
    const signIn = (path: string) => obtainTokens({ issuer: cluster.front, resource: `${cluster.front}${path}`, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD });
    [http, stdio] = await Promise.all([signIn('/mcp'), signIn('/mcp/stdio')]);
  });
  after(async () => {
    await chromium?.close();
    await cluster?.stop();
    await upstream?.close();
  });

  /** Instances (by index) that served requests to `path` among the access-log lines after `from`. */
  const servedBy = (from: number, path: string) => cluster.hitsPerInstance(from, (line) => line.uri === path);

  /**
   * nginx writes an access-log line when it has finished a request, which can be just after its
   * client saw the end of the answer: the lines are read again until `enough` holds (or 5 s).
   */
  async function settled<T>(read: () => T, enough: (value: T) => boolean): Promise<T> {
    // Past the wait the caller's own assertion says what is missing.
    await waitFor(() => enough(read()), 'the access log to settle', { timeoutMs: 5_000, intervalMs: 20 }).catch(() => {});
    return read();
  }

  it('MCP transports §Session Management: SDK v2 lists and calls tools in one session whose requests land on all three instances', async () => {
    const from = cluster.nginx.accessLog().length;
    const client = new Client({ name: 'scale-out-v2', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${cluster.front}/mcp`), { authProvider: { token: async () => http.access_token } }));
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
    for (let i = 0; i < 9; i++) assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: `m${i}` } })).content, [{ type: 'text', text: `m${i}` }]);
    await client.close();
    const counts = await settled(() => servedBy(from, '/mcp'), (c) => c.every((n) => n >= 3));
    assert.ok(counts.every((n) => n >= 3), `every instance served the session: ${counts.join(', ')}`);
  });

  it('MCP transports §Session Management: SDK v1 lists and calls tools in one session whose requests land on all three instances', async () => {
    const from = cluster.nginx.accessLog().length;
    const client = new ClientV1({ name: 'scale-out-v1', version: '1.0.0' });
    await client.connect(new TransportV1(new URL(`${cluster.front}/mcp`), { requestInit: { headers: { authorization: `Bearer ${http.access_token}` } } }));
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
    for (let i = 0; i < 9; i++) assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: `m${i}` } })).content, [{ type: 'text', text: `m${i}` }]);
    await client.close();
    const counts = await settled(() => servedBy(from, '/mcp'), (c) => c.every((n) => n >= 3));
    assert.ok(counts.every((n) => n >= 3), `every instance served the session: ${counts.join(', ')}`);
  });

  it('MCP transports §Session Management: a stdio-upstream session (its child on one instance) is served from all three', async () => {
    const from = cluster.nginx.accessLog().length;
    const client = new Client({ name: 'scale-out-stdio', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${cluster.front}/mcp/stdio`), { authProvider: { token: async () => stdio.access_token } }));
    const pids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await client.callTool({ name: 'pid', arguments: {} });
      pids.add((r.content as { text: string }[])[0]!.text);
    }
    await client.close();
    assert.equal(pids.size, 1, 'one upstream child for the session, whichever instance took the request');
    const counts = await settled(() => servedBy(from, '/mcp/stdio'), (c) => c.every((n) => n >= 2));
    assert.ok(counts.every((n) => n >= 2), `every instance served the session: ${counts.join(', ')}`);
  });

  it('MCP transports §Resumability and Redelivery: an SSE stream cut on one instance is resumed with Last-Event-ID on another; every progress and the result arrive once', async () => {
    const url = `${cluster.front}/mcp/stdio`;
    const headers = (sid?: string): Record<string, string> => ({
      authorization: `Bearer ${stdio.access_token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json',
      'mcp-protocol-version': '2025-11-25', ...(sid ? { 'mcp-session-id': sid } : {}),
    });
    const init = await fetch(url, { method: 'POST', headers: headers(), body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'resume', version: '1' } } }) });
    assert.equal(init.status, 200);
    const sid = init.headers.get('mcp-session-id')!;
    await init.arrayBuffer();
    const initialized = await fetch(url, { method: 'POST', headers: headers(sid), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    assert.equal(initialized.status, 202);

    const from = cluster.nginx.accessLog().length;
    const res = await fetch(url, { method: 'POST', headers: headers(sid), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: { ticks: 6, intervalMs: 100 }, _meta: { progressToken: 'p' } } }) });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const progressOf = (events: RawEvent[]) => events.map(messageOf).filter((m) => m?.method === 'notifications/progress').map((m) => m.params.progress as number);
    const first = await readEvents(res, (events) => progressOf(events).length >= 1);
    assert.equal(first.ended, false, 'cut before the end');
    const resumed = await fetch(url, { headers: { ...headers(sid), accept: 'text/event-stream', 'last-event-id': first.events.at(-1)!.id! } });
    assert.equal(resumed.status, 200);
    const rest = await readEvents(resumed);
    assert.deepEqual([...progressOf(first.events), ...progressOf(rest.events)], [1, 2, 3, 4, 5, 6], 'every progress exactly once');
    assert.deepEqual(rest.events.map(messageOf).filter((m) => m && 'result' in m).map((m) => m.id), [1]);
    const lines = await settled(() => cluster.nginx.accessLog().slice(from).filter((l) => l.uri === '/mcp/stdio'), (ls) => ls.some((l) => l.method === 'POST') && ls.some((l) => l.method === 'GET'));
    const post = lines.find((l) => l.method === 'POST');
    const get = lines.find((l) => l.method === 'GET');
    assert.ok(post && get && post.upstream !== get.upstream, `the stream was resumed on another instance (POST ${post?.upstream}, GET ${get?.upstream})`);
  });

  it('MCP authorization: `mcp-warden connect` through nginx signs in in Chromium and lists and calls tools across instances', async () => {
    const from = cluster.nginx.accessLog().length;
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'connect', `${cluster.front}/mcp`, '--no-browser'],
      env: { PATH: process.env.PATH ?? '', HOME: cluster.dir, MCP_WARDEN_HOME: join(cluster.dir, 'client-home'), MCP_WARDEN_TOKEN_STORE: 'file' },
      stderr: 'pipe',
    });
    let stderr = '';
    const client = new Client({ name: 'scale-out-host', version: '1.0.0' });
    const connecting = client.connect(transport);
    (transport.stderr as Readable).on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    let url: string | undefined;
    await waitFor(() => (url = /sign in:\s+(\S+)/.exec(stderr)?.[1]) !== undefined, 'the sign-in URL on stderr', { timeoutMs: 30_000 });
    const page = await chromium.context.newPage();
    try {
      await page.goto(url!);
      for (let i = 0; i < 4 && !/127\.0\.0\.1:\d+\/callback/.test(page.url()); i++) {
        if (await page.locator('#password').count()) {
          await page.fill('#username', 'alice');
          await page.fill('#password', CLUSTER_PASSWORD);
          await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
        } else if (await page.locator('button[value=allow]').count()) {
          await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
        } else {
          break;
        }
      }
      assert.match(await page.textContent('h1') ?? '', /Signed in/);
    } finally {
      await page.close();
    }
    await connecting;
    try {
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
      for (let i = 0; i < 6; i++) assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: `b${i}` } })).content, [{ type: 'text', text: `b${i}` }]);
    } catch (err) {
      // An upstream failure names only the session to the client; its cause is in an instance's log.
      const warnings = cluster.instances.map((i) => `instance ${i.index}:\n${i.log().split('\n').filter((l) => /"level":(4|5)0/.test(l)).slice(-6).join('\n')}`);
      throw new Error(`${(err as Error).message}\nwarnings and errors the instances logged:\n${warnings.join('\n')}`, { cause: err });
    } finally {
      await client.close();
    }
    const counts = await settled(() => servedBy(from, '/mcp'), (c) => c.every((n) => n >= 2));
    assert.ok(counts.every((n) => n >= 2), `every instance served the bridge's session: ${counts.join(', ')}`);
  });

  // Last: it kills an instance (restarted after, but nginx keeps it out for its fail_timeout).
  it('MCP transports §Session Management: an HTTP-upstream session goes on when the instance that opened it is killed with SIGKILL', async () => {
    const from = cluster.nginx.accessLog().length;
    const client = new Client({ name: 'scale-out-kill', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${cluster.front}/mcp`), { authProvider: { token: async () => http.access_token } }));
    const opener = (await settled(() => cluster.nginx.accessLog().slice(from).find((l) => l.uri === '/mcp' && l.method === 'POST'), (l) => l !== undefined))!;
    const owner = cluster.instances.findIndex((i) => opener.upstream.endsWith(`:${i.port}`));
    assert.notEqual(owner, -1);
    await client.callTool({ name: 'echo', arguments: { message: 'before' } });
    await cluster.kill(owner);
    try {
      for (let i = 0; i < 6; i++) assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: `after ${i}` } })).content, [{ type: 'text', text: `after ${i}` }]);
      await client.close();
    } finally {
      await cluster.restart(owner);
    }
  });
});
