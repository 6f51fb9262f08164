import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import type { Config } from '../../src/config/schema.ts';

const PASSWORD = 'demo password for e2e';

describe('e2e: npm start configuration (embedded AS + demo notes server) with a real token and the SDK client', () => {
  let warden: Warden;
  let dir: string;
  let endpoint: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-e2e-gw-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') };
    // The demo users, seeded here rather than by demo mode so this journey tests the gateway.
    const db = openDatabase(env.WARDEN_DB);
    const users = new UserStore(createSqliteUserRecords(db));
    await users.add('alice', PASSWORD, ['admin']);
    await users.add('bob', PASSWORD, ['member']);
    db.close();
    const demoLike = (port: number): Config => {
      const config = buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
      const as = config.authorizationServer as { embedded: Record<string, unknown> };
      return { ...config, authorizationServer: { embedded: { ...as.embedded, demo: false } } } as Config;
    };
    warden = await startWarden(demoLike, { env, announce: () => {} });
    endpoint = `${warden.config.publicUrl}/mcp`;
  });
  after(async () => {
    await warden.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function connect(username: string, scope: string) {
    const tokens = await obtainTokens({ issuer: warden.config.publicUrl, username, password: PASSWORD, resource: endpoint, scope });
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => tokens.access_token } });
    await client.connect(transport);
    return { client, transport };
  }

  it('RFC 9728: the gateway\'s metadata sends clients to the embedded AS on the same origin', async () => {
    const doc = await (await fetch(`${warden.config.publicUrl}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.equal(doc.resource, endpoint);
    assert.deepEqual(doc.authorization_servers, [warden.config.publicUrl]);
    const as = await fetch(`${warden.config.publicUrl}/.well-known/oauth-authorization-server`);
    assert.equal(as.status, 200);
    assert.equal((await as.json()).issuer, warden.config.publicUrl);
  });

  it('alice (admin) gets a token by the code flow and uses the notes server through /mcp, including an admin tool', async () => {
    const { client, transport } = await connect('alice', 'notes:read notes:write');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('list_notes') && tools.includes('create_note'));
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.ok(JSON.stringify(who.content).length > 0);
    const created = await client.callTool({ name: 'create_note', arguments: { title: 'from e2e', body: 'hello' } });
    assert.notEqual(created.isError, true);
    await transport.terminateSession();
    await client.close();
  });

  it('bob (member) reads, but create_note is refused by the policy (-32003) and hidden from tools/list', async () => {
    const { client, transport } = await connect('bob', 'notes:read');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('list_notes'));
    assert.ok(!tools.includes('delete_note'));
    await assert.rejects(client.callTool({ name: 'delete_note', arguments: { id: '1' } }), (err: Error) => /Forbidden/.test(err.message));
    await transport.terminateSession();
    await client.close();
  });
});
