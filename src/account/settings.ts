/**
 * Whether the account area runs, and with which OIDC client: decided once at start-up from the
 * configuration (src/account/schema.ts). Every reason it is off is a sentence for the log.
 */
import { randomBytes } from 'node:crypto';
import type { Config, ServerConfig } from '../config/schema.ts';
import type { SettingsStore } from '../storage/downstream-store.ts';
import type { PerUserSecretConfig } from '../downstream/schema.ts';
import { ConfigError } from '../config/errors.ts';

/** Every page of the account area lives under this prefix. */
export const ACCOUNT_PATH = '/account';
/** Where the authorization server returns the browser (the client's one redirect URI). */
export const CALLBACK_PATH = `${ACCOUNT_PATH}/callback`;
/** The only scope the account client asks for besides `openid`, at its own resource. */
export const ACCOUNT_SCOPE = 'account';

/** A server whose users store their own credential. */
export interface PerUserSecretServer {
  server: ServerConfig;
  perUserSecret: PerUserSecretConfig;
}

export type AccountSettings =
  | {
      enabled: true;
      /** The authorization server is ours: the client is provisioned there and requests stay in-process. */
      embedded: boolean;
      issuer: string;
      clientId: string;
      clientSecret: string;
      redirectUri: string;
      /** RFC 8707 resource the account client's (unused) access token is bound to; embedded only. */
      resource: string | undefined;
      servers: PerUserSecretServer[];
      idleTimeoutMs: number;
      maxSessionMs: number;
      /** https publicUrl: Secure cookie with the __Host- prefix. */
      secure: boolean;
      origin: string;
    }
  | { enabled: false; reason: string };

/** The account area's configuration cannot work: one `ConfigError` (code unavailable_feature) naming the key to fix; the old name stays for importers. */
export { ConfigError as AccountConfigError };

/**
 * On by default with the embedded authorization server when a server has per-user secrets; with
 * an external issuer only when `account.client` names a client registered there.
 * @throws ConfigError when `account.enabled: true` cannot be honoured, or a server's path collides
 */
export async function resolveAccountSettings(config: Config, env: NodeJS.ProcessEnv, store: SettingsStore): Promise<AccountSettings> {
  const account = config.account;
  const servers = config.servers.flatMap((server) => (server.downstream?.perUserSecret ? [{ server, perUserSecret: server.downstream.perUserSecret }] : []));
  const explicit = account.enabled === true;
  const off = (reason: string): AccountSettings => {
    if (explicit) throw new ConfigError(`account.enabled is true, but ${reason}`, 'unavailable_feature');
    return { enabled: false, reason };
  };
  if (account.enabled === false) return { enabled: false, reason: 'account.enabled is false' };
  if (servers.length === 0) return off('no server has downstream.perUserSecret, so there is nothing to store');
  const collision = config.servers.find((s) => s.path === ACCOUNT_PATH || s.path.startsWith(`${ACCOUNT_PATH}/`));
  if (collision) {
    return off(`server "${collision.name}" is served at ${collision.path}, where the account page lives; move the server or set account.enabled: false`);
  }

  const as = config.authorizationServer;
  const embedded = 'embedded' in as;
  const clientId = account.client?.clientId ?? 'mcp-warden-account';
  let clientSecret: string;
  if (embedded) {
    clientSecret = account.client?.clientSecret ?? env.WARDEN_ACCOUNT_CLIENT_SECRET
      ?? await store.getOrCreate(`account-client-secret:${clientId}`, () => randomBytes(32).toString('base64url'));
  } else {
    if (!account.client?.clientSecret) {
      return off(`the external issuer ${as.external.issuer} needs a client for the account page: register a confidential client there with redirect URI ${config.publicUrl}${CALLBACK_PATH} and set account.client.clientId and account.client.clientSecret`);
    }
    clientSecret = account.client.clientSecret;
  }
  return {
    enabled: true,
    embedded,
    issuer: embedded ? as.embedded.issuer ?? config.publicUrl : as.external.issuer,
    clientId,
    clientSecret,
    redirectUri: `${config.publicUrl}${CALLBACK_PATH}`,
    resource: embedded ? `${config.publicUrl}${ACCOUNT_PATH}` : undefined,
    servers,
    idleTimeoutMs: account.idleTimeoutMinutes * 60_000,
    maxSessionMs: account.maxSessionHours * 3_600_000,
    secure: config.publicUrl.startsWith('https:'),
    origin: config.publicUrl,
  };
}
