/**
 * The Store contract: everything the embedded authorization server keeps, behind one interface,
 * so a PostgreSQL backend can follow the SQLite one. Every backend passes the same contract
 * suite (test/storage/store-contract.ts).
 *
 * Times are milliseconds since the epoch and always come from the caller's `now()`, so expiry is
 * testable. Payloads are plain JSON objects owned by oidc-provider; a backend stores them opaquely.
 */
import type { JWK } from 'jose';

/** One oidc-provider artifact (Session, Grant, AuthorizationCode, RefreshToken, Client, …). */
export type ModelPayload = Record<string, unknown>;

/** One upsert of `consumeAndWrite`. */
export interface ModelWrite {
  model: string;
  id: string;
  payload: ModelPayload;
  expiresAt: number | undefined;
}

export interface ModelStore {
  /** Inserts or replaces atomically: a failed write leaves the previous value intact. */
  upsert(model: string, id: string, payload: ModelPayload, expiresAt: number | undefined): Promise<void>;
  /** The payload, with `consumed` (seconds) when it was consumed; undefined once expired. */
  find(model: string, id: string): Promise<ModelPayload | undefined>;
  findByUid(model: string, uid: string): Promise<ModelPayload | undefined>;
  findByUserCode(model: string, userCode: string): Promise<ModelPayload | undefined>;
  /** Marks consumed; the first consumption time wins (refresh-token reuse detection relies on it). */
  consume(model: string, id: string, at: number): Promise<void>;
  destroy(model: string, id: string): Promise<void>;
  /**
   * Consumes `model`/`id` and applies `writes` (upserts) in one transaction, only when it was not
   * consumed yet: true when applied, false (nothing written) when it was consumed already or is
   * gone. A refresh-token rotation commits the old token's consumption, its successor and the
   * answer together this way (OAuth 2.1 §4.3.1), so a crash never keeps one without the others.
   */
  consumeAndWrite(model: string, id: string, at: number, writes: ModelWrite[]): Promise<boolean>;
  /** Removes every artifact of one grant (tokens, codes, the grant itself). */
  revokeByGrantId(grantId: string): Promise<void>;
  /** Every live payload of a model, e.g. the registered clients. */
  list(model: string): Promise<Array<{ id: string; payload: ModelPayload }>>;
}

/** A private key or secret the authorization server signs with; public parts are derived. */
export interface KeyRecord {
  kid: string;
  /** `sig` = JWS signing key (private JWK); `cookie` = cookie/CSRF HMAC secret (`{ k }`). */
  use: 'sig' | 'cookie';
  jwk: JWK;
  createdAt: number;
  /** Set when rotated out: no longer published in the JWKS. */
  retiredAt?: number;
}

export interface KeyStore {
  /** Newest first. */
  list(use: KeyRecord['use']): Promise<KeyRecord[]>;
  add(record: KeyRecord): Promise<void>;
  retire(kid: string, at: number): Promise<void>;
}

/** A remembered consent: user `accountId` allowed `clientId` these scopes at this resource. */
export interface ConsentRecord {
  accountId: string;
  clientId: string;
  grantId: string;
  resource: string;
  scopes: string[];
  createdAt: number;
}

export interface ConsentStore {
  put(record: ConsentRecord): Promise<void>;
  find(accountId: string, clientId: string, resource: string): Promise<ConsentRecord | undefined>;
  list(filter?: { accountId?: string; clientId?: string }): Promise<ConsentRecord[]>;
  /** Removes and returns the matching consents (so their grants can be revoked). */
  remove(filter: { accountId: string; clientId?: string }): Promise<ConsentRecord[]>;
}

/** What a revocation reaches (src/authorization-server/revocation.ts). */
export type RevocationKind = 'grant' | 'token' | 'subject' | 'client';

/** `id` of `kind` revoked at `revokedAt` (ms), remembered until `expiresAt` (ms). */
export interface RevocationRecord {
  kind: RevocationKind;
  id: string;
  revokedAt: number;
  expiresAt: number;
}

/**
 * The durable record of revocations, read by every instance into memory (revocation.ts): once
 * in full at start, then by what changed since a cursor, every fraction of a second.
 */
export interface RevocationStore {
  /**
   * Records a revocation atomically and returns what is stored now: a `grant` or `token` keeps
   * its first `revokedAt`, a `subject` or `client` takes the later one (a user removed again
   * moves the line forward); `expiresAt` only grows. Every put is a change (`changedSince`).
   */
  put(record: RevocationRecord): Promise<RevocationRecord>;
  /**
   * The unexpired revocations put after `cursor` (0: all of them), in the order they were
   * committed, and the cursor to pass next time. No put is ever skipped: one that commits after
   * this read has a later position than every one returned, across processes too.
   */
  changedSince(cursor: number): Promise<{ records: RevocationRecord[]; cursor: number }>;
}

export interface Store {
  models: ModelStore;
  keys: KeyStore;
  consents: ConsentStore;
  revocations: RevocationStore;
}
