/**
 * The account area's endpoints, all under /account:
 *   GET  /account                           your per-user-secret servers and their status
 *   GET  /account/sign-in                   starts sign-in at the authorization server
 *   GET  /account/callback                  its redirect back (code, state, iss)
 *   GET  /account/secrets/:server           set, replace or delete one credential
 *   POST /account/secrets/:server           store it            (CSRF, POST-redirect-GET)
 *   POST /account/secrets/:server/delete    delete it           (CSRF, POST-redirect-GET)
 *   POST /account/sign-out                  end the session     (CSRF)
 *   GET  /account/signed-out
 * The user is always the session's verified ID token subject, never anything in the request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCsrf } from '../kernel/csrf.ts';
import { sendPage } from '../kernel/html.ts';
import { loadSecretsKey } from '../downstream/secrets-key.ts';
import { openServerSecrets, storedSecretInfo, type ServerSecrets } from '../downstream/secret-store.ts';
import { describeError, type Logger } from '../log.ts';
import type { SealedSecretStore } from '../storage/downstream-store.ts';
import { readSessionId, sessionCookie } from './cookies.ts';
import { AccountError } from './errors.ts';
import { parseSecret, readForm } from './form.ts';
import { memoryAccountSessions, type AccountSession, type AccountSessions, type SharedSessionOptions } from './sessions.ts';
import type { AccountPageKeys } from './page-keys.ts';
import { createSignInSealer, readSignInCookie, signInCookie } from './sign-in-cookie.ts';
import type { AccountSettings, PerUserSecretServer } from './settings.ts';
import { ACCOUNT_PATH, CALLBACK_PATH } from './settings.ts';
import type { SignIn } from './sign-in.ts';
import { overviewPage, problemPage, secretPage, secretPath, signedOutPage, type ServerStatus } from './views.ts';

export interface AccountAreaOptions {
  settings: Extract<AccountSettings, { enabled: true }>;
  signIn: SignIn;
  /** Users' sealed secrets (src/storage/downstream-store.ts). */
  secrets: SealedSecretStore;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** The CSRF and sign-in cookie keys every instance shares (page-keys.ts). */
  keys: AccountPageKeys;
  /** Where signed-in sessions live (cluster.redis: src/cluster/account-sessions.ts); default this process's memory. */
  sessions?: (options: SharedSessionOptions) => AccountSessions;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

interface Target extends PerUserSecretServer {
  secrets: Promise<ServerSecrets>;
}

