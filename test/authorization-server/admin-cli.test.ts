import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedAs, TEST_PASSWORD } from '../helpers/embedded-as.ts';
import { clientCredentialsToken, obtainTokens } from '../helpers/oauth.ts';
import { runCli } from '../helpers/cli.ts';

const cli = runCli;

describe('admin CLI: users, clients, keys, consents', () => {
  let dir: string;
  let configFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
    configFile = join(dir, 'warden.json');
    writeFileSync(configFile, JSON.stringify({
      publicUrl: 'http://127.0.0.1:9', storage: { sqlite: { path: join(dir, 'warden.db') } },
      servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } }, scopes: ['notes:read', 'notes:write'] }],
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('users add reads the password from stdin (not argv), list shows roles, set-role and remove work', async () => {
    const add = await cli(['users', 'add', 'carol', '--role', 'member', '--config', configFile], 'a long enough password\n');
    assert.equal(add.code, 0, add.err);
    assert.doesNotMatch(add.out + add.err, /a long enough password/, 'the password is never echoed');
    assert.match((await cli(['users', 'list', '--config', configFile])).out, /carol\s+member/);
    assert.equal((await cli(['users', 'set-role', 'carol', '--role', 'admin', '--config', configFile])).code, 0);
    assert.match((await cli(['users', 'list', '--config', configFile])).out, /carol\s+admin/);
    const pw = await cli(['users', 'set-password', 'carol', '--config', configFile], 'another long password\n');
    assert.equal(pw.code, 0, pw.err);
    assert.equal((await cli(['users', 'remove', 'carol', '--config', configFile])).code, 0);
    assert.doesNotMatch((await cli(['users', 'list', '--config', configFile])).out, /carol/);
  });

  it('users: bad input gets a one-line error and a non-zero exit, no stack', async () => {
    const short = await cli(['users', 'add', 'dave', '--role', 'member', '--config', configFile], 'short\n');
    assert.equal(short.code, 1);
    assert.match(short.err, /at least 8 characters/);
    const role = await cli(['users', 'add', 'dave', '--role', 'wizard', '--config', configFile], 'a long enough password\n');
    assert.match(role.err, /unknown role "wizard"/);
    assert.doesNotMatch(role.err, /\n\s+at /);
    assert.equal((await cli(['users', 'add', 'dave', '--config', configFile], 'x\n')).code, 2, 'missing --role is a usage error');
    assert.equal((await cli(['users', 'remove', 'nobody', '--config', configFile])).code, 1);
  });

  it('clients add prints a confidential secret once; list never shows it; remove deletes', async () => {
    const add = await cli(['clients', 'add', '--name', 'Agent', '--confidential', '--grant-type', 'client_credentials', '--scope', 'notes:read', '--client-id', 'agent-1', '--config', configFile]);
    assert.equal(add.code, 0, add.err);
    const secret = /client_secret: (\S+)/.exec(add.out)![1]!;
    const list = await cli(['clients', 'list', '--config', configFile]);
    assert.match(list.out, /agent-1\s+pre-registered\s+client_secret_basic/);
    assert.ok(!list.out.includes(secret));
    const json = await cli(['clients', 'list', '--json', '--config', configFile]);
    assert.ok(!json.out.includes(secret));
    assert.equal((await cli(['clients', 'remove', 'agent-1', '--config', configFile])).code, 0);
    assert.doesNotMatch((await cli(['clients', 'list', '--config', configFile])).out, /agent-1/);
  });

  it('clients add refuses invalid metadata (a web client with an http redirect) with a clear message', async () => {
    const bad = await cli(['clients', 'add', '--name', 'Bad', '--public', '--redirect-uri', 'not a url', '--config', configFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /invalid client/);
    const priv = join(dir, 'priv.json');
    writeFileSync(priv, JSON.stringify({ keys: [{ kty: 'EC', d: 'x', x: 'y', y: 'z', crv: 'P-256' }] }));
    assert.equal((await cli(['clients', 'add', '--name', 'K', '--confidential', '--jwks', priv, '--config', configFile])).code, 2);
  });

  it('keys list/rotate: rotation adds a key; --force retires every previous key (a compromised key)', async () => {
    // First start creates the first key (through the admin context).
    await cli(['clients', 'list', '--config', configFile]);
    const before = (await cli(['keys', 'list', '--json', '--config', configFile])).out.trim().split('\n').map((l) => JSON.parse(l) as { kid: string; state: string });
    assert.equal(before.length, 1);
    const plain = await cli(['keys', 'rotate', '--config', configFile]);
    assert.doesNotMatch(plain.out, /retired/, 'a plain rotation keeps the previous key published');
    const middle = (await cli(['keys', 'list', '--json', '--config', configFile])).out.trim().split('\n').map((l) => JSON.parse(l) as { kid: string; state: string });
    assert.deepEqual(middle.map((k) => k.state), ['signing', 'published']);
    // --force: the signing key and the previous one are withdrawn at once.
    const rotated = await cli(['keys', 'rotate', '--force', '--config', configFile]);
    assert.match(rotated.out, new RegExp(`retired ${before[0]!.kid}`));
    assert.match(rotated.out, new RegExp(`retired ${middle[0]!.kid}`));
    const after = (await cli(['keys', 'list', '--json', '--config', configFile])).out.trim().split('\n').map((l) => JSON.parse(l) as { kid: string; state: string });
    assert.deepEqual(after.map((k) => k.state), ['signing', 'retired', 'retired']);
  });

  it('consents revoke without --user is a usage error', async () => {
    assert.equal((await cli(['consents', 'revoke', '--config', configFile])).code, 2);
    assert.equal((await cli(['consents', 'list', '--config', configFile])).out, 'no consents\n');
  });
});

