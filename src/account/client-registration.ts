/**
 * The account area's confidential OIDC client at the embedded authorization server, provisioned
 * at start like the gateway's token-exchange client (src/authorization-server/grants/token-exchange.ts):
 * authorization code only (no refresh tokens), one exact redirect URI, client_secret_basic.
 */
import type { AuthorizationServerExtension, ExtraResourceResolver } from '../authorization-server/index.ts';
import { createClientRegistry } from '../authorization-server/clients.ts';
import { verifyClientSecret } from '../authorization-server/client-secret.ts';
import { ACCOUNT_SCOPE } from './settings.ts';

export interface AccountClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** The RFC 8707 resource the client's access token names (it is never used, only the ID token). */
  resource: string;
}

/**
 * RFC 8707 §2: the account client names its own resource, so its access token is never valid at an
 * MCP server (with one server, a missing `resource` would default to that server).
 */
export function accountResource(client: AccountClient): ExtraResourceResolver {
  return (uri) => (uri === client.resource ? { uri, scopes: [ACCOUNT_SCOPE], accessTokenTtlSeconds: 60 } : undefined);
}

/** Registers (or re-registers, when its secret or redirect URI changed) the account client. @see RFC 7591 §2 */
export function ensureAccountClient(client: AccountClient): AuthorizationServerExtension {
  return async (provider, ctx) => {
    const stored = (await ctx.store.models.find('Client', client.clientId)) as { client_secret?: string; redirect_uris?: string[]; grant_types?: string[] } | undefined;
    const current = stored !== undefined
      && verifyClientSecret(stored.client_secret, client.clientSecret)
      && JSON.stringify(stored.redirect_uris) === JSON.stringify([client.redirectUri])
      && JSON.stringify(stored.grant_types) === JSON.stringify(['authorization_code']);
    if (current) return;
    const registry = createClientRegistry(provider, ctx.store);
    await registry.remove(client.clientId);
    await registry.add({
      clientId: client.clientId,
      clientName: 'mcp-warden account page',
      type: 'confidential',
      applicationType: 'web',
      grantTypes: ['authorization_code'],
      redirectUris: [client.redirectUri],
      clientSecret: client.clientSecret,
    });
    ctx.logger.info({ clientId: client.clientId }, 'account page client registered');
  };
}
