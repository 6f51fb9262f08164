import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';

describe('account page behind an https publicUrl (TLS at a reverse proxy)', () => {
  let dir: string;
  let warden: Warden;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-account-https-'));
    warden = await startWarden((port) => parseConfig({
      listen: { host: '127.0.0.1', port }, publicUrl: 'https://mcp.example.test', storage: { sqlite: { path: join(dir, 'warden.db') } },
      servers: [{ name: 'github', path: '/github', upstream: { stdio: { command: 'node', args: [] } }, downstream: { perUserSecret: { env: 'GITHUB_TOKEN' } } }],
    }), { env: { PATH: process.env.PATH, WARDEN_SECRETS_KEY: randomBytes(32).toString('base64') } });
  });
  after(async () => {
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RFC 6265bis §4.1.3.2: the sign-in (and session) cookie is __Host- and Secure; sign-in reaches the embedded AS on its own listener, not through the public URL', async () => {
    const res = await fetch(`${warden.url}/account`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, 'https://mcp.example.test/oauth/authorize');
    assert.equal(location.searchParams.get('redirect_uri'), 'https://mcp.example.test/account/callback');
    assert.match(res.headers.get('set-cookie') ?? '', /^__Host-warden-account-signin=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=600$/);
  });

  it('a cross-site POST is refused before anything else (Origin is not the publicUrl)', async () => {
    const res = await fetch(`${warden.url}/account/sign-out`, {
      method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x',
    });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /sent from another site/);
  });
});
