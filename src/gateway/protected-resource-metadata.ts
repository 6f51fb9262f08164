/**
 * RFC 9728 protected resource metadata for each MCP endpoint.
 */
import type { Config, ServerConfig } from '../config/schema.ts';
import { advertisedScopes } from '../policy/index.ts';
import { canonicalResourceUri } from '../kernel/resource-uri.ts';


/** The issuer clients are sent to (RFC 9728 §2 authorization_servers). */
export function authorizationServerIssuer(config: Config): string {
  const as = config.authorizationServer;
  return 'embedded' in as ? (as.embedded.issuer ?? config.publicUrl) : as.external.issuer;
}

/**
 * The metadata document. `resource` is exactly the canonical URI (RFC 9728 §3.3).
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 */
export function buildProtectedResourceMetadata(config: Config, server: ServerConfig): Record<string, unknown> {
  return {
    resource: canonicalResourceUri(config, server),
    authorization_servers: [authorizationServerIssuer(config)],
    scopes_supported: advertisedScopes(server),
    bearer_methods_supported: ['header'],
    resource_name: server.name,
  };
}

