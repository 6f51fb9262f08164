/**
 * Revocation that reaches every access token of a grant. Our access tokens are JWTs (RFC 9068)
 * that nobody stores, so deleting a grant's stored artifacts (refresh tokens, codes) leaves its
 * access tokens valid until `exp`. This list remembers what was revoked, for as long as an access
 * token can live, and the gateway and introspection ask it at every use.
 *
 * What is remembered, each keyed so one map lookup answers:
 * - a grant (OAuth 2.1 §4.1.3 code replay, RFC 7009 §2.1 refresh-token revocation, RFC 9700
 *   §4.14.2 refresh reuse, a revoked consent). Access tokens carry the grant id in their
 *   `grant_id` claim (provider.ts extraTokenClaims), so no per-token write is needed.
 * - one access token by `jti` (RFC 7009 §2.1 on the token itself).
 * - a removed user (`subject`) or `client`: every token it held that was issued (`iat`) at or
 *   before the removal. Ids can be reused (a user added again), so the time, not the id alone,
 *   decides.
 *
 * Where the answer comes from, in this order of arrival:
 * 1. Memory is what `isRevoked` reads: synchronous map lookups, no I/O and no allocation on the
 *    common (not revoked) path, because it runs on every request the gateway serves.
 * 2. The Store is the durable record (`RevocationStore`): `revoke*` writes it first, so a
 *    restart keeps everything, and `start()` loads every unexpired revocation from it.
 * 3. The bus (in-process, or Redis across instances: src/cluster/revocation-bus.ts) carries a
 *    revocation to every listening list at once; this list applies what it hears immediately.
 * 4. Writers that publish on no bus this process hears (the admin CLI on the same database, an
 *    instance whose Redis subscription dropped) are caught by reading what changed in the Store
 *    since the last read, every `syncIntervalMs` (500 ms): a revocation committed anywhere is
 *    refused here within that interval plus one query (the "1 s everywhere" bound of
 *    docs/deployment.md). After the bus reconnects (`onReconnect`) the whole list is read again.
 *
 * Bounded memory: an entry lives until the last access token it can match has expired — at most
 * `horizonMs` (the longest access-token lifetime plus the clock tolerance) after it was heard,
 * whatever `until` a bus message claims — and is swept within a minute after. So memory holds at
 * most the revocations of one horizon (about 100 bytes each); nothing is ever evicted early,
 * since memory is the only thing asked.
 */
import type Provider from 'oidc-provider';
import type { ModelStore, RevocationKind, RevocationRecord, RevocationStore } from '../storage/store.ts';

export type { RevocationKind };

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
  /**
   * Runs `listener` whenever the bus (re)connected after it may have missed messages (a shared
   * bus after an outage); returns the unsubscribe function. A bus that cannot miss any omits it.
   */
  onReconnect?(listener: () => void): () => void;
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
  /** True when the token must be refused. Answered from memory, synchronously (module comment). */
  isRevoked(claims: RevocableClaims): boolean;
}

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
  /** The durable record (`Store.revocations`). */
  records: RevocationStore;
  now: () => number;
  /**
   * How long a revocation is remembered, in ms: the longest an access token may live
   * (keys.ts longestAccessTokenTtlSeconds) plus the verifier's clock tolerance. A grant's
   * access tokens cannot outlive it.
   */
  horizonMs: number;
  bus?: RevocationBus;
  /** Time between two reads of what changed in the Store (default 500 ms). */
  syncIntervalMs?: number;
  /** Told when reading the Store starts failing (once per outage) and when it works again. */
  onSyncState?: (state: { ok: true } | { ok: false; error: unknown }) => void;
}

/** A list that follows the Store: `start` before asking it, `close` when done. */
export interface FollowingRevocationList extends RevocationList {
  /** Loads every unexpired revocation from the Store and starts following it. */
  start(): Promise<void>;
  /** Reads what changed in the Store since the last read now (`full`: everything again). */
  sync(full?: boolean): Promise<void>;
  /** Stops following; resolves once a read in flight has ended. */
  close(): Promise<void>;
}

/** Clock tolerance of the gateway (RFC 9068 §4, token-verifier.ts): tokens live this much longer. */
const CLOCK_TOLERANCE_MS = 60_000;

/** Default time between two reads of what changed: half the 1 s bound (docs/deployment.md). */
const SYNC_INTERVAL_MS = 500;

/** Least time between two sweeps of expired entries from memory. */
const SWEEP_INTERVAL_MS = 60_000;

/** The revocation horizon for a longest access-token lifetime in seconds. */
export function revocationHorizonMs(longestAccessTokenTtlSeconds: number): number {
  return longestAccessTokenTtlSeconds * 1000 + CLOCK_TOLERANCE_MS;
}

/** A user's or client's removal line: tokens issued at or before `at` are refused until `until`. */
interface Line { at: number; until: number }

