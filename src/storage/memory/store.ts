/**
 * An in-process backend of the Store contract, for tests and single-process experiments. It
 * keeps nothing across restarts; production uses SQLite. It exists so the contract suite runs
 * against two backends and the interface stays honest for a third (PostgreSQL).
 */
import type { ConsentRecord, ConsentStore, KeyRecord, KeyStore, ModelPayload, ModelStore, ModelWrite, RevocationRecord, RevocationStore, Store } from '../store.ts';

interface Entry { payload: string; expiresAt: number | undefined; consumedAt: number | undefined }

class MemoryModelStore implements ModelStore {
  readonly #rows = new Map<string, Entry>();
  readonly #now: () => number;
  constructor(now: () => number) { this.#now = now; }

  #live(model: string, id: string): Entry | undefined {
    const e = this.#rows.get(`${model}\u0000${id}`);
    if (e && e.expiresAt !== undefined && e.expiresAt <= this.#now()) return undefined;
    return e;
  }

  static #decode(e: Entry | undefined): ModelPayload | undefined {
    if (!e) return undefined;
    const payload = JSON.parse(e.payload) as ModelPayload;
    if (e.consumedAt !== undefined) payload.consumed = Math.floor(e.consumedAt / 1000);
    return payload;
  }

  #where(model: string, field: string, value: string): ModelPayload | undefined {
    for (const [key, e] of this.#rows) {
      if (!key.startsWith(`${model}\u0000`)) continue;
      const p = JSON.parse(e.payload) as ModelPayload;
      if (p[field] === value) return this.#live(model, key.slice(model.length + 1)) ? MemoryModelStore.#decode(e) : undefined;
    }
    return undefined;
  }

  async upsert(model: string, id: string, payload: ModelPayload, expiresAt: number | undefined): Promise<void> {
    const serialized = JSON.stringify(payload); // throws before anything changes
    const key = `${model}\u0000${id}`;
    this.#rows.set(key, { payload: serialized, expiresAt, consumedAt: undefined });
  }
  async find(model: string, id: string) { return MemoryModelStore.#decode(this.#live(model, id)); }
  async findByUid(model: string, uid: string) { return this.#where(model, 'uid', uid); }
  async findByUserCode(model: string, userCode: string) { return this.#where(model, 'userCode', userCode); }
  async consume(model: string, id: string, at: number) {
    const e = this.#rows.get(`${model}\u0000${id}`);
    if (e && e.consumedAt === undefined) e.consumedAt = at;
  }
  async consumeAndWrite(model: string, id: string, at: number, writes: ModelWrite[]) {
    const serialized = writes.map((w) => JSON.stringify(w.payload)); // throws before anything changes
    const e = this.#live(model, id);
    if (!e || e.consumedAt !== undefined) return false;
    e.consumedAt = at;
    writes.forEach((w, i) => this.#rows.set(`${w.model}\u0000${w.id}`, { payload: serialized[i]!, expiresAt: w.expiresAt, consumedAt: undefined }));
    return true;
  }
  async destroy(model: string, id: string) { this.#rows.delete(`${model}\u0000${id}`); }
  async revokeByGrantId(grantId: string) {
    this.#rows.delete(`Grant\u0000${grantId}`);
    for (const [key, e] of this.#rows) if ((JSON.parse(e.payload) as ModelPayload).grantId === grantId) this.#rows.delete(key);
  }
  async list(model: string) {
    const out: Array<{ id: string; payload: ModelPayload }> = [];
    for (const key of [...this.#rows.keys()].sort()) {
      if (!key.startsWith(`${model}\u0000`)) continue;
      const id = key.slice(model.length + 1);
      const e = this.#live(model, id);
      if (e) out.push({ id, payload: MemoryModelStore.#decode(e)! });
    }
    return out;
  }
}

class MemoryKeyStore implements KeyStore {
  readonly #keys: KeyRecord[] = [];
  async list(use: KeyRecord['use']) {
    return this.#keys.filter((k) => k.use === use).map((k) => structuredClone(k)).reverse().sort((a, b) => b.createdAt - a.createdAt);
  }
  async add(record: KeyRecord) {
    if (this.#keys.some((k) => k.kid === record.kid)) throw new Error(`key ${record.kid} already exists`);
    this.#keys.push(structuredClone(record));
  }
  async retire(kid: string, at: number) {
    const k = this.#keys.find((x) => x.kid === kid);
    if (k && k.retiredAt === undefined) k.retiredAt = at;
  }
}

class MemoryConsentStore implements ConsentStore {
  #rows: ConsentRecord[] = [];
  async put(record: ConsentRecord) {
    this.#rows = this.#rows.filter((r) => !(r.accountId === record.accountId && r.clientId === record.clientId && r.resource === record.resource));
    this.#rows.push(structuredClone(record));
  }
  async find(accountId: string, clientId: string, resource: string) {
    const r = this.#rows.find((x) => x.accountId === accountId && x.clientId === clientId && x.resource === resource);
    return r ? structuredClone(r) : undefined;
  }
  async list(filter: { accountId?: string; clientId?: string } = {}) {
    return this.#rows
      .filter((r) => (filter.accountId === undefined || r.accountId === filter.accountId) && (filter.clientId === undefined || r.clientId === filter.clientId))
      .map((r) => structuredClone(r))
      .sort((a, b) => a.accountId.localeCompare(b.accountId) || a.clientId.localeCompare(b.clientId) || a.resource.localeCompare(b.resource));
  }
  async remove(filter: { accountId: string; clientId?: string }) {
    const match = (r: ConsentRecord) => r.accountId === filter.accountId && (filter.clientId === undefined || r.clientId === filter.clientId);
    const removed = this.#rows.filter(match);
    this.#rows = this.#rows.filter((r) => !match(r));
    return removed;
  }
}

class MemoryRevocationStore implements RevocationStore {
  /** Keyed by kind and id; re-inserted at every put, so iteration order is change order. */
  readonly #rows = new Map<string, RevocationRecord & { seq: number }>();
  readonly #now: () => number;
  #seq = 0;
  constructor(now: () => number) { this.#now = now; }

  async put(record: RevocationRecord): Promise<RevocationRecord> {
    const key = `${record.kind}\u0000${record.id}`;
    const old = this.#rows.get(key);
    const keepFirst = record.kind === 'grant' || record.kind === 'token';
    const revokedAt = old ? (keepFirst ? Math.min(old.revokedAt, record.revokedAt) : Math.max(old.revokedAt, record.revokedAt)) : record.revokedAt;
    const stored = { kind: record.kind, id: record.id, revokedAt, expiresAt: Math.max(old?.expiresAt ?? 0, record.expiresAt), seq: ++this.#seq };
    this.#rows.delete(key);
    this.#rows.set(key, stored);
    const { seq: _seq, ...out } = stored;
    return out;
  }

  async changedSince(cursor: number): Promise<{ records: RevocationRecord[]; cursor: number }> {
    const now = this.#now();
    const records: RevocationRecord[] = [];
    let last = cursor;
    for (const [key, { seq, ...r }] of this.#rows) {
      if (r.expiresAt <= now) { this.#rows.delete(key); continue; }
      if (seq <= cursor) continue;
      records.push(r);
      last = seq;
    }
    return { records, cursor: Math.max(last, cursor) };
  }
}

/** An in-process Store (tests, diagnostics). @see src/storage/store.ts */
export function createMemoryStore(now: () => number = Date.now): Store {
  return { models: new MemoryModelStore(now), keys: new MemoryKeyStore(), consents: new MemoryConsentStore(), revocations: new MemoryRevocationStore(now) };
}
