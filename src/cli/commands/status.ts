/**
 * `mcp-warden status [url]`: the stored sign-ins (server, user, scopes, expiry, authorization
 * server, client) and where the tokens are kept. It reads the token store only: no network, no
 * refresh, and it never prints a token.
 */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { canonicalServerUri } from '../../client/canonical-uri.ts';
import { parseTokenStoreMode } from '../../client/keychain/types.ts';
import { resolveClientHome } from '../../client/paths.ts';
import { TokenStore, type ServerRecord } from '../../client/token-store.ts';

/**
 * The user an access token names, for display only: the `sub` (and a human name claim when
 * present) of a JWT access token (RFC 9068 §2.2). Never used for a decision; opaque tokens show
 * no user.
 */
function userOf(accessToken: string): string | undefined {
  const parts = accessToken.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const name = [claims.preferred_username, claims.username, claims.email].find((v) => typeof v === 'string' && v !== claims.sub);
    return typeof claims.sub === 'string' ? `${claims.sub}${name ? ` (${String(name)})` : ''}` : undefined;
  } catch {
    return undefined;
  }
}

function expiryOf(record: ServerRecord, now: number): string {
  const tokens = record.tokens!;
  const renew = tokens.refresh_token ? 'renewed with the refresh token at next use' : 'a new sign-in is needed at next use';
  if (tokens.expires_at === undefined) return 'not stated by the authorization server';
  const minutes = Math.round((tokens.expires_at - now) / 60_000);
  const at = new Date(tokens.expires_at).toISOString();
  if (tokens.expires_at <= now) return `${at} (expired; ${renew})`;
  return `${at} (in ${minutes < 1 ? 'less than a minute' : `${minutes} min`})`;
}

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, { 'token-store': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    ctx.stdout.write('usage: mcp-warden status [url] [--json] [--token-store auto|keychain|file]\n\n  lists the stored sign-ins (server, user, scopes, expiry) and where tokens are kept; prints no token\n');
    return 0;
  }
  if (positionals.length > 1) throw new UsageError('usage: mcp-warden status [url]');
  const only = positionals[0] === undefined ? undefined : canonicalServerUri(positionals[0]);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const home = resolveClientHome(ctx.env);
  const mode = parseTokenStoreMode(values['token-store']) ?? parseTokenStoreMode(ctx.env.MCP_WARDEN_TOKEN_STORE, 'MCP_WARDEN_TOKEN_STORE') ?? 'auto';
  const store = new TokenStore(home, {}, { mode, env: ctx.env });
  const entries = (await store.list()).filter((e) => only === undefined || e.serverUrl === only);
  const backend = entries.length > 0 ? await store.resolveBackend().catch((err: Error) => ({ kind: 'unavailable' as const, reason: err.message })) : undefined;
  const storeKind = backend === undefined
    ? undefined
    : backend.kind === 'keychain' ? `encrypted, key in the OS keychain (${backend.keychain.name})` : backend.kind === 'file' ? `unencrypted 0600 files (${backend.reason})` : `unusable: ${backend.reason}`;
  const now = Date.now();
  const rows = entries.map((e) => {
    const tokens = e.record?.tokens;
    return {
      server: e.serverUrl ?? null,
      signedIn: Boolean(tokens),
      user: tokens ? (userOf(tokens.access_token) ?? null) : null,
      scopes: tokens?.scope ?? null,
      expiresAt: tokens?.expires_at !== undefined ? new Date(tokens.expires_at).toISOString() : null,
      refreshToken: Boolean(tokens?.refresh_token),
      authorizationServer: tokens?.issuer ?? null,
      clientId: (tokens?.issuer && e.record?.clients[tokens.issuer]?.client_id) || null,
      file: e.path,
      ...(e.problem && { problem: e.problem }),
      text: e.problem
        ? `${e.serverUrl ?? e.path}\n  problem:    ${e.problem}`
        : [
            `${e.serverUrl}`,
            tokens
              ? [
                  `  user:       ${userOf(tokens.access_token) ?? '(not in the token)'}`,
                  `  scopes:     ${tokens.scope ?? '(not stated)'}`,
                  `  expires:    ${expiryOf(e.record!, now)}`,
                  `  issuer:     ${tokens.issuer ?? '(unknown)'}`,
                ].join('\n')
              : '  not signed in (registration and discovery kept)',
          ].join('\n'),
    };
  });
  if (values.json) {
    ctx.stdout.write(`${JSON.stringify({ home, tokenStore: { mode, kind: storeKind ?? null }, servers: rows.map(({ text: _text, ...row }) => row) }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    ctx.stdout.write(only ? `No stored sign-in for ${only} (in ${home}).\n` : `No stored sign-ins (in ${home}). Sign in with: mcp-warden login <server URL>\n`);
    return 0;
  }
  ctx.stdout.write(`${rows.map((r) => r.text).join('\n\n')}\n\ntoken store: ${home} (${mode}: ${storeKind})\n`);
  return 0;
};
