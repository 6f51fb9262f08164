/**
 * A stdio upstream closed while a session's child is being prepared: its environment can take a
 * while (an RFC 8693 exchange for the child's token, a stored secret read), and a gateway that
 * stops meanwhile must not spawn the child afterwards, where nothing would ever end it and its
 * open pipes would keep the process from exiting.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { createStdioPool } from '../../src/gateway/upstreams/stdio-pool.ts';
import { createStdioUpstream } from '../../src/gateway/upstreams/stdio.ts';
import type { Upstream } from '../../src/gateway/upstreams/types.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import { silentLogger } from '../../src/log.ts';

const caller: Caller = { subject: 'alice', clientId: 'c', issuer: 'http://127.0.0.1:9', audience: 'http://127.0.0.1:9/mcp', scopes: [], roles: [], claims: {}, expiresAt: 0, accessToken: 'x' };

describe('a stdio upstream closed while a child\'s environment is made spawns no child', () => {
  for (const share of ['session', 'per-user'] as const) {
    it(`share: ${share}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-stdio-close-'));
      // The child, if it ever starts, leaves this file behind.
      const marker = join(dir, 'spawned');
      try {
        const config = parseConfig({
          listen: { port: 0 }, publicUrl: 'http://127.0.0.1:9', storage: { sqlite: { path: ':memory:' } }, authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } },
          servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: { command: process.execPath, args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x')`], share } } }],
        });
        const server = config.servers[0]!;
        const stdio = (server.upstream as { stdio: NonNullable<Extract<typeof server.upstream, { stdio: unknown }>['stdio']> }).stdio;
        let release!: () => void;
        let asked = false;
        const downstream: DownstreamCredentials = {
          envFor: () => { asked = true; return new Promise((resolve) => { release = () => resolve({ API_TOKEN: 'exchanged' }); }); },
          headersFor: async () => ({}),
        };
        const options = { server, stdio, logger: silentLogger, downstream, env: process.env };
        const upstream: Upstream = share === 'per-user' ? createStdioPool(options) : createStdioUpstream(options);
        const connecting = upstream.connect({ sessionId: 's1', caller, events: { message: () => {}, closed: () => {} } });
        connecting.catch(() => {});
        await new Promise((resolve) => setImmediate(resolve));
        assert.ok(asked, 'the environment is being made');
        await upstream.close();
        release();
        await assert.rejects(connecting, /shutting down/);
        // Long enough for a spawned node to write its file.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        assert.equal(existsSync(marker), false, 'no child was spawned after close');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
