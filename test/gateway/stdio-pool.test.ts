import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListRootsRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { demoServerCommand } from '../../src/config/demo.ts';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, post, TINY_SERVER } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** Live child processes of this test process whose command line contains `marker` (Linux /proc). */
function childProcesses(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state (Z: exited, not yet reaped), fields[1] the parent pid.
      if (Number(fields[1]) !== process.pid || fields[0] === 'Z') continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function connectV2(endpoint: string, token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'pool-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => token } });
  await client.connect(transport);
  return { client, transport };
}

async function connectV1(endpoint: string, token: string): Promise<{ client: ClientV1; transport: TransportV1 }> {
  const client = new ClientV1({ name: 'pool-test-v1', version: '1.0.0' }, { capabilities: { roots: {} } });
  const transport = new TransportV1(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

const text = (r: object) => ((r as { content: { text: string }[] }).content[0]!.text);

describe('stdio shared per user (servers[].upstream.stdio.share: per-user) with the demo notes server', () => {
  let t: TestWarden;
  const NOTES = 'notes-server';
  before(async () => {
    t = await startTestWarden({
      servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { ...demoServerCommand(), share: 'per-user', sharedIdleSeconds: 0 } }, scopes: ['notes:read'] }],
    });
  });
  after(async () => t.close());

  it('MCP transports §stdio: two sessions of one user share one child; another user and another client of the same user never do', async () => {
    const alice = await t.issuer.mint({ aud: t.endpoint, sub: 'alice' });
    const bob = await t.issuer.mint({ aud: t.endpoint, sub: 'bob' });
    const aliceOtherClient = await t.issuer.mint({ aud: t.endpoint, sub: 'alice', client_id: 'another-client' });
    const a1 = await connectV2(t.endpoint, alice);
    const a2 = await connectV2(t.endpoint, alice);
    assert.equal(childProcesses(NOTES).length, 1, "alice's two sessions run on one child");
    // Both sessions work through the one child, each answered on its own session.
    assert.match(text(await a1.client.callTool({ name: 'list_notes', arguments: {} })), /Welcome/);
    assert.match(text(await a2.client.callTool({ name: 'read_note', arguments: { id: '2' } })), /alice is an admin/);
    const b = await connectV2(t.endpoint, bob);
    assert.equal(childProcesses(NOTES).length, 2, 'bob never joins alice\'s child');
    const c = await connectV2(t.endpoint, aliceOtherClient);
    assert.equal(childProcesses(NOTES).length, 3, 'another client of alice gets its own child (its scopes are its own)');
    assert.match(text(await b.client.callTool({ name: 'list_notes', arguments: {} })), /Welcome/);
    for (const s of [a1, a2, b, c]) {
      await s.transport.terminateSession();
      await s.client.close();
    }
    // sharedIdleSeconds: 0: a child is stopped once its last session ended.
    await waitFor(() => childProcesses(NOTES).length === 0, 'the idle children to be reaped');
  });
});

