/**
 * The client commands in process (`main()` with captured output), against mcp-warden's gateway
 * and embedded AS with its demo users and demo agent. Sign-in is done over HTTP by the helper.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { Capture, completeSignIn } from './sign-in.ts';
import { WardenClient } from '../../src/client/session.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PASSWORD = 'client cli test password';
const AGENT_SECRET = 'client-cli-test-agent-secret-0123456789';

describe('client commands against the gateway and embedded AS', () => {
  let warden: Warden;
  let dir: string;
  let endpoint: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-client-cli-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db'), WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: AGENT_SECRET };
    const config = (port: number): Config => buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
    warden = await startWarden(config, { env, announce: () => {} });
    endpoint = `${warden.config.publicUrl}/mcp`;
  });
  after(async () => {
    await warden.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function home(name: string): string {
    return join(dir, name);
  }

  /** Runs a command; when it prints a sign-in URL, signs in as alice. */
  async function run(args: string[], envExtra: Record<string, string>, signIn = true) {
    const stdout = new Capture();
    const stderr = new Capture();
    // The file store: these tests are about the commands, and auto must not depend on the machine's keyring.
    const env = { PATH: process.env.PATH, MCP_WARDEN_TOKEN_STORE: 'file', ...envExtra };
    const done = main(args, { env, stdout, stderr });
    let signedIn: URL | undefined;
    if (signIn) {
      const racing = stderr.waitFor(/sign in:\s+(\S+)/, 20_000).then(async (m) => {
        signedIn = await completeSignIn(m[1]!, 'alice', PASSWORD);
      });
      const code = await Promise.race([done, racing.then(() => done)]);
      racing.catch(() => undefined);
      return { code, stdout: stdout.text, stderr: stderr.text, signedIn };
    }
    const code = await done;
    return { code, stdout: stdout.text, stderr: stderr.text, signedIn };
  }

  it('RFC 9728 §5.1 / MCP §Scope Selection Strategy: token signs in once (scope from the 401 challenge), prints a token, and reuses it without a new sign-in', async () => {
    const env = { MCP_WARDEN_HOME: home('a') };
    const first = await run(['token', endpoint, '--no-browser'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(first.signedIn, 'a sign-in happened');
    const token = first.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'an access token (JWT) on stdout, alone');
    const authorizationUrl = new URL(/sign in:\s+(\S+)/.exec(first.stderr)![1]!);
    assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorizationUrl.searchParams.get('resource'), endpoint, 'RFC 8707: resource is the canonical server URI');
    assert.ok(authorizationUrl.searchParams.get('state'));
    const second = await run(['token', endpoint, '--no-login'], env, false);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), token);
    // The printed token is accepted by the gateway as a bearer token.
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // End the session this raw request opened, so later tests count sessions from zero.
    const ended = await fetch(endpoint, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': res.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(ended.status, 204);
  });

  it('OAuth 2.1 §7.1: the token store is a 0600 file in a 0700 folder', () => {
    const servers = join(home('a'), 'servers');
    assert.equal(statSync(home('a')).mode & 0o777, 0o700);
    assert.equal(statSync(servers).mode & 0o777, 0o700);
    const files = readdirSync(servers).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    assert.equal(statSync(join(servers, files[0]!)).mode & 0o777, 0o600);
  });

  it('tools lists and call calls a tool with the stored sign-in; bad JSON arguments are a usage error', async () => {
    const env = { MCP_WARDEN_HOME: home('a') };
    const tools = await run(['tools', endpoint, '--no-browser'], env, false);
    assert.equal(tools.code, 0, tools.stderr);
    assert.match(tools.stdout, /^list_notes\t/m);
    const call = await run(['call', endpoint, 'search_notes', '{"query":"welcome"}', '--no-browser'], env, false);
    assert.equal(call.code, 0, call.stderr);
    assert.ok(Array.isArray(JSON.parse(call.stdout).content));
    const bad = await run(['call', endpoint, 'search_notes', '{nope', '--no-browser'], env, false);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /tool arguments must be JSON/);
    const notObject = await run(['call', endpoint, 'search_notes', '[1]', '--no-browser'], env, false);
    assert.equal(notObject.code, 2);
  });

  it('RFC 7591 §2 client_name names this CLI and its host; prompt=consent only on the first sign-in, not on a later login with the same scopes', async () => {
    const env = { MCP_WARDEN_HOME: home('consent') };
    const first = await run(['token', endpoint, '--no-browser'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(new URL(/sign in:\s+(\S+)/.exec(first.stderr)![1]!).searchParams.get('prompt'), 'consent', 'first sign-in to this server');
    const again = await run(['login', endpoint, '--no-browser'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(new URL(/sign in:\s+(\S+)/.exec(again.stderr)![1]!).searchParams.get('prompt'), null, 'consent was given already: the AS decides from what it remembers');
    const servers = join(home('consent'), 'servers');
    const record = JSON.parse(readFileSync(join(servers, readdirSync(servers).find((f) => f.endsWith('.json'))!), 'utf8'));
    const registered = Object.values(record.clients) as Array<{ client_name?: string }>;
    assert.equal(registered.length, 1);
    assert.equal(registered[0]!.client_name, `mcp-warden CLI on ${hostname()}`);
  });

  it('status lists the stored sign-in (server, user, scopes, expiry, issuer, store kind) and never prints a token', async () => {
    const env = { MCP_WARDEN_HOME: home('a') };
    const token = (await run(['token', endpoint, '--no-login'], env, false)).stdout.trim();
    const out = await run(['status'], env, false);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`^${endpoint.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.match(out.stdout, /^ {2}user: {7}alice$/m);
    assert.match(out.stdout, /^ {2}scopes: {5}.*notes:read/m);
    assert.match(out.stdout, /^ {2}expires: {4}\d{4}-\d\d-\d\dT.*\(in \d+ min\)$/m);
    assert.match(out.stdout, new RegExp(`issuer: {5}${warden.config.publicUrl.replace(/[.]/g, '\\.')}`));
    assert.match(out.stdout, /token store: .* \(file: unencrypted 0600 files/);
    assert.doesNotMatch(out.stdout + out.stderr, new RegExp(token.split('.')[2]!.slice(0, 20)), 'no token');
    const json = JSON.parse((await run(['status', endpoint, '--json'], env, false)).stdout);
    assert.equal(json.servers.length, 1);
    assert.equal(json.servers[0].user, 'alice');
    assert.equal(json.servers[0].refreshToken, true);
    const none = await run(['status'], { MCP_WARDEN_HOME: home('nobody') }, false);
    assert.match(none.stdout, /No stored sign-ins .* mcp-warden login/);
  });

  it('while the browser step runs, progress lines on stderr say the command is waiting for the sign-in', async () => {
    const notices: string[] = [];
    let authorizationUrl: URL | undefined;
    const client = new WardenClient({
      serverUrl: endpoint, home: home('progress'), tokenStore: 'file', env: {}, progressIntervalMs: 10,
      onNotice: (m) => notices.push(m),
      openUrl: async (url) => { authorizationUrl = url; },
    });
    const signing = client.accessToken();
    await waitFor(() => notices.filter((n) => /still waiting for the sign-in/.test(n)).length >= 2, 'two "still waiting" lines');
    assert.match(notices.join('\n'), /waiting for the sign-in to finish in the browser/);
    await completeSignIn(authorizationUrl!.href, 'alice', PASSWORD);
    assert.match(await signing, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('MCP transports §Session Management: tools and a failing call end their session with DELETE (no stdio upstream left running)', async () => {
    const env = { MCP_WARDEN_HOME: home('a') };
    const gateway = warden.gateway.endpoints.get('/mcp')!;
    assert.equal(gateway.sessionCount, 0);
    const tools = await run(['tools', endpoint], env, false);
    assert.equal(tools.code, 0, tools.stderr);
    assert.equal(gateway.sessionCount, 0, 'tools ended its session');
    const failing = await run(['call', endpoint, 'no_such_tool', '{}'], env, false);
    assert.equal(failing.code, 1);
    assert.equal(gateway.sessionCount, 0, 'a call that failed ended its session too');
  });

  it('RFC 7009: logout revokes the tokens at the AS and forgets them; token --no-login then fails clearly', async () => {
    const env = { MCP_WARDEN_HOME: home('a') };
    const token = (await run(['token', endpoint, '--no-login'], env, false)).stdout.trim();
    const out = await run(['logout', endpoint], env, false);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /Signed out .* revoked/);
    assert.equal(readdirSync(join(home('a'), 'servers')).filter((f) => f.endsWith('.json')).length, 0);
    const after = await run(['token', endpoint, '--no-login'], env, false);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /sign-in needed: run mcp-warden login/);
    assert.doesNotMatch(after.stderr, /\n\s+at /, 'no stack trace');
    assert.doesNotMatch(after.stderr, new RegExp(token.slice(-20)), 'the token is never printed to stderr');
  });

  it('a corrupt token store is reported clearly, set aside, and a fresh sign-in follows', async () => {
    const env = { MCP_WARDEN_HOME: home('b') };
    assert.equal((await run(['token', endpoint, '--no-browser'], env)).code, 0);
    const servers = join(home('b'), 'servers');
    const file = readdirSync(servers).find((f) => f.endsWith('.json'))!;
    writeFileSync(join(servers, file), '{"version": 1, "serverUrl": tru');
    const again = await run(['token', endpoint, '--no-browser'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /token store .* is corrupt/);
    assert.ok(again.signedIn, 'a fresh sign-in');
    assert.ok(readdirSync(servers).some((f) => f.includes('.corrupt-')), 'the corrupt file was kept aside');
    assert.ok(existsSync(join(servers, file)), 'a new store file was written');
  });

  it('--no-resource leaves RFC 8707 resource out of the authorization request', async () => {
    const stderr = new Capture();
    const done = main(['login', endpoint, '--no-browser', '--no-resource'], { env: { PATH: process.env.PATH, MCP_WARDEN_TOKEN_STORE: 'file', MCP_WARDEN_HOME: home('c') }, stdout: new Capture(), stderr });
    const m = await stderr.waitFor(/sign in:\s+(\S+)/);
    assert.equal(new URL(m[1]!).searchParams.get('resource'), null);
    // Our AS requires a resource for this gateway's tokens, so finish the flow and expect a clean failure or success, never a crash.
    await completeSignIn(m[1]!, 'alice', PASSWORD).catch(() => undefined);
    const code = await done;
    assert.ok(code === 0 || code === 1, stderr.text);
    assert.doesNotMatch(stderr.text, /\n\s+at /);
  });

  it('MCP client credentials extension: token and tools with --client-credentials (client_secret_basic), no browser', async () => {
    const env = { MCP_WARDEN_HOME: home('d'), MCP_WARDEN_CLIENT_SECRET: AGENT_SECRET };
    const token = await run(['token', endpoint, '--client-credentials', '--client-id', 'demo-agent'], env, false);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.doesNotMatch(token.stderr, /sign in/);
    const tools = await run(['tools', endpoint, '--client-credentials', '--client-id', 'demo-agent'], env, false);
    assert.equal(tools.code, 0, tools.stderr);
    assert.match(tools.stdout, /list_notes/);
  });

  it('auto token store without a keychain: the plaintext notice is printed once per command, not at every write', async () => {
    // A PATH without secret-tool or security: auto falls back to the file, and says so.
    const noKeychain = join(dir, 'empty-bin');
    mkdirSync(noKeychain, { recursive: true });
    const stdout = new Capture();
    const stderr = new Capture();
    const env = { PATH: noKeychain, MCP_WARDEN_HOME: home('auto-notice'), MCP_WARDEN_CLIENT_SECRET: AGENT_SECRET };
    const code = await main(['tools', endpoint, '--client-credentials', '--client-id', 'demo-agent'], { env, stdout, stderr });
    assert.equal(code, 0, stderr.text);
    assert.equal(stderr.text.match(/tokens are stored unencrypted/g)?.length, 1, stderr.text);
  });

  it('client credentials without a secret or key is a usage error', async () => {
    const out = await run(['token', endpoint, '--client-credentials', '--client-id', 'demo-agent'], { MCP_WARDEN_HOME: home('e') }, false);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /client credentials need --client-id and either --client-secret/);
  });
});
