/**
 * Real peers for downstream tests: a minimal oidc-provider with the token-exchange grant
 * registered exactly as the embedded authorization server does, a JWKS server for a "trusted
 * external issuer", and a downstream HTTP API that verifies exchanged tokens.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, createRemoteJWKSet, jwtVerify, type JWK, type CryptoKey } from 'jose';
import Provider from 'oidc-provider';
import { registerTokenExchangeGrant } from '../../src/authorization-server/grants/token-exchange.ts';
import { gatewayClientMetadata, TOKEN_EXCHANGE_GRANT } from '../../src/downstream/gateway-client.ts';
import { tokenExchangeServerSchema, type TokenExchangeServerConfig } from '../../src/downstream/schema.ts';

export const GATEWAY = { clientId: 'mcp-warden-gateway', clientSecret: 'gateway-secret-0123456789abcdef0123456789' };
export const MCP_RESOURCE_PATH = '/mcp';
export const DOWNSTREAM_API = 'https://notes-api.example.test';

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function close(server: Server): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface TestAuthorizationServer {
  issuer: string;
  tokenEndpoint: string;
  jwksUri: string;
  /** Signs an RFC 9068 access token as this server does (same key, issuer, typ). */
  /** RFC 7009: marks a token this server issued as revoked (by its jti). */
  revoke(jti: string): void;
  issueAccessToken(claims: Record<string, unknown>, options?: { expiresIn?: number; key?: CryptoKey; kid?: string; aud?: string | string[] }): Promise<string>;
  /** POSTs a token request with client_secret_basic. */
  tokenRequest(params: Record<string, string | string[]>, client?: { clientId: string; clientSecret: string }): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startTestAuthorizationServer(overrides: Partial<TokenExchangeServerConfig> & { audiences?: TokenExchangeServerConfig['audiences'] } = {}): Promise<TestAuthorizationServer> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid: 'as-key-1', alg: 'ES256', use: 'sig' };
  const { d: _d, ...publicJwk } = privateJwk;

  const http = createServer();
  const issuer = await listen(http);
  const config = tokenExchangeServerSchema.parse({
    gatewayClient: GATEWAY,
    allowedClients: [],
    audiences: [{ audience: DOWNSTREAM_API, scopes: ['notes:read', 'notes:write'], accessTokenTtlSeconds: 120 }],
    ...overrides,
  });
  const provider = new Provider(issuer, {
    clients: [
      gatewayClientMetadata(GATEWAY),
      // A client that may get tokens, but is not configured to exchange them.
      { client_id: 'plain-app', client_secret: 'plain-app-secret-0123456789abcdef', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
      // A client whose metadata lists token exchange (as a DCR client could) but is not allowed to use it.
      { client_id: 'rogue', client_secret: 'rogue-secret-0123456789abcdef0123', grant_types: [TOKEN_EXCHANGE_GRANT], redirect_uris: [], response_types: [] },
    ],
    jwks: { keys: [privateJwk] },
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
    clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'], response_types: ['code'] },
  });
  const revoked = new Set<string>();
  registerTokenExchangeGrant(provider, { config, gatewayClientId: GATEWAY.clientId, mcpResources: [`${issuer}${MCP_RESOURCE_PATH}`], localJwks: () => ({ keys: [publicJwk] }), signingKey: async () => ({ key: privateKey, kid: 'as-key-1', alg: 'ES256' }), isRevoked: async (claims) => revoked.has(String(claims.jti)) });
  http.on('request', provider.callback());

  const tokenEndpoint = `${issuer}/token`;
  return {
    issuer,
    tokenEndpoint,
    jwksUri: `${issuer}/jwks`,
    revoke: (jti) => void revoked.add(jti),
    async issueAccessToken(claims, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ client_id: 'some-mcp-client', ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: options.kid ?? 'as-key-1' })
        .setIssuer(issuer)
        .setAudience(options.aud ?? `${issuer}${MCP_RESOURCE_PATH}`)
        .setIssuedAt(now)
        .setExpirationTime(now + (options.expiresIn ?? 600))
        .setJti(crypto.randomUUID())
        .sign(options.key ?? privateKey);
    },
    async tokenRequest(params, client = GATEWAY) {
      const body = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
    },
    close: () => close(http),
  };
}

/** A JWKS endpoint for an external issuer, plus a signer for its tokens. */
export async function startExternalIssuer(): Promise<{ issuer: string; jwksUri: string; sign(claims: Record<string, unknown>, aud: string): Promise<string>; close(): Promise<void> }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ext-1', alg: 'RS256', use: 'sig' };
  const http = createServer((req, res) => {
    res.writeHead(req.url === '/jwks' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(req.url === '/jwks' ? JSON.stringify({ keys: [jwk] }) : '{}');
  });
  const origin = await listen(http);
  const issuer = `${origin}/realms/corp`;
  return {
    issuer,
    jwksUri: `${origin}/jwks`,
    sign: (claims, aud) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'ext-1', typ: 'JWT' }).setIssuer(issuer).setAudience(aud).setIssuedAt().setExpirationTime('10m').sign(privateKey),
    close: () => close(http),
  };
}

/**
 * A downstream HTTP API that accepts only exchanged tokens: signature by the authorization server's
 * JWKS, aud = this API, act.sub = the gateway. It answers with the user's own notes.
 */
export async function startNotesApi(options: { jwksUri: string; issuer: string; audience?: string; gatewayClientId?: string }): Promise<{ url: string; seen: Array<Record<string, string | string[] | undefined>>; close(): Promise<void> }> {
  const jwks = createRemoteJWKSet(new URL(options.jwksUri));
  const notes: Record<string, string[]> = { alice: ['alice: board minutes', 'alice: salary review'], bob: ['bob: shopping list'] };
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const http = createServer(async (req, res) => {
    seen.push({ ...req.headers });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!match) return send(401, { error: 'invalid_token' });
    try {
      const { payload } = await jwtVerify(match[1]!, jwks, { issuer: options.issuer, audience: options.audience ?? DOWNSTREAM_API, typ: 'at+jwt', algorithms: ['ES256'] });
      const act = payload.act as { sub?: string } | undefined;
      if (act?.sub !== (options.gatewayClientId ?? GATEWAY.clientId)) return send(403, { error: 'invalid_token', error_description: 'not acting through the gateway' });
      return send(200, { sub: payload.sub, act, scope: payload.scope, notes: notes[payload.sub!] ?? [] });
    } catch (err) {
      return send(401, { error: 'invalid_token', error_description: (err as Error).name });
    }
  });
  const url = await listen(http);
  return { url, seen, close: () => close(http) };
}
