/**
 * Signed-in sessions of the account area: the browser holds only a random id. A session ends
 * after `idleMs` without a request, `maxMs` after it began, or at sign-out. A sign-in still in
 * progress is not a session: it is sealed into the browser's own cookie (sign-in-cookie.ts), so
 * anonymous requests add nothing here.
 *
 * Two places keep them, behind one `AccountSessions` contract: this process's memory (a single
 * instance; sessions do not survive a restart) or, with `cluster.redis`, Redis
 * (src/cluster/account-sessions.ts), so a user signed in through one instance is signed in on
 * every instance, and a sign-out anywhere ends the session everywhere.
 */
import { randomBytes } from 'node:crypto';

/** What a sign-in in progress must match when the authorization server answers. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** The account page to show afterwards (always one of ours). */
  returnTo: string;
}

export interface AccountSession {
  id: string;
  /** The verified ID token's `sub`. */
  subject: string;
  /** One message for the next page (POST-redirect-GET). */
  flash?: string;
  createdAt: number;
  lastSeenAt: number;
}

/**
 * Only a verified sign-in creates a session, so the cap (oldest dropped first) is reached only by
 * real sign-ins, never by anonymous requests.
 * @see OWASP Session Management Cheat Sheet (random ids, idle and absolute timeouts, renewal at sign-in)
 */
export function createSessionStore(o: { idleMs: number; maxMs: number; now: () => number; maxSessions?: number }) {
  const sessions = new Map<string, AccountSession>();
  const cap = o.maxSessions ?? 10_000;

  const expired = (s: AccountSession, t: number) => t - s.lastSeenAt > o.idleMs || t - s.createdAt > o.maxMs;

  return {
    /** The live session with this id, touched; undefined when unknown or expired. */
    get(id: string | undefined): AccountSession | undefined {
      if (id === undefined) return undefined;
      const s = sessions.get(id);
      if (!s) return undefined;
      const t = o.now();
      if (expired(s, t)) {
        sessions.delete(id);
        return undefined;
      }
      s.lastSeenAt = t;
      return s;
    },
    /** A new session under a new random id (so an id known before sign-in is never the signed-in one). */
    create(fields: { subject: string }): AccountSession {
      const t = o.now();
      // Oldest first (Map order): drop expired ones, and the oldest when full.
      for (const [id, s] of sessions) {
        if (sessions.size < cap && !expired(s, t)) break;
        sessions.delete(id);
      }
      const s: AccountSession = { subject: fields.subject, id: newSessionId(), createdAt: t, lastSeenAt: t };
      sessions.set(s.id, s);
      return s;
    },
    destroy(id: string): void {
      sessions.delete(id);
    },
    get size() {
      return sessions.size;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;

/**
 * Where the account area keeps signed-in sessions. `get` touches the session (idle timeout);
 * every method may throw an AccountError (503) when the shared store cannot answer, and then
 * nothing was changed.
 * @see OWASP Session Management Cheat Sheet (idle and absolute timeouts, invalidation at sign-out)
 */
export interface AccountSessions {
  /** The live session with this id, touched; undefined when unknown, expired or ended. */
  get(id: string | undefined): Promise<AccountSession | undefined>;
  /** A new session under a new random id. */
  create(fields: { subject: string }): Promise<AccountSession>;
  /** Ends the session (on every instance, when shared). */
  destroy(id: string): Promise<void>;
  /** Keeps one message for the session's next page (POST-redirect-GET); a no-op once it ended. */
  setFlash(id: string, message: string): Promise<void>;
  /** The kept message, removed. */
  takeFlash(id: string): Promise<string | undefined>;
}

/** Timeouts of a session store, as the account settings give them. */
export interface SessionLifetime {
  idleMs: number;
  maxMs: number;
  now: () => number;
}

/** What a shared session store is built with: the timeouts and the key its records are authenticated with (page-keys.ts). */
export interface SharedSessionOptions extends SessionLifetime {
  recordKey: Buffer;
}

/** A new random session id: 32 bytes, base64url (43 characters; cookies.ts accepts only that shape). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** The in-memory store behind the `AccountSessions` contract (one instance). */
export function memoryAccountSessions(o: SessionLifetime & { maxSessions?: number }): AccountSessions & { readonly size: number } {
  const store = createSessionStore(o);
  return {
    get: async (id) => store.get(id),
    create: async (fields) => store.create(fields),
    destroy: async (id) => store.destroy(id),
    async setFlash(id, message) {
      const s = store.get(id);
      if (s) s.flash = message;
    },
    async takeFlash(id) {
      const s = store.get(id);
      const flash = s?.flash;
      if (s) delete s.flash;
      return flash;
    },
    get size() {
      return store.size;
    },
  };
}
