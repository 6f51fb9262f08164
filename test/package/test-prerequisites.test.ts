/**
 * `npm test` on a fresh machine with only Node and npm: scripts/test.mjs provisions the system
 * programs the browser and keychain tests drive (chromium, secret-tool, gnome-keyring, dbus) before
 * running anything. The real script runs here on a PATH that holds only `node` (and, for the root
 * case, an `apt-get` stand-in that records its arguments and puts the programs on that PATH, since
 * this shared machine's packages must not be removed and reinstalled by a test).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PREREQUISITES } from '../../scripts/prerequisites.mjs';

const ROOT = join(import.meta.dirname, '../..');
const TEST_SCRIPT = join(ROOT, 'scripts/test.mjs');
const NOBODY = 65534;

/**
 * A Node that user `nobody` may run: ours, unless it lives somewhere only root can read (Node 22 in
 * CI comes from `npx -p node@22`, under root's npm cache), then the machine's own.
 */
function nodeForNobody(): string {
  for (const candidate of [process.execPath, '/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(candidate)) continue;
    if (spawnSync(candidate, ['-e', '0'], { uid: NOBODY, gid: NOBODY }).status === 0) return candidate;
  }
  throw new Error('no Node binary that user nobody can run: install Node system-wide to run this test as root');
}

describe('npm test provisions its system prerequisites (scripts/test.mjs)', () => {
  let dir: string;
  let tests: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-prerequisites-'));
    chmodSync(dir, 0o755);
    // One passing test file, so a run that gets past the check has something to run.
    tests = join(dir, 'tests');
    mkdirSync(tests);
    writeFileSync(join(tests, 'ok.test.ts'), "import { it } from 'node:test';\nit('runs', () => {});\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * This environment without the runner's NODE_TEST_CONTEXT: with it, the inner `node --test`
   * reports to this runner as its child and runs no file of its own (exit 0, nothing printed).
   */
  function outsideThisRunner(): NodeJS.ProcessEnv {
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    return env;
  }

  /** A bin folder holding only `node`. */
  function bareBin(name: string): string {
    const bin = join(dir, name);
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    return bin;
  }

  it('all present: the tests run, nothing is provisioned', () => {
    const r = spawnSync(process.execPath, [TEST_SCRIPT, tests], { cwd: ROOT, encoding: 'utf8', env: outsideThisRunner() });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ℹ pass 1$/m);
    assert.doesNotMatch(r.stderr, /provisioning|missing/);
  });

  it('a failing test is named again, with its error, in the last lines of the output (what a CI log keeps)', () => {
    const failing = join(dir, 'failing');
    mkdirSync(failing);
    writeFileSync(join(failing, 'a.test.ts'), "import { it } from 'node:test';\nit('passes first', () => {});\nit('the one that fails', () => { throw new Error('the reason it failed'); });\n");
    // More passing output after the failure, as in a long run where it scrolls away.
    writeFileSync(join(failing, 'b.test.ts'), `import { it } from 'node:test';\n${Array.from({ length: 40 }, (_, i) => `it('later ${i}', () => {});`).join('\n')}\n`);
    const r = spawnSync(process.execPath, [TEST_SCRIPT, failing], { cwd: ROOT, encoding: 'utf8', env: outsideThisRunner() });
    assert.equal(r.status, 1, r.stderr);
    const tail = r.stdout.trimEnd().split('\n').slice(-20).join('\n');
    assert.match(tail, /failing tests:/);
    assert.match(tail, /the one that fails/);
    assert.match(tail, /the reason it failed/);
  });

  it('not root and missing: one line naming what is missing and the exact command, exit 1, no test run', () => {
    const bin = bareBin('user-bin');
    // As root, run it as nobody; otherwise as ourselves (not root either way).
    const asRoot = process.getuid?.() === 0;
    const user = asRoot ? { uid: NOBODY, gid: NOBODY } : {};
    const r = spawnSync(asRoot ? nodeForNobody() : process.execPath, [TEST_SCRIPT, tests], { cwd: ROOT, encoding: 'utf8', ...user, env: { PATH: bin, HOME: dir } });
    assert.equal(r.error, undefined, `the test script could not be started: ${r.error?.message}`);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    // Programs named by absolute path (/usr/bin/chromium) may be on this machine; none of the others is on the bare PATH.
    const missing = PREREQUISITES.filter((p) => !p.programs.every((program) => program.startsWith('/') && existsSync(program)));
    const expected = `npm test: missing ${missing.map((p) => `${p.apt} (${p.for})`).join(', ')}; install them with: sudo apt-get update && sudo apt-get install -y ${missing.map((p) => p.apt).join(' ')}`;
    assert.equal(lines[0], expected);
    // The spec reporter's summary (scripts/test.mjs), as the root test below sees it.
    assert.doesNotMatch(r.stdout, /^ℹ tests \d+$/m, 'no test ran');
  });

  it('root with apt-get: apt-get update, then install of exactly the missing packages, said on stderr, then the tests run', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
    const bin = bareBin('root-bin');
    const calls = join(dir, 'apt-calls.jsonl');
    const programs = PREREQUISITES.flatMap((p) => p.programs).filter((p) => !p.startsWith('/'));
    // The stand-in: records its arguments; `install` puts the programs on the PATH as the packages would.
    writeFileSync(
      join(bin, 'apt-get'),
      `#!${process.execPath}
const fs = require('node:fs');
fs.appendFileSync(${JSON.stringify(calls)}, JSON.stringify({ args: process.argv.slice(2), frontend: process.env.DEBIAN_FRONTEND }) + '\\n');
if (process.argv[2] === 'install') for (const p of ${JSON.stringify(programs)}) fs.writeFileSync(${JSON.stringify(bin)} + '/' + p, '#!/bin/sh\\n', { mode: 0o755 });
`,
      { mode: 0o755 },
    );
    const r = spawnSync(process.execPath, [TEST_SCRIPT, tests], { cwd: ROOT, encoding: 'utf8', env: { PATH: bin, HOME: dir } });
    const recorded = existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; frontend: string }) : [];
    assert.deepEqual(recorded.map((c) => c.args), [['update', '-qq'], ['install', '-y', '-qq', 'libsecret-tools', 'gnome-keyring', 'dbus']]);
    assert.ok(recorded.every((c) => c.frontend === 'noninteractive'));
    assert.match(r.stderr, /npm test: provisioning test prerequisites with apt-get: libsecret-tools \(keychain tests\), gnome-keyring \(keychain tests\), dbus \(keychain tests\)/);
    assert.match(r.stderr, /npm test: installed libsecret-tools, gnome-keyring, dbus/);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^ℹ pass 1$/m);
  });
});
