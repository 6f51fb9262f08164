import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseConfig } from '../../src/config/load.ts';
import { configWarnings, findCommand } from '../../src/config/warnings.ts';
import { startWarden } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';

describe('start-up warnings about a configuration that cannot work', () => {
  it('findCommand resolves bare names through PATH and paths as given', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-path-'));
    try {
      const tool = join(dir, 'my-mcp-server');
      writeFileSync(tool, '#!/bin/sh\n');
      chmodSync(tool, 0o755);
      writeFileSync(join(dir, 'not-executable'), '');
      assert.equal(findCommand('my-mcp-server', { PATH: dir }), tool);
      assert.equal(findCommand('my-mcp-server', { PATH: '/nonexistent' }), undefined);
      assert.equal(findCommand('not-executable', { PATH: dir }), undefined);
      assert.equal(findCommand(tool, {}), tool);
      assert.equal(findCommand('./my-mcp-server', {}, dir), tool);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unknown stdio command and a demo-less embedded server without users each give a warning naming the key', () => {
    const config = parseConfig({
      publicUrl: 'https://mcp.example.com',
      servers: [
        { name: 'ok', path: '/ok', upstream: { stdio: { command: 'true' } } },
        { name: 'gone', path: '/gone', upstream: { stdio: { command: 'no-such-mcp-server-xyz' } } },
        { name: 'remote', path: '/remote', upstream: { http: { url: 'https://up.example/mcp' } } },
      ],
    });
    const warnings = configWarnings(config, { env: { PATH: process.env.PATH }, userCount: 0 });
    assert.deepEqual(warnings.map((w) => w.key), ['servers.1.upstream.stdio.command', 'authorizationServer.embedded']);
    assert.match(warnings[0]!.message, /"no-such-mcp-server-xyz" is not an executable on PATH: sessions of server "gone" will fail/);
    assert.match(warnings[1]!.message, /mcp-warden users add/);
    assert.deepEqual(configWarnings(config, { env: { PATH: process.env.PATH }, userCount: 1 }).map((w) => w.key), ['servers.1.upstream.stdio.command']);
  });

  it('startWarden logs the warnings as JSON lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-warn-'));
    const sink = new PassThrough();
    let log = '';
    sink.on('data', (c: Buffer) => { log += c.toString('utf8'); });
    try {
      const warden = await startWarden((port) => parseConfig({
        publicUrl: `http://127.0.0.1:${port}`, listen: { port }, storage: { sqlite: { path: join(dir, 'w.db') } },
        servers: [{ name: 'gone', path: '/mcp', upstream: { stdio: { command: 'no-such-mcp-server-xyz' } } }],
      }), { logger: createLogger('info', sink), env: { PATH: process.env.PATH }, announce: () => {} });
      await warden.close();
      const events = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event?: string; key?: string; level: number });
      const keys = events.filter((e) => e.event === 'config_warning').map((e) => e.key);
      assert.deepEqual(keys, ['servers.0.upstream.stdio.command', 'authorizationServer.embedded']);
      assert.ok(events.filter((e) => e.event === 'config_warning').every((e) => e.level === 40), 'logged at warn');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
