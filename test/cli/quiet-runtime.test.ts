import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/wait-for.ts';
import { runtimeNote } from '../../src/authorization-server/oidc-provider-module.ts';
import { BIN, runBin } from '../helpers/cli.ts';

const WARNING = /oidc-provider WARNING/;

/** Runs `mcp-warden <args>` as a child process on the current Node; its exit code and output. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBin(args, { env: { HOME: process.env.HOME } });
}

describe(`quiet CLI on Node ${process.versions.node}: commands that do not serve print nothing extra`, () => {
  let dir: string;
  let config: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-quiet-'));
    config = join(dir, 'warden.json');
    writeFileSync(config, JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      publicUrl: 'http://127.0.0.1:9',
      storage: { sqlite: { path: join(dir, 'warden.db') } },
      log: { level: 'warn' },
      servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] } }, scopes: ['notes:read'] }],
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const args of [['users', 'list'], ['keys', 'list'], ['secrets', 'list']]) {
    it(`mcp-warden ${args.join(' ')} on a fresh database: its answer on stdout, an empty stderr`, async () => {
      const r = await run([...args, '--config', config]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length > 0);
      assert.doesNotMatch(r.stderr, WARNING);
      assert.equal(r.stderr, '');
    });
  }

  it('mcp-warden clients add and list (they build a provider to validate client metadata) print no runtime warning either', async () => {
    const r = await run(['clients', 'add', '--name', 'cli test', '--public', '--native', '--redirect-uri', 'http://127.0.0.1/cb', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /client_id: /);
    assert.equal(r.stderr, '');
    const list = await run(['clients', 'list', '--config', config]);
    assert.match(list.stdout, /cli test/);
    assert.equal(list.stderr, '');
  });

  it('mcp-warden start stays honest: one line of its own about an unsupported Node, never oidc-provider\'s raw warning', async () => {
    const child = spawn(process.execPath, [BIN, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    try {
      await waitFor(() => out.includes('Ctrl-C') || child.exitCode !== null, 'the start banner', { timeoutMs: 30_000 });
      assert.match(out, /listening on/);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exit, 0, err);
    }
    assert.doesNotMatch(err, WARNING);
    const notes = err.split('\n').filter((l) => l.startsWith('mcp-warden: note:'));
    if (runtimeNote()) {
      assert.equal(notes.length, 1, err);
      assert.match(notes[0]!, /Node\.js 22 LTS/);
    } else {
      assert.equal(notes.length, 0, err);
    }
  });

  it('runtimeNote: silent on Node 22 LTS (Jod) and later LTS lines, a note on Node 20 (Iron) or a non-LTS release', () => {
    assert.equal(runtimeNote({ lts: 'Jod' }), undefined);
    assert.equal(runtimeNote({ lts: 'Krypton' }), undefined);
    assert.match(runtimeNote({ lts: 'Iron' }) ?? '', /supports Node\.js 22 LTS and later/);
    assert.match(runtimeNote({}) ?? '', /not an LTS release/);
  });
});
