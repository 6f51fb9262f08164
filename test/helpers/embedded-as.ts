/**
 * Starts the embedded authorization server alone on a node:http server on 127.0.0.1:0, with a
 * config whose publicUrl is the real port, a temporary SQLite file and the given users.
 * For tests of the authorization server before/without the gateway (src/app.ts).
 */
import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { openDatabase, type SqliteDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { silentLogger } from '../../src/log.ts';
import { createAuthorizationServer, type AuthorizationServer, type AuthorizationServerOptions } from '../../src/authorization-server/index.ts';

export interface EmbeddedAs {
  url: string;
  issuer: string;
  /** Canonical URI of the `notes` server (the usual `resource`). */
  resource: string;
  as: AuthorizationServer;
  db: SqliteDatabase;
  users: UserStore;
  config: Config;
  server: Server;
  announced: string[];
  close(): Promise<void>;
}

export const TEST_PASSWORD = 'correct horse battery staple';

export interface StartOptions {
  /** Extra keys for authorizationServer.embedded. */
  embedded?: Record<string, unknown>;
  /** Replaces the default servers list. */
  servers?: unknown[];
  users?: Array<{ username: string; roles: string[] }>;
  options?: Partial<Omit<AuthorizationServerOptions, 'config' | 'db' | 'users'>>;
  /** Reuse a database directory (restart tests). */
  dir?: string;
  /** Extra top-level configuration keys (e.g. trustProxy). */
  config?: Record<string, unknown>;
  /** Extra authorizationServer.embedded keys that depend on the server's URL (e.g. an issuer with a path). */
  configure?: (url: string) => Record<string, unknown>;
}

export async function startEmbeddedAs(o: StartOptions = {}): Promise<EmbeddedAs> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'warden-as-'));
  let handler: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (!handler) { res.statusCode = 503; res.end(); return; }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const config = parseConfig({
    publicUrl: url,
    listen: { host: '127.0.0.1', port },
    storage: { sqlite: { path: join(dir, 'warden.db') } },
    authorizationServer: { embedded: { ...o.embedded, ...o.configure?.(url) } },
    ...o.config,
    servers: o.servers ?? [{
      name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } },
      scopes: ['notes:read', 'notes:write'],
      scopeDescriptions: { 'notes:read': 'Read your notes', 'notes:write': 'Create and delete notes' },
    }],
  });
  const db = openDatabase(config.storage.sqlite.path);
  // Cheap scrypt for fixtures (log2 N = 12): sign-ins are real, just not slow.
  const users = new UserStore(createSqliteUserRecords(db), ['admin', 'member'], { testHashCost: 12 });
  for (const u of o.users ?? [{ username: 'alice', roles: ['admin'] }, { username: 'bob', roles: ['member'] }]) {
    if (!await users.get(u.username)) await users.add(u.username, TEST_PASSWORD, u.roles);
  }
  const announced: string[] = [];
  const as = await createAuthorizationServer({
    config, db, users, logger: silentLogger, announce: (l) => announced.push(l), env: {}, ...o.options,
  });
  handler = (req, res) => {
    const pathname = new URL(req.url ?? '/', url).pathname;
    if (as.handles(pathname)) return as.handle(req, res);
    res.statusCode = 404;
    res.setHeader('content-type', 'application/json');
    res.end('{"error":"not_found"}');
  };
  return {
    url, issuer: as.issuer, resource: `${url}/mcp`, as, db, users, config, server, announced,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await as.close();
      db.close();
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
