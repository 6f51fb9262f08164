/** Placeholder until issue 4 lands: per-server policies are built here. */
import type { ServerConfig } from '../config/schema.ts';
import type { ServerPolicy } from './types.ts';

export type { Decision, PolicyRequest, ServerPolicy } from './types.ts';

/** The policy of one server, or undefined when it has none (every authenticated call allowed). */
export function createServerPolicy(_server: ServerConfig): ServerPolicy | undefined {
  return undefined;
}

/** For the consent page: for each scope of the server, the tools it unlocks. */
export function describeScopes(server: ServerConfig): Record<string, string[]> {
  return Object.fromEntries(server.scopes.map((s) => [s, []]));
}

/** Scopes for the server's protected resource metadata (RFC 9728 scopes_supported): its own and those its policy names. */
export function advertisedScopes(server: ServerConfig): string[] {
  return [...server.scopes];
}