describe('stdio shared per user: routing, crashes and the pool limit (tiny stdio server)', () => {
  let t: TestWarden;
  let endpoint: string;
  let limited: string;
  const TINY = 'tiny-server.mjs';
  before(async () => {
    t = await startTestWarden({
      servers: [
        // Children outlive their sessions for 600 s, not the default 30: the tests count this
        // server's processes, and an earlier test's child reaped mid-count would be miscounted.
        { name: 'tiny', path: '/mcp', upstream: { stdio: { ...TINY_SERVER, share: 'per-user', sharedIdleSeconds: 600 } }, scopes: ['mcp:read'] },
        { name: 'limited', path: '/mcp/limited', upstream: { stdio: { ...TINY_SERVER, share: 'per-user', maxSharedProcesses: 1, sharedIdleSeconds: 600 } }, scopes: ['mcp:read'] },
      ],
    });
    endpoint = t.endpoint;
    limited = `${t.warden.url}/mcp/limited`;
  });
  after(async () => t.close());

  it('MCP lifecycle §Initialization: sessions of one user that initialize at the same time get one child, and each gets the server\'s initialize result', async () => {
    const alice = await t.issuer.mint({ aud: endpoint, sub: 'carol' });
    const before = childProcesses(TINY).length;
    const sessions = await Promise.all([1, 2, 3].map(() => connectV2(endpoint, alice)));
    assert.equal(childProcesses(TINY).length, before + 1);
    const pids = await Promise.all(sessions.map(async (s) => text(await s.client.callTool({ name: 'pid', arguments: {} }))));
    assert.equal(new Set(pids).size, 1);
    for (const s of sessions) {
      assert.equal(s.client.getServerVersion()?.name, 'tiny', 'every session got the cached initialize result');
      await s.transport.terminateSession();
      await s.client.close();
    }
  });

  it('MCP utilities/progress: progress reaches only the session whose request carried the token, though both sessions chose the same token', async () => {
    const alice = await t.issuer.mint({ aud: endpoint, sub: 'alice' });
    const s1 = await connectV1(endpoint, alice);
    const s2 = await connectV1(endpoint, alice);
    const pid1 = text(await s1.client.callTool({ name: 'pid', arguments: {} }));
    assert.equal(text(await s2.client.callTool({ name: 'pid', arguments: {} })), pid1, 'one child serves both sessions');
    const seen1: number[] = [];
    const seen2: number[] = [];
    // The SDK uses the request id as progress token: both sessions send the same ids.
    const [r1, r2] = await Promise.all([
      s1.client.callTool({ name: 'slow', arguments: { ticks: 3, intervalMs: 20 } }, undefined, { onprogress: (p) => seen1.push(p.progress) }),
      s2.client.callTool({ name: 'slow', arguments: { ticks: 5, intervalMs: 20 } }, undefined, { onprogress: (p) => seen2.push(p.progress) }),
    ]);
    assert.equal(text(r1), 'slow done');
    assert.equal(text(r2), 'slow done');
    assert.deepEqual(seen1, [1, 2, 3]);
    assert.deepEqual(seen2, [1, 2, 3, 4, 5]);
    for (const s of [s1, s2]) {
      await s.transport.terminateSession();
      await s.client.close();
    }
  });

  it('MCP client/roots: a server-to-client request reaches only the session whose call it serves; unassociated notifications reach every session of that user and no other user', async () => {
    const alice = await t.issuer.mint({ aud: endpoint, sub: 'alice' });
    const bob = await t.issuer.mint({ aud: endpoint, sub: 'bob' });
    const s1 = await connectV1(endpoint, alice);
    const s2 = await connectV1(endpoint, alice);
    const b = await connectV1(endpoint, bob);
    const asked: string[] = [];
    const logs: string[] = [];
    for (const [name, s] of [['s1', s1], ['s2', s2], ['bob', b]] as const) {
      s.client.setRequestHandler(ListRootsRequestSchema, async () => {
        asked.push(name);
        return { roots: [{ uri: `file:///${name}`, name }] };
      });
      s.client.setNotificationHandler(LoggingMessageNotificationSchema, () => {
        logs.push(name);
      });
    }
    assert.equal(text(await s2.client.callTool({ name: 'ask', arguments: {} })), 'client said {"roots":[{"uri":"file:///s2","name":"s2"}]}');
    assert.deepEqual(asked, ['s2']);
    // notifications/message belongs to no request: both of alice's sessions get it, bob does not.
    assert.equal(text(await s1.client.callTool({ name: 'notify', arguments: {} })), 'notified');
    await waitFor(() => logs.includes('s1') && logs.includes('s2'), "the log notification on both of alice's sessions");
    // Bob's own call proves his stream is live; still no notification of alice's reached him.
    await b.client.callTool({ name: 'echo', arguments: { message: 'x' } });
    assert.deepEqual(logs.filter((l) => l === 'bob'), []);
    for (const s of [s1, s2, b]) {
      await s.transport.terminateSession();
      await s.client.close();
    }
  });

  it('MCP lifecycle: a crashing shared child ends only its user\'s sessions (404), which re-initialize on a new child; another user\'s session goes on', async () => {
    const alice = await t.issuer.mint({ aud: endpoint, sub: 'alice' });
    const bob = await t.issuer.mint({ aud: endpoint, sub: 'bob' });
    const s1 = await connectV2(endpoint, alice);
    const s2 = await connectV2(endpoint, alice);
    const b = await connectV2(endpoint, bob);
    const alicePid = text(await s1.client.callTool({ name: 'pid', arguments: {} }));
    const bobPid = text(await b.client.callTool({ name: 'pid', arguments: {} }));
    assert.notEqual(alicePid, bobPid);
    const before = childProcesses(TINY).length;
    await s1.client.callTool({ name: 'crash', arguments: {} }).catch(() => undefined);
    await waitFor(() => t.warden.gateway.endpoints.get('/mcp')!.sessionCount === 1, "both of alice's sessions to end");
    assert.equal(childProcesses(TINY).length, before - 1);
    // MCP transports §Session Management: an ended session answers 404 to its client.
    const gone = await post(endpoint, alice, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, { 'mcp-session-id': s2.transport.sessionId!, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    assert.equal(text(await b.client.callTool({ name: 'pid', arguments: {} })), bobPid, "bob's session and child are untouched");
    const again = await connectV2(endpoint, alice);
    const newPid = text(await again.client.callTool({ name: 'pid', arguments: {} }));
    assert.notEqual(newPid, alicePid, 'a re-initialized session gets a new child');
    for (const s of [again, b]) {
      await s.transport.terminateSession();
      await s.client.close();
    }
    await s1.client.close();
    await s2.client.close();
  });

  it('servers[].upstream.stdio.maxSharedProcesses: a caller beyond the pool limit is refused with an error, and nothing is spawned', async () => {
    const alice = await t.issuer.mint({ aud: limited, sub: 'alice' });
    const bob = await t.issuer.mint({ aud: limited, sub: 'bob' });
    const a = await connectV2(limited, alice);
    const before = childProcesses(TINY).length;
    const refused = await post(limited, bob, initializeMessage());
    // RFC 9110 §15.6.4: a capacity refusal is 503 with Retry-After and says what is full.
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    const body = (await refused.json()) as { error?: { code: number; message: string } };
    assert.equal(body.error?.code, -32603);
    assert.match(body.error!.message, /shared upstream processes of server .* are in use/);
    assert.equal(childProcesses(TINY).length, before);
    // Alice's own second session still fits: it joins her child.
    const a2 = await connectV2(limited, alice);
    assert.equal(childProcesses(TINY).length, before);
    for (const s of [a, a2]) {
      await s.transport.terminateSession();
      await s.client.close();
    }
  });
});
