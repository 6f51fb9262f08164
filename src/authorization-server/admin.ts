/**
 * For the admin CLI (`mcp-warden users|clients|keys|consents`): the configured storage, user
 * store and authorization server, without listening and without demo seeding.
 */
import type { Config } from '../config/schema.ts';
import { silentLogger } from '../log.ts';
import { openStorage, type Storage } from '../storage/index.ts';
import { UserStore } from '../users/user-store.ts';
import type { AuthorizationServer } from './index.ts';

export interface AdminContext {
  storage: Storage;
  users: UserStore;
  /** Built on first use: the client registry validates with oidc-provider's client schema. */
  authorizationServer(): Promise<AuthorizationServer>;
  close(): Promise<void>;
}

/** The configured storage, users and (lazily) authorization server, for one CLI command. */
export async function openAdminContext(config: Config, env: NodeJS.ProcessEnv): Promise<AdminContext> {
  const storage = await openStorage(config);
  const as = config.authorizationServer;
  const roles = 'embedded' in as ? as.embedded.roles : ['admin', 'member'];
  const users = new UserStore(storage.users, roles);
  let server: Promise<AuthorizationServer> | undefined;
  return {
    storage,
    users,
    authorizationServer() {
      if (!('embedded' in as)) throw new Error('this configuration uses an external authorization server; clients, keys and consents live there');
      // Loaded here, not at the top: users, keys and consents never load oidc-provider.
      server ??= import('./index.ts').then(({ createAuthorizationServer }) =>
        createAuthorizationServer({ config, store: storage.as, settings: storage.downstream.settings, users, logger: silentLogger, env, seedDemo: false }));
      return server;
    },
    async close() {
      // Its key check timer stops with it (it is unref'd, but an in-process caller lives on).
      await server?.then((as) => as.close()).catch(() => undefined);
      await storage.close();
    },
  };
}
