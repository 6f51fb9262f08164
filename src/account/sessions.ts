/**
 * Server-side sessions of the account area, in memory: the browser holds only a random id. A
 * session ends after `idleMs` without a request, `maxMs` after it began, or at sign-out; a
 * sign-in still in progress after 10 minutes. Sessions do not survive a restart (sign in again).
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
  /** The verified ID token's `sub`; absent while signing in. */
  subject?: string;
  pending?: PendingSignIn;
  /** One message for the next page (POST-redirect-GET). */
  flash?: string;
  createdAt: number;
  lastSeenAt: number;
}

const PENDING_MS = 10 * 60_000;

/**
 * Sign-ins in progress and signed-in sessions are kept apart, each with its own cap (oldest
 * dropped first), so a flood of anonymous sign-in starts can never push a signed-in user out.
 * @see OWASP Session Management Cheat Sheet (random ids, idle and absolute timeouts, renewal at sign-in)
 */
export function createSessionStore(o: { idleMs: number; maxMs: number; now: () => number; maxSessions?: number; maxPending?: number }) {
  const signedIn = new Map<string, AccountSession>();
  const signingIn = new Map<string, AccountSession>();
  const caps = { signedIn: o.maxSessions ?? 10_000, signingIn: o.maxPending ?? 1_000 };

  const expired = (s: AccountSession, t: number) =>
    t - s.lastSeenAt > (s.subject ? o.idleMs : PENDING_MS) || t - s.createdAt > (s.subject ? o.maxMs : PENDING_MS);

  return {
    /** The live session with this id, touched; undefined when unknown or expired. */
    get(id: string | undefined): AccountSession | undefined {
      if (id === undefined) return undefined;
      const s = signedIn.get(id) ?? signingIn.get(id);
      if (!s) return undefined;
      const t = o.now();
      if (expired(s, t)) {
        (s.subject ? signedIn : signingIn).delete(id);
        return undefined;
      }
      s.lastSeenAt = t;
      return s;
    },
    /** A new session under a new random id (also at sign-in, so an id set before sign-in is never the signed-in one). */
    create(fields: Omit<AccountSession, 'id' | 'createdAt' | 'lastSeenAt'> = {}): AccountSession {
      const t = o.now();
      const [map, cap] = fields.subject ? [signedIn, caps.signedIn] : [signingIn, caps.signingIn];
      // Oldest first (Map order): drop expired ones, and the oldest when full.
      for (const [id, s] of map) {
        if (map.size < cap && !expired(s, t)) break;
        map.delete(id);
      }
      const s: AccountSession = { ...fields, id: randomBytes(32).toString('base64url'), createdAt: t, lastSeenAt: t };
      map.set(s.id, s);
      return s;
    },
    destroy(id: string): void {
      signedIn.delete(id);
      signingIn.delete(id);
    },
    get size() {
      return signedIn.size + signingIn.size;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
