/**
 * A refresh answer that survives a crash: the real `mcp-warden start`, killed with SIGKILL after a
 * rotation committed and before its answer left, restarted later than the grace window.
 *
 * The kill point is the test hook WARDEN_TEST_KILL_AFTER_REFRESH_COMMIT=1 (src/authorization-server/
 * index.ts): no signal from outside can land between a SQLite commit and the first byte of the
 * answer reliably, and a kill that lands elsewhere proves nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.ts';
import { obtainTokens, type Tokens } from '../helpers/oauth.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { freePort } from '../helpers/free-port.ts';

const BIN = fileURLToPath(new URL('../../bin/mcp-warden.js', import.meta.url));
const PASSWORD = 'crash test password';

describe('refresh rotation across a crash (OAuth 2.1 §4.3.1)', () => {
  let dir: string;
  let configFile: string;
  let url: string;
  let child: ChildProcess | undefined;

  async function start(env: Record<string, string> = {}): Promise<ChildProcess> {
    const proc = spawn(process.execPath, [BIN, 'start', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    });
    let out = '';
    proc.stdout!.setEncoding('utf8');
    proc.stderr!.resume();
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (c: string) => {
        out += c;
        if (out.includes('listening on')) resolve();
      });
      proc.once('exit', (code, signal) => reject(new Error(`mcp-warden start exited (${code ?? signal}): ${out}`)));
    });
    return proc;
  }

  async function stop(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  }

  function refresh(tokens: Tokens, refreshToken: string): Promise<Response> {
    return fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: tokens.clientId, resource: `${url}/mcp` }),
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-crash-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    configFile = join(dir, 'warden.json');
    writeFileSync(configFile, JSON.stringify({
      listen: { host: '127.0.0.1', port },
      publicUrl: url,
      storage: { sqlite: { path: join(dir, 'warden.db') } },
      // No grace at all: any restart is longer than the window.
      authorizationServer: { embedded: { refreshGraceSeconds: 0 } },
      log: { level: 'error' },
      servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } }, scopes: ['notes:read'] }],
    }));
    const added = await runCli(['users', 'add', 'alice', '--role', 'admin', '--config', configFile], `${PASSWORD}\n`);
    assert.equal(added.code, 0, added.err);
  });
  after(async () => {
    if (child) await stop(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('RFC 9700 §2.2.2: a client retrying after a SIGKILL between commit and answer gets the committed successor, whatever the restart time', async () => {
    child = await start();
    const tokens = await obtainTokens({ issuer: url, username: 'alice', password: PASSWORD, resource: `${url}/mcp`, scope: 'notes:read' });
    await stop(child);

    // The rotation commits, then the process dies before a byte of the answer leaves.
    child = await start({ WARDEN_TEST_KILL_AFTER_REFRESH_COMMIT: '1' });
    const died = new Promise<NodeJS.Signals | null>((resolve) => child!.once('exit', (_code, signal) => resolve(signal)));
    await assert.rejects(refresh(tokens, tokens.refresh_token!), 'the answer is lost with the process');
    assert.equal(await died, 'SIGKILL');

    const db = openDatabase(join(dir, 'warden.db'));
    const store = createSqliteStore(db);
    const committed = (await store.models.find('RefreshRotation', tokens.refresh_token!))?.successor;
    const old = await store.models.find('RefreshToken', tokens.refresh_token!);
    db.close();
    assert.equal(typeof committed, 'string', 'the rotation committed before the kill');
    assert.ok(old?.consumed, 'the old token is consumed');

    child = await start();
    const retry = await refresh(tokens, tokens.refresh_token!);
    const body = await retry.json() as { refresh_token?: string; access_token?: string; error?: string };
    assert.equal(retry.status, 200, JSON.stringify(body));
    assert.equal(body.refresh_token, committed, 'the retry gets the successor the lost answer carried');
    assert.ok(body.access_token);

    const again = await refresh(tokens, tokens.refresh_token!);
    assert.equal(((await again.json()) as { refresh_token?: string }).refresh_token, committed, 'every retry, while the successor is unused');

    const next = await refresh(tokens, committed as string);
    assert.equal(next.status, 200, 'the successor works');
    await next.text();
    const reuse = await refresh(tokens, tokens.refresh_token!);
    assert.equal(reuse.status, 400, 'once the successor is used, the old token is reuse');
    assert.equal(((await reuse.json()) as { error?: string }).error, 'invalid_grant');
  });
});
