/**
 * Child process of bench/gateway.ts: runs one system under test and prints one JSON line with
 * its URLs (and tokens) on stdout. Roles:
 *   upstream            the lean HTTP MCP server
 *   proxy <url>         a bare node:http pass-through proxy to <url> (keep-alive http.Agent, .pipe() both ways)
 *   proxy-pipeline <url> the same with stream.pipeline() (bench/proxies.ts: costs ~0.07 ms CPU/request more)
 *   proxy-undici <url>  the same pass-through with undici's Pool as the client side (what the gateway uses)
 *   proxy-dispatch <url> undici's Pool through `dispatch` with a handler of its own, the request body read
 *                       whole and sent as one buffer, the reply streamed to the client as it arrives: the
 *                       gateway's own way of calling the upstream, with nothing else (no parsing, no auth)
 *   warden <url> [w] [--line-in-process] [--async-local-storage] [--issuer-delay-ms N]
 *                       mcp-warden (external fixture issuer, JWT + required scope) with /mcp/http → <url>,
 *                       /mcp/http-policy → <url> with a policy (and so an audit event per call),
 *                       /mcp/stdio → the tiny stdio server (policy on), /mcp/sh → a shell
 *                       stdio server (memory runs). With IPC: answers {measure:true} with memory use after GC,
 *                       and {mint:n} with n new tokens for /mcp/http-policy ({minted}: bench/cold-path.ts).
 *                       w: the SQLite audit writer, `worker` (default) or `inline` (bench/gateway-audit.ts).
 *                       --line-in-process: the proxy-dispatch line too, in this process (`lineUrl`);
 *                       --async-local-storage: SIGUSR2 runs an AsyncLocalStorage, or disables the one
 *                       running; each prints {asyncLocalStorage} (bench/process-share.ts).
 *                       --issuer-delay-ms N: its fixture issuer answers after N ms (bench/cold-path.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, request, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startLeanMcpHttp } from './fixtures/lean-mcp-http.ts';
import { startTestWarden } from '../test/gateway/fixtures/warden.ts';
import { startFixtureIssuer } from '../test/gateway/fixtures/issuer.ts';

/**
 * Request fields a line does not forward: the hop-by-hop ones RFC 9110 §7.6.1 names, and the
 * client's token. Fields a `Connection` header names are not looked for: the benchmark's clients
 * name none.
 */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'authorization']);
/** Reply fields a line does not pass back (RFC 9110 §7.6.1); Node frames the reply itself. */
const HOP_BY_HOP_REPLY = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/** A raw name/value list without the fields `dropped` names (lower case). */
function fieldsWithout(raw: string[], dropped: ReadonlySet<string>): string[] {
  const fields: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (!dropped.has(name.toLowerCase())) fields.push(name, raw[i + 1]!);
  }
  return fields;
}

const [role, target] = process.argv.slice(2);
const TINY = fileURLToPath(new URL('../test/gateway/fixtures/tiny-server.mjs', import.meta.url));
/** A stdio MCP server in sh: answers initialize (id 0) and nothing else; a few MB per child. */
const SH_SERVER = `while IFS= read -r line; do case "$line" in *'"initialize"'*) echo '{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"sh","version":"1"}}}';; esac; done`;

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

