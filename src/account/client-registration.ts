/**
 * The account area's confidential OIDC client at the embedded authorization server, provisioned
 * at start like the gateway's token-exchange client (src/authorization-server/grants/token-exchange.ts):
 * authorization code only (no refresh tokens), one exact redirect URI, client_secret_basic.
 */
import type { AuthorizationServerExtension, ExtraResourceResolver } from '../authorization-server/index.ts';
import { ensureFirstPartyClient } from '../authorization-server/first-party-client.ts';
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
    const registered = await ensureFirstPartyClient(provider, ctx.store, {
      clientId: client.clientId,
      clientName: 'mcp-warden account page',
      grantTypes: ['authorization_code'],
      redirectUris: [client.redirectUri],
      clientSecret: client.clientSecret,
    });
    if (!registered) return;
    ctx.logger.info({ clientId: client.clientId }, 'account page client registered');
  };
}
