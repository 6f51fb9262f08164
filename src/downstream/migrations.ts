/** The tables downstream identity owns (owner "downstream"); append steps, never edit one. */
import { migrate, type SqliteDatabase } from '../storage/sqlite/database.ts';

const STEPS = [
  // Per-user secrets, sealed with AES-256-GCM, and each server's key check value.
  `CREATE TABLE downstream_secret_keys (
     server TEXT PRIMARY KEY,
     kcv BLOB NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE downstream_secrets (
     server TEXT NOT NULL,
     user TEXT NOT NULL,
     nonce BLOB NOT NULL,
     ciphertext BLOB NOT NULL,
     tag BLOB NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (server, user)
   );`,
  // Generated values the gateway keeps across restarts: its token-exchange client secret and
  // the key that signs identity assertions (a private JWK, like the authorization server's keys).
  `CREATE TABLE downstream_settings (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );`,
];

export function migrateDownstream(db: SqliteDatabase): void {
  migrate(db, 'downstream', STEPS);
}
