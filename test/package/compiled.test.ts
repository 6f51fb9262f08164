/**
 * The published `mcp-warden` package runs its build, not its sources: dist/ compiled by
 * `tsc -p tsconfig.build.json` (what prepack runs), started by the same bin/mcp-warden.js,
 * on plain Node without a TypeScript loader. The build goes into a temporary folder inside the
 * checkout (so node_modules resolves as it does in an install), laid out as the package is:
 * package.json, bin/, dist/, and no src/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');

/** Runs an ES module snippet with plain Node (no tsx: only what the package itself provides). */
function plainNode(code: string, cwd: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_OPTIONS: '' } });
}

describe('the compiled package (dist/) on plain Node', () => {
  let pkg: string;
  let data: string;

  before(() => {
    pkg = mkdtempSync(join(ROOT, '.build-test-'));
    data = mkdtempSync(join(tmpdir(), 'warden-compiled-'));
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], { encoding: 'utf8' });
    assert.equal(tsc.status, 0, `tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`);
    // What build:dist runs after tsc: the JavaScript sources (the demo notes server) as they are.
    const copy = spawnSync(process.execPath, [join(ROOT, 'scripts/copy-js-sources.mjs'), join(pkg, 'dist')], { encoding: 'utf8' });
    assert.equal(copy.status, 0, copy.stderr);
    copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    mkdirSync(join(pkg, 'bin'));
    copyFileSync(join(ROOT, 'bin/mcp-warden.js'), join(pkg, 'bin/mcp-warden.js'));
  });

  after(() => {
    rmSync(pkg, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  });

  it('emits JavaScript with .js imports, declarations and source maps carrying their sources', () => {
    const main = readFileSync(join(pkg, 'dist/cli/main.js'), 'utf8');
    assert.doesNotMatch(main, /from '[^']+\.ts'/, 'relative imports rewritten to .js');
    assert.ok(existsSync(join(pkg, 'dist/client/index.d.ts')));
    const map = JSON.parse(readFileSync(join(pkg, 'dist/client/session.js.map'), 'utf8')) as { sourcesContent?: string[] };
    assert.ok(map.sourcesContent?.[0]?.includes('class WardenClient'), 'sources inlined: the package ships no src/');
  });

  it('bin/mcp-warden.js runs dist/ where there is no src/ beside it: --version prints the package version', () => {
    const version = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string }).version;
    const r = spawnSync(process.execPath, [join(pkg, 'bin/mcp-warden.js'), '--version'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `mcp-warden ${version}\n`);
  });

  it("`import { WardenClient } from 'mcp-warden/client'`'s target loads on plain Node", () => {
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { exports: Record<string, { default: string; types: string }> };
    const target = manifest.exports['./client']!;
    assert.ok(existsSync(join(pkg, target.types)), `types at ${target.types}`);
    const r = plainNode(`const { WardenClient } = await import(${JSON.stringify(join(pkg, target.default))}); console.log(typeof WardenClient);`, pkg);
    assert.equal(r.stdout.trim(), 'function', r.stderr);
  });

  it('the audit writer thread runs compiled: events recorded through it reach the database', () => {
    const dist = join(pkg, 'dist');
    const r = plainNode(
      `
      const { openDatabase } = await import(${JSON.stringify(join(dist, 'storage/sqlite/database.js'))});
      const { SqliteWorkerAuditSink, queryAuditEvents } = await import(${JSON.stringify(join(dist, 'audit/index.js'))});
      const db = openDatabase(${JSON.stringify(join(data, 'audit.db'))});
      const errors = [];
      const sink = new SqliteWorkerAuditSink(db, (e) => errors.push(e.message));
      for (let i = 0; i < 300; i++) sink.record({ time: new Date().toISOString(), subject: 'compiled', clientId: 'c', roles: [], server: 'notes', method: 'tools/call', target: 'list_notes', decision: 'allow', rule: 'r', reason: 'ok', latencyUs: 1 });
      await sink.flush();
      const threadId = sink.worker.threadId;
      await sink.close();
      console.log(JSON.stringify({ rows: queryAuditEvents(db, { subject: 'compiled', limit: 1000 }).length, threadId, errors }));
      `,
      pkg,
    );
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { rows: number; threadId: number; errors: string[] };
    assert.deepEqual(result.errors, []);
    assert.notEqual(result.threadId, 0, 'written by a worker thread');
    assert.equal(result.rows, 300);
  });

  it('the demo notes server command runs the compiled server without tsx (a dev dependency, not installed with the package)', () => {
    const r = plainNode(`const { demoServerCommand } = await import(${JSON.stringify(join(pkg, 'dist/config/demo.js'))}); console.log(JSON.stringify(demoServerCommand()));`, pkg);
    assert.equal(r.status, 0, r.stderr);
    const { args } = JSON.parse(r.stdout) as { command: string; args: string[] };
    // The demo server is plain JavaScript (no loader in its children): copied into dist/ as it is.
    assert.deepEqual(args, [join(pkg, 'dist/demo/notes-server.mjs')]);
    assert.ok(existsSync(args[0]!), 'the build ships the server it names');
  });
});
