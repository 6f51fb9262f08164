/**
 * The PostgreSQL backend of the Store contract (src/storage/store.ts), for deployments where
 * several instances share one authorization server state: a client registered, a code issued or
 * a refresh token rotated on one instance is seen by every other at its next read.
 *
 * Atomicity the contract promises, and how PostgreSQL gives it here:
 * - `consume` is one `UPDATE … SET consumed_at = COALESCE(consumed_at, $at)`: the first
 *   consumption wins even when two instances redeem the same code or refresh token at once
 *   (OAuth 2.1 §4.1.3: a code is used once; RFC 9700 §4.14.2 refresh reuse detection).
 * - `upsert` is one `INSERT … ON CONFLICT DO UPDATE`: a failed write leaves the previous row.
 * - `consents.remove` is one `DELETE … RETURNING`: what it returns is exactly what it removed.
 * Expired rows are invisible to reads (`expires_at > $now`) and deleted in small batches in the
 * background, so a sweep never holds a lock on the whole table.
 */
import type { JWK } from 'jose';
import type { ConsentRecord, ConsentStore, KeyRecord, KeyStore, ModelPayload, ModelStore, RevocationKind, RevocationRecord, RevocationStore, Store } from '../store.ts';
import { migrate, type PostgresDatabase } from './database.ts';

/** Version i+1 is MIGRATIONS[i], the same tables as the SQLite backend (docs/storage.md). */
const MIGRATIONS = [
  `CREATE TABLE oidc_models (
     model TEXT NOT NULL,
     id TEXT NOT NULL,
     payload TEXT NOT NULL,
     grant_id TEXT,
     uid TEXT,
     user_code TEXT,
     expires_at BIGINT,
     consumed_at BIGINT,
     PRIMARY KEY (model, id));
   CREATE INDEX oidc_models_grant ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
   CREATE INDEX oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
   CREATE INDEX oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
   CREATE INDEX oidc_models_expiry ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE as_keys (
     kid TEXT PRIMARY KEY,
     use TEXT NOT NULL,
     jwk TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     retired_at BIGINT,
     seq BIGSERIAL);
   CREATE TABLE as_consents (
     account_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     resource TEXT NOT NULL,
     grant_id TEXT NOT NULL,
     scopes TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (account_id, client_id, resource));`,
  // Revocations move out of oidc_models into their own table with a change position (`seq`), so
  // every instance can keep them in memory and read only what changed (revocation.ts).
  `CREATE SEQUENCE as_revocations_seq;
   CREATE TABLE as_revocations (
     kind TEXT NOT NULL,
     id TEXT NOT NULL,
     revoked_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     seq BIGINT NOT NULL DEFAULT nextval('as_revocations_seq'),
     PRIMARY KEY (kind, id));
   CREATE INDEX as_revocations_changes ON as_revocations (seq);
   INSERT INTO as_revocations (kind, id, revoked_at, expires_at)
     SELECT CASE model WHEN 'RevokedGrant' THEN 'grant' WHEN 'RevokedAccessToken' THEN 'token' WHEN 'RevokedSubject' THEN 'subject' ELSE 'client' END,
            id, (payload::jsonb->>'revokedAt')::numeric::bigint, expires_at
     FROM oidc_models
     WHERE model IN ('RevokedGrant', 'RevokedAccessToken', 'RevokedSubject', 'RevokedClient')
       AND expires_at IS NOT NULL AND jsonb_typeof(payload::jsonb->'revokedAt') = 'number';
   DELETE FROM oidc_models WHERE model IN ('RevokedGrant', 'RevokedAccessToken', 'RevokedSubject', 'RevokedClient');`,
];

const UPSERT = `INSERT INTO oidc_models (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
  ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
    user_code = excluded.user_code, expires_at = excluded.expires_at`;

/** Rows deleted per sweep statement: small enough that a sweep never stalls writers. */
const SWEEP_BATCH = 1000;
const SWEEP_EVERY_MS = 60_000;

interface ModelRow { payload: string; consumed_at: number | null }

function decode(row: ModelRow | undefined): ModelPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as ModelPayload;
  // oidc-provider reads `consumed` as a truthy epoch-seconds value.
  if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at / 1000);
  return payload;
}

