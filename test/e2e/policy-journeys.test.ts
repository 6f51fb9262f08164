/**
 * Policy and audit end to end: the official MCP SDK client (@modelcontextprotocol/client 2.x) through the
 * real gateway and the embedded authorization server, with the demo policy. Tokens come from real
 * authorization code + PKCE flows (test/helpers/oauth.ts); the audit trail is read back with the
 * real `mcp-warden audit` command.
 */
import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { Client, InsufficientScopeError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { main } from '../../src/cli/main.ts';
import type { AuditEvent } from '../../src/audit/types.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PASSWORD = 'policy e2e password';
const FIXTURE = { command: process.execPath, args: [fileURLToPath(new URL('./policy-upstream.mjs', import.meta.url))] };

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Content-Type of every POST response, in order. */
  contentTypes: string[];
  setToken(token: string): void;
}

async function connect(endpoint: string, token: string): Promise<Connected> {
  let current = token;
  const contentTypes: string[] = [];
  const client = new Client({ name: 'policy-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), {
    authProvider: { token: async () => current },
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      if (init?.method === 'POST') contentTypes.push(res.headers.get('content-type') ?? '');
      return res;
    },
  });
  await client.connect(transport);
  return { client, transport, contentTypes, setToken: (t) => { current = t; } };
}

async function disconnect(c: Connected): Promise<void> {
  await c.transport.terminateSession().catch(() => {});
  await c.client.close();
}

async function auditCli(configFile: string, ...filters: string[]): Promise<AuditEvent[]> {
  let out = '';
  const stdout = new Writable({ write(chunk, _e, cb) { out += String(chunk); cb(); } });
  const code = await main(['audit', '--config', configFile, '--json', '--limit', '1000', ...filters], { stdout, stderr: stdout, env: {} });
  assert.equal(code, 0, out);
  return out.trim() ? out.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent) : [];
}

