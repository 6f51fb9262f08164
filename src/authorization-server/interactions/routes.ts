/**
 * The interaction endpoints oidc-provider sends the browser to: `/interaction/:uid` (GET: the
 * login or consent page), `/interaction/:uid/login` and `/interaction/:uid/consent` (POST).
 * Each POST checks Origin (when sent) and the CSRF token before anything else.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { Logger } from '../../log.ts';
import type { UserStore } from '../../users/user-store.ts';
import type { ConsentStore } from '../../storage/store.ts';
import type { ResourceInfo } from '../resources.ts';
import { isUrlClientId } from '../client-id-metadata-document.ts';
import { createCsrf } from '../../kernel/csrf.ts';
import { createBackoff, createSemaphore, unsharedBackoff, type SharedBackoffFactory } from '../rate-limit.ts';
import { sendPage } from '../../kernel/html.ts';
import { AuthorizationServerError, sendAuthorizationServerError } from '../errors.ts';
import { consentPage, loginPage, type ClientClaim, type ConsentScope, type RedirectTarget } from './views.ts';
import { imitatedName } from './client-name.ts';

export interface InteractionDeps {
  provider: Provider;
  users: UserStore;
  consents: ConsentStore;
  cookieSecret: string;
  issuerOrigin: string;
  resolveResource: (uri: string) => ResourceInfo | undefined;
  defaultResource: string | undefined;
  /** For each scope, the tools it unlocks for a user with `roles` (consent page). */
  describeScopes: (info: ResourceInfo, roles: readonly string[]) => Record<string, string[]>;
  logger: Logger;
  now: () => number;
  /** The issuer's path ('' for an origin issuer): prefix of the form actions. */
  basePath: string;
  /**
   * Sign-in backoff, per account and per client address separately: `maxFailures` failures are
   * free, then each doubles the wait (from 1 s) up to `windowMs`; concurrent scrypt runs.
   */
  loginRateLimit: { maxFailures: number; windowMs: number; maxConcurrent?: number };
  /** Keeps the sign-in backoff in state every instance shares (src/cluster/backoff.ts); default: this instance's memory. */
  sharedBackoff?: SharedBackoffFactory;
  /** Names of the clients an administrator registered (the sign-in pages warn when a self-asserted name imitates one). */
  preRegisteredClientNames?: () => Promise<readonly string[]>;
  /** The client's address (through trusted proxies only: src/http/client-address.ts). Default: the socket's peer. */
  clientAddress?: (req: IncomingMessage) => string;
}

const MAX_FORM_BYTES = 16 * 1024;

class FormError extends Error {}

/** Reads an urlencoded form, refusing oversized bodies and repeated fields. */
async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new FormError('expected a form submission');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new FormError('form too large');
    chunks.push(chunk as Buffer);
  }
  const form = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    if (form.has(k)) throw new FormError(`repeated field ${k}`);
    form.set(k, v);
  }
  return form;
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]' || hostname === '::1';
}

