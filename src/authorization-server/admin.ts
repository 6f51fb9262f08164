/**
 * For the admin CLI (`mcp-warden users|clients|keys|consents`): the configured database, user
 * store and authorization server, without listening and without demo seeding.
 */
import { createSqliteUserRecords } from '../storage/sqlite/users.ts';
import type { Config } from '../config/schema.ts';
import { silentLogger } from '../log.ts';
import { openDatabase, type SqliteDatabase } from '../storage/sqlite/database.ts';
import { UserStore } from '../users/user-store.ts';
import type { AuthorizationServer } from './index.ts';

export interface AdminContext {
  db: SqliteDatabase;
  users: UserStore;
  /** Built on first use: the client registry validates with oidc-provider's client schema. */
  authorizationServer(): Promise<AuthorizationServer>;
  close(): void;
}

/** The configured database, users and (lazily) authorization server, for one CLI command. */
export function openAdminContext(config: Config, env: NodeJS.ProcessEnv): AdminContext {
  const db = openDatabase(config.storage.sqlite.path);
  const as = config.authorizationServer;
  const roles = 'embedded' in as ? as.embedded.roles : ['admin', 'member'];
  const users = new UserStore(createSqliteUserRecords(db), roles);
  let server: Promise<AuthorizationServer> | undefined;
  return {
    db,
    users,
    authorizationServer() {
      if (!('embedded' in as)) throw new Error('this configuration uses an external authorization server; clients, keys and consents live there');
      // Loaded here, not at the top: users, keys and consents never load oidc-provider.
      server ??= import('./index.ts').then(({ createAuthorizationServer }) =>
        createAuthorizationServer({ config, db, users, logger: silentLogger, env, seedDemo: false }));
      return server;
    },
    close() {
      // Its key check timer stops with it (it is unref'd, but an in-process caller lives on).
      void server?.then((as) => as.close()).catch(() => undefined);
      db.close();
    },
  };
}
