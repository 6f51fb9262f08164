import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('start-up: requests before readiness', () => {
  it('RFC 9110 §15.6.4: a warden still starting answers 503 with Retry-After in each endpoint\'s own format, then serves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-startup-'));
    let port = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let extensionStarted = false;
    const starting = startWarden((p) => {
      port = p;
      return parseConfig({
        publicUrl: `http://127.0.0.1:${p}`, listen: { port: p }, storage: { sqlite: { path: join(dir, 'warden.db') } },
        servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } }, scopes: ['notes:read'] }],
      });
    }, {
      env: { PATH: process.env.PATH },
      // A slow start: the authorization server is not ready until the test says so.
      authorizationServerExtensions: [async () => { extensionStarted = true; await gate; }],
    });
    try {
      await waitFor(() => extensionStarted, 'the warden to be listening and starting up');
      const base = `http://127.0.0.1:${port}`;

      const token = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
      assert.equal(token.status, 503);
      assert.equal(token.headers.get('retry-after'), '1');
      assert.equal(token.headers.get('cache-control'), 'no-store');
      assert.equal((await token.json() as { error: string }).error, 'temporarily_unavailable');

      const metadata = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`);
      assert.equal(metadata.status, 503);
      assert.equal((await metadata.json() as { error: string }).error, 'temporarily_unavailable');

      const mcp = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.equal(mcp.status, 503);
      assert.equal(mcp.headers.get('retry-after'), '1');
      const rpc = await mcp.json() as { jsonrpc: string; error: { code: number; message: string } };
      assert.equal(rpc.jsonrpc, '2.0');
      assert.match(rpc.error.message, /starting up/);

      const page = await fetch(`${base}/interaction/abc`);
      assert.equal(page.status, 503);
      assert.match(page.headers.get('content-type')!, /^text\/html/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      await page.arrayBuffer();

      release();
      await starting;
      const ready = await fetch(`${base}/.well-known/oauth-authorization-server`);
      assert.equal(ready.status, 200);
      await ready.arrayBuffer();
    } finally {
      release();
      await starting.then((w) => w.close(), () => {});
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
