/**
 * The authority `mcp-warden connect` gives the bridge: the stored access token, read from the
 * token store, while it is usable as a Bearer token; the full `WardenClient` (the MCP SDK's OAuth
 * client, oauth4webapi-style discovery, the browser sign-in, `fetch`) is loaded only the first
 * time something else is needed: no token, one about to expire, a 401, a 403, DPoP. An idle bridge
 * with a fresh token so never holds it (docs/benchmarks.md, Client footprint).
 */
import { canonicalServerUri } from './canonical-uri.ts';
import { resolveClientHome } from './paths.ts';
import type { WardenClient, WardenClientOptions } from './session.ts';
import type { BridgeAuthority } from './streamable-http.ts';
import { TokenStore } from './token-store.ts';

/** The bridge's authority; the full client behind it is loaded on first need. */
export type DeferredWarden = BridgeAuthority;

/** @see MCP 2025-11-25 Authorization §Token Requirements; RFC 6750 §2.1 */
export function createDeferredWarden(options: WardenClientOptions): DeferredWarden {
  const serverUrl = canonicalServerUri(options.serverUrl);
  const now = options.now ?? Date.now;
  const skewMs = options.refreshSkewMs ?? 60_000;
  let store: TokenStore | undefined;
  let loaded: Promise<WardenClient> | undefined;
  const full = () => (loaded ??= import('./session.ts').then(({ WardenClient }) => new WardenClient(options)));

  return {
    serverUrl,
    fetch: async (input, init) => (await full()).fetch(input, init),
    async storedBearerToken() {
      // DPoP-bound tokens need a proof per request (RFC 9449 §7.1), a custom fetch its own path:
      // both stay with the full client.
      if (options.dpop || options.fetch) return undefined;
      store ??= new TokenStore(options.home ?? resolveClientHome(options.env), {}, {
        mode: options.tokenStore ?? 'auto',
        env: options.env ?? process.env,
        onNotice: (message) => options.onNotice?.(message),
      });
      // A store that cannot be read (corrupt, keychain locked) is the full client's to report.
      const record = await store.read(serverUrl).catch(() => undefined);
      const tokens = record?.tokens;
      if (!tokens?.access_token) return undefined;
      if (tokens.token_type !== undefined && !/^bearer$/i.test(tokens.token_type)) return undefined;
      // The same rule as WardenClient.currentAccessToken: refresh within the skew is its job.
      if (tokens.expires_at !== undefined && tokens.expires_at - skewMs <= now()) return undefined;
      return tokens.access_token;
    },
  };
}
