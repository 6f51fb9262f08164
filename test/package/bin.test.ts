/**
 * bin/mcp-warden.js picks what to run: the TypeScript sources through tsx in a checkout, the
 * build (dist/) in the published package (which ships no src/) or in a checkout installed without
 * dev dependencies, and a one-line explanation when it has neither. Each case runs the real bin,
 * copied into a temporary package whose src/ and dist/ entry points say which one ran.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');
const dirs: string[] = [];

/** A package folder with bin/mcp-warden.js and the given files. */
function fixture(files: Record<string, string>, withTsx: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bin-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin/mcp-warden.js'), join(dir, 'bin/mcp-warden.js'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  if (withTsx) {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules/tsx'), join(dir, 'node_modules/tsx'));
  }
  return dir;
}

const SOURCE = { 'src/cli/main.ts': "export async function main(argv: string[]): Promise<number> { console.log('source', argv.join(' ')); return 0; }\n" };
const BUILT = { 'dist/cli/main.js': "export async function main(argv) { console.log('dist', argv.join(' ')); return 3; }\n" };

function runBin(dir: string) {
  return spawnSync(process.execPath, [join(dir, 'bin/mcp-warden.js'), 'status', '--x'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
}

describe('bin/mcp-warden.js: sources in a checkout, the build when installed', () => {
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('a checkout (src/ beside bin/, tsx installed) runs the TypeScript sources, even when a build exists', () => {
    const r = runBin(fixture({ ...SOURCE, ...BUILT }, true));
    assert.equal(r.stdout, 'source status --x\n', r.stderr);
    assert.equal(r.status, 0);
  });

  it('the published package (no src/) runs dist/ and passes its exit code on', () => {
    const r = runBin(fixture(BUILT, false));
    assert.equal(r.stdout, 'dist status --x\n', r.stderr);
    assert.equal(r.status, 3);
  });

  it('a checkout installed without dev dependencies (no tsx) runs its build', () => {
    const r = runBin(fixture({ ...SOURCE, ...BUILT }, false));
    assert.equal(r.stdout, 'dist status --x\n', r.stderr);
  });

  it('this checkout: `node bin/mcp-warden.js --version` runs the sources and prints the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/mcp-warden.js'), '--version'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `mcp-warden ${version}\n`);
  });

  it('neither tsx nor a build: one line saying what to run, exit 1', () => {
    const r = runBin(fixture(SOURCE, false));
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'mcp-warden: this checkout has neither tsx to run its sources (a dev dependency: run `npm install`) nor a build (run `npm run build`)\n');
  });
});
