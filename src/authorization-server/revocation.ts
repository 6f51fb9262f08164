/**
 * Revocation that reaches every access token of a grant. Our access tokens are JWTs (RFC 9068)
 * that nobody stores, so deleting a grant's stored artifacts (refresh tokens, codes) leaves its
 * access tokens valid until `exp`. This list remembers what was revoked, for as long as an access
 * token can live, and the gateway and introspection ask it at every use.
 *
 * What is remembered, each keyed so one point lookup answers:
 * - `RevokedGrant`: a grant (OAuth 2.1 §4.1.3 code replay, RFC 7009 §2.1 refresh-token
 *   revocation, RFC 9700 §4.14.2 refresh reuse, a revoked consent). Access tokens carry the grant
 *   id in their `grant_id` claim (provider.ts extraTokenClaims), so no per-token write is needed.
 * - `RevokedAccessToken`: one access token by `jti` (RFC 7009 §2.1 on the token itself).
 * - `RevokedSubject` / `RevokedClient`: a removed user or client; every token it held that was
 *   issued (`iat`) at or before the removal. Ids can be reused (a user added again), so the
 *   time, not the id alone, decides.
 *
 * State lives in the Store, so a restart keeps it and another process on the same database (the
 * admin CLI) is seen at the next lookup. The bus tells the other instances of a deployment; the
 * in-process bus is all a single instance needs, a shared one (Redis) can replace it.
 */
import type Provider from 'oidc-provider';
import type { ModelStore } from '../storage/store.ts';

export type RevocationKind = 'grant' | 'token' | 'subject' | 'client';

/** One revocation: `id` of `kind` is revoked from `at` (ms) and remembered until `until` (ms). */
export interface RevocationEvent {
  kind: RevocationKind;
  id: string;
  at: number;
  until: number;
}

/** Carries revocations to every instance; `publish` resolves once the event is handed over. */
export interface RevocationBus {
  publish(event: RevocationEvent): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(listener: (event: RevocationEvent) => void): () => void;
}

/** The claims of an access token the list is asked about (RFC 9068 §2.2 plus `grant_id`). */
export interface RevocableClaims {
  jti?: unknown;
  grant_id?: unknown;
  sub?: unknown;
  client_id?: unknown;
  iat?: unknown;
}

export interface RevocationList {
  /** Every access token of the grant, from now on. */
  revokeGrant(grantId: string): Promise<void>;
  /** One access token; remembered until it expires (`expiresAt`, ms). */
  revokeAccessToken(jti: string, expiresAt: number): Promise<void>;
  /** Every token issued to the user until now (user removed or disabled). */
  revokeSubject(accountId: string): Promise<void>;
  /** Every token issued to the client until now (client removed). */
  revokeClient(clientId: string): Promise<void>;
  /** True when the token must be refused. */
  isRevoked(claims: RevocableClaims): Promise<boolean>;
}

const MODEL: Record<RevocationKind, string> = {
  grant: 'RevokedGrant',
  token: 'RevokedAccessToken',
  subject: 'RevokedSubject',
  client: 'RevokedClient',
};

