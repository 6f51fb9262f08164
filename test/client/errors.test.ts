/**
 * What a person reads when a client command fails: the URL, the cause and the next step, on one
 * line, without a response body, SDK wording or a stack (a stack only with WARDEN_DEBUG).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { PassThrough } from 'node:stream';
import { runStdioBridge } from '../../src/client/bridge.ts';
import { connectClient } from '../../src/client/connect.ts';
import { isClientError } from '../../src/client/errors.ts';
import { WardenClient } from '../../src/client/session.ts';
import { startDemoWarden, type DemoWarden } from '../helpers/demo-warden.ts';
import { Capture } from './sign-in.ts';

const PASSWORD = 'client errors test password';
const AGENT_SECRET = 'client-errors-test-agent-secret-0123456789';

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** No raw body, no SDK phrasing, no stack. */
function assertReadable(stderr: string): void {
  assert.doesNotMatch(stderr, /<!doctype|<html|\{"/i, 'no response body');
  assert.doesNotMatch(stderr, /Error POSTing to endpoint|fetch failed|Unauthorized$/m, 'no SDK or undici wording');
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  assert.equal(stderr.split('\n').filter((l) => /^mcp-warden \w+: /.test(l)).length, 1, `one error line: ${stderr}`);
}

describe('client errors name the URL, the cause and the next step', () => {
  let demo: DemoWarden;
  let refusedUrl: string;
  let notMcp: Server;
  let notMcpUrl: string;

  before(async () => {
    demo = await startDemoWarden({ dirPrefix: 'warden-client-errors-', password: PASSWORD, clientSecret: AGENT_SECRET });
    // A port nothing listens on: take one, then free it.
    const closed = createServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    refusedUrl = `http://127.0.0.1:${port}/mcp`;
    // A web server that is not an MCP endpoint: an HTML page at /page, HTML 404 for everything else.
    notMcp = createServer((req, res) => req.url === '/page'
      ? res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>')
      : res.writeHead(404, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>'));
    notMcpUrl = `http://127.0.0.1:${await listen(notMcp)}/mcp`;
  });
  after(async () => {
    notMcp.closeAllConnections();
    await new Promise<void>((resolve) => notMcp.close(() => resolve()));
    await demo.close();
  });

  async function run(args: string[], extra: Record<string, string> = {}) {
    const stdout = new Capture();
    const stderr = new Capture();
    const env = { PATH: process.env.PATH, MCP_WARDEN_TOKEN_STORE: 'file', MCP_WARDEN_HOME: join(demo.dir, 'home'), ...extra };
    const code = await main(args, { env, stdout, stderr });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  for (const command of ['tools', 'token', 'login'] as const) {
    it(`server not reachable: ${command} names the URL and says connection refused`, async () => {
      const out = await run([command, refusedUrl, '--no-browser']);
      assert.equal(out.code, 1);
      assert.match(out.stderr, new RegExp(`^mcp-warden ${command}: cannot reach ${refusedUrl.replace(/[.]/g, '\\.')}: connection refused.*\\(ECONNREFUSED\\)\\. Check that the server is running and the URL is right\\.$`, 'm'));
      assertReadable(out.stderr);
    });

    it(`not an MCP endpoint: ${command} says so with the HTTP status and to check the URL`, async () => {
      const out = await run([command, notMcpUrl, '--no-browser']);
      assert.equal(out.code, 1);
      assert.match(out.stderr, new RegExp(`${notMcpUrl.replace(/[.]/g, '\\.')} is not an MCP endpoint: it answered an MCP request with HTTP 404.*Check the URL`));
      assertReadable(out.stderr);
    });
  }

  it('RFC 6749 §5.2: a refusal by the authorization server keeps its code, names the AS and says what to check', async () => {
    const out = await run(['token', demo.endpoint, '--client-credentials', '--client-id', 'demo-agent'], { MCP_WARDEN_CLIENT_SECRET: 'not-the-secret-0123456789', MCP_WARDEN_HOME: join(demo.dir, 'cc') });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /the authorization server http:\/\/127\.0\.0\.1:\d+\S* refused: invalid_client/);
    assert.match(out.stderr, /Check --client-id and its secret/);
    assertReadable(out.stderr);
    assert.doesNotMatch(out.stderr, /not-the-secret/, 'the secret is never printed');
  });

  it('RFC 6750 §3.1: a token the server refuses even after a new one is token_rejected with the server\'s reason and a next step', async () => {
    // The real AS issues the token (client credentials); the resource then refuses every token.
    const prm = `${new URL(demo.endpoint).origin}/.well-known/oauth-protected-resource${new URL(demo.endpoint).pathname}`;
    const refusing: typeof fetch = async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.href === demo.endpoint && new Headers(init?.headers).has('authorization')) {
        return new Response(null, { status: 401, headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="the token audience is another server", resource_metadata="${prm}"` } });
      }
      return fetch(input, init);
    };
    const client = new WardenClient({
      serverUrl: demo.endpoint, home: join(demo.dir, 'rejected'), tokenStore: 'file', env: {},
      grant: 'client_credentials', clientId: 'demo-agent', clientSecret: AGENT_SECRET, fetch: refusing,
    });
    await assert.rejects(connectClient(client), (err) => {
      assert.ok(isClientError(err, 'token_rejected'), String(err));
      assert.match(err.message, new RegExp(`^${demo.endpoint.replace(/[.]/g, '\\.')} refused the access token even after a new sign-in \\(HTTP 401 invalid_token: the token audience is another server\\)`));
      assert.match(err.message, /mcp-warden logout .* then login/);
      return true;
    });
  });

  it('connect: the host gets a JSON-RPC error saying the URL is not an MCP endpoint, not the page the server sent', async () => {
    const stdin = new PassThrough();
    const stdout = new Capture();
    const warden = new WardenClient({ serverUrl: notMcpUrl, home: join(demo.dir, 'bridge'), tokenStore: 'file', env: {}, interactive: false });
    const done = runStdioBridge({ warden, stdin, stdout, onNotice: () => undefined });
    stdin.end(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'host', version: '1' } } })}\n`);
    assert.equal(await done, 0);
    const answer = JSON.parse(stdout.text.trim()) as { id: number; error: { message: string } };
    assert.equal(answer.id, 1);
    assert.match(answer.error.message, new RegExp(`^mcp-warden: ${notMcpUrl.replace(/[.]/g, '\\.')} is not an MCP endpoint: it answered an MCP request with HTTP 404`));
    assert.doesNotMatch(answer.error.message, /<html|Error POSTing/i);
  });

  it('connect: a URL answering with a web page (MCP transports: JSON or an event stream only) gets a JSON-RPC error saying it is not an MCP endpoint', async () => {
    const pageUrl = new URL('/page', notMcpUrl).href;
    const stdin = new PassThrough();
    const stdout = new Capture();
    const warden = new WardenClient({ serverUrl: pageUrl, home: join(demo.dir, 'bridge-page'), tokenStore: 'file', env: {}, interactive: false });
    const done = runStdioBridge({ warden, stdin, stdout, onNotice: () => undefined });
    stdin.end(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'host', version: '1' } } })}\n`);
    assert.equal(await done, 0);
    const answer = JSON.parse(stdout.text.trim()) as { id: number; error: { message: string } };
    assert.equal(answer.id, 1);
    assert.match(answer.error.message, new RegExp(`^mcp-warden: ${pageUrl.replace(/[.]/g, '\\.')} is not an MCP endpoint: it answered with text/html instead of JSON or an event stream`));
    assert.doesNotMatch(answer.error.message, /<html|Welcome/i);
  });

  it('a stack trace appears only with WARDEN_DEBUG', async () => {
    const quiet = await run(['tools', refusedUrl]);
    assert.doesNotMatch(quiet.stderr, /\n\s+at /);
    const debug = await run(['tools', refusedUrl], { WARDEN_DEBUG: '1' });
    assert.match(debug.stderr, /\n\s+at /);
  });
});
