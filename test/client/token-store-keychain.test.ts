/**
 * The token store in keychain mode against a real Secret Service (private D-Bus session bus +
 * gnome-keyring-daemon, see secret-service.ts): sealed at rest, migration, tampering, a deleted
 * key, logout, concurrent writers in several processes, and `auto` falling back without a bus.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../../src/client/token-store.ts';
import { WardenClient } from '../../src/client/session.ts';
import { isClientError } from '../../src/client/errors.ts';
import { dataKeyAccount } from '../../src/client/keychain/data-key.ts';
import { findOnPath, probeKeychain } from '../../src/client/keychain/detect.ts';
import { createSecretServiceKeychain } from '../../src/client/keychain/secret-service.ts';
import type { Keychain } from '../../src/client/keychain/types.ts';
import { startSecretService, type SecretService } from './secret-service.ts';

const SERVER = 'https://mcp.example.com/mcp';
const OTHER = 'https://other.example.com/mcp';
const root = mkdtempSync(join(tmpdir(), 'warden-keychain-store-'));
let n = 0;
const freshHome = () => join(root, `home-${++n}`);
/** Token values long and random enough that finding them in a file cannot be a coincidence. */
const secretTokens = () => ({ access_token: `at-${crypto.randomUUID()}`, refresh_token: `rt-${crypto.randomUUID()}` });

