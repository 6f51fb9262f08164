/**
 * Per-user downstream secrets in SQLite, encrypted at rest (AES-256-GCM, secret-box.ts).
 *
 * Tables (owner "downstream"):
 *   downstream_secret_keys(server, kcv)        the key check value each server's secrets use
 *   downstream_secrets(server, user, nonce, ciphertext, tag, updated_at)
 * Nothing here holds a plaintext secret or the key.
 */
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { migrateDownstream } from './migrations.ts';
import { SecretsKeyError } from './errors.ts';
import { openSecret, sealSecret } from './secret-box.ts';
import { isKeyCheckValue, keyCheckValue } from './secrets-key.ts';


export interface StoredSecretInfo {
  server: string;
  user: string;
  updatedAt: Date;
}

/** The secrets of one server, opened with its key. */
export interface ServerSecrets {
  set(user: string, value: string): void;
  get(user: string): string | undefined;
  remove(user: string): boolean;
  list(): StoredSecretInfo[];
}

const migrateSecretStore = migrateDownstream;

/** Lists stored secrets (server and user only) without needing the key. */
export function listStoredSecrets(db: SqliteDatabase, server?: string): StoredSecretInfo[] {
  migrateSecretStore(db);
  const rows = (server === undefined
    ? db.prepare('SELECT server, user, updated_at FROM downstream_secrets ORDER BY server, user').all()
    : db.prepare('SELECT server, user, updated_at FROM downstream_secrets WHERE server = ? ORDER BY user').all(server)) as Array<{ server: string; user: string; updated_at: number }>;
  return rows.map((r) => ({ server: r.server, user: r.user, updatedAt: new Date(r.updated_at) }));
}

/** When `user`'s secret for `server` was last set, without needing the key; undefined when none is stored. */
export function storedSecretInfo(db: SqliteDatabase, server: string, user: string): StoredSecretInfo | undefined {
  migrateSecretStore(db);
  const row = db.prepare('SELECT updated_at FROM downstream_secrets WHERE server = ? AND user = ?').get(server, user) as { updated_at: number } | undefined;
  return row ? { server, user, updatedAt: new Date(row.updated_at) } : undefined;
}

/**
 * Opens `server`'s secrets with `key`. The first use records the key's check value; every later
 * use must present the same key, else a `SecretsKeyError` stops start-up (or the CLI) right away.
 */
export function openServerSecrets(db: SqliteDatabase, server: string, key: Buffer, now: () => number = Date.now): ServerSecrets {
  migrateSecretStore(db);
  const row = db.prepare('SELECT kcv FROM downstream_secret_keys WHERE server = ?').get(server) as { kcv: Buffer } | undefined;
  if (row) {
    if (!isKeyCheckValue(key, row.kcv)) {
      throw new SecretsKeyError(`the secrets key does not match the one server "${server}"'s stored secrets were encrypted with. Use the original key (WARDEN_SECRETS_KEY or the key file); a new key makes the stored secrets unreadable`);
    }
  } else {
    db.prepare('INSERT INTO downstream_secret_keys (server, kcv, created_at) VALUES (?, ?, ?)').run(server, keyCheckValue(key), now());
  }

  const select = db.prepare('SELECT nonce, ciphertext, tag FROM downstream_secrets WHERE server = ? AND user = ?');
  const upsert = db.prepare(`INSERT INTO downstream_secrets (server, user, nonce, ciphertext, tag, updated_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (server, user) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, tag = excluded.tag, updated_at = excluded.updated_at`);
  const del = db.prepare('DELETE FROM downstream_secrets WHERE server = ? AND user = ?');

  return {
    set(user, value) {
      const sealed = sealSecret(key, server, user, value);
      upsert.run(server, user, sealed.nonce, sealed.ciphertext, sealed.tag, now());
    },
    get(user) {
      const sealed = select.get(server, user) as { nonce: Buffer; ciphertext: Buffer; tag: Buffer } | undefined;
      if (!sealed) return undefined;
      try {
        return openSecret(key, server, user, sealed);
      } catch {
        // The key checked out, so the row itself was altered or moved: refuse it, never guess.
        throw new SecretsKeyError(`the stored secret of user "${user}" for server "${server}" fails authentication (altered or copied from another user); set it again`);
      }
    },
    remove(user) {
      return del.run(server, user).changes > 0;
    },
    list() {
      return listStoredSecrets(db, server);
    },
  };
}
