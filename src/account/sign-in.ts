/**
 * The account area as an OpenID Connect relying party of the authorization server, the way MCP
 * clients sign in: authorization code + PKCE S256 + state + nonce, a confidential client
 * (client_secret_basic). oauth4webapi runs the protocol checks (RFC 9207 `iss`, state, ID token
 * claims); jose verifies the ID token's signature with the issuer's keys as well.
 * With the embedded authorization server every request stays on this process's own listener, so
 * it works behind a proxy that the server cannot reach itself through.
 */
import * as oauth from 'oauth4webapi';
import { createRemoteJWKSet, customFetch as joseFetch, jwtVerify } from 'jose';
import { AccountError } from './errors.ts';
import type { PendingSignIn } from './sessions.ts';
import { ACCOUNT_SCOPE } from './settings.ts';

export interface SignInOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** RFC 8707 resource to name (embedded authorization server). */
  resource: string | undefined;
  /** Send requests for the issuer's origin here instead (the embedded server's own listener). */
  localOrigin?: string;
  timeoutMs?: number;
}

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** @see OpenID Connect Core 1.0 §3.1 (Authorization Code Flow), RFC 7636 §4 (S256), RFC 9207 */
export function createSignIn(o: SignInOptions) {
  const issuerUrl = new URL(o.issuer);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const fetchImpl: Fetch = (url, init) => {
    const target = new URL(url);
    if (o.localOrigin && target.origin === issuerUrl.origin) {
      const local = new URL(o.localOrigin);
      target.protocol = local.protocol;
      target.host = local.host;
    }
    return fetch(target, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  };
  const options = {
    [oauth.customFetch]: fetchImpl,
    // Embedded: loopback to ourselves; external: only when the operator configured an http issuer.
    ...(o.localOrigin || issuerUrl.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}),
  };
  const client: oauth.Client = { client_id: o.clientId };
  const clientAuth = oauth.ClientSecretBasic(o.clientSecret);

  let metadata: Promise<{ as: oauth.AuthorizationServer; jwks: ReturnType<typeof createRemoteJWKSet> }> | undefined;
  function discover() {
    metadata ??= (async () => {
      const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...options }));
      if (!as.authorization_endpoint || !as.token_endpoint || !as.jwks_uri) throw new Error('the issuer metadata lacks authorization_endpoint, token_endpoint or jwks_uri');
      const jwks = createRemoteJWKSet(new URL(as.jwks_uri), { [joseFetch]: (url: string, init: RequestInit) => fetchImpl(url, init) });
      return { as, jwks };
    })().catch((err: unknown) => {
      metadata = undefined;
      throw err;
    });
    return metadata;
  }

  return {
    /** The authorization request URL, and what the answer must match. */
    async begin(returnTo: string): Promise<{ url: string; pending: PendingSignIn }> {
      const { as } = await discover().catch((err: Error) => {
        throw new AccountError(503, 'Sign-in is unavailable', 'The sign-in service cannot be reached right now. Try again in a minute.', `discovery failed: ${err.message}`);
      });
      const pending: PendingSignIn = {
        state: oauth.generateRandomState(),
        nonce: oauth.generateRandomNonce(),
        codeVerifier: oauth.generateRandomCodeVerifier(),
        returnTo,
      };
      const url = new URL(as.authorization_endpoint!);
      url.search = new URLSearchParams({
        client_id: o.clientId,
        redirect_uri: o.redirectUri,
        response_type: 'code',
        scope: o.resource ? `openid ${ACCOUNT_SCOPE}` : 'openid',
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await oauth.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
        // Secrets are at stake: the user proves who they are each time, and sign-out means signed out.
        prompt: 'login',
        ...(o.resource ? { resource: o.resource } : {}),
      }).toString();
      return { url: url.href, pending };
    },

    /**
     * Redeems the code of the redirect back and returns the verified subject.
     * @throws AccountError (400) for an answer that does not match, a refusal or a bad ID token
     */
    async finish(callback: URL, pending: PendingSignIn): Promise<{ subject: string }> {
      const { as, jwks } = await discover();
      let params: URLSearchParams;
      try {
        params = oauth.validateAuthResponse(as, client, callback, pending.state);
      } catch (err) {
        const refused = err instanceof oauth.AuthorizationResponseError ? err.error : undefined;
        throw new AccountError(400, 'Sign-in did not complete',
          refused === 'access_denied' ? 'You declined the request. Sign in again when you are ready.' : 'The answer from the sign-in service did not match this browser\'s request. Start again.',
          `authorization response rejected: ${refused ?? (err as Error).message}`);
      }
      try {
        const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, o.redirectUri, pending.codeVerifier, options);
        const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true });
        // OIDC Core §3.1.3.7: oauth4webapi checked iss, aud, azp, exp, iat and nonce; the signature
        // is checked here too, with the issuer's published keys.
        const { payload } = await jwtVerify(tokens.id_token!, jwks, {
          issuer: as.issuer,
          audience: o.clientId,
          algorithms: as.id_token_signing_alg_values_supported?.filter((a) => a !== 'none') ?? ['RS256'],
        });
        if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('the ID token has no sub');
        return { subject: payload.sub };
      } catch (err) {
        if (err instanceof AccountError) throw err;
        throw new AccountError(400, 'Sign-in did not complete', 'The sign-in could not be confirmed. Start again.', `code redemption or ID token rejected: ${(err as Error).name}: ${(err as Error).message}`);
      }
    },
  };
}

export type SignIn = ReturnType<typeof createSignIn>;
