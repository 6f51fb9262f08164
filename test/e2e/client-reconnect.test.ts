/**
 * The bridge survives a server restart: requests during the outage are retried, and the session
 * the restarted gateway no longer knows (404, MCP Streamable HTTP §Session Management) is
 * re-established by replaying the host's initialize, without the host noticing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { main } from '../../src/cli/main.ts';
import { Capture, completeSignIn } from '../client/sign-in.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PASSWORD = 'client reconnect password';
const BIN = join(import.meta.dirname, '../../bin/mcp-warden.js');

describe('e2e: mcp-warden connect across a gateway restart', () => {
  let warden: Warden | undefined;
  let dir: string;
  let home: string;
  let config: (port: number) => Config;
  let client: Client | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-e2e-reconnect-'));
    home = join(dir, 'client-home');
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db'), WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: 'reconnect-agent-secret-0123456789' };
    config = (port: number) => buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
    warden = await startWarden(config, { env, announce: () => {} });
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('MCP Streamable HTTP: a call made while the server is down succeeds once it is back, on a new session', async () => {
    const endpoint = `${warden!.config.publicUrl}/mcp`;
    const port = warden!.port;
    // Sign in once with `login`, as a user would before configuring the host.
    const stderr = new Capture();
    const login = main(['login', endpoint, '--no-browser'], { env: { PATH: process.env.PATH, MCP_WARDEN_HOME: home, MCP_WARDEN_TOKEN_STORE: 'file' }, stdout: new Capture(), stderr });
    await completeSignIn((await stderr.waitFor(/sign in:\s+(\S+)/))[1]!, 'alice', PASSWORD);
    assert.equal(await login, 0, stderr.text);

    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'connect', endpoint, '--no-browser'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MCP_WARDEN_HOME: home, MCP_WARDEN_TOKEN_STORE: 'file' },
      stderr: 'pipe',
    });
    let bridgeLog = '';
    (transport.stderr as Readable).on('data', (c: Buffer) => {
      bridgeLog += c.toString();
    });
    client = new Client({ name: 'e2e-host', version: '1.0.0' });
    await client.connect(transport);
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'list_notes'));

    await warden!.close();
    warden = undefined;
    const during = client.callTool({ name: 'list_notes', arguments: {} });
    // Restart only once the bridge has met the outage and is retrying (a positive signal, not a fixed sleep).
    await waitFor(() => /retrying|reconnecting/.test(bridgeLog), 'the bridge to retry while the server is down', { timeoutMs: 20_000 });
    warden = await startWarden(config(port), { env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') }, announce: () => {} });
    const result = await during;
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.match(bridgeLog, /retrying|reconnecting/);
    assert.match(bridgeLog, /session re-established/);
    assert.doesNotMatch(bridgeLog, /sign in:/, 'the stored sign-in still works after the restart');
    // And the host keeps working on the new session.
    assert.ok((await client.listTools()).tools.length > 0);
  });
});