/** Delivers to listeners of this process only: one instance, or tests. */
export function createInProcessRevocationBus(): RevocationBus {
  const listeners = new Set<(event: RevocationEvent) => void>();
  return {
    async publish(event) {
      for (const listener of listeners) listener(event);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export interface RevocationListOptions {
  models: ModelStore;
  now: () => number;
  /**
   * How long a revocation is remembered, in ms: the longest an access token may live
   * (keys.ts longestAccessTokenTtlSeconds) plus the verifier's clock tolerance. A grant's
   * access tokens cannot outlive it.
   */
  horizonMs: number;
  bus?: RevocationBus;
}

/** Revocations kept in memory at most (bounded state per instance). */
const MAX_HEARD = 100_000;

/** Clock tolerance of the gateway (RFC 9068 §4, token-verifier.ts): tokens live this much longer. */
const CLOCK_TOLERANCE_MS = 60_000;

/** The revocation horizon for a longest access-token lifetime in seconds. */
export function revocationHorizonMs(longestAccessTokenTtlSeconds: number): number {
  return longestAccessTokenTtlSeconds * 1000 + CLOCK_TOLERANCE_MS;
}

/**
 * The revocation list over the Store. Revocations heard on the bus are kept in memory until they
 * expire, so an instance that does not share the database (or before its write is visible) still
 * refuses the token; everything else is a point lookup in the Store.
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 */
export function createRevocationList({ models, now, horizonMs, bus = createInProcessRevocationBus() }: RevocationListOptions): RevocationList & { close(): void } {
  const heard = new Map<string, RevocationEvent>();
  const key = (kind: RevocationKind, id: string) => `${kind}\u0000${id}`;
  const unsubscribe = bus.subscribe((event) => {
    if (heard.size >= MAX_HEARD) {
      for (const [k, e] of heard) if (e.until <= now()) heard.delete(k);
      // Still full: the oldest go first; the Store keeps them, so only a lookup is lost.
      for (const k of heard.keys()) { if (heard.size < MAX_HEARD) break; heard.delete(k); }
    }
    heard.set(key(event.kind, event.id), event);
  });

  async function revoke(kind: RevocationKind, id: string, until: number): Promise<void> {
    const at = now();
    const existing = await models.find(MODEL[kind], id);
    // A grant or token revoked once stays revoked from its first time; a user or client removed
    // again moves the line forward (tokens of a re-added one issued in between die too).
    const first = kind === 'grant' || kind === 'token' ? (existing?.revokedAt as number | undefined) ?? at : at;
    // Never `grantId` in the payload: Store.revokeByGrantId deletes rows by that field.
    await models.upsert(MODEL[kind], id, { revokedAt: first }, until);
    await bus.publish({ kind, id, at: first, until });
  }

  function heardAt(kind: RevocationKind, id: string): number | undefined {
    const e = heard.get(key(kind, id));
    if (!e) return undefined;
    if (e.until <= now()) { heard.delete(key(kind, id)); return undefined; }
    return e.at;
  }

  async function revokedAt(kind: RevocationKind, id: unknown): Promise<number | undefined> {
    if (typeof id !== 'string' || id === '') return undefined;
    const local = heardAt(kind, id);
    if (local !== undefined) return local;
    const row = await models.find(MODEL[kind], id);
    return row && typeof row.revokedAt === 'number' ? row.revokedAt : undefined;
  }

  return {
    revokeGrant: (grantId) => revoke('grant', grantId, now() + horizonMs),
    revokeAccessToken: (jti, expiresAt) => revoke('token', jti, Math.max(expiresAt, now()) + CLOCK_TOLERANCE_MS),
    revokeSubject: (accountId) => revoke('subject', accountId, now() + horizonMs),
    revokeClient: (clientId) => revoke('client', clientId, now() + horizonMs),
    async isRevoked(claims) {
      if ((await revokedAt('token', claims.jti)) !== undefined) return true;
      if ((await revokedAt('grant', claims.grant_id)) !== undefined) return true;
      // RFC 9068 §2.2: iat is in seconds; a token issued in the same second as the removal is
      // refused too (issued at or before it), as is one without iat.
      const iat = typeof claims.iat === 'number' ? claims.iat : 0;
      const issuedBefore = (at: number | undefined) => at !== undefined && iat <= Math.floor(at / 1000);
      if (claims.sub !== claims.client_id && issuedBefore(await revokedAt('subject', claims.sub))) return true;
      return issuedBefore(await revokedAt('client', claims.client_id));
    },
    close: unsubscribe,
  };
}

/**
 * Revokes everything a user holds: remembered consents, every grant (refresh tokens, codes and
 * their access tokens) and any other token issued to them until now. For `users remove`.
 */
export async function revokeUser(store: { models: ModelStore; consents: { remove(f: { accountId: string }): Promise<Array<{ grantId: string }>> } }, list: RevocationList, accountId: string): Promise<void> {
  await list.revokeSubject(accountId);
  const grants = new Set((await store.consents.remove({ accountId })).map((c) => c.grantId));
  for (const { id, payload } of await store.models.list('Grant')) if (payload.accountId === accountId) grants.add(id);
  for (const grantId of grants) {
    await list.revokeGrant(grantId);
    await store.models.revokeByGrantId(grantId);
  }
}

const ofProvider = new WeakMap<Provider, RevocationList>();

/** Records the list a provider revokes into (provider.ts), for code that holds only the provider. */
export function attachRevocationList(provider: Provider, list: RevocationList): void {
  ofProvider.set(provider, list);
}

/** The revocation list of a provider built by createProvider. */
export function revocationListOf(provider: Provider): RevocationList {
  const list = ofProvider.get(provider);
  if (!list) throw new Error('this provider has no revocation list (build it with createProvider)');
  return list;
}
