import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from 'jose';
import { openAdminContext } from '../../src/authorization-server/admin.ts';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { clientCredentialsToken, obtainTokens, refreshTokens } from '../helpers/oauth.ts';
import { initializeMessage, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { runCli } from '../helpers/cli.ts';

const BIN = fileURLToPath(new URL('../../bin/mcp-warden.js', import.meta.url));
const SECRET = 'demo agent secret for key rotation';
const PASSWORD = 'demo password for key rotation';

const cli = runCli;

const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid;
const EXCHANGE_CLIENT = { id: 'rotation-gateway', secret: 'rotation-gateway-secret-0123456789abcdef' };
const DOWNSTREAM = 'https://downstream.example.test';

function configFor(dir: string, port: number, signingKeyCheckSeconds: number) {
  return {
    listen: { host: '127.0.0.1', port },
    publicUrl: `http://127.0.0.1:${port}`,
    storage: { sqlite: { path: join(dir, 'warden.db') } },
    authorizationServer: {
      embedded: {
        demo: true, signingKeyCheckSeconds,
        tokenExchange: { gatewayClient: { clientId: EXCHANGE_CLIENT.id, clientSecret: EXCHANGE_CLIENT.secret }, audiences: [{ audience: DOWNSTREAM, scopes: ['notes:read'] }] },
      },
    },
    log: { level: 'silent' },
    servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['notes:read'] }],
  };
}