function runChild(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe('token store in the OS keychain (real Secret Service)', () => {
  let ss: SecretService;
  before(async () => {
    ss = await startSecretService();
  });
  after(async () => {
    await ss?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  const keychainStore = (home: string, mode: 'auto' | 'keychain' = 'keychain') => new TokenStore(home, {}, { mode, env: ss.env });

  it('auto picks the Secret Service when a round trip works, and the file holds no token bytes (AES-256-GCM at rest)', async () => {
    const home = freshHome();
    const store = keychainStore(home, 'auto');
    assert.equal((await store.resolveBackend()).kind, 'keychain');
    const tokens = secretTokens();
    await store.update(SERVER, (r) => {
      r.tokens = tokens;
    });
    const raw = readFileSync(store.pathFor(SERVER));
    for (const value of [tokens.access_token, tokens.refresh_token, SERVER]) {
      assert.equal(raw.includes(value), false, `${value.slice(0, 3)}… must not be in the file`);
    }
    assert.equal(JSON.parse(raw.toString()).alg, 'A256GCM');
    assert.equal(statSync(store.pathFor(SERVER)).mode & 0o777, 0o600);
    // The data key is in the keychain, one item for this store, and not in the folder.
    const key = ss.lookup(dataKeyAccount(home));
    assert.match(key ?? '', /^[A-Za-z0-9_-]{43}$/);
    for (const file of readdirSync(store.dir)) assert.equal(readFileSync(join(store.dir, file)).includes(key!), false);
    // Another process's store (a new instance, no cached key) reads it back.
    assert.deepEqual((await keychainStore(home).read(SERVER)).tokens, tokens);
  });

  it('list() (mcp-warden status) names the server of a sealed file, though its URL is not in the file in clear', async () => {
    const home = freshHome();
    const store = keychainStore(home);
    const tokens = secretTokens();
    await store.update(SERVER, (r) => {
      r.tokens = tokens;
    });
    assert.equal(readFileSync(store.pathFor(SERVER)).includes(SERVER), false);
    const entries = await keychainStore(home).list();
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.serverUrl, SERVER);
    assert.equal(entries[0]!.record?.tokens?.access_token, tokens.access_token);
  });

  it('migration: a plaintext store from file mode is read in keychain mode and sealed on the first write', async () => {
    const home = freshHome();
    const tokens = secretTokens();
    const plain = new TokenStore(home, {}, { mode: 'file' });
    await plain.update(SERVER, (r) => {
      r.tokens = tokens;
    });
    assert.equal(readFileSync(plain.pathFor(SERVER), 'utf8').includes(tokens.refresh_token), true, 'file mode writes plaintext');
    const store = keychainStore(home);
    assert.deepEqual((await store.read(SERVER)).tokens, tokens);
    await store.update(SERVER, (r) => {
      r.requestedScope = 'notes:read';
    });
    const raw = readFileSync(store.pathFor(SERVER), 'utf8');
    assert.equal(raw.includes(tokens.refresh_token), false);
    assert.deepEqual((await keychainStore(home).read(SERVER)).tokens, tokens, 'nothing lost in the migration');
  });

  it('a tampered file fails GCM authentication: store_corrupt with a clear message, then the session sets it aside for a fresh login', async () => {
    const home = freshHome();
    const store = keychainStore(home);
    await store.update(SERVER, (r) => {
      r.tokens = secretTokens();
    });
    const path = store.pathFor(SERVER);
    const sealed = JSON.parse(readFileSync(path, 'utf8')) as { ciphertext: string };
    const bytes = Buffer.from(sealed.ciphertext, 'base64url');
    bytes[5] = bytes[5]! ^ 0x01;
    writeFileSync(path, JSON.stringify({ ...sealed, ciphertext: bytes.toString('base64url') }));
    await assert.rejects(keychainStore(home).read(SERVER), (err) => isClientError(err, 'store_corrupt') && /integrity check \(AES-256-GCM\)/.test(err.message));
    // A sealed file copied over another server's file does not open either (the server URL is bound as AAD).
    await store.update(OTHER, (r) => {
      r.tokens = secretTokens();
    });
    writeFileSync(path, readFileSync(store.pathFor(OTHER)));
    await assert.rejects(keychainStore(home).read(SERVER), (err) => isClientError(err, 'store_corrupt'));

    const notices: string[] = [];
    const client = new WardenClient({ serverUrl: SERVER, home, tokenStore: 'keychain', env: ss.env, onNotice: (m) => notices.push(m) });
    const record = await client.record();
    assert.equal(record.tokens, undefined, 'treated as empty: the next request signs in afresh');
    assert.match(notices.join('\n'), /is corrupt|integrity check/);
    assert.equal(existsSync(path), false, 'set aside');
    assert.equal(readdirSync(store.dir).some((f) => f.includes('.corrupt-')), true);
  });

  it('a key deleted from the keychain: store_corrupt naming the missing key (fresh login), and the next write makes a new key', async () => {
    const home = freshHome();
    const store = keychainStore(home);
    await store.update(SERVER, (r) => {
      r.tokens = secretTokens();
    });
    const account = dataKeyAccount(home);
    const oldKey = ss.lookup(account);
    await store.resolveBackend().then((b) => (b.kind === 'keychain' ? b.keychain.delete(account) : assert.fail('keychain expected')));
    const fresh = keychainStore(home);
    await assert.rejects(fresh.read(SERVER), (err) => isClientError(err, 'store_corrupt') && /no longer in the OS keychain/.test(err.message));
    const notices: string[] = [];
    const client = new WardenClient({ serverUrl: SERVER, home, tokenStore: 'keychain', env: ss.env, onNotice: (m) => notices.push(m) });
    assert.equal((await client.record()).tokens, undefined);
    assert.match(notices.join('\n'), /no longer in the OS keychain/);
    const tokens = secretTokens();
    await client.store.update(SERVER, (r) => {
      r.tokens = tokens;
    });
    const newKey = ss.lookup(account);
    assert.ok(newKey && newKey !== oldKey, 'a new data key');
    assert.deepEqual((await keychainStore(home).read(SERVER)).tokens, tokens);
  });

  it('RFC 7009 logout path: removing a server forgets its tokens; the key item goes with the last server', async () => {
    const home = freshHome();
    const store = keychainStore(home);
    for (const server of [SERVER, OTHER]) {
      await store.update(server, (r) => {
        r.tokens = secretTokens();
      });
    }
    const account = dataKeyAccount(home);
    assert.equal(await store.remove(SERVER), true);
    assert.ok(ss.lookup(account), 'kept while another server still uses it');
    assert.equal((await keychainStore(home).read(SERVER)).tokens, undefined);
    assert.equal(await store.remove(OTHER), true);
    assert.equal(ss.lookup(account), undefined, 'deleted with the last server');
    assert.equal(await store.remove(OTHER), false);
  });

  it('concurrent writers in four processes lose no update and agree on one data key (key created under the store lock)', async () => {
    const home = freshHome();
    const script = `
      import { TokenStore } from ${JSON.stringify(join(import.meta.dirname, '../../src/client/token-store.ts'))};
      const store = new TokenStore(process.env.HOME_DIR, {}, { mode: 'keychain' });
      for (let i = 0; i < 6; i++) {
        await store.update(${JSON.stringify(SERVER)}, (r) => { r.clients[process.env.WRITER + '-' + i] = { client_id: 'x' }; });
      }`;
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((writer) => runChild(script, { ...ss.env, HOME_DIR: home, WRITER: writer })));
    assert.deepEqual(results.map((r) => r.code), [0, 0, 0, 0], results.map((r) => r.stderr).join('\n'));
    const record = await keychainStore(home).read(SERVER);
    assert.equal(Object.keys(record.clients).length, 24);
    assert.deepEqual(readdirSync(join(home, 'servers')).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock')), []);
  });

  it('explicit file mode never touches the keychain, and says once that the tokens are unencrypted', async () => {
    const home = freshHome();
    const notices: string[] = [];
    const store = new TokenStore(home, {}, { mode: 'file', env: ss.env, onNotice: (m) => notices.push(m) });
    await store.update(SERVER, (r) => {
      r.tokens = secretTokens();
    });
    await store.update(OTHER, () => undefined);
    await new TokenStore(home, {}, { mode: 'file', env: ss.env, onNotice: (m) => notices.push(m) }).update(SERVER, () => undefined);
    assert.equal(notices.length, 1, notices.join('\n'));
    assert.match(notices[0]!, /stored unencrypted .* --token-store file was chosen/);
    assert.equal(ss.lookup(dataKeyAccount(home)), undefined);
  });

  it('once the store is sealed, auto with the keychain briefly unreachable fails with keychain_unavailable and writes no plaintext file', async () => {
    const home = freshHome();
    await keychainStore(home, 'auto').update(SERVER, (r) => {
      r.tokens = secretTokens();
    });
    // As in cron or a systemd unit: the same store, no session bus.
    const unreachable = { ...ss.env, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(root, 'no-such-bus')}` };
    const notices: string[] = [];
    const cron = () => new TokenStore(home, {}, { mode: 'auto', env: unreachable, onNotice: (m) => notices.push(m) });
    const refused = (err: unknown) => isClientError(err, 'keychain_unavailable') && /keeps its tokens encrypted under a key in the OS keychain/.test(err.message) && /--token-store file/.test(err.message);
    // Before a sign-in (read of a new server), and at the write.
    await assert.rejects(cron().read(OTHER), refused);
    await assert.rejects(cron().update(OTHER, (r) => {
      r.tokens = secretTokens();
    }), refused);
    assert.equal(existsSync(cron().pathFor(OTHER)), false, 'no plaintext file for the new server');
    assert.deepEqual(notices, []);
    // Either piece of evidence suffices: the marker left at key creation, or a sealed file.
    rmSync(join(home, 'servers', '.keychain-data-key'));
    await assert.rejects(cron().update(OTHER, () => undefined), refused);
    // With the keychain back, the same store works, and logout clears the marker with the key.
    const store = keychainStore(home, 'auto');
    assert.equal((await store.resolveBackend()).kind, 'keychain');
    await store.update(OTHER, () => undefined);
    assert.equal(existsSync(join(home, 'servers', '.keychain-data-key')), false, 'no new key was made, so no new marker');
    await store.remove(SERVER);
    await store.remove(OTHER);
    assert.equal(ss.lookup(dataKeyAccount(home)), undefined);
    assert.equal((await cron().resolveBackend()).kind, 'file', 'a store with no keychain state falls back as before');
  });

  it('a probe whose lookup fails after the store succeeded clears its item from the keychain', async () => {
    const real = createSecretServiceKeychain({ command: findOnPath('secret-tool', ss.env)!, env: ss.env, timeoutMs: 5000 });
    let account: string | undefined;
    const flaky: Keychain = {
      name: real.name,
      set: async (a, secret, label) => {
        account = a;
        await real.set(a, secret, label);
      },
      get: async () => {
        throw new Error('the keyring was locked between two calls');
      },
      delete: (a) => real.delete(a),
    };
    const probe = await probeKeychain(flaky);
    assert.deepEqual(probe, { ok: false, reason: 'the keyring was locked between two calls' });
    assert.ok(account, 'the probe stored an item');
    assert.equal(ss.lookup(account), undefined, 'the probe item is gone');
  });

  it('a sealed store in explicit file mode is set aside (store_corrupt), never read or rewritten as plaintext', async () => {
    const home = freshHome();
    await keychainStore(home).update(SERVER, (r) => {
      r.tokens = secretTokens();
    });
    await assert.rejects(new TokenStore(home, {}, { mode: 'file' }).read(SERVER), (err) => isClientError(err, 'store_corrupt') && /--token-store file does not use/.test(err.message));
  });
});

describe('keychain detection without a working keychain', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-keychain-none-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('auto with no D-Bus session falls back to the 0600 file with the reason; keychain mode fails with keychain_unavailable', async () => {
    const env = { PATH: process.env.PATH, HOME: dir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'no-such-bus')}` };
    const auto = new TokenStore(join(dir, 'auto'), {}, { mode: 'auto', env });
    const backend = await auto.resolveBackend();
    assert.equal(backend.kind, 'file');
    assert.match(backend.kind === 'file' ? backend.reason : '', /does not work here|not installed/);
    await auto.update(SERVER, (r) => {
      r.tokens = { access_token: 'at' };
    });
    assert.equal(statSync(auto.pathFor(SERVER)).mode & 0o777, 0o600);
    await assert.rejects(
      new TokenStore(join(dir, 'strict'), {}, { mode: 'keychain', env }).update(SERVER, () => undefined),
      (err) => isClientError(err, 'keychain_unavailable') && /^--token-store keychain: /.test(err.message),
    );
  });

  it('the CLI with --token-store keychain and no keychain: exit 1 with the reason before any network call, no stack trace', async () => {
    const { main } = await import('../../src/cli/main.ts');
    const { Capture } = await import('./sign-in.ts');
    const stderr = new Capture();
    const env = { PATH: process.env.PATH, MCP_WARDEN_HOME: join(dir, 'cli'), DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'no-such-bus')}` };
    const code = await main(['token', 'https://mcp.invalid/mcp', '--token-store', 'keychain', '--no-login'], { env, stdout: new Capture(), stderr });
    assert.equal(code, 1);
    assert.match(stderr.text, /--token-store keychain: the OS keychain \(secret-service\) does not work here/);
    assert.doesNotMatch(stderr.text, /\n\s+at /);
  });

  it('a keychain tool that hangs (a locked keyring prompting nobody) is killed at the deadline and auto falls back', async () => {
    const bin = join(dir, 'bin');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'secret-tool'), '#!/bin/sh\nexec sleep 60\n');
    chmodSync(join(bin, 'secret-tool'), 0o755);
    const store = new TokenStore(join(dir, 'hang'), {}, { mode: 'auto', env: { PATH: `${bin}:${process.env.PATH}` }, keychainTimeoutMs: 200 });
    const backend = await store.resolveBackend();
    assert.equal(backend.kind, 'file');
    assert.match(backend.kind === 'file' ? backend.reason : '', /did not answer within 200 ms/);
  });

  it('auto falling back to plaintext warns once per process (not at every write), even where an earlier fallback left the once-only marker', async () => {
    const env = { PATH: process.env.PATH, HOME: dir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'no-such-bus')}` };
    const home = join(dir, 'warn');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(home, 'servers'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'servers', '.plaintext-notice-shown'), 'earlier fallback\n');
    const notices: string[] = [];
    const store = new TokenStore(home, {}, { mode: 'auto', env, onNotice: (m) => notices.push(m) });
    await store.update(SERVER, (r) => {
      r.tokens = { access_token: 'at' };
    });
    await new TokenStore(home, {}, { mode: 'auto', env, onNotice: (m) => notices.push(m) }).update(OTHER, () => undefined);
    await store.update(SERVER, () => undefined);
    assert.equal(notices.length, 1, notices.join('\n'));
    assert.match(notices[0]!, /stored unencrypted in .* because the OS keychain \(secret-service\) does not work here/);
  });

  it('no keychain tool on PATH: auto is the file, naming the package to install', async () => {
    const backend = await new TokenStore(join(dir, 'none'), {}, { mode: 'auto', env: { PATH: join(dir, 'empty') } }).resolveBackend();
    assert.equal(backend.kind, 'file');
    if (process.platform === 'linux') assert.match(backend.kind === 'file' ? backend.reason : '', /libsecret-tools/);
  });
});