/** The login and consent endpoints. @see oidc-provider interactionDetails / interactionFinished */
export function createInteractionHandler(deps: InteractionDeps) {
  const { provider, users, consents, logger } = deps;
  const csrf = createCsrf(deps.cookieSecret);
  // Password guessing: each failure slows the account and the client address, separately, with
  // exponential backoff; while either must wait, sign-ins are refused (429 with Retry-After)
  // before scrypt runs. A backoff, not a lockout: refused attempts do not count, so an attacker
  // failing from the victim's address (a shared NAT) or against the victim's account delays
  // them at most `windowMs`, and the right password works once the wait is over. The address is
  // the client's through trusted proxies only (config trustProxy). A few scrypt runs at once at
  // most, so sign-ins cannot saturate libuv's thread pool.
  const { maxFailures, windowMs } = deps.loginRateLimit;
  const backoff = { freeFailures: maxFailures, baseMs: 1000, maxMs: windowMs };
  const share: SharedBackoffFactory = deps.sharedBackoff ?? ((_name, _options, local) => unsharedBackoff(local));
  const failuresByUser = share('sign-in-account', backoff, createBackoff(backoff, deps.now), deps.now);
  const failuresByAddress = share('sign-in-address', backoff, createBackoff(backoff, deps.now), deps.now);
  const verifications = createSemaphore(deps.loginRateLimit.maxConcurrent ?? 4, 64);

  /** Every error page of the interaction endpoints goes through the AS's one renderer. */
  function fail(res: ServerResponse, err: AuthorizationServerError): void {
    sendAuthorizationServerError(res, err, 'page');
  }

  function tooManyAttempts(res: ServerResponse, retryAfterSeconds: number): void {
    const minutes = Math.ceil(retryAfterSeconds / 60);
    return fail(res, new AuthorizationServerError('too_many_requests',
      retryAfterSeconds < 60
        ? `Sign-in is slowed down after failed attempts. Try again in ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}.`
        : `Sign-in is slowed down after failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
      { retryAfterSeconds, title: 'Too many sign-in attempts' }));
  }

  async function clientView(clientId: string): Promise<ClientClaim & { refresh: boolean }> {
    const client = await provider.Client.find(clientId);
    const meta = (client?.metadata() ?? {}) as Record<string, unknown>;
    const name = typeof meta.client_name === 'string' && meta.client_name ? meta.client_name : clientId;
    const refresh = Array.isArray(meta.grant_types) && meta.grant_types.includes('refresh_token');
    if (meta.warden_preregistered === true) return { name, kind: 'pre-registered', refresh };
    const imitates = imitatedName(name, (await deps.preRegisteredClientNames?.()) ?? []);
    const claim: ClientClaim = isUrlClientId(clientId)
      ? { name, kind: 'metadata-document', documentHost: new URL(clientId).host }
      : { name, kind: 'self-registered' };
    return { ...claim, ...(imitates ? { imitates } : {}), refresh };
  }

  /** The redirect_uri of the request (validated by oidc-provider before any page is shown). */
  function redirectTarget(redirectUri: unknown): RedirectTarget {
    const redirect = URL.parse(String(redirectUri ?? ''));
    if (!redirect) return { host: 'unknown', local: false };
    const web = redirect.protocol === 'http:' || redirect.protocol === 'https:';
    return { host: web ? redirect.host : redirect.protocol, local: !web || isLoopbackHost(redirect.hostname) };
  }

  async function renderLogin(res: ServerResponse, details: Awaited<ReturnType<Provider['interactionDetails']>>, status = 200, error?: string, username?: string) {
    const { uid, params } = details;
    const client = await clientView(String(params.client_id));
    sendPage(res, status, 'Sign in', loginPage({
      action: `${deps.basePath}/interaction/${uid}/login`, csrf: csrf.issue(uid, 'login'), client, redirect: redirectTarget(params.redirect_uri),
      ...(error ? { error } : {}), ...(username ? { username } : {}),
    }));
  }

  async function renderConsent(res: ServerResponse, details: Awaited<ReturnType<Provider['interactionDetails']>>) {
    const { uid, params, prompt, session } = details;
    const clientId = String(params.client_id);
    const client = await clientView(clientId);
    const d = prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    const resourceUri = typeof params.resource === 'string' ? params.resource : deps.defaultResource ?? '';
    const info = deps.resolveResource(resourceUri);
    const requested = d.missingResourceScopes?.[resourceUri] ?? [];
    // What each scope unlocks for this user, not for an admin: the page must not promise more.
    const roles = session?.accountId ? (await deps.users.get(session.accountId))?.roles ?? [] : [];
    const tools = info ? deps.describeScopes(info, roles) : {};
    const descriptions = info?.server?.scopeDescriptions ?? {};
    const scopes: ConsentScope[] = requested.map((scope) => ({ scope, description: descriptions[scope] ?? scope, tools: tools[scope] ?? [] }));
    sendPage(res, 200, 'Allow access?', consentPage({
      action: `${deps.basePath}/interaction/${uid}/consent`, csrf: csrf.issue(uid, 'consent'),
      username: session?.accountId ?? '',
      client, redirect: redirectTarget(params.redirect_uri),
      resource: resourceUri, scopes, offlineAccess: client.refresh,
    }));
  }

  async function grantConsent(details: Awaited<ReturnType<Provider['interactionDetails']>>): Promise<string> {
    const { prompt, params, session } = details;
    const accountId = session!.accountId;
    const clientId = String(params.client_id);
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    grant ??= new provider.Grant({ accountId, clientId });
    const d = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    // Remember the consent per (user, client, resource) with everything granted so far, so a
    // later authorization for the same or fewer scopes skips the page (until revoked).
    const oidcScopes = (grant.openid?.scope ?? '').split(' ').filter((s) => s === 'offline_access');
    for (const [resource, scope] of Object.entries(grant.resources ?? {})) {
      await consents.put({ accountId, clientId, grantId, resource, scopes: [...String(scope).split(' ').filter(Boolean), ...oidcScopes], createdAt: deps.now() });
    }
    return grantId;
  }

  function originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return origin === undefined || origin === deps.issuerOrigin;
  }

  return async function handleInteraction(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const match = /^\/interaction\/([A-Za-z0-9_-]{1,128})(?:\/(login|consent))?$/.exec(pathname);
    if (!match) return fail(res, new AuthorizationServerError('not_found', 'There is no page here.'));
    const [, uid, step] = match as unknown as [string, string, 'login' | 'consent' | undefined];
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      return fail(res, new AuthorizationServerError('invalid_request',
        'It may have timed out or been opened in another browser. Go back to the application and start again.', { title: 'This sign-in request has expired' }));
    }
    if (details.uid !== uid) return fail(res, new AuthorizationServerError('invalid_request', 'Go back to the application and start again.', { title: 'This sign-in request does not match' }));
    const clientId = String(details.params.client_id);

    if (req.method === 'GET' && !step) {
      if (details.prompt.name === 'login') return renderLogin(res, details);
      if (details.prompt.name === 'consent') return renderConsent(res, details);
      return fail(res, new AuthorizationServerError('invalid_request', 'This authorization request needs a step this server does not offer.', { title: 'Unsupported request' }));
    }
    if (req.method !== 'POST' || !step) {
      return fail(res, new AuthorizationServerError('method_not_allowed', 'Use the form on the page.', { allow: step ? 'POST' : 'GET' }));
    }

    let form: Map<string, string>;
    try {
      form = await readForm(req);
    } catch (err) {
      return fail(res, new AuthorizationServerError('invalid_request', (err as Error).message, { title: 'Bad request' }));
    }
    if (!originAllowed(req) || !csrf.verify(uid, step, form.get('csrf'))) {
      return fail(res, new AuthorizationServerError('invalid_request', 'Reload the page and try again.', { status: 403, title: 'This form has expired' }));
    }

    if (step === 'login') {
      if (details.prompt.name !== 'login') return renderConsent(res, details);
      const username = form.get('username') ?? '';
      const password = form.get('password') ?? '';
      const userKey = username.toLowerCase();
      const address = deps.clientAddress ? deps.clientAddress(req) : req.socket.remoteAddress ?? 'unknown';
      const wait = Math.max(...await Promise.all([failuresByUser.retryAfter(userKey), failuresByAddress.retryAfter(address)]));
      if (wait > 0) {
        logger.warn({ event: 'login_throttled', client_id: clientId }, 'sign-in refused: too many failed attempts');
        return tooManyAttempts(res, wait);
      }
      let user: Awaited<ReturnType<typeof users.authenticate>> | undefined;
      if (username && password) {
        const verified = await verifications.run(() => users.authenticate(username, password));
        if (!verified) {
          return fail(res, new AuthorizationServerError('temporarily_unavailable', 'Too many sign-ins are being checked right now. Try again in a moment.',
            { retryAfterSeconds: 1, title: 'The sign-in service is busy' }));
        }
        user = verified.value;
      }
      if (!user) {
        await Promise.all([failuresByUser.fail(userKey), failuresByAddress.fail(address)]);
        logger.info({ event: 'login_failed', client_id: clientId }, 'sign-in failed');
        return renderLogin(res, details, 401, 'Invalid username or password.', username);
      }
      await failuresByUser.reset(userKey);
      logger.info({ event: 'login', client_id: clientId, user: user.username }, 'signed in');
      await provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
      return;
    }

    // step === 'consent'
    if (details.prompt.name !== 'consent') return renderLogin(res, details);
    const decision = form.get('decision');
    if (decision === 'deny') {
      logger.info({ event: 'consent_denied', client_id: clientId, user: details.session?.accountId }, 'consent denied');
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user denied the request' }, { mergeWithLastSubmission: false });
      return;
    }
    if (decision !== 'allow') return fail(res, new AuthorizationServerError('invalid_request', 'Choose Allow or Deny.', { title: 'Bad request' }));
    const grantId = await grantConsent(details);
    logger.info({ event: 'consent_granted', client_id: clientId, user: details.session?.accountId }, 'consent granted');
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  };
}