class PostgresModelStore implements ModelStore {
  readonly #db: PostgresDatabase;
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(db: PostgresDatabase, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  /** Deletes expired rows in batches, off the caller's path; a failure is retried at the next sweep. */
  #maybeSweep(now: number): void {
    if (now - this.#lastSweep < SWEEP_EVERY_MS) return;
    this.#lastSweep = now;
    const step = async (): Promise<void> => {
      const { rowCount } = await this.#db.query('warden_models_sweep',
        'DELETE FROM oidc_models WHERE ctid = ANY (ARRAY(SELECT ctid FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2))', [now, SWEEP_BATCH]);
      if ((rowCount ?? 0) === SWEEP_BATCH) await step();
    };
    step().catch(() => { this.#lastSweep = 0; });
  }

  async upsert(model: string, id: string, payload: ModelPayload, expiresAt: number | undefined): Promise<void> {
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    // Serialised first, so an unserialisable payload fails alone and nothing is written.
    const json = JSON.stringify(payload);
    await this.#db.query('warden_models_upsert', UPSERT, [model, id, json, str(payload.grantId), str(payload.uid), str(payload.userCode), expiresAt ?? null]);
    this.#maybeSweep(this.#now());
  }

  async #findBy(name: string, column: 'id' | 'uid' | 'user_code', model: string, value: string): Promise<ModelPayload | undefined> {
    const { rows } = await this.#db.query<ModelRow>(name,
      `SELECT payload, consumed_at FROM oidc_models WHERE model = $1 AND ${column} = $2 AND (expires_at IS NULL OR expires_at > $3) LIMIT 1`,
      [model, value, this.#now()]);
    return decode(rows[0]);
  }

  find(model: string, id: string) { return this.#findBy('warden_models_find', 'id', model, id); }
  findByUid(model: string, uid: string) { return this.#findBy('warden_models_find_uid', 'uid', model, uid); }
  findByUserCode(model: string, userCode: string) { return this.#findBy('warden_models_find_user_code', 'user_code', model, userCode); }

  async consume(model: string, id: string, at: number): Promise<void> {
    await this.#db.query('warden_models_consume', 'UPDATE oidc_models SET consumed_at = COALESCE(consumed_at, $1) WHERE model = $2 AND id = $3', [at, model, id]);
  }

  /**
   * The consumption and the writes in one transaction, only when the entry is live and not yet
   * consumed (the `WHERE consumed_at IS NULL` row lock makes concurrent instances serialise here:
   * exactly one of them rotates a refresh token, OAuth 2.1 §4.3.1).
   */
  async consumeAndWrite(model: string, id: string, at: number, writes: Array<{ model: string; id: string; payload: ModelPayload; expiresAt: number | undefined }>): Promise<boolean> {
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    const rows = writes.map((w) => [w.model, w.id, JSON.stringify(w.payload), str(w.payload.grantId), str(w.payload.uid), str(w.payload.userCode), w.expiresAt ?? null]);
    const now = this.#now();
    return this.#db.transaction(async (tx) => {
      const { rowCount } = await tx.query('warden_models_consume_once',
        'UPDATE oidc_models SET consumed_at = $1 WHERE model = $2 AND id = $3 AND consumed_at IS NULL AND (expires_at IS NULL OR expires_at > $4)', [at, model, id, now]);
      if ((rowCount ?? 0) === 0) return false;
      for (const row of rows) await tx.query('warden_models_upsert', UPSERT, row);
      return true;
    });
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.#db.query('warden_models_destroy', 'DELETE FROM oidc_models WHERE model = $1 AND id = $2', [model, id]);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#db.query('warden_models_revoke', "DELETE FROM oidc_models WHERE grant_id = $1 OR (model = 'Grant' AND id = $1)", [grantId]);
  }

  async list(model: string): Promise<Array<{ id: string; payload: ModelPayload }>> {
    const { rows } = await this.#db.query<ModelRow & { id: string }>('warden_models_list',
      'SELECT id, payload, consumed_at FROM oidc_models WHERE model = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY id', [model, this.#now()]);
    return rows.map((r) => ({ id: r.id, payload: decode(r)! }));
  }
}

class PostgresKeyStore implements KeyStore {
  readonly #db: PostgresDatabase;
  constructor(db: PostgresDatabase) { this.#db = db; }

  async list(use: KeyRecord['use']): Promise<KeyRecord[]> {
    const { rows } = await this.#db.query<{ kid: string; use: KeyRecord['use']; jwk: string; created_at: number; retired_at: number | null }>('warden_keys_list',
      'SELECT kid, use, jwk, created_at, retired_at FROM as_keys WHERE use = $1 ORDER BY created_at DESC, seq DESC', [use]);
    return rows.map((r) => ({
      kid: r.kid, use: r.use, jwk: JSON.parse(r.jwk) as JWK, createdAt: r.created_at,
      ...(r.retired_at !== null ? { retiredAt: r.retired_at } : {}),
    }));
  }

  async add(record: KeyRecord): Promise<void> {
    await this.#db.query('warden_keys_add', 'INSERT INTO as_keys (kid, use, jwk, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)',
      [record.kid, record.use, JSON.stringify(record.jwk), record.createdAt, record.retiredAt ?? null]);
  }

  async retire(kid: string, at: number): Promise<void> {
    await this.#db.query('warden_keys_retire', 'UPDATE as_keys SET retired_at = COALESCE(retired_at, $1) WHERE kid = $2', [at, kid]);
  }
}

interface ConsentRow { account_id: string; client_id: string; grant_id: string; resource: string; scopes: string; created_at: number }

function decodeConsent(r: ConsentRow): ConsentRecord {
  return { accountId: r.account_id, clientId: r.client_id, grantId: r.grant_id, resource: r.resource, scopes: JSON.parse(r.scopes) as string[], createdAt: r.created_at };
}

class PostgresConsentStore implements ConsentStore {
  readonly #db: PostgresDatabase;
  constructor(db: PostgresDatabase) { this.#db = db; }

  async put(record: ConsentRecord): Promise<void> {
    await this.#db.query('warden_consents_put', `INSERT INTO as_consents (account_id, client_id, resource, grant_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (account_id, client_id, resource) DO UPDATE SET grant_id = excluded.grant_id, scopes = excluded.scopes, created_at = excluded.created_at`,
    [record.accountId, record.clientId, record.resource, record.grantId, JSON.stringify(record.scopes), record.createdAt]);
  }

  async find(accountId: string, clientId: string, resource: string): Promise<ConsentRecord | undefined> {
    const { rows } = await this.#db.query<ConsentRow>('warden_consents_find',
      'SELECT * FROM as_consents WHERE account_id = $1 AND client_id = $2 AND resource = $3', [accountId, clientId, resource]);
    return rows[0] ? decodeConsent(rows[0]) : undefined;
  }

  async list(filter: { accountId?: string; clientId?: string } = {}): Promise<ConsentRecord[]> {
    const { rows } = await this.#db.query<ConsentRow>('warden_consents_list', `SELECT * FROM as_consents
      WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR client_id = $2) ORDER BY account_id, client_id, resource`,
    [filter.accountId ?? null, filter.clientId ?? null]);
    return rows.map(decodeConsent);
  }

  async remove(filter: { accountId: string; clientId?: string }): Promise<ConsentRecord[]> {
    const { rows } = await this.#db.query<ConsentRow>('warden_consents_remove',
      'DELETE FROM as_consents WHERE account_id = $1 AND ($2::text IS NULL OR client_id = $2) RETURNING *', [filter.accountId, filter.clientId ?? null]);
    return rows.map(decodeConsent).sort((a, b) => `${a.clientId}\u0000${a.resource}`.localeCompare(`${b.clientId}\u0000${b.resource}`));
  }
}

interface RevocationRow { seq: number; kind: RevocationKind; id: string; revoked_at: number; expires_at: number }

/**
 * `seq` comes from a sequence, whose values are handed out in call order but may commit in
 * another: a reader could see 6 before 5 commits and then skip 5. So a put takes a
 * transaction-level advisory lock first and draws its `seq` under it: puts commit one at a time,
 * in `seq` order, and a reader that saw position n has seen every put before it. Revocations are
 * rare; readers never take the lock.
 */
class PostgresRevocationStore implements RevocationStore {
  readonly #db: PostgresDatabase;
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(db: PostgresDatabase, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  async put(record: RevocationRecord): Promise<RevocationRecord> {
    const row = await this.#db.transaction(async (tx) => {
      await tx.query('warden_revocations_lock', 'SELECT pg_advisory_xact_lock(hashtext($1))', ['mcp-warden:revocations']);
      const { rows } = await tx.query<RevocationRow>('warden_revocations_put', `INSERT INTO as_revocations AS r (kind, id, revoked_at, expires_at, seq)
        VALUES ($1, $2, $3, $4, nextval('as_revocations_seq'))
        ON CONFLICT (kind, id) DO UPDATE SET
          revoked_at = CASE WHEN r.kind IN ('grant', 'token') THEN LEAST(r.revoked_at, excluded.revoked_at) ELSE GREATEST(r.revoked_at, excluded.revoked_at) END,
          expires_at = GREATEST(r.expires_at, excluded.expires_at),
          seq = excluded.seq
        RETURNING kind, id, revoked_at, expires_at, seq`, [record.kind, record.id, record.revokedAt, record.expiresAt]);
      return rows[0]!;
    });
    const now = this.#now();
    if (now - this.#lastSweep >= SWEEP_EVERY_MS) {
      this.#lastSweep = now;
      // Off the caller's path; a failure is retried at the next sweep.
      this.#db.query('warden_revocations_sweep', 'DELETE FROM as_revocations WHERE expires_at <= $1', [now]).catch(() => { this.#lastSweep = 0; });
    }
    return { kind: row.kind, id: row.id, revokedAt: row.revoked_at, expiresAt: row.expires_at };
  }

  async changedSince(cursor: number): Promise<{ records: RevocationRecord[]; cursor: number }> {
    const { rows } = await this.#db.query<RevocationRow>('warden_revocations_changed',
      'SELECT seq, kind, id, revoked_at, expires_at FROM as_revocations WHERE seq > $1 ORDER BY seq', [cursor]);
    const now = this.#now();
    const records = rows.filter((r) => r.expires_at > now).map((r) => ({ kind: r.kind, id: r.id, revokedAt: r.revoked_at, expiresAt: r.expires_at }));
    return { records, cursor: rows.length > 0 ? rows[rows.length - 1]!.seq : cursor };
  }
}

/** The Store on a PostgreSQL pool; brings up its tables under the `authorization-server` owner. @see src/storage/store.ts */
export async function createPostgresStore(db: PostgresDatabase, now: () => number = Date.now): Promise<Store> {
  await migrate(db, 'authorization-server', MIGRATIONS);
  return { models: new PostgresModelStore(db, now), keys: new PostgresKeyStore(db), consents: new PostgresConsentStore(db), revocations: new PostgresRevocationStore(db, now) };
}