/** The account area's request handler. */
export function createAccountArea(o: AccountAreaOptions) {
  const { settings, signIn, logger } = o;
  const store = o.secrets;
  const now = o.now ?? Date.now;
  const lifetime = { idleMs: settings.idleTimeoutMs, maxMs: settings.maxSessionMs, now };
  const local = o.sessions ? undefined : memoryAccountSessions(lifetime);
  const sessions = o.sessions?.({ ...lifetime, recordKey: o.keys.sessionRecordKey }) ?? local!;
  // Shared keys: a form or a sign-in cookie from one instance is good at every other.
  const csrf = createCsrf(o.keys.csrfSecret);
  const sealer = createSignInSealer(o.keys.signInKey);
  const cookie = { secure: settings.secure };
  // The downstream module checked each key at start-up (a wrong one stops the gateway first).
  const targets = new Map<string, Target>(settings.servers.map((s) => [s.server.name, {
    ...s, secrets: openServerSecrets(store, s.server.name, loadSecretsKey(s.perUserSecret.key, o.env), now),
  }]));

  async function status(t: Target, subject: string): Promise<ServerStatus> {
    const info = await storedSecretInfo(store, t.server.name, subject);
    return { name: t.server.name, ...(info ? { setAt: info.updatedAt } : {}), hasFallback: t.perUserSecret.fallback !== undefined };
  }

  function redirect(res: ServerResponse, location: string, setCookie?: string | string[]): void {
    res.statusCode = 303;
    res.setHeader('Location', location);
    res.setHeader('Cache-Control', 'no-store');
    if (setCookie) res.setHeader('Set-Cookie', setCookie);
    res.end();
  }

  async function beginSignIn(res: ServerResponse, returnTo: string): Promise<void> {
    const { url, pending } = await signIn.begin(returnTo);
    // Sealed into the browser's cookie, not kept here: anonymous requests cost no server memory.
    redirect(res, url, signInCookie(cookie, sealer.seal(pending, now())));
  }

  /** POST checks, in order: same origin (when the browser says), a session, then its CSRF token. */
  async function readVerifiedForm(req: IncomingMessage, session: AccountSession | undefined): Promise<{ session: AccountSession & { subject: string }; form: Map<string, string> }> {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== settings.origin) throw new AccountError(403, 'Forbidden', 'This form was sent from another site.', 'cross-origin POST');
    if (!session?.subject) throw new AccountError(403, 'Your session has ended', 'Sign in again, then repeat what you were doing.', 'POST without a session');
    const form = await readForm(req);
    if (!csrf.verify(session.id, 'account', form.get('csrf'))) {
      throw new AccountError(403, 'This form has expired', 'Reload the page and try again.', 'missing or wrong CSRF token');
    }
    return { session: session as AccountSession & { subject: string }, form };
  }

  async function route(req: IncomingMessage, res: ServerResponse, pathname: string, query: string): Promise<void> {
    const method = req.method ?? 'GET';
    const session = await sessions.get(readSessionId(req, cookie));
    const subject = session?.subject;
    const allow = (methods: string) => {
      if (methods.split(', ').includes(method)) return true;
      res.setHeader('Allow', methods);
      sendPage(res, 405, 'Method not allowed', problemPage('Method not allowed', 'Use the links and buttons on the page.'));
      return false;
    };

    if (pathname === ACCOUNT_PATH || pathname === `${ACCOUNT_PATH}/`) {
      if (!allow('GET, HEAD')) return;
      if (!subject) return beginSignIn(res, ACCOUNT_PATH);
      const servers = await Promise.all([...targets.values()].map((t) => status(t, subject)));
      const flash = await sessions.takeFlash(session.id);
      return sendPage(res, 200, 'Your credentials', overviewPage({ subject, servers, csrf: csrf.issue(session.id, 'account'), ...(flash ? { flash } : {}) }));
    }
    if (pathname === `${ACCOUNT_PATH}/sign-in`) {
      if (!allow('GET, HEAD')) return;
      if (subject) return redirect(res, ACCOUNT_PATH);
      return beginSignIn(res, ACCOUNT_PATH);
    }
    if (pathname === CALLBACK_PATH) {
      if (!allow('GET')) return;
      const pending = sealer.open(readSignInCookie(req, cookie), now());
      // The sign-in cookie is spent whatever happens next (cleared on every answer); a replayed
      // copy of it is still useless, as its authorization code is single-use (RFC 6749 §4.1.2).
      res.setHeader('Set-Cookie', signInCookie(cookie, undefined));
      if (!pending) {
        throw new AccountError(400, 'Sign-in expired', 'This sign-in was started too long ago or in another browser.', 'callback without a pending sign-in');
      }
      if (session) await sessions.destroy(session.id);
      const { subject: verified } = await signIn.finish(new URL(`${settings.origin}${CALLBACK_PATH}?${query}`), pending);
      // A new id at sign-in: an id known before (e.g. planted) never becomes a signed-in session.
      const fresh = await sessions.create({ subject: verified });
      logger.info({ event: 'account_sign_in', user: verified }, 'signed in to the account page');
      return redirect(res, pending.returnTo, [signInCookie(cookie, undefined), sessionCookie(cookie, fresh.id)]);
    }
    if (pathname === `${ACCOUNT_PATH}/sign-out`) {
      if (!allow('POST')) return;
      const { session: s } = await readVerifiedForm(req, session);
      await sessions.destroy(s.id);
      logger.info({ event: 'account_sign_out', user: s.subject }, 'signed out of the account page');
      return redirect(res, `${ACCOUNT_PATH}/signed-out`, sessionCookie(cookie, undefined));
    }
    if (pathname === `${ACCOUNT_PATH}/signed-out`) {
      if (!allow('GET, HEAD')) return;
      return sendPage(res, 200, 'Signed out', signedOutPage());
    }

    const match = /^\/account\/secrets\/([^/]+)(\/delete)?$/.exec(pathname);
    let name: string | undefined;
    try {
      name = match ? decodeURIComponent(match[1]!) : undefined;
    } catch {
      name = undefined;
    }
    const target = name === undefined ? undefined : targets.get(name);
    if (!target) throw new AccountError(404, 'Not found', 'There is no such page. Servers that take your own credential are listed on your account page.');
    const deleting = match![2] !== undefined;
    if (deleting) {
      if (!allow('POST')) return;
      const { session: s } = await readVerifiedForm(req, session);
      const removed = await (await target.secrets).remove(s.subject);
      logger.info({ event: 'account_secret_deleted', user: s.subject, server: target.server.name, removed }, 'user deleted their downstream secret');
      await sessions.setFlash(s.id, removed ? `Your credential for ${target.server.name} was deleted.` : `You had no credential stored for ${target.server.name}.`);
      return redirect(res, ACCOUNT_PATH);
    }
    if (!allow('GET, HEAD, POST')) return;
    if (method !== 'POST') {
      if (!subject) return beginSignIn(res, secretPath(target.server.name));
      return sendPage(res, 200, `Credential for ${target.server.name}`, secretPage({ server: await status(target, subject), csrf: csrf.issue(session.id, 'account') }));
    }
    const { session: s, form } = await readVerifiedForm(req, session);
    let secret: string;
    try {
      secret = parseSecret(form.get('secret'), 'stdio' in target.server.upstream ? 'env' : 'header');
    } catch (err) {
      if (!(err instanceof AccountError)) throw err;
      return sendPage(res, err.status, err.title, secretPage({ server: await status(target, s.subject), csrf: csrf.issue(s.id, 'account'), error: err.message }));
    }
    const replaced = await storedSecretInfo(store, target.server.name, s.subject) !== undefined;
    await (await target.secrets).set(s.subject, secret);
    logger.info({ event: 'account_secret_set', user: s.subject, server: target.server.name, replaced }, 'user stored their downstream secret');
    await sessions.setFlash(s.id, `Your credential for ${target.server.name} was ${replaced ? 'replaced' : 'saved'}. New sessions use it; sessions already open keep the one they started with.`);
    return redirect(res, ACCOUNT_PATH);
  }

  return {
    handles(pathname: string): boolean {
      return pathname === ACCOUNT_PATH || pathname.startsWith(`${ACCOUNT_PATH}/`);
    },
    /** Every error is rendered here, once: a page with the status, never a stack or a secret. */
    handle(req: IncomingMessage, res: ServerResponse, pathname: string, query: string): void {
      route(req, res, pathname, query).catch((err: unknown) => {
        const e = err instanceof AccountError
          ? err
          : new AccountError(500, 'Something went wrong', 'Your request could not be completed. Try again.', describeError(err).message);
        if (e.reason) logger[e.status >= 500 ? 'error' : 'warn']({ event: 'account_error', status: e.status, reason: e.reason }, 'account page request refused');
        if (res.headersSent) return void res.end();
        const next = e.status === 403 || e.status === 400 && /Sign-in/.test(e.title) ? { href: '/account/sign-in', label: 'Sign in' } : undefined;
        sendPage(res, e.status, e.title, problemPage(e.title, e.message, next));
      });
    },
    /** Live sessions in this process's memory (tests, metrics); undefined when they live in Redis. */
    get sessionCount() {
      return local?.size;
    },
  };
}

export type AccountArea = ReturnType<typeof createAccountArea>;
