/**
 * The account area: a page on the warden's origin where a user signs in at
 * the authorization server and stores their own credential for each server that uses per-user
 * secrets (`downstream.perUserSecret`), without shell access. docs/downstream.md describes it.
 *
 * App composition calls `prepareAccountArea` before the embedded authorization server is built
 * (its client and resource must be registered there), then `start` once the server listens.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthorizationServerExtension, ExtraResourceResolver } from '../authorization-server/index.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { DownstreamStorage } from '../storage/downstream-store.ts';
import { accountResource, ensureAccountClient } from './client-registration.ts';
import { createAccountArea } from './routes.ts';
import { ACCOUNT_PATH, resolveAccountSettings } from './settings.ts';
import { createSignIn } from './sign-in.ts';
import { loadAccountPageKeys } from './page-keys.ts';
import type { AccountSessions, SharedSessionOptions } from './sessions.ts';

export { AccountConfigError, ACCOUNT_PATH } from './settings.ts';
export { accountSchema, type AccountConfig } from './schema.ts';

export interface AccountArea {
  handles(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, pathname: string, query: string): void;
}

export interface PreparedAccountArea {
  /** The account page's public URL (`<origin>/account`): where users without a credential are sent. */
  url: string;
  /** For createAuthorizationServer (embedded only): provisions the account client and its resource. */
  authorizationServer: { extensions: AuthorizationServerExtension[]; extraResources: ExtraResourceResolver[]; firstPartyClients: Array<{ clientId: string; resources: string[] }> };
  /** `localOrigin`: where this process listens (http://127.0.0.1:port), for requests to the embedded authorization server. */
  start(localOrigin: string): AccountArea;
}

/**
 * Decides whether the account area runs (logging why not) and prepares it.
 * @throws AccountConfigError when `account.enabled: true` cannot be honoured
 */
export async function prepareAccountArea(o: {
  config: Config;
  storage: DownstreamStorage;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  now?: () => number;
  /** cluster.redis: signed-in sessions every instance shares (src/cluster/account-sessions.ts). */
  sessions?: (options: SharedSessionOptions) => AccountSessions;
}): Promise<PreparedAccountArea | undefined> {
  const log = o.logger.child({ component: 'account' });
  const settings = await resolveAccountSettings(o.config, o.env, o.storage.settings);
  if (!settings.enabled) {
    // Off because nothing uses it is not news; off because it cannot work is.
    const level = o.config.account.enabled === false || /nothing to store/.test(settings.reason) ? 'debug' : 'warn';
    log[level]({ reason: settings.reason }, 'the account page is off');
    return undefined;
  }
  const keys = await loadAccountPageKeys(o.storage.settings);
  const client = settings.resource
    ? { clientId: settings.clientId, clientSecret: settings.clientSecret, redirectUri: settings.redirectUri, resource: settings.resource }
    : undefined;
  return {
    url: `${settings.origin}${ACCOUNT_PATH}`,
    // The account page is part of mcp-warden: signing in to it asks for the password, not for consent.
    authorizationServer: client
      ? { extensions: [ensureAccountClient(client)], extraResources: [accountResource(client)], firstPartyClients: [{ clientId: client.clientId, resources: [client.resource] }] }
      : { extensions: [], extraResources: [], firstPartyClients: [] },
    start(localOrigin) {
      const signIn = createSignIn({
        issuer: settings.issuer,
        clientId: settings.clientId,
        clientSecret: settings.clientSecret,
        redirectUri: settings.redirectUri,
        resource: settings.resource,
        ...(settings.embedded ? { localOrigin } : {}),
      });
      const area = createAccountArea({ settings, signIn, keys, secrets: o.storage.secrets, env: o.env, logger: log, ...(o.now ? { now: o.now } : {}), ...(o.sessions ? { sessions: o.sessions } : {}) });
      log.info({ url: `${settings.origin}${ACCOUNT_PATH}`, servers: settings.servers.map((s) => s.server.name) }, `users store their own downstream credentials at ${settings.origin}${ACCOUNT_PATH}`);
      return area;
    },
  };
}
