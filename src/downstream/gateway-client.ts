/**
 * The gateway's own confidential client at the embedded authorization server: the only client
 * (besides `allowedClients`) that may use RFC 8693 token exchange. Provisioned automatically
 * when token exchange is configured; both the authorization server (to register it) and the
 * gateway (to authenticate with it) resolve it here, so they always agree.
 */
import { randomBytes } from 'node:crypto';
import type { SettingsStore } from '../storage/downstream-store.ts';
import type { TokenExchangeServerConfig } from './schema.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

export interface GatewayClient {
  clientId: string;
  clientSecret: string;
}

/**
 * The secret is, in order: the config's `gatewayClient.clientSecret`, $WARDEN_GATEWAY_CLIENT_SECRET,
 * else 32 random bytes generated once and kept in the database.
 */
export async function resolveGatewayClient(config: TokenExchangeServerConfig, env: NodeJS.ProcessEnv, settings: SettingsStore): Promise<GatewayClient> {
  const clientId = config.gatewayClient.clientId;
  const configured = config.gatewayClient.clientSecret ?? env.WARDEN_GATEWAY_CLIENT_SECRET;
  const clientSecret = configured ?? await settings.getOrCreate(`gateway-client-secret:${clientId}`, () => randomBytes(32).toString('base64url'));
  return { clientId, clientSecret };
}

/**
 * The client metadata (RFC 7591 §2) oidc-provider registers for the gateway: confidential,
 * token exchange only, no redirect URIs.
 */
export function gatewayClientMetadata(client: GatewayClient): { client_id: string; client_secret: string } & Record<string, unknown> {
  return {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    client_name: 'mcp-warden gateway (token exchange)',
    grant_types: [TOKEN_EXCHANGE_GRANT],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}
