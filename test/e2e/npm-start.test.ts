/**
 * `npm start` as a user runs it: `node bin/mcp-warden.js start --demo` in a fresh directory, a
 * real process with its own port and database, then the whole OAuth journey against it: the
 * protected resource metadata (RFC 9728), the 401 challenge, the authorization server metadata
 * (RFC 8414), a real sign-in as alice by the code flow with PKCE (test/helpers/oauth.ts), and the
 * official MCP SDK client (@modelcontextprotocol/client 2.x) through /mcp to the demo notes
 * server. SIGTERM ends it with exit code 0 and no child left behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { obtainTokens } from '../helpers/oauth.ts';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** package.json's "start" script, run with this node (npm would find the same one on PATH). */
const START = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
const START_TIMEOUT_MS = 60_000;

/** A port nobody listens on right now: bind port 0, read it, release it. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Live descendants of `pid` (Linux /proc; zombies count as gone). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command name: state, ppid, …
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') parents.set(Number(entry), Number(ppid));
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) if (parent === p) { out.push(child); walk(child); }
  };
  walk(pid);
  return out;
}

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

interface Started {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm start`'s command line (package.json "start"), in `cwd`, until it says it is listening. */
async function npmStart(cwd: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const [node, bin, ...args] = START.split(' ');
  assert.equal(node, 'node', `"start" runs node: ${START}`);
  // npm runs scripts in the package root; the bin resolves from there, the process runs in `cwd`.
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, bin!), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const started = { child, output: () => out, exited };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${START_TIMEOUT_MS} ms:\n${out}`)), START_TIMEOUT_MS);
    const check = () => {
      if (/mcp-warden listening on http:\/\/\S+/.test(out) && out.includes('Ctrl-C stops.')) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`exited (${signal ?? code}) before listening:\n${out}`));
    });
  });
  return started;
}

/** SIGTERM, then the exit status (SIGKILL after a generous grace so a hang fails instead of blocking). */
async function stop(started: Started): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (started.child.exitCode !== null || started.child.signalCode !== null) return started.exited;
  started.child.kill('SIGTERM');
  const timer = setTimeout(() => started.child.kill('SIGKILL'), 30_000);
  const status = await started.exited;
  clearTimeout(timer);
  return status;
}

describe('npm start (node bin/mcp-warden.js start --demo) as a real process', () => {
  let cwd: string;
  let dataDir: string;
  let port: number;
  let base: string;
  let env: NodeJS.ProcessEnv;
  let warden: Started;
  const password = randomBytes(18).toString('base64url');

  before(async () => {
    assert.equal(START, 'node bin/mcp-warden.js start --demo', 'the command this test stands for');
    cwd = mkdtempSync(join(tmpdir(), 'warden-npm-start-cwd-'));
    dataDir = mkdtempSync(join(tmpdir(), 'warden-npm-start-db-'));
    port = await freePort();
    base = `http://localhost:${port}`;
    // A clean environment, as a user's shell would give: no WARDEN_* leaking in from ours.
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: process.env.LANG ?? 'C.UTF-8',
      PORT: String(port),
      WARDEN_DB: join(dataDir, 'warden.db'),
      WARDEN_DEMO_PASSWORD: password,
    };
    warden = await npmStart(cwd, env);
  });

  after(async () => {
    if (warden) await stop(warden);
    rmSync(cwd, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints where it listens and the endpoint; runs from any directory (PORT, WARDEN_DB honoured)', () => {
    const out = warden.output();
    assert.match(out, new RegExp(`mcp-warden listening on http://127\\.0\\.0\\.1:${port} \\(public URL ${base}\\)`));
    assert.match(out, new RegExp(`notes: MCP endpoint ${base}/mcp`));
    assert.ok(existsSync(env.WARDEN_DB!), 'the database is where WARDEN_DB says');
    assert.ok(!existsSync(join(cwd, 'data')), 'nothing written to ./data when WARDEN_DB is set');
  });

  it('RFC 9728 §3: protected resource metadata at /.well-known/oauth-protected-resource/mcp names the resource and the AS', async () => {
    const res = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { resource: string; authorization_servers: string[]; scopes_supported?: string[] };
    assert.equal(doc.resource, `${base}/mcp`);
    assert.deepEqual(doc.authorization_servers, [base]);
    assert.deepEqual([...(doc.scopes_supported ?? [])].sort(), ['notes:read', 'notes:write']);
  });

  it('RFC 6750 §3 / RFC 9728 §5.1: POST /mcp without a token gets 401 with a Bearer challenge carrying resource_metadata', async () => {
    const res = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '0' } } }),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.ok(challenge.includes(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`), challenge);
  });

  it('RFC 8414 §3: authorization server metadata with the issuer, code flow and PKCE S256', async () => {
    const res = await fetch(`${base}/.well-known/oauth-authorization-server`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc.issuer, base);
    assert.ok(String(doc.authorization_endpoint).startsWith(`${base}/`));
    assert.ok(String(doc.token_endpoint).startsWith(`${base}/`));
    assert.ok((doc.response_types_supported as string[]).includes('code'));
    assert.deepEqual(doc.code_challenge_methods_supported, ['S256']);
  });

  it('demo secrets: the client secret is printed once; the password from WARDEN_DEMO_PASSWORD never', () => {
    const out = warden.output();
    assert.ok(!out.includes(password), 'the password given in the environment is not echoed');
    assert.doesNotMatch(out, /created with password/);
    const secrets = [...out.matchAll(/demo client demo-agent created with client_secret: (\S+)/g)];
    assert.equal(secrets.length, 1, out);
    const secret = secrets[0]![1]!;
    assert.equal(out.split(secret).length - 1, 1, 'the secret appears in that one line only');
  });

  it('MCP 2025-11-25 authorization: alice signs in by the code flow, the SDK client lists tools and calls list_notes; SIGTERM exits 0 with no child left', async () => {
    const endpoint = `${base}/mcp`;
    const tokens = await obtainTokens({ issuer: base, username: 'alice', password, resource: endpoint, scope: 'notes:read notes:write' });
    assert.deepEqual(tokens.scope?.split(' ').sort(), ['notes:read', 'notes:write']);
    const client = new Client({ name: 'npm-start-e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => tokens.access_token } });
    try {
      await client.connect(transport);
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.includes('list_notes') && tools.includes('create_note'), tools.join(', '));
      const notes = await client.callTool({ name: 'list_notes', arguments: {} });
      assert.notEqual(notes.isError, true);
      assert.ok(Array.isArray(notes.content) && notes.content.length > 0, JSON.stringify(notes));

      // With the session open the notes server runs as a child; stopping must take it down too.
      const children = descendants(warden.child.pid!);
      assert.ok(children.length >= 1, 'the demo notes server runs as a child while a session is open');
      const status = await stop(warden);
      assert.deepEqual(status, { code: 0, signal: null }, warden.output());
      const stray = children.filter(isRunning);
      assert.deepEqual(stray, [], 'no child outlives mcp-warden');
    } finally {
      await client.close().catch(() => {});
    }

    // "Printed once": a second start on the same database seeds nothing and prints no secret.
    const again = await npmStart(cwd, env);
    try {
      assert.doesNotMatch(again.output(), /client_secret|created with password/);
    } finally {
      assert.deepEqual(await stop(again), { code: 0, signal: null }, again.output());
    }
  });
});
