/**
 * OAuth helpers for everyone's end-to-end tests: real flows against the real endpoints of an
 * authorization server, driven by oauth4webapi (a real client library) and plain HTTP with a
 * small cookie jar. The login and consent forms are fetched, parsed and submitted with their
 * CSRF tokens, exactly as a browser would; nothing is bypassed.
 */
import * as oauth from 'oauth4webapi';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
  scope?: string;
  token_type: string;
  clientId: string;
  /** The redirect_uri the client used. */
  redirectUri: string;
}

export interface ObtainTokensOptions {
  issuer: string;
  username: string;
  password: string;
  /** RFC 8707 resource: the MCP server's canonical URI. */
  resource: string;
  scope?: string;
  /** A pre-registered public client (or CIMD URL); registered by DCR when absent. */
  clientId?: string;
  redirectUri?: string;
  /** Adds `offline_access` so a refresh token is issued (default true). */
  offlineAccess?: boolean;
  /** What to click on the consent page, when it is shown (default allow). */
  consent?: 'allow' | 'deny';
}

export async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  const response = await oauth.discoveryRequest(url, { algorithm: 'oauth2', ...insecure });
  return oauth.processDiscoveryResponse(url, response);
}

/** RFC 7591 registration of a public native client with a loopback redirect URI. */
export async function registerPublicClient(issuer: string, redirectUri = 'http://127.0.0.1/callback', clientName = 'test client'): Promise<string> {
  const as = await discover(issuer);
  const response = await oauth.dynamicClientRegistrationRequest(as, {
    client_name: clientName, application_type: 'native', redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
  }, insecure);
  const client = await oauth.processDynamicClientRegistrationResponse(response);
  return client.client_id;
}

/** A browser stand-in: cookies by name, redirects followed by hand. */
export class Browser {
  readonly #cookies = new Map<string, string>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#cookies.size) headers.set('cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  /** Follows redirects until a page is returned or the location leaves `origin`. */
  async follow(url: string, origin: string): Promise<{ url: string; response: Response }> {
    let current = url;
    for (let i = 0; i < 10; i++) {
      const response = await this.fetch(current);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) return { url: current, response };
      await response.arrayBuffer();
      current = new URL(location, current).href;
      if (new URL(current).origin !== origin) return { url: current, response };
    }
    throw new Error('too many redirects');
  }

  async submit(pageUrl: string, html: string, fields: Record<string, string>): Promise<Response> {
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    if (!action || !csrf) throw new Error(`no form on ${pageUrl}`);
    return this.fetch(new URL(action.replace(/&amp;/g, '&'), pageUrl).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, ...fields }).toString(),
    });
  }
}

export interface AuthorizationResult {
  /** The URL the AS finally redirected the browser to (the client's redirect_uri). */
  callbackUrl: URL;
  state: string;
  codeVerifier: string;
  /** Whether a consent page was shown. */
  consentShown: boolean;
}

/** Runs the front channel (authorize → login → consent → redirect) and returns the callback URL. */
export async function authorize(o: ObtainTokensOptions & { clientId: string; browser?: Browser; extraParams?: Record<string, string> }): Promise<AuthorizationResult> {
  const as = await discover(o.issuer);
  const redirectUri = o.redirectUri ?? 'http://127.0.0.1/callback';
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const scope = [...(o.scope ? o.scope.split(' ') : []), ...(o.offlineAccess === false ? [] : ['offline_access'])].join(' ');
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: o.clientId, redirect_uri: redirectUri, response_type: 'code', state,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    resource: o.resource, ...(scope ? { scope } : {}), ...o.extraParams,
  }).toString();

  const browser = o.browser ?? new Browser();
  const origin = new URL(o.issuer).origin;
  let step = await browser.follow(url.href, origin);
  let consentShown = false;
  for (let i = 0; i < 4 && new URL(step.url).origin === origin; i++) {
    const html = await step.response.text();
    if (html.includes('name="password"')) {
      const r = await browser.submit(step.url, html, { username: o.username, password: o.password });
      if (r.status !== 303 && r.status !== 302) throw new Error(`sign-in failed with HTTP ${r.status}`);
      step = await browser.follow(new URL(r.headers.get('location')!, step.url).href, origin);
    } else if (html.includes('value="allow"')) {
      consentShown = true;
      const r = await browser.submit(step.url, html, { decision: o.consent ?? 'allow' });
      if (r.status !== 303 && r.status !== 302) throw new Error(`consent failed with HTTP ${r.status}`);
      step = await browser.follow(new URL(r.headers.get('location')!, step.url).href, origin);
    } else {
      throw new Error(`unexpected page from the authorization server (HTTP ${step.response.status}): ${html.slice(0, 300)}`);
    }
  }
  if (new URL(step.url).origin === origin) throw new Error('the authorization server never redirected back to the client');
  return { callbackUrl: new URL(step.url), state, codeVerifier, consentShown };
}

/** The full authorization code + PKCE + resource flow; DCR first when no clientId is given. @see RFC 6749 §4.1, RFC 7636, RFC 8707 */
export async function obtainTokens(o: ObtainTokensOptions): Promise<Tokens> {
  const redirectUri = o.redirectUri ?? 'http://127.0.0.1/callback';
  const clientId = o.clientId ?? await registerPublicClient(o.issuer, redirectUri);
  const as = await discover(o.issuer);
  const client: oauth.Client = { client_id: clientId };
  const { callbackUrl, state, codeVerifier } = await authorize({ ...o, clientId, redirectUri });
  const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, codeVerifier, {
    additionalParameters: { resource: o.resource }, ...insecure,
  });
  const result = await oauth.processAuthorizationCodeResponse(as, client, response);
  return {
    access_token: result.access_token, token_type: result.token_type, clientId, redirectUri,
    ...(result.refresh_token ? { refresh_token: result.refresh_token } : {}),
    ...(result.expires_in !== undefined ? { expires_in: result.expires_in } : {}),
    ...(result.scope !== undefined ? { scope: result.scope } : {}),
  };
}

/** RFC 6749 §6 refresh for a public client, with the resource (RFC 8707 §2.2). */
export async function refreshTokens(o: { issuer: string; clientId: string; refreshToken: string; resource: string }): Promise<oauth.TokenEndpointResponse> {
  const as = await discover(o.issuer);
  const client: oauth.Client = { client_id: o.clientId };
  const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), o.refreshToken, { additionalParameters: { resource: o.resource }, ...insecure });
  return oauth.processRefreshTokenResponse(as, client, response);
}

/** MCP client credentials extension: client_secret_basic (default `demo-agent`). */
export async function clientCredentialsToken(o: { issuer: string; clientId?: string; clientSecret: string; resource: string; scope?: string }): Promise<oauth.TokenEndpointResponse> {
  const as = await discover(o.issuer);
  const client: oauth.Client = { client_id: o.clientId ?? 'demo-agent' };
  const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(o.clientSecret), {
    resource: o.resource, ...(o.scope ? { scope: o.scope } : {}),
  }, insecure);
  return oauth.processClientCredentialsResponse(as, client, response);
}
