import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { demoServerCommand } from '../../src/config/demo.ts';
import { SecretsKeyError } from '../../src/downstream/index.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { captureLogs, connectClient, PASSWORD, seedUsers, textOf } from '../downstream/e2e-fixtures.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { runBin } from '../helpers/cli.ts';


function cli(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBin(args, { env, stdin });
}

/** `mcp-warden …` through main(), for commands that do not read standard input. */
async function inProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) => new Writable({ write(chunk, _e, cb) { append(String(chunk)); cb(); } });
  const code = await main(args, { env, stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}

const fingerprint = (secret: string) => createHash('sha256').update(secret).digest('hex').slice(0, 12);

describe('downstream identity end to end: per-user secrets for a stdio server', () => {
  let dir: string;
  let configFile: string;
  let dbPath: string;
  let warden: Warden;
  let logs: ReturnType<typeof captureLogs>;
  const key = randomBytes(32).toString('base64');
  const secrets = { alice: `alice-${randomBytes(8).toString('hex')}`, bob: `bob-${randomBytes(8).toString('hex')}` };
  const document = (port: number) => ({
    listen: { host: '127.0.0.1', port },
    publicUrl: `http://127.0.0.1:${port}`,
    storage: { sqlite: { path: dbPath } },
    log: { level: 'silent' },
    servers: [{
      name: 'notes', path: '/mcp', upstream: { stdio: demoServerCommand() }, scopes: ['notes:read'],
      downstream: { perUserSecret: { env: 'NOTES_API_TOKEN', userEnv: 'NOTES_API_USER' } },
    }],
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-e2e-secrets-'));
    dbPath = join(dir, 'warden.db');
    configFile = join(dir, 'warden.json');
    writeFileSync(configFile, JSON.stringify(document(8080)));
    await seedUsers(dbPath, ['alice', 'bob', 'carol']);
    logs = captureLogs();
  });
  after(async () => {
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('mcp-warden secrets set reads the value from stdin only; list shows who has one, never the value', async () => {
    for (const [user, secret] of Object.entries(secrets)) {
      const r = await cli(['secrets', 'set', '--config', configFile, '--server', 'notes', '--user', user], { WARDEN_SECRETS_KEY: key }, `${secret}\n`);
      assert.equal(r.code, 0, r.stderr);
    }
    const argv = await inProcess(['secrets', 'set', '--config', configFile, '--server', 'notes', '--user', 'carol', 'the-secret'], { WARDEN_SECRETS_KEY: key });
    assert.equal(argv.code, 2);
    assert.match(argv.stderr, /read from standard input, never from the command line/);
    const list = await inProcess(['secrets', 'list', '--config', configFile], {});
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^notes\talice\t/m);
    assert.match(list.stdout, /^notes\tbob\t/m);
    assert.ok(!list.stdout.includes(secrets.alice) && !list.stdout.includes(secrets.bob));
  });

  it('a wrong encryption key is a clear error for the CLI and stops the gateway at start-up', async () => {
    const wrong = randomBytes(32).toString('base64');
    // The key is checked before standard input is read, so this runs in-process.
    const r = await inProcess(['secrets', 'set', '--config', configFile, '--server', 'notes', '--user', 'carol'], { WARDEN_SECRETS_KEY: wrong });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not match/);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    await assert.rejects(startWarden((port) => parseConfig(document(port)), { env: { PATH: process.env.PATH, WARDEN_SECRETS_KEY: wrong } }), SecretsKeyError);
    await assert.rejects(startWarden((port) => parseConfig(document(port)), { env: { PATH: process.env.PATH } }), /WARDEN_SECRETS_KEY/);
  });

  it('each user\'s stdio child gets that user\'s secret; a user without one is refused with a clear error and an operator log line, no crashed child', async () => {
    warden = await startWarden((port) => parseConfig(document(port)), { env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_SECRETS_KEY: key }, logger: logs.logger });
    const resource = `${warden.url}/mcp`;
    for (const user of ['alice', 'bob'] as const) {
      const { access_token } = await obtainTokens({ issuer: warden.url, username: user, password: PASSWORD, resource, scope: 'notes:read', offlineAccess: false });
      const { client, close } = await connectClient(resource, access_token);
      try {
        const text = textOf(await client.callTool({ name: 'whoami', arguments: {} }));
        assert.match(text, new RegExp(`^user: ${user}$`, 'm'));
        assert.match(text, new RegExp(`credential-sha256: ${fingerprint(secrets[user])}`));
        const other = user === 'alice' ? secrets.bob : secrets.alice;
        assert.ok(!text.includes(fingerprint(other)));
      } finally {
        await close();
      }
    }

    const { access_token: carol } = await obtainTokens({ issuer: warden.url, username: 'carol', password: PASSWORD, resource, scope: 'notes:read', offlineAccess: false });
    const res = await fetch(resource, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'carol', version: '1' } } }),
    });
    const body = await res.text();
    assert.ok(res.status >= 400 || /"error"/.test(body), `carol is refused (HTTP ${res.status})`);
    assert.ok(!res.headers.get('mcp-session-id'), 'no session for carol');
    logs.logger.flush();
    await waitFor(() => logs.lines().some((l) => /no downstream secret/.test(String(l.msg))), 'the operator log line');
    const line = logs.lines().find((l) => /no downstream secret/.test(String(l.msg)));
    assert.ok(line, 'the operator sees a log line');
    assert.equal(line.user, 'carol');
    assert.ok(!logs.lines().some((l) => /stdio upstream exited/.test(String(l.msg))), 'no child crashed');
    assert.ok(!JSON.stringify(logs.lines()).includes(secrets.alice), 'no secret in the logs');
    // The client is told where to store a credential (DownstreamCredentialError's client-safe message):
    // the account page, which is on with the embedded AS and a per-user-secret server.
    assert.ok(body.includes(`Store one at ${warden.url}/account/secrets/notes`), body);
  });
});
