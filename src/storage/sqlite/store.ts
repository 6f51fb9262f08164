/**
 * The SQLite backend of the Store contract (src/storage/store.ts), on the shared database file.
 * Writes are single statements or transactions, so a failed write never loses what was stored.
 * Expired rows are invisible to reads and swept lazily.
 */
import type { JWK } from 'jose';
import { migrate, type SqliteDatabase } from './database.ts';
import type { ConsentRecord, ConsentStore, KeyRecord, KeyStore, ModelPayload, ModelStore, ModelWrite, RevocationKind, RevocationRecord, RevocationStore, Store } from '../store.ts';

const MIGRATIONS = [
  `CREATE TABLE oidc_models (
     model TEXT NOT NULL,
     id TEXT NOT NULL,
     payload TEXT NOT NULL,
     grant_id TEXT,
     uid TEXT,
     user_code TEXT,
     expires_at INTEGER,
     consumed_at INTEGER,
     PRIMARY KEY (model, id));
   CREATE INDEX oidc_models_grant ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
   CREATE INDEX oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
   CREATE INDEX oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
   CREATE INDEX oidc_models_expiry ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE as_keys (
     kid TEXT PRIMARY KEY,
     use TEXT NOT NULL,
     jwk TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     retired_at INTEGER);
   CREATE TABLE as_consents (
     account_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     resource TEXT NOT NULL,
     grant_id TEXT NOT NULL,
     scopes TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (account_id, client_id, resource));`,
  // The expiry index cost ~30% of every token write (bench/token-endpoint.ts); the once-a-minute
  // sweep scans instead.
  'DROP INDEX oidc_models_expiry;',
  // Revocations move out of oidc_models into their own table with a change position (`seq`), so
  // every instance can keep them in memory and read only what changed (revocation.ts).
  // AUTOINCREMENT: a position is never reused, even after the newest rows expired and were swept.
  `CREATE TABLE as_revocations (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     kind TEXT NOT NULL,
     id TEXT NOT NULL,
     revoked_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     UNIQUE (kind, id));
   INSERT INTO as_revocations (kind, id, revoked_at, expires_at)
     SELECT CASE model WHEN 'RevokedGrant' THEN 'grant' WHEN 'RevokedAccessToken' THEN 'token' WHEN 'RevokedSubject' THEN 'subject' ELSE 'client' END,
            id, CAST(json_extract(payload, '$.revokedAt') AS INTEGER), expires_at
     FROM oidc_models
     WHERE model IN ('RevokedGrant', 'RevokedAccessToken', 'RevokedSubject', 'RevokedClient')
       AND expires_at IS NOT NULL AND typeof(json_extract(payload, '$.revokedAt')) IN ('integer', 'real')
     ORDER BY rowid;
   DELETE FROM oidc_models WHERE model IN ('RevokedGrant', 'RevokedAccessToken', 'RevokedSubject', 'RevokedClient');`,
];

interface ModelRow { payload: string; consumed_at: number | null }

function decode(row: ModelRow | undefined): ModelPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as ModelPayload;
  // oidc-provider reads `consumed` as a truthy epoch-seconds value.
  if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at / 1000);
  return payload;
}

interface PendingWrite { run: () => void; resolve: () => void; reject: (err: unknown) => void }

/**
 * Writes are group-committed: every write issued in the same turn of the event loop is applied in
 * one transaction (one WAL commit instead of one each — the commit, not the statement, is what
 * costs: bench/token-endpoint.ts). A write's promise settles only after its transaction
 * committed, so nothing is acknowledged (e.g. a token response sent) before it is durable. If a
 * batch fails, its writes are retried one by one, so only the failing write fails. Reads do not
 * wait: a read racing an uncommitted write sees the committed state, as if it came first.
 */
class SqliteModelStore implements ModelStore {
  readonly #db: SqliteDatabase;
  readonly #now: () => number;
  readonly #stmts;
  #lastSweep = 0;
  #queue: PendingWrite[] = [];
  #scheduled = false;

