/**
 * The storage contracts of downstream identity: generated settings that must be the same on
 * every instance and survive restarts, and users' sealed per-upstream credentials. A backend
 * stores sealed bytes only: sealing and opening (AES-256-GCM bound to server and user) happen in
 * src/downstream/secret-store.ts, so no backend ever sees a plaintext secret or the key.
 * Every backend passes test/storage/downstream-store.test.ts. Times are milliseconds.
 */

/** Generated values kept once for the deployment (client secrets, the identity-assertion key). */
export interface SettingsStore {
  /** The stored value of `name`; when absent, `make()` is stored. When callers race, the first stored value is every caller's answer. */
  getOrCreate(name: string, make: () => string): Promise<string>;
}

/** An AES-256-GCM sealed value, as stored. */
export interface SealedSecret {
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export interface StoredSecretInfo {
  server: string;
  user: string;
  updatedAt: Date;
}

export interface SealedSecretStore {
  /**
   * The key check value that `server`'s secrets are sealed under: `candidate` is stored when the
   * server has none yet (first use of a key); the stored one is returned either way.
   */
  keyCheckValue(server: string, candidate: Buffer, at: number): Promise<Buffer>;
  get(server: string, user: string): Promise<SealedSecret | undefined>;
  /** Inserts or replaces atomically: a failed write leaves the previous value. */
  put(server: string, user: string, sealed: SealedSecret, at: number): Promise<void>;
  /** True when something was removed. */
  remove(server: string, user: string): Promise<boolean>;
  /** Server and user of the stored secrets (never their values), ordered by server then user. */
  list(server?: string): Promise<StoredSecretInfo[]>;
}

/** What downstream identity keeps, on one backend. */
export interface DownstreamStorage {
  settings: SettingsStore;
  secrets: SealedSecretStore;
}
