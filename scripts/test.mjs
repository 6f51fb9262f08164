#!/usr/bin/env node
// `npm test`: every *.test.ts under test/, through node's own test runner with tsx.
// Node 20's --test takes no globs, so the files are listed here. Extra arguments
// (file paths or a folder) narrow the run: `npm test -- test/policy`.
// First it makes sure the system programs the tests drive are there (prerequisites.mjs:
// chromium, secret-tool, gnome-keyring, dbus, nginx), installing them with apt-get when run as root,
// and on Node 22 and 23 builds better-sqlite3 12 for that Node (legacy-sqlite-driver.mjs).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureLegacySqliteDriver } from './legacy-sqlite-driver.mjs';
import { ensurePrerequisites } from './prerequisites.mjs';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path).sort()) collect(join(path, entry), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

// `--test-concurrency=N` overrides the default of 2 test files at a time (docs/benchmarks.md has
// timings); every other argument is a file or folder.
const concurrencyArg = process.argv.slice(2).find((a) => /^--test-concurrency=\d+$/.test(a));
const roots = process.argv.slice(2).filter((a) => a !== concurrencyArg);
const files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
if (!ensurePrerequisites()) process.exit(1);
// The SQLite driver's fallback test needs better-sqlite3 12 built for this Node (Node 22 and 23
// only). Should the build fail, that test fails with the reason; the others run.
const legacyDriverFailure = files.some((f) => f.endsWith('sqlite-driver.test.ts')) ? ensureLegacySqliteDriver() : undefined;
// The spec reporter, not TAP (node's default when stdout is a pipe): it ends with a "failing
// tests" list that repeats each failure with its error, so a log cut to its last lines (as CI
// keeps it) still says what failed.
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    concurrencyArg ?? '--test-concurrency=2',
    '--test-timeout=120000',
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, NODE_NO_WARNINGS: '1', ...(legacyDriverFailure ? { MCP_WARDEN_TEST_LEGACY_SQLITE_FAILURE: legacyDriverFailure } : {}) } },
);
process.exit(result.status ?? 1);
