/**
 * The identifiers of one protected MCP server, derived from configuration alone: used by the
 * gateway (audience checks, challenges), the authorization server (resource indicators) and the CLI.
 */
import type { Config, ServerConfig } from '../config/schema.ts';

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

/** RFC 9728 §3.1: the absolute URL of a server's protected resource metadata document. */
export function protectedResourceMetadataUrl(config: Config, server: ServerConfig): string {
  return `${config.publicUrl}${protectedResourceMetadataPath(server)}`;
}

/** The path of the root well-known document (RFC 9728 §3.1 without a path component). */
export const ROOT_METADATA_PATH = WELL_KNOWN;
