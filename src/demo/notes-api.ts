/**
 * The demo's second MCP server, over Streamable HTTP: a "notes API" that sits behind the gateway
 * and accepts only tokens the gateway obtained for it by RFC 8693 token exchange. `npm start`
 * serves it on its own loopback port and protects it at /mcp/api, so the demo shows (and tests
 * attack) the exchange: the client's token never reaches this server, and if it did, it would be
 * refused, since its audience is the gateway's resource, not this API (RFC 8707 §2; MCP 2025-11-25
 * Security Best Practices, "Token Passthrough").
 *
 * Verification, in order: a Bearer token (RFC 6750 §2.1), a JWT signed by the demo's
 * authorization server with `iss` and `aud` exact (RFC 9068 §4), then `act.sub` naming the
 * gateway (RFC 8693 §4.1: the gateway acts for the user). Anything else gets 401 invalid_token
 * with a challenge (RFC 6750 §3.1) and no detail of why the token failed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { McpServer, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';

/** Largest request body the API reads. */
const MAX_BODY_BYTES = 64 * 1024;

export interface DemoApiTrust {
  /** The demo authorization server's issuer, and where its keys are published. */
  issuer: string;
  jwksUri: string;
  /** The gateway's client id: the `act.sub` every accepted token carries. */
  gatewayClientId: string;
}

export interface DemoNotesApi {
  /** The MCP endpoint, http://127.0.0.1:<port>/mcp. */
  url: string;
  close(): Promise<void>;
}

const NOTES: Record<string, string[]> = {
  alice: ['Quarterly plan (private to alice)'],
  bob: ['Shopping list (private to bob)'],
};

function refuse(res: ServerResponse, status: 400 | 401 | 403 | 405 | 413, error: string, description: string): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  // RFC 6750 §3: every 401 carries a challenge.
  if (status === 401) headers['www-authenticate'] = `Bearer error="${error}", error_description="${description}"`;
  res.writeHead(status, headers).end(JSON.stringify({ error, error_description: description }));
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** One stateless MCP server per request (the SDK's stateless Streamable HTTP pattern). */
function buildServer(token: JWTPayload): McpServer {
  const server = new McpServer({ name: 'warden-demo-notes-api', version: '1.0.0' });
  const sub = String(token.sub);
  server.registerTool('whoami', { description: 'Who this API sees: the user, the party acting for them, and the audience of the token it received.', annotations: { readOnlyHint: true } }, async () => ({
    content: [{ type: 'text', text: JSON.stringify({ user: sub, actor: (token.act as { sub?: unknown } | undefined)?.sub, audience: token.aud, scope: token.scope ?? '' }) }],
  }));
  server.registerTool('my_notes', { description: "The caller's own private notes, from the API.", annotations: { readOnlyHint: true } }, async () => ({
    content: [{ type: 'text', text: (NOTES[sub] ?? []).join('\n') || 'no notes' }],
  }));
  return server;
}

/**
 * Starts the demo notes API on a loopback port of its own, accepting tokens whose `aud` is
 * `audience`. `trust()` is read on each request, so
 * the API can start before the authorization server it trusts has a URL.
 */
export async function startDemoNotesApi(audience: string, trust: () => DemoApiTrust | undefined): Promise<DemoNotesApi> {
  let jwks: { uri: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;
  const http: Server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t = trust();
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!match || !t) return refuse(res, 401, 'invalid_token', 'a Bearer access token for this API is required');
    if (jwks?.uri !== t.jwksUri) jwks = { uri: t.jwksUri, set: createRemoteJWKSet(new URL(t.jwksUri)) };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1]!, jwks.set, { issuer: t.issuer, audience, typ: 'at+jwt' }));
    } catch {
      // RFC 8707 §2: a token for another resource (the client's own token for the gateway) lands here.
      return refuse(res, 401, 'invalid_token', 'the access token is not valid for this API');
    }
    if ((payload.act as { sub?: unknown } | undefined)?.sub !== t.gatewayClientId) return refuse(res, 403, 'insufficient_scope', 'only tokens exchanged by the gateway are accepted');

    const body = req.method === 'POST' ? await readBody(req) : undefined;
    if (req.method === 'POST' && body === undefined) return refuse(res, 413, 'invalid_request', 'the request body is too large');
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const request = new Request(`http://127.0.0.1${req.url ?? '/'}`, { method: req.method, headers, ...(body ? { body: body.toString('utf8') } : {}) });
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = buildServer(payload);
    await server.connect(transport);
    const response = await transport.handleRequest(request, { authInfo: { token: match[1]!, clientId: String(payload.client_id ?? ''), scopes: String(payload.scope ?? '').split(' ').filter(Boolean), extra: { sub: payload.sub } } });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) Readable.fromWeb(response.body as import('node:stream/web').ReadableStream).pipe(res);
    else res.end();
    res.on('close', () => void server.close());
  }

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