describe('policy end to end: filtered lists, denial, step-up and audit', () => {
  let dir: string;
  let warden: Warden;
  let configFile: string;
  let jsonl: string;
  let issuer: string;
  const endpoint = { notes: '', sse: '' };
  const tokens: Record<string, { access_token: string; clientId: string }> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-policy-e2e-'));
    const dbPath = join(dir, 'warden.db');
    jsonl = join(dir, 'audit.jsonl');
    // The demo users, with a known password (the demo seeding leaves existing users alone).
    const db = openDatabase(dbPath);
    const users = new UserStore(createSqliteUserRecords(db));
    await users.add('alice', PASSWORD, ['admin']);
    await users.add('bob', PASSWORD, ['member']);
    db.close();

    warden = await startWarden((port) => {
      const demo = buildDemoConfig({ PORT: String(port), HOST: '127.0.0.1', WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}`, WARDEN_DB: dbPath });
      const notes = demo.servers[0]!;
      return parseConfig({
        ...demo,
        log: { level: 'silent' },
        // Users are seeded above; demo seeding of the demo-agent client is not needed here.
        authorizationServer: { embedded: { ...(demo.authorizationServer as { embedded: object }).embedded, demo: false } },
        audit: { jsonl, includeArguments: false },
        // The same demo policy in front of an upstream that streams its list answers (SSE).
        // The JSON case asserts JSON answers: a demo child slow to start on a loaded machine would
        // otherwise turn its initialize answer into a stream after sse.streamAfterMs, by design.
        servers: [{ ...notes, sse: { ...notes.sse, streamAfterMs: 0 } }, { ...notes, name: 'notes-sse', path: '/mcp-sse', upstream: { stdio: FIXTURE } }],
      });
    });
    issuer = warden.config.publicUrl;
    endpoint.notes = `${issuer}/mcp`;
    endpoint.sse = `${issuer}/mcp-sse`;
    configFile = join(dir, 'warden.json');
    writeFileSync(configFile, JSON.stringify(warden.config));

    for (const user of ['alice', 'bob']) {
      for (const [key, resource] of Object.entries(endpoint)) {
        tokens[`${user}:${key}`] = await obtainTokens({ issuer, username: user, password: PASSWORD, resource, scope: 'notes:read notes:write', offlineAccess: false });
      }
    }
  });

  after(async () => {
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('filtered lists: tools/list in JSON shows alice every tool and bob only the read tools', async () => {
    const alice = await connect(endpoint.notes, tokens['alice:notes']!.access_token);
    const bob = await connect(endpoint.notes, tokens['bob:notes']!.access_token);
    try {
      const aliceTools = (await alice.client.listTools()).tools.map((t) => t.name).sort();
      const bobTools = (await bob.client.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(aliceTools, ['create_note', 'delete_note', 'list_notes', 'read_note', 'search_notes', 'whoami']);
      assert.deepEqual(bobTools, ['list_notes', 'read_note', 'search_notes', 'whoami']);
      assert.ok(bob.contentTypes.every((t) => !t.startsWith('text/event-stream')), `JSON answers: ${bob.contentTypes}`);
      assert.ok(bob.contentTypes.some((t) => t.startsWith('application/json')));

      assert.deepEqual((await alice.client.listPrompts()).prompts.map((p) => p.name).sort(), ['purge_plan', 'summarize']);
      assert.deepEqual((await bob.client.listPrompts()).prompts.map((p) => p.name), ['summarize']);
      const bobResources = (await bob.client.listResources()).resources.map((r) => r.uri);
      const aliceResources = (await alice.client.listResources()).resources.map((r) => r.uri);
      assert.ok(aliceResources.includes('notes://admin/audit'));
      assert.ok(!bobResources.includes('notes://admin/audit'));
      assert.ok(bobResources.includes('notes://note/2'));
      assert.deepEqual((await bob.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate), ['notes://note/{id}']);
    } finally {
      await disconnect(alice);
      await disconnect(bob);
    }
  });

  it('filtered lists: tools/list over SSE is filtered per caller, and pagination cursors still work', async () => {
    for (const [user, pages] of [
      ['bob', [['list_notes', 'read_note'], ['search_notes', 'whoami']]],
      ['alice', [['list_notes', 'read_note', 'create_note'], ['search_notes', 'delete_note', 'whoami']]],
    ] as const) {
      const c = await connect(endpoint.sse, tokens[`${user}:sse`]!.access_token);
      try {
        // Without a cursor the 2.x client walks every page itself: it only reaches page 2 if the
        // gateway kept page 1's nextCursor while filtering it.
        const progress: number[] = [];
        const before = c.contentTypes.length;
        const all = await c.client.listTools(undefined, { onprogress: (p) => progress.push(p.progress) });
        assert.deepEqual(c.contentTypes.slice(before).map((t) => t.split(';')[0]), ['text/event-stream', 'text/event-stream'], 'both pages were answered as SSE streams');
        assert.deepEqual(progress, [1, 1], 'each page\'s progress event arrived on its stream before the filtered result');
        assert.deepEqual(all.tools.map((t) => t.name), [...pages[0], ...pages[1]], `${user}: both pages, filtered`);
        const second = await c.client.listTools({ cursor: 'page-2' }, { onprogress: () => {} });
        assert.equal(c.contentTypes.at(-1)?.split(';')[0], 'text/event-stream');
        assert.deepEqual(second.tools.map((t) => t.name), pages[1], `${user} page 2 on its own`);
        assert.equal(second.nextCursor, undefined);
        const prompts = await c.client.listPrompts(undefined, { onprogress: () => {} });
        assert.deepEqual(prompts.prompts.map((p) => p.name), user === 'bob' ? ['summarize'] : ['summarize', 'purge_plan']);
      } finally {
        await disconnect(c);
      }
    }
  });

  it('per-tool rules: bob\'s direct call to an admin tool is refused with a JSON-RPC error naming no rule', async () => {
    const bob = await connect(endpoint.notes, tokens['bob:notes']!.access_token);
    try {
      await assert.rejects(bob.client.callTool({ name: 'delete_note', arguments: { id: '2' } }), (err: Error & { code?: number }) => {
        assert.equal(err.code, -32003);
        assert.match(err.message, /this tool requires a role you do not have/);
        assert.doesNotMatch(err.message, /admin-write-tools|alice/);
        return true;
      });
      await assert.rejects(bob.client.readResource({ uri: 'notes://admin/audit' }), /requires a role you do not have/);
      const read = await bob.client.callTool({ name: 'read_note', arguments: { id: '2' } });
      assert.doesNotMatch(JSON.stringify(read.content), /no note/);
    } finally {
      await disconnect(bob);
    }
  });

  it('MCP 2025-11-25 §Step-Up Authorization Flow: 403 insufficient_scope with the union, re-authorization, retry succeeds', async () => {
    const readOnly = await obtainTokens({ issuer, username: 'alice', password: PASSWORD, resource: endpoint.notes, scope: 'notes:read', offlineAccess: false });
    const alice = await connect(endpoint.notes, readOnly.access_token);
    try {
      let challenge: InsufficientScopeError | undefined;
      await assert.rejects(alice.client.callTool({ name: 'delete_note', arguments: { id: '1' } }), (err: unknown) => {
        assert.ok(err instanceof InsufficientScopeError, `expected InsufficientScopeError, got ${String(err)}`);
        challenge = err;
        return true;
      });
      // MCP authorization §Scope Challenge Handling, the recommended strategy: what she holds plus what the operation needs.
      assert.equal(challenge!.requiredScope, 'notes:read notes:write');
      assert.equal(challenge!.resourceMetadataUrl?.toString(), `${issuer}/.well-known/oauth-protected-resource/mcp`);

      const stepped = await obtainTokens({ issuer, username: 'alice', password: PASSWORD, resource: endpoint.notes, scope: challenge!.requiredScope!, clientId: readOnly.clientId, offlineAccess: false });
      assert.deepEqual(stepped.scope?.split(' ').sort(), ['notes:read', 'notes:write']);
      alice.setToken(stepped.access_token);
      const deleted = await alice.client.callTool({ name: 'delete_note', arguments: { id: '1' } });
      assert.match(JSON.stringify(deleted.content), /deleted note 1/);
    } finally {
      await disconnect(alice);
    }
  });

  it('audit: every decision above is in the audit trail, read back with mcp-warden audit', async () => {
    // The sinks write every 100 ms; flush so the reader below sees every decision made so far.
    await warden.flushAudit();
    const bobDenied = await auditCli(configFile, '--user', 'bob', '--decision', 'deny', '--server', 'notes');
    const bobDelete = bobDenied.find((e) => e.method === 'tools/call' && e.target === 'delete_note');
    assert.ok(bobDelete, `bob's denied call is recorded: ${JSON.stringify(bobDenied)}`);
    assert.deepEqual([bobDelete.decision, bobDelete.rule, bobDelete.reason, bobDelete.roles], ['deny', null, 'this tool requires a role you do not have', ['member']]);
    assert.ok(bobDenied.some((e) => e.method === 'resources/read' && e.target === 'notes://admin/audit'));

    const alice = await auditCli(configFile, '--user', 'alice', '--server', 'notes');
    const deletes = alice.filter((e) => e.target === 'delete_note').reverse();
    assert.deepEqual(deletes.map((e) => [e.decision, e.rule]), [['deny', null], ['allow', 'admin-write-tools']], 'the step-up denial, then the allowed retry');
    assert.match(deletes[0]!.reason, /needs scope notes:write/);
    assert.ok(alice.some((e) => e.method === 'tools/list' && e.decision === 'allow'));
    assert.ok(deletes.every((e) => e.clientId && e.latencyUs >= 0));

    const sse = await auditCli(configFile, '--server', 'notes-sse', '--user', 'bob');
    assert.ok(sse.filter((e) => e.method === 'tools/list').length >= 2);

    // The same question, answered without calling anything, from the same configuration and user store.
    let explained = '';
    const out = new Writable({ write(chunk, _e, cb) { explained += String(chunk); cb(); } });
    const code = await main(['explain', '--config', configFile, '--server', 'notes', '--user', 'bob', '--tool', 'delete_note'], { stdout: out, stderr: out, env: {} });
    assert.equal(code, 3, explained);
    assert.match(explained, /decision: DENY[\s\S]*reason:\s+this tool requires a role you do not have/);

    // The JSON Lines sink's flush hands the lines to the file stream; they land a moment later.
    await waitFor(() => readFileSync(jsonl, 'utf8').includes('"delete_note"'), 'the JSON Lines sink to write the denial');
    const lines = readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    assert.ok(lines.some((e) => e.subject === bobDelete.subject && e.target === 'delete_note' && e.decision === 'deny'), 'the JSON Lines sink has the same events');
  });
});
