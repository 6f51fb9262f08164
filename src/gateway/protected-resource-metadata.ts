/**
 * RFC 9728 protected resource metadata for each MCP endpoint.
 */
import type { Config, ServerConfig } from '../config/schema.ts';
import { advertisedScopes } from '../policy/index.ts';

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/**
 * The canonical URI of a server's MCP endpoint: publicUrl + path, no trailing slash
 * (MCP authorization §Canonical Server URI; the RFC 8707 resource and the token audience).
 */
export function canonicalResourceUri(config: Config, server: ServerConfig): string {
  return server.path === '/' ? config.publicUrl : `${config.publicUrl}${server.path}`;
}

/**
 * RFC 9728 §3.1: the well-known URI is formed by inserting the well-known segment between the
 * host and the path of the resource identifier.
 */
export function protectedResourceMetadataPath(server: ServerConfig): string {
  return server.path === '/' ? WELL_KNOWN : `${WELL_KNOWN}${server.path}`;
}

export function protectedResourceMetadataUrl(config: Config, server: ServerConfig): string {
  return `${config.publicUrl}${protectedResourceMetadataPath(server)}`;
}

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

/** The path of the root well-known document (RFC 9728 §3.1 without a path component). */
export const ROOT_METADATA_PATH = WELL_KNOWN;
