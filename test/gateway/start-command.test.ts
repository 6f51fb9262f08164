import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixtureIssuer, type FixtureIssuer } from './fixtures/issuer.ts';
import { TINY_SERVER } from './fixtures/raw.ts';

const BIN = fileURLToPath(new URL('../../bin/mcp-warden.js', import.meta.url));

describe('mcp-warden start', () => {
  let dir: string;
  let issuer: FixtureIssuer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-start-'));
    issuer = await startFixtureIssuer();
  });
  after(async () => {
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--config FILE: prints the endpoint and how to connect, serves metadata, and exits 0 on SIGTERM', async () => {
    const file = join(dir, 'warden.yaml');
    writeFileSync(file, [
      'listen: { host: 127.0.0.1, port: 0 }',
      'publicUrl: https://mcp.example.com',
      `storage: { sqlite: { path: ${JSON.stringify(join(dir, 'w.db'))} } }`,
      'authorizationServer:',
      `  external: { issuer: ${JSON.stringify(issuer.issuer)} }`,
      'log: { level: warn }',
      'servers:',
      '  - name: tiny',
      '    path: /mcp',
      `    upstream: { stdio: { command: ${JSON.stringify(TINY_SERVER.command)}, args: ${JSON.stringify(TINY_SERVER.args)} } }`,
      '    scopes: [mcp:read]',
    ].join('\n'));
    const child = spawn(process.execPath, [BIN, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    const listening = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: string) => {
        out += c;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m && out.includes('Ctrl-C')) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    assert.match(out, /MCP endpoint https:\/\/mcp\.example\.com\/mcp/);
    assert.match(out, /npx mcp-warden connect https:\/\/mcp\.example\.com\/mcp/);
    assert.match(out, /https:\/\/mcp\.example\.com\/\.well-known\/oauth-protected-resource\/mcp/);
    const doc = await (await fetch(`${listening}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.equal(doc.resource, 'https://mcp.example.com/mcp');
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
  });

  it('an invalid configuration stops start-up with a message naming the key, exit 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'publicUrl: not a url\nservers: []\n');
    const child = spawn(process.execPath, [BIN, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    // 'close': exited and its stderr read to the end.
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 1);
    assert.match(err, /publicUrl/);
    assert.match(err, /servers/);
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
  });
});
