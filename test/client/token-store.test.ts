import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../../src/client/token-store.ts';
import { withFileLock } from '../../src/client/file-lock.ts';
import { isClientError } from '../../src/client/errors.ts';
import { resolveClientHome } from '../../src/client/paths.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SERVER = 'https://mcp.example.com/mcp';
const root = mkdtempSync(join(tmpdir(), 'warden-token-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshHome = () => join(root, `home-${++n}`);
// The plaintext file mode: these tests are about the file and its locks (keychain mode: token-store-keychain.test.ts).
const FILE = { mode: 'file' } as const;

describe('token store', () => {
  it('OAuth 2.1 §7.1: writes a 0600 file in a 0700 folder, and tightens a folder that was group-readable', async () => {
    const home = freshHome();
    mkdirSync(join(home, 'servers'), { recursive: true });
    chmodSync(join(home, 'servers'), 0o755);
    const store = new TokenStore(home, {}, FILE);
    await store.update(SERVER, (r) => {
      r.tokens = { access_token: 'at-1', refresh_token: 'rt-1' };
    });
    assert.equal(statSync(join(home, 'servers')).mode & 0o777, 0o700);
    assert.equal(statSync(store.pathFor(SERVER)).mode & 0o777, 0o600);
    assert.equal((await store.read(SERVER)).tokens?.access_token, 'at-1');
  });

  it('resolves its folder from MCP_WARDEN_HOME, then XDG_CONFIG_HOME, then ~/.config', () => {
    assert.equal(resolveClientHome({ MCP_WARDEN_HOME: '/x/y' }), '/x/y');
    assert.equal(resolveClientHome({ XDG_CONFIG_HOME: '/cfg' }), '/cfg/mcp-warden');
    assert.match(resolveClientHome({}), /\.config\/mcp-warden$/);
  });

  it('a corrupt file is a store_corrupt error naming the file, and quarantine sets it aside', async () => {
    const store = new TokenStore(freshHome(), {}, FILE);
    await store.update(SERVER, () => undefined);
    writeFileSync(store.pathFor(SERVER), 'not json at all');
    await assert.rejects(store.read(SERVER), (err) => isClientError(err, 'store_corrupt') && err.message.includes(store.pathFor(SERVER)));
    // A well-formed JSON of the wrong shape is corrupt too.
    writeFileSync(store.pathFor(SERVER), JSON.stringify({ version: 1, serverUrl: SERVER, clients: { x: { client_id: 5 } } }));
    await assert.rejects(store.read(SERVER), (err) => isClientError(err, 'store_corrupt'));
    const aside = await store.quarantine(SERVER);
    assert.match(aside, /\.corrupt-\d+$/);
    assert.deepEqual((await store.read(SERVER)).clients, {});
  });

  it('keys client registrations by issuer (SEP-2352) and keeps one file per server', async () => {
    const store = new TokenStore(freshHome(), {}, FILE);
    await store.update(SERVER, (r) => {
      r.clients['https://as-1.example'] = { client_id: 'c1', issuer: 'https://as-1.example' };
    });
    await store.update(SERVER, (r) => {
      r.clients['https://as-2.example'] = { client_id: 'c2', issuer: 'https://as-2.example' };
    });
    await store.update('https://other.example/mcp', () => undefined);
    const record = await store.read(SERVER);
    assert.deepEqual(Object.keys(record.clients).sort(), ['https://as-1.example', 'https://as-2.example']);
    assert.equal(readdirSync(store.dir).filter((f) => f.endsWith('.json')).length, 2);
  });

  it('concurrent writers in four processes lose no update (file lock + atomic rename)', async () => {
    const home = freshHome();
    const script = `
      import { TokenStore } from ${JSON.stringify(join(import.meta.dirname, '../../src/client/token-store.ts'))};
      const store = new TokenStore(process.env.HOME_DIR, {}, { mode: 'file' });
      for (let i = 0; i < 15; i++) {
        await store.update(${JSON.stringify(SERVER)}, (r) => { r.clients[process.env.WRITER + '-' + i] = { client_id: 'x' }; });
      }`;
    const writers = ['a', 'b', 'c', 'd'].map(
      (writer) =>
        new Promise<number>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
            env: { ...process.env, HOME_DIR: home, WRITER: writer },
            stdio: ['ignore', 'ignore', 'inherit'],
          });
          child.on('error', reject);
          child.on('exit', (code) => resolve(code ?? 1));
        }),
    );
    assert.deepEqual(await Promise.all(writers), [0, 0, 0, 0]);
    const record = await new TokenStore(home, {}, FILE).read(SERVER);
    assert.equal(Object.keys(record.clients).length, 60);
    assert.deepEqual(readdirSync(join(home, 'servers')).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock')), []);
  });
});

describe('file lock', () => {
  it('serializes holders in one process: no two run at once', async () => {
    const lock = join(root, 'serial.lock');
    let active = 0;
    let maxActive = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withFileLock(lock, async () => {
          active += 1;
          maxActive = Math.max(maxActive, active);
          await new Promise((r) => setTimeout(r, 5));
          active -= 1;
        }),
      ),
    );
    assert.equal(maxActive, 1);
  });

  it('breaks a lock left by a process that no longer exists', async () => {
    const lock = join(root, 'dead.lock');
    // A pid far above pid_max on Linux cannot be alive.
    writeFileSync(lock, `99999999 ${Date.now()}`);
    assert.equal(await withFileLock(lock, async () => 'ran', { timeoutMs: 2000 }), 'ran');
  });

  it('gives up with lock_timeout while a live holder keeps it', async () => {
    const lock = join(root, 'held.lock');
    writeFileSync(lock, `${process.ppid} ${Date.now()}`);
    await assert.rejects(withFileLock(lock, async () => 'ran', { timeoutMs: 300 }), (err) => isClientError(err, 'lock_timeout'));
    rmSync(lock);
  });
});

describe('file lock heartbeat', () => {
  it('a live holder that outlasts staleMs keeps its lock: a waiter does not break in', async () => {
    const lock = join(root, 'long.lock');
    const order: string[] = [];
    // Held for more than three stale periods, so without the heartbeat the waiter would break in;
    // with it (every staleMs / 3) only a stall of the holder's event loop longer than 400 ms could
    // let the lock look stale. Production's staleMs is 60 s; 150 ms here was within a loaded
    // runner's pauses.
    const staleMs = 600;
    const long = withFileLock(lock, async () => {
      order.push('long start');
      await new Promise((r) => setTimeout(r, 2000));
      order.push('long end');
    }, { staleMs });
    // The long holder has the lock before the waiter starts waiting (a positive signal, not a guess).
    await waitFor(() => order.includes('long start'), 'the long holder to take the lock');
    await withFileLock(lock, async () => {
      order.push('waiter');
    }, { staleMs, timeoutMs: 10_000 });
    await long;
    assert.deepEqual(order, ['long start', 'long end', 'waiter']);
  });
});
