/**
 * Resource indicators (RFC 8707): which `resource` values this authorization server issues
 * tokens for, and with which scopes. A resource is a configured MCP server's canonical URI
 * (`publicUrl + path`), or one an extension adds (token exchange adds downstream audiences).
 */
import type { Config, ServerConfig } from '../config/schema.ts';
import { advertisedScopes } from '../policy/index.ts';
import { canonicalResourceUri } from '../kernel/resource-uri.ts';

export interface ResourceInfo {
  /** The canonical URI: the token's `aud` (RFC 8707 §2, RFC 9068 §3). */
  uri: string;
  /** Every scope this resource understands. */
  scopes: string[];
  /** The MCP server behind it, when it is one of ours. */
  server?: ServerConfig;
  accessTokenTtlSeconds: number;
}

/**
 * EXTENSION POINT (token exchange, RFC 8693 audiences): return the ResourceInfo of an additional
 * resource (e.g. a downstream API audience), or undefined when `uri` is not yours.
 */
export type ExtraResourceResolver = (uri: string) => ResourceInfo | undefined;

// RFC 8707 §2 / RFC 9728 §3.3: one definition of a server's canonical URI, the gateway's, so the
// `resource` its protected resource metadata advertises is exactly the one resolved here.
export { canonicalResourceUri };

/** Resolves a `resource` value to what it grants, or undefined (→ invalid_target). @see RFC 8707 §2 */
export function createResourceResolver(config: Config, ttlSeconds: number, extra: ExtraResourceResolver[] = []): (uri: string) => ResourceInfo | undefined {
  const byUri = new Map<string, ResourceInfo>();
  for (const server of config.servers) {
    const uri = canonicalResourceUri(config, server);
    // Every scope the protected resource metadata advertises, including those only a policy rule
    // names, so a client stepping up to one (MCP 2025-11-25 §Scope Challenge Handling) can get it.
    byUri.set(uri, { uri, scopes: advertisedScopes(server), server, accessTokenTtlSeconds: ttlSeconds });
  }
  return (uri) => {
    // Exact string match only: no normalisation, no prefix match (RFC 8707 §2: the token is
    // only valid at the resource it names).
    const own = byUri.get(uri);
    if (own) return own;
    for (const resolve of extra) {
      const info = resolve(uri);
      if (info) return info;
    }
    return undefined;
  };
}

/** The one resource to use when a client names none: the single configured server, if there is exactly one. @see RFC 8707 §2 */
export function defaultResourceUri(config: Config): string | undefined {
  return config.servers.length === 1 ? canonicalResourceUri(config, config.servers[0]!) : undefined;
}