describe('live key rotation: keys rotate takes effect in a running warden (RFC 7517 §5, RFC 9068 §4)', () => {
  let dir: string;
  let warden: Warden;
  let endpoint: string;
  let configFile: string;
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DEMO_CLIENT_SECRET: SECRET, WARDEN_DEMO_PASSWORD: PASSWORD };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-rotate-'));
    // No periodic check here: the reload is asked for explicitly, as SIGHUP does.
    warden = await startWarden((port) => parseConfig(configFor(dir, port, 0)), { env, announce: () => {} });
    endpoint = `${warden.url}/mcp`;
    configFile = join(dir, 'c.json');
    writeFileSync(configFile, JSON.stringify(configFor(dir, warden.port, 0)));
  });
  after(async () => {
    await warden.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const token = async () => (await clientCredentialsToken({ issuer: warden.url, clientSecret: SECRET, resource: endpoint })).access_token;
  const jwks = async () => (await (await fetch(`${warden.url}/oauth/jwks`)).json()) as { keys: Array<{ kid: string; d?: string }> };
  const initStatus = async (accessToken: string) => {
    const res = await post(endpoint, accessToken, initializeMessage());
    await res.body?.cancel();
    return res.status;
  };
  const introspect = async (accessToken: string) => {
    const res = await fetch(`${warden.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`demo-agent:${encodeURIComponent(SECRET).replace(/%20/g, '+')}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: accessToken }).toString(),
    });
    return ((await res.json()) as { active: boolean }).active;
  };
  /** RFC 8693 token exchange by the gateway's client: the exchanged token. */
  const exchange = async (subjectToken: string) => {
    const res = await fetch(`${warden.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${EXCHANGE_CLIENT.id}:${EXCHANGE_CLIENT.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: subjectToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', audience: DOWNSTREAM,
      }).toString(),
    });
    const body = (await res.json()) as { access_token?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.access_token!;
  };

  it('rotate while running: new tokens carry the new kid and verify at the gateway; tokens of the old key still verify; the JWKS serves both', async () => {
    const kid1 = (await jwks()).keys[0]!.kid;
    const used = await token();
    const unused = await token(); // first presented after the rotation: no cached verification
    const user = await obtainTokens({ issuer: warden.url, username: 'alice', password: PASSWORD, resource: endpoint, scope: 'notes:read' });
    assert.equal(kidOf(used), kid1);
    assert.equal(await initStatus(used), 200);

    const rotated = await cli(['keys', 'rotate', '--config', configFile]);
    assert.equal(rotated.code, 0);
    const kid2 = /new signing key ([\w-]+)/.exec(rotated.out)?.[1];
    assert.ok(kid2 && kid2 !== kid1, rotated.out);
    assert.match(rotated.out, /SIGHUP/);
    assert.equal(kidOf(await token()), kid1, 'until the reload the running warden signs with the key it has');
    const exchangedBefore = await exchange(user.access_token);
    assert.equal(kidOf(exchangedBefore), kid1, 'RFC 8693: token exchange signs with the published key too, not the newest unpublished row');
    await jwtVerify(exchangedBefore, createLocalJWKSet(await jwks()), { issuer: warden.url, audience: DOWNSTREAM, algorithms: ['ES256'] });

    assert.deepEqual(await warden.reloadSigningKeys(), { changed: true, kids: [kid2, kid1] });
    assert.deepEqual((await jwks()).keys.map((k) => k.kid), [kid2, kid1], 'JWKS: the new key first, the previous one still published');
    assert.ok((await jwks()).keys.every((k) => k.d === undefined), 'public keys only');

    const fresh = await token();
    assert.equal(kidOf(fresh), kid2, 'client credentials: signed with the new key');
    assert.equal(await initStatus(fresh), 200, 'the gateway accepts the new kid at once');
    assert.equal(await initStatus(unused), 200, 'a token of the old key still verifies at the gateway');
    assert.equal(await initStatus(used), 200);
    assert.equal(await introspect(fresh), true, 'RFC 7662: the AS introspects tokens of the new key');
    assert.equal(await introspect(unused), true, 'and of the old key');

    const refreshed = await refreshTokens({ issuer: warden.url, clientId: user.clientId, refreshToken: user.refresh_token!, resource: endpoint });
    assert.equal(kidOf(refreshed.access_token), kid2, 'refresh_token grant: the new key');
    const exchangedAfter = await exchange(refreshed.access_token);
    assert.equal(kidOf(exchangedAfter), kid2, 'token exchange: the new key once it is published');
    await jwtVerify(exchangedAfter, createLocalJWKSet(await jwks()), { issuer: warden.url, audience: DOWNSTREAM, algorithms: ['ES256'] });
    const published = createLocalJWKSet(await jwks());
    for (const t of [fresh, unused, refreshed.access_token, user.access_token]) {
      await jwtVerify(t, published, { issuer: warden.url, audience: endpoint, typ: 'at+jwt', algorithms: ['ES256'] });
    }
    assert.deepEqual(await warden.reloadSigningKeys(), { changed: false, kids: [kid2, kid1] }, 'a second reload changes nothing');

    // A second rotation within one token lifetime: kid1 stays published, its tokens keep working.
    const oldest = unused;
    const again = await cli(['keys', 'rotate', '--config', configFile]);
    const kid3 = /new signing key ([\w-]+)/.exec(again.out)![1]!;
    assert.match(again.out, new RegExp(`still published ${kid1}`));
    assert.doesNotMatch(again.out, /retired/);
    await warden.reloadSigningKeys();
    assert.deepEqual((await jwks()).keys.map((k) => k.kid), [kid3, kid2, kid1]);
    const third = await token();
    assert.equal(kidOf(third), kid3);
    assert.equal(await initStatus(third), 200);
    assert.equal(await introspect(oldest), true, 'a kid1 token is still valid after two rotations');
  });
});

describe('live key rotation: the periodic key check and SIGHUP', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-rotate-timer-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('signingKeyCheckSeconds: a running warden picks a rotated key up by itself', async () => {
    const sub = join(dir, 'timer');
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DEMO_CLIENT_SECRET: SECRET, WARDEN_DEMO_PASSWORD: PASSWORD };
    const warden = await startWarden((port) => parseConfig(configFor(sub, port, 1)), { env, announce: () => {} });
    try {
      const file = join(dir, 'timer.json');
      writeFileSync(file, JSON.stringify(configFor(sub, warden.port, 1)));
      const kidsNow = async () => ((await (await fetch(`${warden.url}/oauth/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
      const [kid1] = await kidsNow();
      const { out } = await cli(['keys', 'rotate', '--config', file]);
      const kid2 = /new signing key ([\w-]+)/.exec(out)![1]!;
      await waitFor(async () => (await kidsNow())[0] === kid2, 'the periodic check to publish the new key');
      assert.deepEqual(await kidsNow(), [kid2, kid1]);
      const t = await clientCredentialsToken({ issuer: warden.url, clientSecret: SECRET, resource: `${warden.url}/mcp` });
      assert.equal(kidOf(t.access_token), kid2);
    } finally {
      await warden.close();
    }
  });

  it('mcp-warden start: SIGHUP reloads the signing keys without a restart', async () => {
    const sub = join(dir, 'hup');
    const file = join(dir, 'hup.json');
    writeFileSync(file, JSON.stringify({ ...configFor(sub, 0, 0), publicUrl: 'http://127.0.0.1:9', log: { level: 'info' } }));
    const child = spawn(process.execPath, [BIN, 'start', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DEMO_CLIENT_SECRET: SECRET, WARDEN_DEMO_PASSWORD: PASSWORD },
    });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      let log = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
      await waitFor(() => out.includes('Ctrl-C'), 'the start banner', { timeoutMs: 30_000 });
      const url = /listening on (http:\/\/\S+)/.exec(out)![1]!;
      const kidsNow = async () => ((await (await fetch(`${url}/oauth/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
      const [kid1] = await kidsNow();
      const { out: rotated } = await cli(['keys', 'rotate', '--config', file]);
      const kid2 = /new signing key ([\w-]+)/.exec(rotated)![1]!;
      assert.deepEqual(await kidsNow(), [kid1], 'no periodic check configured: unchanged until told');
      child.kill('SIGHUP');
      await waitFor(async () => (await kidsNow())[0] === kid2, 'SIGHUP to publish the new key');
      assert.deepEqual(await kidsNow(), [kid2, kid1]);
      await waitFor(() => `${out}${log}`.includes('SIGHUP: signing keys reloaded'), 'the reload to be logged');
      assert.equal(child.exitCode, null, 'SIGHUP does not stop the process');
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exit, 0);
    }
  });
});

describe('live key rotation across instances sharing one database', () => {
  it('a token signed with a key another instance already uses verifies at once: an unknown kid makes the gateway check the keys table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-replicas-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DEMO_CLIENT_SECRET: SECRET, WARDEN_DEMO_PASSWORD: PASSWORD };
    // Two replicas behind one public URL (the first's), on one SQLite file, no periodic check.
    const a = await startWarden((port) => parseConfig(configFor(dir, port, 0)), { env, announce: () => {} });
    const publicUrl = a.config.publicUrl;
    const b = await startWarden((port) => parseConfig({ ...configFor(dir, port, 0), publicUrl }), { env, announce: () => {} });
    try {
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify(configFor(dir, a.port, 0)));
      const { out } = await cli(['keys', 'rotate', '--config', file]);
      const kid2 = /new signing key ([\w-]+)/.exec(out)![1]!;
      assert.equal((await a.reloadSigningKeys()).changed, true, 'only instance a is told');
      const t = (await clientCredentialsToken({ issuer: a.url, clientSecret: SECRET, resource: `${publicUrl}/mcp` })).access_token;
      assert.equal(kidOf(t), kid2);
      const res = await post(`${b.url}/mcp`, t, initializeMessage());
      await res.body?.cancel();
      assert.equal(res.status, 200, 'instance b accepts the new kid');
      assert.deepEqual(((await (await fetch(`${b.url}/oauth/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys[0]!.kid, kid2, 'and now signs with it too');
      const forged = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'made-up' })).toString('base64url')}.${t.split('.')[1]}.${t.split('.')[2]}`;
      const refused = await post(`${b.url}/mcp`, forged, initializeMessage());
      await refused.body?.cancel();
      assert.equal(refused.status, 401, 'an unknown kid is still refused');
    } finally {
      await b.close();
      await a.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('live key rotation: keys rotate --force (a compromised key) takes effect at the gateway at once (RFC 7517 §5)', () => {
  it('after rotate --force and a reload, a token of the retired key is refused with 401 invalid_token: one the gateway verified (cached) before and one newly signed with that key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-rotate-force-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DEMO_CLIENT_SECRET: SECRET, WARDEN_DEMO_PASSWORD: PASSWORD };
    const warden = await startWarden((port) => parseConfig(configFor(dir, port, 0)), { env, announce: () => {} });
    try {
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify(configFor(dir, warden.port, 0)));
      const endpoint = `${warden.url}/mcp`;
      const status = async (accessToken: string) => {
        const res = await post(endpoint, accessToken, initializeMessage());
        await res.body?.cancel();
        return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' };
      };
      const used = (await clientCredentialsToken({ issuer: warden.url, clientSecret: SECRET, resource: endpoint })).access_token;
      const kidA = kidOf(used)!;
      assert.equal((await status(used)).status, 200, 'verified once: the gateway caches the verification');

      // The key A stops signing but stays published (a plain rotation); a later --force retires it.
      assert.equal((await cli(['keys', 'rotate', '--config', file])).code, 0);
      await warden.reloadSigningKeys();
      assert.equal((await status(used)).status, 200, 'a plain rotation keeps A published');
      const forced = await cli(['keys', 'rotate', '--force', '--config', file]);
      assert.equal(forced.code, 0);
      assert.match(forced.out, new RegExp(`retired ${kidA}`));
      const reloaded = await warden.reloadSigningKeys();
      assert.equal(reloaded.changed, true);
      assert.ok(!reloaded.kids.includes(kidA));

      // What the holder of the compromised key could sign: A's private key, read from the keys table.
      const admin = await openAdminContext(parseConfig(configFor(dir, warden.port, 0)), env);
      let forged: string;
      try {
        const keyA = (await admin.storage.as.keys.list('sig')).find((k) => k.kid === kidA)!;
        assert.notEqual(keyA.retiredAt, undefined);
        forged = await new SignJWT({ client_id: 'demo-agent', scope: 'notes:read', jti: 'forged-after-rotation' })
          .setProtectedHeader({ alg: 'ES256', kid: kidA, typ: 'at+jwt' })
          .setIssuer(warden.url).setSubject('demo-agent').setAudience(endpoint)
          .setIssuedAt().setExpirationTime('1d')
          .sign(await importJWK(keyA.jwk, 'ES256'));
      } finally {
        await admin.close();
      }

      for (const [name, t] of [['the cached token', used], ['a new token signed with A', forged]] as const) {
        const r = await status(t);
        assert.equal(r.status, 401, name);
        assert.match(r.challenge, /error="invalid_token"/, name);
      }
    } finally {
      await warden.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('live key rotation: token exchange never signs with an unpublished or retired key (RFC 8693, RFC 7517 §5)', () => {
  it('the published signing key retired by rotate --force before this instance reloaded: the exchange is refused with 500 server_error (logged), and signs with the new key after the reload', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-exchange-retired-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DEMO_CLIENT_SECRET: SECRET, WARDEN_DEMO_PASSWORD: PASSWORD };
    let log = '';
    const logger = createLogger('info', new Writable({ write(chunk: Buffer, _enc, done) { log += chunk.toString(); done(); } }));
    // Two instances on one database behind a's public URL; only b reloads after the rotation, so
    // b signs the subject token with a key that is active in the table but a does not publish.
    const a = await startWarden((port) => parseConfig(configFor(dir, port, 0)), { env, logger, announce: () => {} });
    const publicUrl = a.config.publicUrl;
    const b = await startWarden((port) => parseConfig({ ...configFor(dir, port, 0), publicUrl }), { env, announce: () => {} });
    const jwksOf = async (w: Warden) => ((await (await fetch(`${w.url}/oauth/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys;
    const exchangeAt = async (w: Warden, subjectToken: string) => {
      const res = await fetch(`${w.url}/oauth/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${EXCHANGE_CLIENT.id}:${EXCHANGE_CLIENT.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: subjectToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', audience: DOWNSTREAM,
        }).toString(),
      });
      return { status: res.status, body: (await res.json()) as { access_token?: string; error?: string; error_description?: string } };
    };
    try {
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify(configFor(dir, a.port, 0)));
      const kidA = (await jwksOf(a))[0]!.kid;
      // One forced rotation retires A, the key a still publishes and signs with.
      const forced = await cli(['keys', 'rotate', '--force', '--config', file]);
      assert.match(forced.out, new RegExp(`retired ${kidA}`));
      const kidC = /new signing key ([\w-]+)/.exec(forced.out)![1]!;
      await b.reloadSigningKeys();
      // b's metadata names a's URL as issuer, so ask b's token endpoint directly (RFC 6749 §4.4).
      const issued = await fetch(`${b.url}/oauth/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`demo-agent:${encodeURIComponent(SECRET).replace(/%20/g, '+')}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${publicUrl}/mcp`, scope: 'notes:read' }).toString(),
      });
      const subject = ((await issued.json()) as { access_token: string }).access_token;
      assert.equal(kidOf(subject), kidC);
      assert.equal((await jwksOf(a))[0]!.kid, kidA, 'a has not reloaded');

      const refused = await exchangeAt(a, subject);
      assert.equal(refused.status, 500, JSON.stringify(refused.body));
      assert.equal(refused.body.error, 'server_error');
      assert.match(refused.body.error_description ?? '', /signing keys are reloaded/);
      assert.equal(refused.body.access_token, undefined);
      assert.match(log, /"event":"token_exchange_no_signing_key"/, 'the operator is told');
      assert.ok(!log.includes(subject), 'the subject token is not logged');

      await a.reloadSigningKeys();
      const ok = await exchangeAt(a, subject);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(kidOf(ok.body.access_token!), kidC);
      await jwtVerify(ok.body.access_token!, createLocalJWKSet({ keys: await jwksOf(a) }), { issuer: a.url, audience: DOWNSTREAM, algorithms: ['ES256'] });
    } finally {
      await b.close();
      await a.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