  #write(run: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ run, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    try {
      this.#db.transaction(() => { for (const w of batch) w.run(); })();
      for (const w of batch) w.resolve();
    } catch {
      for (const w of batch) {
        try {
          this.#db.transaction(w.run)();
          w.resolve();
        } catch (err) {
          w.reject(err);
        }
      }
    }
  }

  constructor(db: SqliteDatabase, now: () => number) {
    this.#db = db;
    this.#now = now;
    this.#stmts = {
      upsert: db.prepare(`INSERT INTO oidc_models (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
        VALUES (@model, @id, @payload, @grantId, @uid, @userCode, @expiresAt, NULL)
        ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
          user_code = excluded.user_code, expires_at = excluded.expires_at`),
      find: db.prepare('SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)'),
      findByUid: db.prepare('SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND uid = ? AND (expires_at IS NULL OR expires_at > ?)'),
      findByUserCode: db.prepare('SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND user_code = ? AND (expires_at IS NULL OR expires_at > ?)'),
      consume: db.prepare('UPDATE oidc_models SET consumed_at = COALESCE(consumed_at, ?) WHERE model = ? AND id = ?'),
      consumeOnce: db.prepare('UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id = ? AND consumed_at IS NULL AND (expires_at IS NULL OR expires_at > ?)'),
      destroy: db.prepare('DELETE FROM oidc_models WHERE model = ? AND id = ?'),
      revoke: db.prepare("DELETE FROM oidc_models WHERE grant_id = ? OR (model = 'Grant' AND id = ?)"),
      list: db.prepare('SELECT id, payload, consumed_at FROM oidc_models WHERE model = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id'),
      sweep: db.prepare('DELETE FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    };
  }

  #maybeSweep(now: number): void {
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    this.#stmts.sweep.run(now);
  }

  static #row(model: string, id: string, payload: ModelPayload, expiresAt: number | undefined) {
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    return {
      model, id, payload: JSON.stringify(payload),
      grantId: str(payload.grantId), uid: str(payload.uid), userCode: str(payload.userCode),
      expiresAt: expiresAt ?? null,
    };
  }

  async consumeAndWrite(model: string, id: string, at: number, writes: ModelWrite[]): Promise<boolean> {
    const rows = writes.map((w) => SqliteModelStore.#row(w.model, w.id, w.payload, w.expiresAt));
    const now = this.#now();
    let applied = false;
    // Inside the group commit's transaction: the consumption and the writes commit together or
    // not at all (a batch that fails is retried write by write, each in its own transaction).
    await this.#write(() => {
      applied = false;
      const run = () => {
        if (this.#stmts.consumeOnce.run(at, model, id, now).changes === 0) return;
        for (const row of rows) this.#stmts.upsert.run(row);
        applied = true;
      };
      this.#db.transaction(run)();
    });
    return applied;
  }

  async upsert(model: string, id: string, payload: ModelPayload, expiresAt: number | undefined): Promise<void> {
    // Serialised now, so an unserialisable payload fails alone, before anything is queued.
    const row = SqliteModelStore.#row(model, id, payload, expiresAt);
    const now = this.#now();
    await this.#write(() => {
      this.#stmts.upsert.run(row);
      this.#maybeSweep(now);
    });
  }

  async find(model: string, id: string): Promise<ModelPayload | undefined> {
    return decode(this.#stmts.find.get(model, id, this.#now()) as ModelRow | undefined);
  }

  async findByUid(model: string, uid: string): Promise<ModelPayload | undefined> {
    return decode(this.#stmts.findByUid.get(model, uid, this.#now()) as ModelRow | undefined);
  }

  async findByUserCode(model: string, userCode: string): Promise<ModelPayload | undefined> {
    return decode(this.#stmts.findByUserCode.get(model, userCode, this.#now()) as ModelRow | undefined);
  }

  async consume(model: string, id: string, at: number): Promise<void> {
    await this.#write(() => { this.#stmts.consume.run(at, model, id); });
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.#write(() => { this.#stmts.destroy.run(model, id); });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#write(() => { this.#stmts.revoke.run(grantId, grantId); });
  }

  async list(model: string): Promise<Array<{ id: string; payload: ModelPayload }>> {
    const rows = this.#stmts.list.all(model, this.#now()) as Array<ModelRow & { id: string }>;
    return rows.map((r) => ({ id: r.id, payload: decode(r)! }));
  }
}

class SqliteKeyStore implements KeyStore {
  readonly #db: SqliteDatabase;
  constructor(db: SqliteDatabase) { this.#db = db; }

  async list(use: KeyRecord['use']): Promise<KeyRecord[]> {
    const rows = this.#db.prepare('SELECT kid, use, jwk, created_at, retired_at FROM as_keys WHERE use = ? ORDER BY created_at DESC, rowid DESC').all(use) as
      Array<{ kid: string; use: KeyRecord['use']; jwk: string; created_at: number; retired_at: number | null }>;
    return rows.map((r) => ({
      kid: r.kid, use: r.use, jwk: JSON.parse(r.jwk) as JWK, createdAt: r.created_at,
      ...(r.retired_at !== null ? { retiredAt: r.retired_at } : {}),
    }));
  }

  async add(record: KeyRecord): Promise<void> {
    this.#db.prepare('INSERT INTO as_keys (kid, use, jwk, created_at, retired_at) VALUES (?, ?, ?, ?, ?)')
      .run(record.kid, record.use, JSON.stringify(record.jwk), record.createdAt, record.retiredAt ?? null);
  }

  async retire(kid: string, at: number): Promise<void> {
    this.#db.prepare('UPDATE as_keys SET retired_at = COALESCE(retired_at, ?) WHERE kid = ?').run(at, kid);
  }
}

class SqliteConsentStore implements ConsentStore {
  readonly #db: SqliteDatabase;
  constructor(db: SqliteDatabase) { this.#db = db; }

  static #decode(r: { account_id: string; client_id: string; grant_id: string; resource: string; scopes: string; created_at: number }): ConsentRecord {
    return { accountId: r.account_id, clientId: r.client_id, grantId: r.grant_id, resource: r.resource, scopes: JSON.parse(r.scopes) as string[], createdAt: r.created_at };
  }

  async put(record: ConsentRecord): Promise<void> {
    this.#db.prepare(`INSERT INTO as_consents (account_id, client_id, resource, grant_id, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (account_id, client_id, resource) DO UPDATE SET grant_id = excluded.grant_id, scopes = excluded.scopes, created_at = excluded.created_at`)
      .run(record.accountId, record.clientId, record.resource, record.grantId, JSON.stringify(record.scopes), record.createdAt);
  }

  async find(accountId: string, clientId: string, resource: string): Promise<ConsentRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM as_consents WHERE account_id = ? AND client_id = ? AND resource = ?').get(accountId, clientId, resource);
    return row ? SqliteConsentStore.#decode(row as never) : undefined;
  }

  async list(filter: { accountId?: string; clientId?: string } = {}): Promise<ConsentRecord[]> {
    const rows = this.#db.prepare(`SELECT * FROM as_consents WHERE (@accountId IS NULL OR account_id = @accountId)
      AND (@clientId IS NULL OR client_id = @clientId) ORDER BY account_id, client_id, resource`)
      .all({ accountId: filter.accountId ?? null, clientId: filter.clientId ?? null });
    return rows.map((r) => SqliteConsentStore.#decode(r as never));
  }

  async remove(filter: { accountId: string; clientId?: string }): Promise<ConsentRecord[]> {
    // BEGIN IMMEDIATE: it reads, then writes. A deferred transaction would read from a snapshot,
    // and once another connection (the running gateway, while `mcp-warden consents revoke` runs)
    // committed meanwhile, SQLite refuses the upgrade to a write at once (SQLITE_BUSY, no
    // busy_timeout wait). Taking the write lock first waits for the other connection instead.
    // @see https://www.sqlite.org/lang_transaction.html#deferred_immediate_and_exclusive_transactions
    return this.#db.transaction(() => {
      const rows = this.#db.prepare('SELECT * FROM as_consents WHERE account_id = @accountId AND (@clientId IS NULL OR client_id = @clientId)')
        .all({ accountId: filter.accountId, clientId: filter.clientId ?? null });
      this.#db.prepare('DELETE FROM as_consents WHERE account_id = @accountId AND (@clientId IS NULL OR client_id = @clientId)')
        .run({ accountId: filter.accountId, clientId: filter.clientId ?? null });
      return rows.map((r) => SqliteConsentStore.#decode(r as never));
    }).immediate();
  }
}

interface RevocationRow { seq: number; kind: RevocationKind; id: string; revoked_at: number; expires_at: number }

/**
 * A put is one IMMEDIATE transaction (the database's write lock from its first statement): it
 * reads the stored row, deletes it and inserts the merged one, which takes the next `seq`. Writes
 * are serialised across processes by that lock, so `seq` order is commit order and a reader
 * that saw position n has seen every put before it.
 */
class SqliteRevocationStore implements RevocationStore {
  readonly #now: () => number;
  readonly #put;
  readonly #changed;
  readonly #sweep;
  #lastSweep = 0;

  constructor(db: SqliteDatabase, now: () => number) {
    this.#now = now;
    const find = db.prepare('SELECT revoked_at, expires_at FROM as_revocations WHERE kind = ? AND id = ?');
    const remove = db.prepare('DELETE FROM as_revocations WHERE kind = ? AND id = ?');
    const insert = db.prepare('INSERT INTO as_revocations (kind, id, revoked_at, expires_at) VALUES (?, ?, ?, ?)');
    this.#put = db.transaction((r: RevocationRecord): RevocationRecord => {
      const old = find.get(r.kind, r.id) as { revoked_at: number; expires_at: number } | undefined;
      const keepFirst = r.kind === 'grant' || r.kind === 'token';
      const revokedAt = old ? (keepFirst ? Math.min(old.revoked_at, r.revokedAt) : Math.max(old.revoked_at, r.revokedAt)) : r.revokedAt;
      const expiresAt = Math.max(old?.expires_at ?? 0, r.expiresAt);
      remove.run(r.kind, r.id);
      insert.run(r.kind, r.id, revokedAt, expiresAt);
      return { kind: r.kind, id: r.id, revokedAt, expiresAt };
    });
    this.#changed = db.prepare('SELECT seq, kind, id, revoked_at, expires_at FROM as_revocations WHERE seq > ? ORDER BY seq');
    this.#sweep = db.prepare('DELETE FROM as_revocations WHERE expires_at <= ?');
  }

  async put(record: RevocationRecord): Promise<RevocationRecord> {
    const stored = this.#put.immediate(record);
    const now = this.#now();
    if (now - this.#lastSweep >= 60_000) {
      this.#lastSweep = now;
      this.#sweep.run(now);
    }
    return stored;
  }

  async changedSince(cursor: number): Promise<{ records: RevocationRecord[]; cursor: number }> {
    const rows = this.#changed.all(cursor) as RevocationRow[];
    const now = this.#now();
    const records = rows.filter((r) => r.expires_at > now).map((r) => ({ kind: r.kind, id: r.id, revokedAt: r.revoked_at, expiresAt: r.expires_at }));
    return { records, cursor: rows.length > 0 ? rows[rows.length - 1]!.seq : cursor };
  }
}

/** The Store on an open SQLite database; brings up its tables under the `authorization-server` owner. @see src/storage/store.ts */
export function createSqliteStore(db: SqliteDatabase, now: () => number = Date.now): Store {
  migrate(db, 'authorization-server', MIGRATIONS);
  return { models: new SqliteModelStore(db, now), keys: new SqliteKeyStore(db), consents: new SqliteConsentStore(db), revocations: new SqliteRevocationStore(db, now) };
}