/**
 * The revocation list: memory answers, the Store remembers, the bus and a cursor over the Store
 * keep memory current (module comment).
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 */
export function createRevocationList({ records, now, horizonMs, bus = createInProcessRevocationBus(), syncIntervalMs = SYNC_INTERVAL_MS, onSyncState }: RevocationListOptions): FollowingRevocationList {
  // Grants and tokens: revoked whatever their time, so only `until` is kept.
  const grants = new Map<string, number>();
  const tokens = new Map<string, number>();
  const subjects = new Map<string, Line>();
  const clients = new Map<string, Line>();
  let started = false;
  let closed = false;
  let cursor = 0;
  let failing = false;
  let lastSweep = now();

  /** Merges one revocation into memory; idempotent, and order-insensitive like the Store's put. */
  function apply(kind: RevocationKind, id: string, at: number, until: number): void {
    const t = now();
    // The bound of the module comment, also against a bus message claiming a later `until`.
    const end = Math.min(until, t + horizonMs);
    if (!(end > t) || !Number.isFinite(at)) return;
    if (kind === 'grant' || kind === 'token') {
      const map = kind === 'grant' ? grants : tokens;
      const old = map.get(id);
      if (old === undefined || old < end) map.set(id, end);
      return;
    }
    const map = kind === 'subject' ? subjects : clients;
    const old = map.get(id);
    // A removal again moves the line forward, as the Store does; a late-heard older one does not move it back.
    if (!old || old.until <= t) map.set(id, { at, until: end });
    else map.set(id, { at: Math.max(old.at, at), until: Math.max(old.until, end) });
  }

  function sweep(t: number): void {
    lastSweep = t;
    for (const map of [grants, tokens]) for (const [id, until] of map) if (until <= t) map.delete(id);
    for (const map of [subjects, clients]) for (const [id, line] of map) if (line.until <= t) map.delete(id);
  }

  const unsubscribe = bus.subscribe((event) => apply(event.kind, event.id, event.at, event.until));
  const unReconnect = bus.onReconnect?.(() => { if (started) void sync(true).catch(() => undefined); });

  let reading: Promise<void> | undefined;
  let fullPending = false;
  /** One read of what changed; `fullPending` makes it a read of everything. */
  async function read(): Promise<void> {
    // A read queued behind one in flight when the list closed does not start.
    if (closed) return;
    if (fullPending) { fullPending = false; cursor = 0; }
    try {
      const changed = await records.changedSince(cursor);
      for (const r of changed.records) apply(r.kind, r.id, r.revokedAt, r.expiresAt);
      cursor = changed.cursor;
      if (failing) { failing = false; onSyncState?.({ ok: true }); }
    } catch (error) {
      // After close, a read the database never answered fails as the pool lets go: not an outage.
      if (!failing && !closed) { failing = true; onSyncState?.({ ok: false, error }); }
      throw error;
    } finally {
      const t = now();
      if (t - lastSweep >= SWEEP_INTERVAL_MS) sweep(t);
    }
  }
  /** A read that starts after every read already asked for has ended: one at a time, in order. */
  function sync(full = false): Promise<void> {
    if (full) fullPending = true;
    const previous = reading?.catch(() => undefined) ?? Promise.resolve();
    const mine: Promise<void> = previous.then(read).finally(() => { if (reading === mine) reading = undefined; });
    reading = mine;
    return mine;
  }

  let timer: NodeJS.Timeout | undefined;

  async function revoke(kind: RevocationKind, id: string, until: number): Promise<void> {
    // The Store first: once this resolves the revocation survives a restart and every instance
    // reading the Store finds it; then memory and the bus, for this instance and the others at once.
    const stored: RevocationRecord = await records.put({ kind, id, revokedAt: now(), expiresAt: until });
    apply(stored.kind, stored.id, stored.revokedAt, stored.expiresAt);
    await bus.publish({ kind: stored.kind, id: stored.id, at: stored.revokedAt, until: stored.expiresAt });
  }

  return {
    revokeGrant: (grantId) => revoke('grant', grantId, now() + horizonMs),
    revokeAccessToken: (jti, expiresAt) => revoke('token', jti, Math.max(expiresAt, now()) + CLOCK_TOLERANCE_MS),
    revokeSubject: (accountId) => revoke('subject', accountId, now() + horizonMs),
    revokeClient: (clientId) => revoke('client', clientId, now() + horizonMs),
    isRevoked(claims) {
      // Never answer "not revoked" from a memory that was not loaded: that would let every
      // revoked token through after a restart.
      if (!started) throw new Error('the revocation list was asked before start() loaded it from the Store');
      const { jti, grant_id: grantId, sub, client_id: clientId } = claims;
      // Empty maps (the usual case) cost one size check each, and `now()` is read only on a hit.
      if (tokens.size > 0 && typeof jti === 'string') {
        const until = tokens.get(jti);
        if (until !== undefined && until > now()) return true;
      }
      if (grants.size > 0 && typeof grantId === 'string') {
        const until = grants.get(grantId);
        if (until !== undefined && until > now()) return true;
      }
      // RFC 9068 §2.2: iat is in seconds; a token issued in the same second as the removal is
      // refused too (issued at or before it), as is one without iat.
      if (subjects.size > 0 && typeof sub === 'string' && sub !== clientId) {
        const line = subjects.get(sub);
        if (line !== undefined && line.until > now() && issuedAtOrBefore(claims.iat, line.at)) return true;
      }
      if (clients.size > 0 && typeof clientId === 'string') {
        const line = clients.get(clientId);
        if (line !== undefined && line.until > now() && issuedAtOrBefore(claims.iat, line.at)) return true;
      }
      return false;
    },
    async start() {
      if (started || closed) return;
      await sync(true);
      started = true;
      // A failed read keeps what memory has and is retried at the next tick (onSyncState reports it).
      // A tick while a read is still running (a slow database) is skipped rather than queued.
      timer = setInterval(() => { if (!reading) void sync().catch(() => undefined); }, syncIntervalMs).unref();
    },
    sync,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      unsubscribe();
      unReconnect?.();
      // A read in flight is not waited for: against a database that does not answer it would hold
      // a shutdown for a statement's whole limit, after the audit trail's own wait. It only
      // updates memory, and ends when the storage closes its connections.
      void reading?.catch(() => undefined);
    },
  };
}

/** RFC 9068 §2.2 `iat` (seconds) at or before `at` (ms); a token without a numeric iat counts as before. */
function issuedAtOrBefore(iat: unknown, at: number): boolean {
  return typeof iat !== 'number' || iat <= Math.floor(at / 1000);
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
