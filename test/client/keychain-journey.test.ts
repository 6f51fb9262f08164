/**
 * The client commands and the cross-process refresh in keychain mode, against mcp-warden's gateway
 * and embedded AS (refresh tokens rotate, no grace) and a real Secret Service (secret-service.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { startDemoWarden, type DemoWarden } from '../helpers/demo-warden.ts';
import { TokenStore } from '../../src/client/token-store.ts';
import { canonicalServerUri } from '../../src/client/canonical-uri.ts';
import { dataKeyAccount } from '../../src/client/keychain/data-key.ts';
import { Capture, completeSignIn } from './sign-in.ts';
import { startSecretService, type SecretService } from './secret-service.ts';

const PASSWORD = 'client keychain journey password';

describe('client in keychain mode against the gateway and embedded AS', () => {
  let demo: DemoWarden;
  let ss: SecretService;
  let dir: string;
  let endpoint: string;

  before(async () => {
    ss = await startSecretService();
    demo = await startDemoWarden({ dirPrefix: 'warden-client-keychain-', password: PASSWORD, clientSecret: 'keychain-journey-agent-secret-0123456789' });
    ({ dir, endpoint } = demo);
  });
  after(async () => {
    await demo?.close();
    await ss?.stop();
  });

  async function cli(args: string[], home: string, signIn: boolean) {
    const stdout = new Capture();
    const stderr = new Capture();
    const done = main(args, { env: { ...ss.env, MCP_WARDEN_HOME: home, MCP_WARDEN_TOKEN_STORE: 'keychain' }, stdout, stderr });
    if (signIn) {
      const m = await stderr.waitFor(/sign in:\s+(\S+)/, 20_000);
      await completeSignIn(m[1]!, 'alice', PASSWORD);
    }
    return { code: await done, stdout: stdout.text, stderr: stderr.text };
  }

  it('OAuth 2.1 §7.1 (tokens stored securely): `token` with MCP_WARDEN_TOKEN_STORE=keychain signs in, seals the store, reuses it; `logout` removes the file and the key item', async () => {
    const home = join(dir, 'cli');
    const first = await cli(['token', endpoint, '--no-browser'], home, true);
    assert.equal(first.code, 0, first.stderr);
    const token = first.stdout.trim();
    const files = readdirSync(join(home, 'servers')).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    const raw = readFileSync(join(home, 'servers', files[0]!), 'utf8');
    assert.equal(raw.includes(token), false, 'the access token is not in the file');
    assert.match(raw, /"alg":"A256GCM"/);
    assert.doesNotMatch(first.stderr, /unencrypted/);

    const second = await cli(['token', endpoint, '--no-login'], home, false);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), token, 'read back from the sealed store without a sign-in');

    const out = await cli(['logout', endpoint], home, false);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(existsSync(join(home, 'servers', files[0]!)), false);
    assert.equal(ss.lookup(dataKeyAccount(home)), undefined, 'the data key item went with the last server');
  });

  it('OAuth 2.1 §4.3.1: two processes refreshing at once in keychain mode send one refresh and get the same token', async () => {
    const home = join(dir, 'two');
    const sessionModule = JSON.stringify(join(import.meta.dirname, '../../src/client/session.ts'));
    const script = `
      import { WardenClient } from ${sessionModule};
      const grants = [];
      const offset = Number(process.env.OFFSET_MS);
      const client = new WardenClient({
        serverUrl: process.env.ENDPOINT, home: process.env.HOME_DIR, tokenStore: 'keychain', env: process.env, interactive: false,
        now: () => Date.now() + offset,
        fetch: (url, init) => {
          const body = init?.body instanceof URLSearchParams ? init.body : typeof init?.body === 'string' ? new URLSearchParams(init.body) : undefined;
          if (init?.method === 'POST' && body?.get('grant_type')) grants.push(body.get('grant_type'));
          return fetch(url, init);
        },
      });
      const token = await client.accessToken();
      process.stdout.write(JSON.stringify({ token, grants }));`;
    const child = (offsetMs: number) =>
      new Promise<{ token: string; grants: string[] }>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          env: { ...ss.env, ENDPOINT: endpoint, HOME_DIR: home, OFFSET_MS: String(offsetMs) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        p.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
        p.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
        p.on('error', reject);
        p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
      });

    // Sign in once in keychain mode (a browser sign-in done over HTTP).
    const login = await cli(['login', endpoint, '--no-browser'], home, true);
    assert.equal(login.code, 0, login.stderr);
    const store = new TokenStore(home, {}, { mode: 'keychain', env: ss.env });
    const before = (await store.read(canonicalServerUri(endpoint))).tokens!;

    // 15 minutes later (past the 900 s lifetime), two processes want a token at the same moment.
    const [a, b] = await Promise.all([child(15 * 60_000), child(15 * 60_000)]);
    assert.equal(a.token, b.token, 'both use the one refreshed token');
    assert.notEqual(a.token, before.access_token);
    assert.deepEqual([...a.grants, ...b.grants], ['refresh_token'], 'exactly one refresh reached the AS');

    // The rotated refresh token was stored (sealed) and works: with no reuse grace, a lost rotation would fail here.
    const later = await child(30 * 60_000);
    assert.deepEqual(later.grants, ['refresh_token']);
    assert.notEqual(later.token, a.token);
    const after = (await new TokenStore(home, {}, { mode: 'keychain', env: ss.env }).read(canonicalServerUri(endpoint))).tokens!;
    assert.equal(after.access_token, later.token);
    assert.equal(readFileSync(store.pathFor(canonicalServerUri(endpoint)), 'utf8').includes(after.refresh_token!), false);
  });
});
