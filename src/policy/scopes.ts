/**
 * Scopes derived from a server's policy: what its protected resource metadata advertises and
 * what each scope unlocks, for the consent page.
 */
import type { ServerConfig } from '../config/schema.ts';

/**
 * Scopes for the server's protected resource metadata: its configured scopes, then every scope a
 * policy rule names, each once.
 * @see RFC 9728 §2 (scopes_supported); MCP 2025-11-25 basic/authorization §Scope Selection Strategy
 */
export function advertisedScopes(server: ServerConfig): string[] {
  const out = [...server.scopes];
  for (const rule of server.policy?.rules ?? []) {
    for (const scope of rule.scopes ?? []) if (!out.includes(scope)) out.push(scope);
  }
  return out;
}

/**
 * For each advertised scope, the tools (names or globs, as configured) that allow rules requiring
 * it unlock. With `roles`, only rules a user with those roles could satisfy count, so the consent
 * page shows a user what the scope gives them rather than what it gives an admin.
 * @see RFC 6749 §3.3 (scope), docs/policy.md
 */
export function describeScopes(server: ServerConfig, roles?: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(advertisedScopes(server).map((s) => [s, [] as string[]]));
  for (const rule of server.policy?.rules ?? []) {
    if (rule.effect !== 'allow' || !rule.tools) continue;
    if (roles && rule.roles && !rule.roles.some((r) => roles.includes(r))) continue;
    for (const scope of rule.scopes ?? []) {
      const tools = (out[scope] ??= []);
      for (const tool of rule.tools) if (!tools.includes(tool)) tools.push(tool);
    }
  }
  return out;
}