if (role === 'upstream') {
  const { url } = await startLeanMcpHttp();
  print({ url });
} else if (role === 'proxy' || role === 'proxy-undici' || role === 'proxy-pipeline' || role === 'proxy-dispatch') {
  const url = await startLine(role, target!);
  // A clean exit (bench/profile-gateway.ts --proxy: node --cpu-prof writes its profile at exit).
  process.once('SIGINT', () => process.exit(0));
  print({ url });
} else if (role === 'warden') {
  const policy = { default: 'deny', rules: [{ name: 'all', methods: ['*'], scopes: 'mcp:read' }, { name: 'echo', tools: 'echo', scopes: 'mcp:read' }] };
  // --issuer-delay-ms N: the issuer answers after N ms, as a remote IdP would (bench/cold-path.ts).
  const delayArg = process.argv.indexOf('--issuer-delay-ms');
  const ownIssuer = delayArg === -1 ? undefined : await startFixtureIssuer({ delayMs: Number(process.argv[delayArg + 1]) });
  const { warden, issuer, close } = await startTestWarden({
    ...(ownIssuer ? { issuer: ownIssuer } : {}),
    // bench/gateway-audit.ts starts one warden per SQLite audit writer (worker thread or inline).
    config: { audit: { writer: process.argv[4] === 'inline' ? 'inline' : 'worker' } },
    servers: [
      // The memory run opens hundreds of sessions with one token: lift the per-caller limit.
      { name: 'http', path: '/mcp/http', upstream: { http: { url: target! } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'], maxSessionsPerCaller: 100_000, maxSessionsPerUser: 100_000 },
      { name: 'http-policy', path: '/mcp/http-policy', upstream: { http: { url: target! } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'], policy },
      { name: 'stdio', path: '/mcp/stdio', upstream: { stdio: { command: process.execPath, args: [TINY] } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'], policy },
      // bench/stdio-memory.ts: one child per session (stdio-mem) against one per user (stdio-shared).
      { name: 'stdio-mem', path: '/mcp/stdio-mem', upstream: { stdio: { command: process.execPath, args: [TINY] } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'], maxSessionsPerCaller: 100_000, maxSessionsPerUser: 100_000 },
      { name: 'stdio-shared', path: '/mcp/stdio-shared', upstream: { stdio: { command: process.execPath, args: [TINY], share: 'per-user', maxSharedProcesses: 1000, sharedIdleSeconds: 0 } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'], maxSessionsPerCaller: 100_000, maxSessionsPerUser: 100_000 },
      { name: 'sh', path: '/mcp/sh', upstream: { stdio: { command: 'sh', args: ['-c', SH_SERVER] } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'], maxSessionsPerCaller: 100_000, maxSessionsPerUser: 100_000 },
    ],
  });
  const tokens: Record<string, string> = {};
  for (const p of ['http', 'http-policy', 'stdio', 'sh', 'stdio-mem', 'stdio-shared']) tokens[p] = await issuer.mint({ aud: `${warden.url}/mcp/${p}`, scope: 'mcp:read', exp: Math.floor(Date.now() / 1000) + 3600 });
  // Twenty users for the per-user sharing run.
  for (let i = 0; i < 20; i++) tokens[`stdio-shared-user${i}`] = await issuer.mint({ aud: `${warden.url}/mcp/stdio-shared`, sub: `user${i}`, scope: 'mcp:read', exp: Math.floor(Date.now() / 1000) + 3600 });
  process.on('message', (m: { measure?: boolean; mint?: number }) => {
    // bench/cold-path.ts: tokens for /mcp/http-policy the gateway has never seen (each its own jti).
    if (m.mint) {
      const exp = Math.floor(Date.now() / 1000) + 3600;
      void Promise.all(Array.from({ length: m.mint }, () => issuer.mint({ aud: `${warden.url}/mcp/http-policy`, scope: 'mcp:read', exp }))).then((minted) => process.send!({ minted }));
      return;
    }
    if (!m.measure) return;
    for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    const sessions = [...warden.gateway.endpoints.values()].reduce((n, e) => n + e.sessionCount, 0);
    process.send!({ heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers, rss: mem.rss, sessions });
  });
  process.on('SIGTERM', () => {
    void close().then(() => ownIssuer?.close()).then(() => process.exit(0));
  });
  // bench/process-share.ts: what the gateway's process costs the line's code, and the gateway with
  // an AsyncLocalStorage in use, as once the embedded authorization server has served a request
  // (oidc-provider runs each of its requests in one: lib/helpers/als.js, initialize_app.js). On
  // Node 20 and 22 an AsyncLocalStorage that has run once keeps async_hooks' promise hook on for
  // the life of the process.
  const lineUrl = process.argv.includes('--line-in-process') ? await startLine('proxy-dispatch', target!) : undefined;
  if (process.argv.includes('--async-local-storage')) {
    // SIGUSR2 turns it on and off: one process measured both ways, its placement the same.
    let storage: AsyncLocalStorage<object> | undefined;
    process.on('SIGUSR2', () => {
      if (storage) {
        storage.disable();
        storage = undefined;
      } else {
        storage = new AsyncLocalStorage();
        storage.run({}, () => {});
      }
      print({ asyncLocalStorage: storage !== undefined });
    });
  }
  print({ url: warden.url, tokens, lineUrl, issuerDelayMs: delayArg === -1 ? 0 : Number(process.argv[delayArg + 1]) });
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}

/** A line (`role`: proxy, proxy-pipeline, proxy-undici, proxy-dispatch) to `upstreamUrl`, listening; its URL. */
async function startLine(role: string, upstreamUrl: string): Promise<string> {
  // The ceiling for any gateway: a correct pass-through that does nothing but move bytes. Both
  // directions stream (pipeline: back-pressure and error handling, no buffering); the client side
  // keeps one socket per concurrent request alive (maxSockets far above the benchmark's 32), so
  // no request waits for a socket or pays a TCP handshake; the only per-request work is the
  // header object Node builds anyway and the removal of hop-by-hop fields (RFC 9110 §7.6.1).
  // Its clients send what the gateway's send, a bearer token included, and the token stays here:
  // MCP 2025-11-25 security best practices §Token Passthrough forbid forwarding it, and the
  // upstream then reads what the gateway sends it. The request's fields go upstream as a list
  // taken from the raw ones, the dropped ones skipped: with the token `delete`d from Node's header
  // object instead, one run measured the line at 1.18x its CPU per request without a token, and
  // with the list at 1.04x (docs/benchmarks.md, "The same request bytes for every line").
  const upstream = new URL(upstreamUrl);
  // The reply's fields go back as a list taken from the raw ones, the hop-by-hop ones skipped:
  // Node builds a response's header object only when asked for it, and a `delete` from one turns
  // it into a slow dictionary that writeHead then walks.
  const fromUpstream = (raw: string[]): string[] => fieldsWithout(raw, HOP_BY_HOP_REPLY);
  const toUpstream = (raw: string[]): string[] => fieldsWithout(raw, NOT_FORWARDED);
  const ignore = () => {};
  let handler: Parameters<typeof createServer>[1];
  if (role === 'proxy') {
    // .pipe() rather than pipeline(): same streaming and back-pressure, without pipeline's
    // per-request end-of-stream tracking and destroy wiring (measured in bench/proxies.ts).
    const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
    handler = (req, res) => {
      const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: toUpstream(req.rawHeaders), agent }, (up) => {
        res.writeHead(up.statusCode ?? 502, fromUpstream(up.rawHeaders));
        up.pipe(res);
      });
      out.on('error', () => res.headersSent || res.writeHead(502).end());
      req.pipe(out);
    };
  } else if (role === 'proxy-pipeline') {
    const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
    handler = (req, res) => {
      const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: toUpstream(req.rawHeaders), agent }, (up) => {
        res.writeHead(up.statusCode ?? 502, fromUpstream(up.rawHeaders));
        pipeline(up, res, ignore);
      });
      pipeline(req, out, (err) => {
        if (err && !res.headersSent) res.writeHead(502).end();
      });
    };
  } else if (role === 'proxy-dispatch') {
    // No stream on the upstream side: undici writes a buffer body with the request head at once
    // and wires no stream per request (with a stream body, each scavenge of proxy-undici promotes
    // ~2 MB: docs/benchmarks.md, "Young tables for churning maps").
    const pool = new Pool(upstream.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
    handler = (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        pool.dispatch({ path: req.url!, method: req.method as 'POST', headers: toUpstream(req.rawHeaders), body }, new PassThroughHandler(res));
      });
    };
  } else {
    const pool = new Pool(upstream.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
    handler = (req, res) => {
      // responseHeaders 'raw': the reply's fields as undici read them, a list, not an object.
      pool.stream({ path: req.url!, method: req.method as 'POST', headers: toUpstream(req.rawHeaders), body: req, responseHeaders: 'raw' }, ({ statusCode, headers }) => {
        res.writeHead(statusCode, fromUpstream(headers as unknown as string[]));
        return res;
      }, (err) => {
        if (err && !res.headersSent) res.writeHead(502).end();
      });
    };
  }
  const server = createServer({ keepAliveTimeout: 60_000, noDelay: true }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname}`;
}

/**
 * proxy-dispatch's reply handler (undici's dispatch contract): the upstream's status and headers,
 * hop-by-hop fields dropped (RFC 9110 §7.6.1), then its body chunk by chunk; a full client socket
 * pauses the upstream read until it drains.
 */
class PassThroughHandler {
  readonly #res: import('node:http').ServerResponse;
  #resume: (() => void) | undefined;
  #done = false;

  constructor(res: import('node:http').ServerResponse) {
    this.#res = res;
  }

  onConnect(abort: (err?: Error) => void): void {
    // A client gone before the reply ended: the upstream request is aborted, not left paused.
    this.#res.once('close', () => this.#done || abort(new Error('client closed')));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const headers: string[] = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      const lower = name.toLowerCase();
      if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
      headers.push(name, rawHeaders[i + 1]!.toString('latin1'));
    }
    this.#res.writeHead(statusCode, headers);
    this.#resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#res.write(chunk)) return true;
    this.#res.once('drain', this.#resume!);
    return false;
  }

  onComplete(): void {
    this.#done = true;
    this.#res.end();
  }

  onError(): void {
    this.#done = true;
    if (!this.#res.headersSent) this.#res.writeHead(502).end();
    else this.#res.destroy();
  }
}
