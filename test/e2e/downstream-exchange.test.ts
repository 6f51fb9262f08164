import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { demoServerCommand } from '../../src/config/demo.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { connectClient, NOTES, PASSWORD, seedUsers, startNotesMcpApi, textOf, type NotesMcpApi } from '../downstream/e2e-fixtures.ts';

const API = 'https://notes-api.example.test';
const GATEWAY_CLIENT = 'mcp-warden-gateway';

describe('downstream identity end to end: RFC 8693 token exchange through the gateway', () => {
  let dir: string;
  let api: NotesMcpApi;
  let warden: Warden;
  const tokens: Record<string, Record<string, string>> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-e2e-downstream-'));
    const dbPath = join(dir, 'warden.db');
    await seedUsers(dbPath, ['alice', 'bob']);
    api = await startNotesMcpApi();
    warden = await startWarden((port) => parseConfig({
      listen: { host: '127.0.0.1', port },
      publicUrl: `http://127.0.0.1:${port}`,
      storage: { sqlite: { path: dbPath } },
      log: { level: 'silent' },
      authorizationServer: {
        embedded: {
          tokenExchange: {
            gatewayClient: { clientId: GATEWAY_CLIENT, clientSecret: 'e2e-gateway-secret-0123456789abcdef0123' },
            audiences: [{ audience: API, scopes: ['notes:read'], accessTokenTtlSeconds: 300 }],
          },
        },
      },
      servers: [
        { name: 'notes-api', path: '/mcp', upstream: { http: { url: api.url } }, scopes: ['notes:read', 'notes:write'], downstream: { tokenExchange: { audience: API } } },
        {
          name: 'notes-local', path: '/local/mcp', upstream: { stdio: demoServerCommand() }, scopes: ['notes:read'],
          downstream: { tokenExchange: { audience: API, env: 'NOTES_API_TOKEN', userEnv: 'NOTES_API_USER' } },
        },
      ],
    }), { env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    api.trust({ issuer: warden.url, jwksUri: `${warden.url}/oauth/jwks`, audience: API, gatewayClientId: GATEWAY_CLIENT });
    for (const user of ['alice', 'bob']) {
      tokens[user] = {};
      for (const path of ['/mcp', '/local/mcp']) {
        const t = await obtainTokens({ issuer: warden.url, username: user, password: PASSWORD, resource: `${warden.url}${path}`, scope: 'notes:read notes:write', offlineAccess: false });
        tokens[user]![path] = t.access_token;
      }
    }
  });
  after(async () => {
    await warden?.close();
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RFC 8693 + MCP SDK client: alice and bob each get their own data from a downstream API that verifies the exchanged token', async () => {
    for (const user of ['alice', 'bob']) {
      const { client, close } = await connectClient(`${warden.url}/mcp`, tokens[user]!['/mcp']!);
      try {
        const answer = JSON.parse(textOf(await client.callTool({ name: 'my_notes', arguments: {} })));
        assert.equal(answer.sub, user);
        assert.deepEqual(answer.notes, NOTES[user]);
      } finally {
        await close();
      }
    }
    // What the downstream verified: sub = the user, act.sub = the gateway, aud = the API, scope narrowed.
    const subs = new Set(api.verified.map((p) => p.sub));
    assert.deepEqual([...subs].sort(), ['alice', 'bob']);
    for (const p of api.verified) {
      assert.deepEqual(p.act, { sub: GATEWAY_CLIENT });
      assert.equal(p.aud, API);
      assert.equal(p.scope, 'notes:read');
    }
  });

  it('MCP Security Best Practices (token passthrough): the inbound access token never reaches the upstream', () => {
    assert.ok(api.requests.length > 0);
    const inbound = Object.values(tokens).flatMap((t) => Object.values(t));
    for (const headers of api.requests) {
      const all = JSON.stringify(headers);
      for (const token of inbound) assert.ok(!all.includes(token), 'an inbound token was forwarded');
      assert.match(String(headers.authorization), /^Bearer /);
      assert.equal(decodeJwt(String(headers.authorization).slice(7)).aud, API);
    }
  });

  it('RFC 8693 over stdio: each user\'s child gets its own exchanged token in its environment; alice never sees bob\'s', async () => {
    const seen: Record<string, string> = {};
    for (const user of ['alice', 'bob', 'alice']) {
      const { client, close } = await connectClient(`${warden.url}/local/mcp`, tokens[user]!['/local/mcp']!);
      try {
        const text = textOf(await client.callTool({ name: 'whoami', arguments: {} }));
        assert.match(text, new RegExp(`^user: ${user}$`, 'm'));
        const fingerprint = /credential-sha256: ([0-9a-f]{12})/.exec(text)?.[1];
        assert.ok(fingerprint);
        // Never the inbound token: its fingerprint differs from the child's credential.
        assert.notEqual(fingerprint, createHash('sha256').update(tokens[user]!['/local/mcp']!).digest('hex').slice(0, 12));
        if (seen[user] === undefined) seen[user] = fingerprint;
        for (const [other, fp] of Object.entries(seen)) if (other !== user) assert.notEqual(fp, fingerprint);
      } finally {
        await close();
      }
    }
  });
});