describe('keys and consents across restarts', () => {
  it('signing keys persist across restarts; after keys rotate + restart the new key signs and the old one still verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-keys-'));
    try {
      let s = await startEmbeddedAs({ dir, embedded: { demo: true } });
      const secret = /client_secret: (\S+)/.exec(s.announced.join('\n'))![1]!;
      const kid1 = (await s.as.publicJwks()).keys[0]!.kid;
      const old = await clientCredentialsToken({ issuer: s.issuer, clientSecret: secret, resource: s.resource });
      await s.close();
      s = await startEmbeddedAs({ dir, embedded: { demo: true } });
      assert.equal((await s.as.publicJwks()).keys[0]!.kid, kid1, 'same key after restart');
      assert.equal(s.announced.length, 0, 'demo secrets are announced only once');
      await s.close();
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ publicUrl: 'http://127.0.0.1:9', storage: { sqlite: { path: join(dir, 'warden.db') } }, servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } } }] }));
      assert.equal((await cli(['keys', 'rotate', '--config', join(dir, 'c.json')])).code, 0);
      s = await startEmbeddedAs({ dir, embedded: { demo: true } });
      try {
        const jwks = await s.as.publicJwks();
        assert.equal(jwks.keys.length, 2);
        assert.notEqual(jwks.keys[0]!.kid, kid1);
        assert.ok(jwks.keys.some((k) => k.kid === kid1), 'the previous key is still published');
        const fresh = await clientCredentialsToken({ issuer: s.issuer, clientSecret: secret, resource: s.resource });
        const header = JSON.parse(Buffer.from(fresh.access_token.split('.')[0]!, 'base64url').toString()) as { kid: string };
        assert.equal(header.kid, jwks.keys[0]!.kid);
        const oldHeader = JSON.parse(Buffer.from(old.access_token.split('.')[0]!, 'base64url').toString()) as { kid: string };
        assert.equal(oldHeader.kid, kid1);
      } finally { await s.close(); }
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('consents CLI lists and revokes a remembered consent; the grant\'s refresh token stops working', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-consent-'));
    const s = await startEmbeddedAs({ dir });
    try {
      const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify({ publicUrl: s.url, storage: { sqlite: { path: join(dir, 'warden.db') } }, servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } } }] }));
      const list = await cli(['consents', 'list', '--user', 'bob', '--config', file]);
      assert.match(list.out, new RegExp(`bob\\s+${t.clientId}\\s+${s.resource}\\s+notes:read`));
      const revoke = await cli(['consents', 'revoke', '--user', 'bob', '--client', t.clientId, '--config', file]);
      assert.match(revoke.out, /revoked 1 consent/, `exit ${revoke.code}, stderr: ${revoke.err}`);
      const res = await fetch(`${s.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: t.clientId, resource: s.resource }).toString() });
      assert.equal((await res.json() as { error: string }).error, 'invalid_grant');
    } finally { await s.close(); rmSync(dir, { recursive: true, force: true }); }
  });
});
