/**
 * Signed-in sessions of the account area, in memory: the browser holds only a random id. A
 * session ends after `idleMs` without a request, `maxMs` after it began, or at sign-out. Sessions
 * do not survive a restart (sign in again). A sign-in still in progress is not a session: it is
 * sealed into the browser's own cookie (sign-in-cookie.ts), so anonymous requests add nothing here.
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
      const s: AccountSession = { subject: fields.subject, id: randomBytes(32).toString('base64url'), createdAt: t, lastSeenAt: t };
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
