import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
/**
 * Admin commands with `--demo` work on the database `start --demo` / `npm start` created, wherever
 * they run, and never create an empty one (which would report "no users" as if data were lost).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import { findDemoDatabase, PACKAGE_DEMO_DB } from '../../src/cli/config-options.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { runBin } from '../helpers/cli.ts';


function run(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBin(args, { cwd, env: { HOME: process.env.HOME, ...env } });
}

async function seed(path: string, user: string): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  const db = openDatabase(path);
  await new UserStore(createSqliteUserRecords(db)).add(user, 'a demo password for the test', ['admin']);
  db.close();
}

describe('--demo admin commands find the demo database or refuse, naming the paths', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-demo-db-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the package\'s data/warden.db is where npm start (run in the package folder) keeps it', () => {
    assert.equal(PACKAGE_DEMO_DB, fileURLToPath(new URL('../../data/warden.db', import.meta.url)));
  });

  it('looks at ./data/warden.db here first, then the package database; finding none, refuses with both paths and creates nothing', async () => {
    const here = join(dir, 'elsewhere');
    mkdirSync(here);
    const packageDb = join(dir, 'package', 'data', 'warden.db');
    assert.throws(() => findDemoDatabase({}, here, packageDb), (err: Error) => err.name === 'UsageError'
      && err.message.includes(join(here, 'data', 'warden.db')) && err.message.includes(packageDb) && /start the demo first/.test(err.message));
    assert.equal(existsSync(join(here, 'data')), false, 'no data folder was created');
    await seed(packageDb, 'pkg');
    assert.equal(findDemoDatabase({}, here, packageDb), packageDb, 'the npm start database, from another folder');
    await seed(join(here, 'data', 'warden.db'), 'local');
    assert.equal(findDemoDatabase({}, here, packageDb), join(here, 'data', 'warden.db'), 'the one start --demo would use in this folder wins');
  });

  it('users list --demo with WARDEN_DB naming a missing file refuses (exit 2) and does not create it', async () => {
    const missing = join(dir, 'missing', 'warden.db');
    const { code, out, err } = await runCliWithEnv(['users', 'list', '--demo'], { WARDEN_DB: missing });
    assert.equal(code, 2);
    assert.equal(out, '');
    assert.match(err, new RegExp(`no demo database at ${missing.replace(/[.]/g, '\\.')} \\(from WARDEN_DB\\)`));
    assert.equal(existsSync(missing), false);
    assert.equal(existsSync(join(dir, 'missing')), false);
  });

  it('users list --demo run in the folder where start --demo ran lists its users', async () => {
    const folder = join(dir, 'started-here');
    await seed(join(folder, 'data', 'warden.db'), 'carol');
    const r = await run(['users', 'list', '--demo'], folder);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /carol/);
  });
});

/** `mcp-warden <args>` in this process with the given environment. */
async function runCliWithEnv(args: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => { out += d; });
  stderr.on('data', (d) => { err += d; });
  const code = await main(args, { stdout, stderr, env });
  return { code, out, err };
}
