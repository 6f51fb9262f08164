/**
 * Real peers for the downstream end-to-end tests: a Streamable HTTP MCP server that is itself a
 * downstream API (it accepts only tokens exchanged by the gateway and answers with the caller's
 * own notes), users in the warden's database, and a log capture for operator messages.
 */
import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createLogger, type Logger } from '../../src/log.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';

export const PASSWORD = 'correct horse battery staple';

export const NOTES: Record<string, string[]> = {
  alice: ['alice: board minutes', 'alice: salary review'],
  bob: ['bob: shopping list'],
};

export interface NotesMcpApi {
  url: string;
  /** Every request's headers, to prove what the gateway sent. */
  requests: IncomingHttpHeaders[];
  /** Verified token claims, one per accepted request. */
  verified: JWTPayload[];
  /** Set once the warden (and so its AS) is listening. */
  trust(o: { issuer: string; jwksUri: string; audience: string; gatewayClientId: string }): void;
  close(): Promise<void>;
}

/**
 * A Streamable HTTP MCP server that is a downstream API: every request must carry an exchanged
 * token (signature by the AS JWKS, aud = the API, act.sub = the gateway); its `my_notes` tool
 * answers with the notes of the token's `sub`.
 */
export async function startNotesMcpApi(): Promise<NotesMcpApi> {
  let trusted: { issuer: string; audience: string; gatewayClientId: string; jwks: ReturnType<typeof createRemoteJWKSet> } | undefined;
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const requests: IncomingHttpHeaders[] = [];
  const verified: JWTPayload[] = [];

  const build = () => {
    const server = new McpServer({ name: 'notes-api', version: '1.0.0' });
    server.registerTool('my_notes', { description: 'The caller\'s own notes, from the downstream API' }, async (extra) => {
      const sub = (extra.authInfo?.extra as { sub?: string } | undefined)?.sub ?? 'nobody';
      return { content: [{ type: 'text', text: JSON.stringify({ sub, notes: NOTES[sub] ?? [] }) }] };
    });
    return server;
  };

  const http: Server = createServer(async (req, res) => {
    requests.push(req.headers);
    const reject = (status: number, description: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'www-authenticate': `Bearer error="invalid_token"` });
      res.end(JSON.stringify({ error: 'invalid_token', error_description: description }));
    };
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!match || !trusted) return reject(401, 'no bearer token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1]!, trusted.jwks, { issuer: trusted.issuer, audience: trusted.audience, typ: 'at+jwt', algorithms: ['ES256'] }));
    } catch (err) {
      return reject(401, (err as Error).name);
    }
    if ((payload.act as { sub?: string } | undefined)?.sub !== trusted.gatewayClientId) return reject(403, 'not acting through the gateway');
    verified.push(payload);
    (req as unknown as { auth: unknown }).auth = { token: match[1], clientId: String(payload.client_id), scopes: String(payload.scope ?? '').split(' '), extra: { sub: payload.sub } };

    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? transports.get(sid) : undefined;
    if (!transport) {
      if (typeof sid === 'string') return void res.writeHead(404).end();
      transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void transports.set(id, transport!) });
      const t = transport;
      t.onclose = () => {
        if (t.sessionId) transports.delete(t.sessionId);
      };
      await build().connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    requests,
    verified,
    trust(o) {
      trusted = { issuer: o.issuer, audience: o.audience, gatewayClientId: o.gatewayClientId, jwks: createRemoteJWKSet(new URL(o.jwksUri)) };
    },
    async close() {
      for (const t of transports.values()) await t.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** Creates users in the database file the warden will open. */
export async function seedUsers(dbPath: string, names: string[]): Promise<void> {
  const db = openDatabase(dbPath);
  try {
    const users = new UserStore(createSqliteUserRecords(db));
    for (const name of names) if (!await users.get(name)) await users.add(name, PASSWORD, name === 'alice' ? ['admin'] : ['member']);
  } finally {
    db.close();
  }
}

export function captureLogs(): { logger: Logger; lines(): Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } });
  const logger = createLogger('info', stream);
  return { logger, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Connects the MCP SDK client (v2) with a bearer token. */
export async function connectClient(endpoint: string, token: string): Promise<{ client: Client; close(): Promise<void> }> {
  const client = new Client({ name: 'downstream-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => token } });
  await client.connect(transport);
  return {
    client,
    async close() {
      await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

export function textOf(result: unknown): string {
  return ((result as { content: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? '').join('\n');
}
