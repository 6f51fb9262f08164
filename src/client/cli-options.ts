/**
 * The options every client command shares, and how they become `WardenClientOptions`.
 * Only src/cli reads argv; this file only describes and converts the parsed values.
 */
import { readFileSync } from 'node:fs';
import { ClientError } from './errors.ts';
import { parseTokenStoreMode } from './keychain/types.ts';
import type { WardenClientOptions } from './session.ts';

export const clientOptionSpec = {
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
  'client-credentials': { type: 'boolean' },
  'private-key-jwt': { type: 'string' },
  'signing-alg': { type: 'string' },
  'client-metadata-url': { type: 'string' },
  scope: { type: 'string' },
  'no-resource': { type: 'boolean' },
  'no-browser': { type: 'boolean' },
  dpop: { type: 'boolean' },
  'jwt-bearer-assertion': { type: 'string' },
  'token-store': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const clientOptionsHelp = [
  '  --client-id ID              a pre-registered client (used before CIMD and DCR)',
  '  --client-secret SECRET      its secret (prefer MCP_WARDEN_CLIENT_SECRET in the environment)',
  '  --client-credentials        client credentials grant (agents, no user) with --client-id/--client-secret',
  '  --private-key-jwt FILE      client credentials with private_key_jwt: a PEM (PKCS#8) or JWK file',
  '  --signing-alg ALG           its JWS algorithm (default: the JWK "alg", else ES256)',
  '  --client-metadata-url URL   an https Client ID Metadata Document to use as client_id',
  '  --scope "A B"               scopes for the first authorization (default: the spec\'s selection)',
  '  --no-resource               leave out the RFC 8707 resource parameter (for providers that reject it)',
  '  --no-browser                print the sign-in URL instead of opening a browser',
  '  --dpop                      ask for DPoP-bound tokens (RFC 9449) and send proofs with them',
  '  --jwt-bearer-assertion FILE workload identity: the RFC 7523 jwt-bearer grant with the JWT in FILE (re-read each time), with --client-id',
  '  --token-store MODE          auto (OS keychain when it works, else a 0600 file), keychain or file; env MCP_WARDEN_TOKEN_STORE',
].join('\n');

export interface ParsedClientValues {
  'client-id'?: string;
  'client-secret'?: string;
  'client-credentials'?: boolean;
  'private-key-jwt'?: string;
  'signing-alg'?: string;
  'client-metadata-url'?: string;
  scope?: string;
  'no-resource'?: boolean;
  'no-browser'?: boolean;
  dpop?: boolean;
  'jwt-bearer-assertion'?: string;
  'token-store'?: string;
}

/** Reads a private key file: a JWK (JSON) or a PEM. */
function readPrivateKey(path: string, alg: string | undefined): { privateKey: string | Record<string, unknown>; alg: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ClientError('usage', `cannot read --private-key-jwt ${path}: ${(err as Error).message}`);
  }
  if (text.trimStart().startsWith('{')) {
    let jwk: Record<string, unknown>;
    try {
      jwk = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ClientError('usage', `--private-key-jwt ${path} is neither a PEM nor a JSON JWK`);
    }
    return { privateKey: jwk, alg: alg ?? (typeof jwk.alg === 'string' ? jwk.alg : 'ES256') };
  }
  return { privateKey: text, alg: alg ?? 'ES256' };
}

export function toClientOptions(
  serverUrl: string,
  values: ParsedClientValues,
  env: NodeJS.ProcessEnv,
  io: { notice: (message: string) => void; printUrl: (url: URL) => void },
): WardenClientOptions {
  const secret = values['client-secret'] ?? env.MCP_WARDEN_CLIENT_SECRET;
  const options: WardenClientOptions = {
    serverUrl,
    env,
    sendResource: !values['no-resource'],
    onNotice: io.notice,
  };
  // Refresh this long before expiry (default 60 s); short-lived test tokens need less.
  const skew = env.MCP_WARDEN_REFRESH_SKEW_SECONDS;
  if (skew !== undefined && /^\d+$/.test(skew)) options.refreshSkewMs = Number(skew) * 1000;
  if (values['client-id']) options.clientId = values['client-id'];
  if (secret) options.clientSecret = secret;
  if (values['client-metadata-url']) options.clientMetadataUrl = values['client-metadata-url'];
  if (values.scope) options.scope = values.scope;
  if (values.dpop) options.dpop = true;
  const tokenStore = parseTokenStoreMode(values['token-store']) ?? parseTokenStoreMode(env.MCP_WARDEN_TOKEN_STORE, 'MCP_WARDEN_TOKEN_STORE');
  if (tokenStore) options.tokenStore = tokenStore;
  if (values['private-key-jwt']) {
    options.grant = 'client_credentials';
    options.privateKeyJwt = readPrivateKey(values['private-key-jwt'], values['signing-alg']);
  } else if (values['client-credentials']) {
    options.grant = 'client_credentials';
  }
  const assertionFile = values['jwt-bearer-assertion'];
  if (assertionFile) {
    // Workload identity tokens are rotated on disk (e.g. a Kubernetes projected token): read at each use.
    options.grant = 'jwt_bearer';
    options.assertion = async () => {
      try {
        return readFileSync(assertionFile, 'utf8').trim();
      } catch (err) {
        throw new ClientError('usage', `cannot read --jwt-bearer-assertion ${assertionFile}: ${(err as Error).message}`);
      }
    };
    if (!options.clientId) throw new ClientError('usage', 'the jwt-bearer grant needs --client-id');
  }
  if (options.grant === 'client_credentials' && (!options.clientId || (!options.clientSecret && !options.privateKeyJwt))) {
    throw new ClientError('usage', 'client credentials need --client-id and either --client-secret (or MCP_WARDEN_CLIENT_SECRET) or --private-key-jwt');
  }
  if (values['no-browser']) {
    options.openUrl = async (url) => io.printUrl(url);
  } else {
    options.openUrl = async (url) => {
      const { openInBrowser } = await import('./browser.ts');
      try {
        await openInBrowser(url);
        io.notice('a browser window was opened to sign in; if none appeared, open the URL below');
      } catch {
        // no opener on this machine: the printed URL is the way
      }
      io.printUrl(url);
    };
  }
  return options;
}
