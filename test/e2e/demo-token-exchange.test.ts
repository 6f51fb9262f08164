/**
 * `npm start` shows RFC 8693 token exchange: the demo serves a second MCP server at /mcp/api whose
 * upstream is an HTTP MCP server (src/demo/notes-api.ts) that accepts only tokens the gateway
 * obtained for it by token exchange. Run as a real process (`node bin/mcp-warden.js start --demo`,
 * package.json "start"), signed in as alice and bob by the code flow with PKCE, with the official
 * MCP SDK client; then attacked with the client's own token sent straight to the upstream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { obtainTokens } from '../helpers/oauth.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { freePort } from '../helpers/free-port.ts';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const START = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;

describe('npm start: the demo notes API behind /mcp/api, reached by RFC 8693 token exchange', () => {
  let cwd: string;
  let child: ChildProcess;
  let output = '';
  let base: string;
  let apiUrl: string;
  const password = randomBytes(18).toString('base64url');

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'warden-demo-exchange-'));
    const port = await freePort();
    base = `http://localhost:${port}`;
    const [, bin, ...args] = START.split(' ');
    child = spawn(process.execPath, [join(PACKAGE_ROOT, bin!), ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', PORT: String(port), WARDEN_DB: join(cwd, 'warden.db'), WARDEN_DEMO_PASSWORD: password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
    await waitFor(() => output.includes('Ctrl-C stops.') || child.exitCode !== null, 'the start banner', { timeoutMs: 60_000, intervalMs: 50 });
    const m = /demo notes API \(upstream of \/mcp\/api[^)]*\): (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(output);
    assert.ok(m, `the banner names the demo notes API:\n${output}`);
    apiUrl = m[1]!;
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(cwd, { recursive: true, force: true });
  });

  it('RFC 8693 §2: the upstream sees the user, the gateway acting for them and its own audience, never the client\'s token', async () => {
    const endpoint = `${base}/mcp/api`;
    assert.match(output, new RegExp(`notes-api: MCP endpoint ${endpoint}`));
    for (const user of ['alice', 'bob']) {
      const tokens = await obtainTokens({ issuer: base, username: user, password, resource: endpoint, scope: 'notes:read' });
      const client = new Client({ name: 'demo-exchange-e2e', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => tokens.access_token } });
      await client.connect(transport);
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      const seen = JSON.parse((result.content as { text: string }[])[0]!.text) as { user: string; actor: string; audience: string; scope: string };
      assert.equal(seen.user, user, 'sub stays the user');
      assert.equal(seen.actor, 'mcp-warden-gateway', 'act.sub names the gateway (RFC 8693 §4.1)');
      assert.equal(seen.audience, 'urn:mcp-warden:demo:notes-api');
      assert.notEqual(seen.audience, decodeJwt(tokens.access_token).aud, 'a different token from the client\'s');
      const notes = await client.callTool({ name: 'my_notes', arguments: {} });
      assert.match((notes.content as { text: string }[])[0]!.text, new RegExp(`private to ${user}`));
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    }
  });

  it('RFC 8707 §2 / MCP Security Best Practices (Token Passthrough): the client\'s own token sent straight to the upstream is refused (wrong audience)', async () => {
    const endpoint = `${base}/mcp/api`;
    const tokens = await obtainTokens({ issuer: base, username: 'alice', password, resource: endpoint, scope: 'notes:read' });
    const res = await fetch(apiUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'attacker', version: '1' } } }),
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
    const body = (await res.json()) as { error: string };
    assert.equal(body.error, 'invalid_token');
    // And with no token at all.
    const none = await fetch(apiUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(none.status, 401);
    await none.body?.cancel();
  });
});
